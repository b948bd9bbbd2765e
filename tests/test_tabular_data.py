"""Tables: dataset=csv (any CSV file) and dataset=wine (dlrun/data/tabular.py)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dlrun.config.registry import DATASETS
from dlrun.data import tabular
from dlrun.errors import DlrunError

CONF = Path(__file__).resolve().parents[1] / "conf" / "dataset"
CLASS_SIZES = {"cat": 50, "dog": 30, "eel": 20}  # 100 rows
FEATURES = ["height", "weight", "age"]


def yaml_config(name: str, **overrides) -> dict:
    """The option's YAML file as shipped (its defaults list left out), with overrides."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    cfg.pop("defaults")
    return {**cfg, **overrides}


def build_csv(path: Path, **overrides):
    return DATASETS.build(yaml_config("csv", path=str(path), **overrides))


def animals_frame(seed: int = 0):
    """100 rows: three numeric features on different scales and a text label, last."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = [label for label, n in CLASS_SIZES.items() for _ in range(n)]
    rng.shuffle(labels)
    offsets = {"cat": 0.0, "dog": 5.0, "eel": 10.0}
    return pd.DataFrame(
        {
            "height": rng.normal(50, 10, len(labels)) + [offsets[x] for x in labels],
            "weight": rng.normal(1000, 300, len(labels)),
            "age": rng.integers(0, 20, len(labels)),
            "label": labels,
        }
    )


@pytest.fixture
def animals(tmp_path: Path):
    frame = animals_frame()
    path = tmp_path / "animals.csv"
    frame.to_csv(path, index=False)
    return path, frame


def write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path, **overrides) -> str:
    with pytest.raises(DlrunError) as info:
        build_csv(path, **overrides)
    return str(info.value)


# --- the YAML files ---------------------------------------------------------------------


def test_csv_yaml_leaves_path_to_the_command_line(animals) -> None:
    path, _ = animals
    with initialize_config_module(version_base="1.3", config_module="dlrun.conf"):
        cfg = compose("dataset/csv")
        assert OmegaConf.is_missing(cfg.dataset, "path")
        with pytest.raises(DlrunError, match=r"dataset\.path"):
            DATASETS.build(cfg.dataset)
        cfg = compose("dataset/csv", overrides=[f"dataset.path={path}", "dataset.target=label"])
    ds = DATASETS.build(cfg.dataset)
    assert ds.meta.num_classes == 3
    assert (cfg.dataset.test_size, cfg.dataset.random_state) == (0.2, 88)  # the tutorial's


def test_csv_task_is_checked_while_composing() -> None:
    with (
        initialize_config_module(version_base="1.3", config_module="dlrun.conf"),
        pytest.raises(Exception, match="regresion"),
    ):
        compose("dataset/csv", overrides=["dataset.task=regresion"])


def test_bad_task_through_the_registry_names_the_key(animals) -> None:
    path, _ = animals
    message = error_of(path, task="regresion")
    assert "task" in message and "regresion" in message


def test_wine_yaml_composes() -> None:
    with initialize_config_module(version_base="1.3", config_module="dlrun.conf"):
        cfg = compose("dataset/wine", overrides=["dataset.standardize=false"])
    assert cfg.dataset.name == "wine"
    assert DATASETS.build(cfg.dataset).meta.num_classes == 3


# --- a good CSV -------------------------------------------------------------------------


def test_csv_round_trip_keeps_every_row(animals) -> None:
    path, frame = animals
    ds = build_csv(path)
    assert ds.meta.task == "classification"
    assert ds.meta.input_shape == (3,)
    assert ds.meta.num_classes == 3
    assert ds.meta.class_names == ("cat", "dog", "eel")  # sorted unique values
    assert ds.meta.feature_names == tuple(FEATURES)
    n_test = math.ceil(0.2 * 100)
    assert (len(ds.train), len(ds.test)) == (100 - n_test, n_test)
    for split in (ds.train, ds.test):
        assert split.inputs.dtype == torch.float32
        assert split.targets.dtype == torch.int64
        assert split.scale is None
    # Every row comes out once, with its own label.
    got = torch.cat([ds.train.inputs, ds.test.inputs]).double().numpy()
    labels = torch.cat([ds.train.targets, ds.test.targets]).numpy()
    want = frame[FEATURES].to_numpy(dtype=np.float32).astype(np.float64)
    want_labels = frame["label"].map({"cat": 0, "dog": 1, "eel": 2}).to_numpy()
    got_order, want_order = np.lexsort(got.T), np.lexsort(want.T)
    assert np.array_equal(got[got_order], want[want_order])
    assert np.array_equal(labels[got_order], want_labels[want_order])


def test_target_defaults_to_the_last_column(tmp_path: Path) -> None:
    path = write(tmp_path, "b,a,klass\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20)))
    ds = build_csv(path)
    assert ds.meta.feature_names == ("b", "a")
    assert ds.meta.class_names == ("0", "1")
    all_x = torch.cat([ds.train.inputs, ds.test.inputs])
    all_y = torch.cat([ds.train.targets, ds.test.targets])
    assert torch.equal(all_x[:, 0].long() % 2, all_y)  # klass = b mod 2


def test_target_in_the_middle_and_chosen_features(animals, tmp_path: Path) -> None:
    _, frame = animals
    path = tmp_path / "middle.csv"
    frame[["label", "height", "weight", "age"]].to_csv(path, index=False)
    ds = build_csv(path, target="label")
    assert ds.meta.feature_names == ("height", "weight", "age")
    chosen = build_csv(path, target="label", features=["age", "height"])
    assert chosen.meta.feature_names == ("age", "height")
    assert chosen.meta.input_shape == (2,)
    assert chosen.train.inputs.shape[1] == 2
    # Same split either way: the chosen columns are the matching columns of the full set.
    assert torch.equal(chosen.train.inputs[:, 0], ds.train.inputs[:, 2])
    assert torch.equal(chosen.train.inputs[:, 1], ds.train.inputs[:, 0])


def test_numeric_class_values_become_ids_in_sorted_order(tmp_path: Path) -> None:
    rows = "".join(f"{i},{[3, 1, 2, 0][i % 4] * 10}\n" for i in range(40))
    ds = build_csv(write(tmp_path, "ram,price_range\n" + rows))
    assert ds.meta.class_names == ("0", "10", "20", "30")
    x = torch.cat([ds.train.inputs, ds.test.inputs])[:, 0].long()
    y = torch.cat([ds.train.targets, ds.test.targets])
    expected = torch.tensor([3, 1, 2, 0])[x % 4]
    assert torch.equal(y, expected)


def test_stratified_split_keeps_class_proportions(animals) -> None:
    path, _ = animals
    ds = build_csv(path)
    test_counts = torch.bincount(ds.test.targets, minlength=3).tolist()
    train_counts = torch.bincount(ds.train.targets, minlength=3).tolist()
    assert test_counts == [10, 6, 4]  # 20% of 50, 30, 20
    assert train_counts == [40, 24, 16]


def test_split_follows_random_state(animals) -> None:
    path, _ = animals
    first = build_csv(path)
    again = build_csv(path)
    for split in ("train", "test"):
        assert torch.equal(getattr(first, split).inputs, getattr(again, split).inputs)
        assert torch.equal(getattr(first, split).targets, getattr(again, split).targets)
    other = build_csv(path, random_state=1)
    assert not torch.equal(first.test.inputs, other.test.inputs)


def test_test_size_sets_the_split_sizes(animals) -> None:
    path, _ = animals
    ds = build_csv(path, test_size=0.5)
    assert (len(ds.train), len(ds.test)) == (50, 50)


def test_standard_scaler_is_fitted_on_the_training_split_only(animals) -> None:
    path, _ = animals
    raw = build_csv(path, standardize=False)
    scaled = build_csv(path, standardize=True)
    train, test = scaled.train.inputs.double(), scaled.test.inputs.double()
    assert torch.allclose(train.mean(0), torch.zeros(3, dtype=train.dtype), atol=1e-5)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(3, dtype=train.dtype), atol=1e-5)
    assert (test.mean(0).abs() > 1e-3).any()  # the test split did not take part in the fit
    raw_train = raw.train.inputs.double()
    mean, std = raw_train.mean(0), raw_train.std(0, unbiased=False)
    assert torch.allclose(test, (raw.test.inputs.double() - mean) / std, atol=1e-4)
    assert torch.equal(scaled.test.targets, raw.test.targets)


def test_regression_task(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 3},{i * 0.5 + 1}\n" for i in range(30))
    ds = build_csv(write(tmp_path, "x1,x2,price\n" + rows), task="regression", test_size=0.3)
    assert ds.meta.task == "regression"
    assert ds.meta.num_classes == 0 and ds.meta.class_names == ()
    assert ds.meta.num_outputs == 1
    assert (len(ds.train), len(ds.test)) == (21, 9)
    for split in (ds.train, ds.test):
        assert split.targets.dtype == torch.float32
        assert split.targets.shape == (len(split), 1)
        assert torch.allclose(split.targets[:, 0], split.inputs[:, 0] * 0.5 + 1)


# --- errors, each naming what is wrong ------------------------------------------------------


def test_missing_file_says_which_and_how(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nowhere.csv")
    assert "nowhere.csv" in message
    assert "dataset.path=" in message


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    assert "not a file" in error_of(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, ""))
    assert "table.csv" in message and "empty" in message


def test_header_without_rows(tmp_path: Path) -> None:
    assert "no data rows" in error_of(write(tmp_path, "a,b,c\n"))


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00\x80abc\x81\n\x00\x01", b"a,b\n1,2\n3,4,5\n", b"a,b\n1,2,3,4\n5,6\n"],
    ids=["not-text", "ragged-row", "long-first-row"],
)
def test_unreadable_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    message = error_of(path)
    assert "broken.csv" in message and "could not be read" in message


def test_target_not_in_file_lists_the_columns(animals) -> None:
    path, _ = animals
    message = error_of(path, target="price")
    assert "dataset.target=price" in message
    assert "height, weight, age, label" in message


def test_feature_not_in_file(animals) -> None:
    path, _ = animals
    message = error_of(path, features=["height", "colour"])
    assert "'colour'" in message and "height, weight, age, label" in message


def test_target_listed_as_feature(animals) -> None:
    path, _ = animals
    assert "'label'" in error_of(path, features=["height", "label"])


def test_non_numeric_feature_names_column_and_value(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'red' if i == 7 else i},{i % 2}\n" for i in range(20))
    message = error_of(write(tmp_path, "a,colour,y\n" + rows))
    assert "'colour'" in message and "'red'" in message and "not numeric" in message


def test_non_numeric_regression_target(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'big' if i % 2 else i}\n" for i in range(20))
    message = error_of(write(tmp_path, "a,size\n" + rows), task="regression")
    assert "'size'" in message and "'big'" in message


def test_nan_cells_name_the_columns_and_counts(tmp_path: Path) -> None:
    rows = "".join(f"{'' if i in (3, 5) else i},{i},{'' if i == 9 else i % 2}\n" for i in range(20))
    message = error_of(write(tmp_path, "a,b,y\n" + rows))
    assert "'a' (2 empty)" in message and "'y' (1 empty)" in message
    assert "'b'" not in message


def test_nan_in_a_column_left_out_does_not_matter(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'' if i == 4 else i},{i % 2}\n" for i in range(20))
    ds = build_csv(write(tmp_path, "a,b,y\n" + rows), features=["a"])
    assert ds.meta.feature_names == ("a",)


def test_single_class(tmp_path: Path) -> None:
    rows = "".join(f"{i},same\n" for i in range(20))
    message = error_of(write(tmp_path, "a,kind\n" + rows))
    assert "'kind'" in message and "single class" in message and "'same'" in message


def test_class_with_too_few_rows_to_stratify(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'rare' if i == 0 else i % 2}\n" for i in range(20))
    message = error_of(write(tmp_path, "a,kind\n" + rows))
    assert "'kind'" in message and "'rare' (1 row)" in message and "stratif" in message


def test_test_split_smaller_than_the_number_of_classes(animals) -> None:
    path, _ = animals
    message = error_of(path, test_size=0.02)
    assert "dataset.test_size=0.02" in message and "3 classes" in message


@pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, -0.2])
def test_test_size_out_of_range(animals, test_size: float) -> None:
    path, _ = animals
    assert f"dataset.test_size={test_size}" in error_of(path, test_size=test_size)


# --- wine -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wine():
    return DATASETS.build(yaml_config("wine"))


def test_wine_shapes_classes_and_features(wine) -> None:
    assert len(wine.train) + len(wine.test) == 178
    assert len(wine.test) == math.ceil(0.2 * 178)
    assert wine.meta.task == "classification"
    assert wine.meta.num_classes == 3
    assert wine.meta.class_names == ("class_0", "class_1", "class_2")
    assert wine.meta.input_shape == (13,)
    assert len(wine.meta.feature_names) == 13
    assert wine.meta.feature_names[0] == "alcohol"
    assert wine.train.inputs.shape == (len(wine.train), 13)
    assert wine.train.inputs.dtype == torch.float32
    assert wine.train.targets.dtype == torch.int64
    counts = torch.bincount(torch.cat([wine.train.targets, wine.test.targets]))
    assert counts.tolist() == [59, 71, 48]  # the classic wine class sizes


def test_wine_is_standardized_by_default(wine) -> None:
    train = wine.train.inputs.double()
    assert torch.allclose(train.mean(0), torch.zeros(13, dtype=train.dtype), atol=1e-5)
    raw = DATASETS.build(yaml_config("wine", standardize=False))
    assert raw.train.inputs[:, 12].min().item() > 200  # proline, in its own units
    assert torch.equal(raw.test.targets, wine.test.targets)


def test_wine_goes_through_the_csv_reader(monkeypatch) -> None:
    seen = []
    real = tabular.read_csv

    def spy(source, label):
        seen.append((source, label))
        return real(source, label)

    monkeypatch.setattr(tabular, "read_csv", spy)
    DATASETS.build(yaml_config("wine"))
    ((source, label),) = seen
    assert isinstance(source, io.StringIO)
    assert "wine" in label


def test_wine_bad_test_size() -> None:
    with pytest.raises(DlrunError, match=r"dataset\.test_size=1\.2"):
        DATASETS.build(yaml_config("wine", test_size=1.2))
