"""Data sets and batching: IDX files in torchvision's layout, system copies, digits, batches."""

from __future__ import annotations

import dataclasses
import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import dlrun.builtins  # noqa: F401  (registers the built-in data sets)
from dlrun.config.registry import DATASETS
from dlrun.data.batches import batches, num_batches
from dlrun.data.dataset import Split
from dlrun.data.vision import FASHION_MNIST, IDX_FILES, load_idx_dataset
from dlrun.errors import DlrunError

N_TRAIN, N_TEST = 12, 5


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in the IDX format: magic 0x000008NN (NN = dims), big-endian sizes."""
    assert array.dtype == np.uint8
    header = struct.pack(">I", 0x00000800 | array.ndim)
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    return header + array.tobytes()


def make_arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        IDX_FILES[0]: rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8),
        IDX_FILES[1]: rng.integers(0, 10, size=N_TRAIN, dtype=np.uint8),
        IDX_FILES[2]: rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8),
        IDX_FILES[3]: rng.integers(0, 10, size=N_TEST, dtype=np.uint8),
    }


def write_idx_files(folder: Path, arrays: dict[str, np.ndarray], gz: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array)))
        else:
            (folder / name).write_bytes(idx_bytes(array))


def check_loaded(dataset, arrays: dict[str, np.ndarray]) -> None:
    assert dataset.train.inputs.shape == (N_TRAIN, 1, 28, 28)
    assert dataset.test.inputs.shape == (N_TEST, 1, 28, 28)
    assert dataset.train.inputs.dtype == torch.uint8
    assert torch.equal(dataset.train.inputs[:, 0], torch.from_numpy(arrays[IDX_FILES[0]]))
    assert torch.equal(dataset.train.targets, torch.from_numpy(arrays[IDX_FILES[1]]).long())
    assert torch.equal(dataset.test.inputs[:, 0], torch.from_numpy(arrays[IDX_FILES[2]]))
    assert torch.equal(dataset.test.targets, torch.from_numpy(arrays[IDX_FILES[3]]).long())
    assert dataset.meta.task == "classification"
    assert dataset.meta.input_shape == (1, 28, 28)
    assert dataset.meta.num_classes == 10
    assert len(dataset.meta.class_names) == 10
    assert dataset.train.scale == pytest.approx(1 / 255)


@pytest.mark.parametrize(
    ("name", "folder", "first_class"),
    [("fashion_mnist", "FashionMNIST", "T-shirt/top"), ("mnist", "MNIST", "0 - zero")],
)
def test_idx_files_in_root_are_loaded(
    tmp_path: Path, name: str, folder: str, first_class: str
) -> None:
    arrays = make_arrays(seed=1)
    write_idx_files(tmp_path / folder / "raw", arrays)
    dataset = DATASETS.build({"name": name, "root": str(tmp_path), "download": False})
    check_loaded(dataset, arrays)
    assert dataset.meta.class_names[0] == first_class


def test_fashion_and_mnist_use_their_own_folders(tmp_path: Path) -> None:
    fashion, digits = make_arrays(seed=2), make_arrays(seed=3)
    write_idx_files(tmp_path / "FashionMNIST" / "raw", fashion)
    write_idx_files(tmp_path / "MNIST" / "raw", digits)
    cfg = {"root": str(tmp_path), "download": False}
    check_loaded(DATASETS.build({"name": "fashion_mnist", **cfg}), fashion)
    check_loaded(DATASETS.build({"name": "mnist", **cfg}), digits)


def test_system_folder_gz_files_are_decompressed_into_root(tmp_path: Path) -> None:
    arrays = make_arrays(seed=4)
    system = tmp_path / "usr-share" / "fashion-mnist"
    write_idx_files(system, arrays, gz=True)
    source = dataclasses.replace(FASHION_MNIST, system_dirs=(str(tmp_path / "absent"), str(system)))
    root = tmp_path / "data"

    dataset = load_idx_dataset(source, root, download=False)

    raw = root / "FashionMNIST" / "raw"
    for name, array in arrays.items():
        assert (raw / name).read_bytes() == idx_bytes(array)
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)  # no temp files left
    check_loaded(dataset, arrays)
    # The system copy is left as it was.
    assert sorted(p.name for p in system.iterdir()) == sorted(f"{n}.gz" for n in IDX_FILES)


def test_files_in_root_win_over_system_folder(tmp_path: Path) -> None:
    in_root, in_system = make_arrays(seed=5), make_arrays(seed=6)
    write_idx_files(tmp_path / "data" / "FashionMNIST" / "raw", in_root)
    system = tmp_path / "system"
    write_idx_files(system, in_system, gz=True)
    source = dataclasses.replace(FASHION_MNIST, system_dirs=(str(system),))
    check_loaded(load_idx_dataset(source, tmp_path / "data", download=False), in_root)


def test_incomplete_system_folder_is_not_used(tmp_path: Path) -> None:
    system = tmp_path / "system"
    arrays = make_arrays(seed=7)
    del arrays[IDX_FILES[3]]
    write_idx_files(system, arrays, gz=True)
    source = dataclasses.replace(FASHION_MNIST, system_dirs=(str(system),))
    with pytest.raises(DlrunError, match="not found"):
        load_idx_dataset(source, tmp_path / "data", download=False)
    assert not (tmp_path / "data" / "FashionMNIST" / "raw").exists()


def test_missing_data_names_folder_and_download_option(tmp_path: Path) -> None:
    source = dataclasses.replace(FASHION_MNIST, system_dirs=(str(tmp_path / "nowhere"),))
    root = tmp_path / "data"
    with pytest.raises(DlrunError) as info:
        load_idx_dataset(source, root, download=False)
    message = str(info.value)
    assert str(root / "FashionMNIST" / "raw") in message
    assert str(tmp_path / "nowhere") in message
    assert "dataset.download=true" in message


def test_missing_data_through_registry(tmp_path: Path) -> None:
    with pytest.raises(DlrunError) as info:
        DATASETS.build({"name": "mnist", "root": str(tmp_path), "download": False})
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "dataset.download=true" in message


def test_partial_idx_files_count_as_missing(tmp_path: Path) -> None:
    arrays = make_arrays(seed=8)
    del arrays[IDX_FILES[2]]
    write_idx_files(tmp_path / "MNIST" / "raw", arrays)
    with pytest.raises(DlrunError, match="dataset.download=true"):
        DATASETS.build({"name": "mnist", "root": str(tmp_path), "download": False})


@pytest.mark.parametrize("damage", ["truncated", "bad_magic", "empty"])
def test_corrupt_idx_file_is_a_dlrun_error(tmp_path: Path, damage: str) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    write_idx_files(raw, make_arrays(seed=9))
    images = raw / IDX_FILES[0]
    data = images.read_bytes()
    if damage == "truncated":
        images.write_bytes(data[: len(data) // 2])
    elif damage == "bad_magic":
        images.write_bytes(b"\x12\x34\x56\x78" + data[4:])
    else:
        images.write_bytes(b"")
    with pytest.raises(DlrunError) as info:
        DATASETS.build({"name": "fashion_mnist", "root": str(tmp_path), "download": False})
    assert str(raw) in str(info.value)
    assert "could not be read" in str(info.value)


def test_image_and_label_counts_that_differ_are_a_dlrun_error(tmp_path: Path) -> None:
    arrays = make_arrays(seed=3)
    arrays[IDX_FILES[1]] = arrays[IDX_FILES[1]][:-1]  # one label short
    write_idx_files(tmp_path / "FashionMNIST" / "raw", arrays)
    with pytest.raises(DlrunError, match="could not be read"):
        DATASETS.build({"name": "fashion_mnist", "root": str(tmp_path), "download": False})


def test_vision_config_rejects_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(DlrunError, match="downlaod"):
        DATASETS.build({"name": "mnist", "root": str(tmp_path), "downlaod": True})


# --- digits ---------------------------------------------------------------------------

DIGITS = {"name": "digits", "image_size": 28, "test_size": 0.2, "random_state": 0}
N_DIGITS = 1797


@pytest.fixture(scope="module")
def digits_dataset():
    return DATASETS.build(DIGITS)


def test_digits_shapes_and_dtype(digits_dataset) -> None:
    ds = digits_dataset
    assert ds.train.inputs.shape[1:] == (1, 28, 28)
    assert ds.test.inputs.shape[1:] == (1, 28, 28)
    assert ds.train.inputs.dtype == torch.uint8
    assert ds.train.targets.dtype == torch.long
    assert ds.meta.input_shape == (1, 28, 28)
    assert ds.meta.num_classes == 10
    assert ds.train.scale == pytest.approx(1 / 255)
    assert int(ds.train.inputs.max()) > 200  # the 0..16 range was stretched to 0..255


def test_digits_split_is_stratified_and_sized(digits_dataset) -> None:
    ds = digits_dataset
    n_test = math.ceil(N_DIGITS * DIGITS["test_size"])
    assert len(ds.test) == n_test
    assert len(ds.train) == N_DIGITS - n_test
    assert set(ds.test.targets.tolist()) == set(range(10))
    assert set(ds.train.targets.tolist()) == set(range(10))
    test_counts = torch.bincount(ds.test.targets, minlength=10).float()
    train_counts = torch.bincount(ds.train.targets, minlength=10).float()
    # Stratified: each class has (nearly) the same share of both splits.
    ratio = test_counts / (test_counts + train_counts)
    assert torch.all((ratio - DIGITS["test_size"]).abs() < 0.02), ratio


def test_digits_other_test_size_and_image_size() -> None:
    ds = DATASETS.build({**DIGITS, "test_size": 0.5, "image_size": 16})
    assert len(ds.test) == math.ceil(N_DIGITS * 0.5)
    assert ds.train.inputs.shape[1:] == (1, 16, 16)
    assert ds.meta.input_shape == (1, 16, 16)


def test_digits_is_deterministic(digits_dataset) -> None:
    again = DATASETS.build(DIGITS)
    for name in ("train", "test"):
        a, b = getattr(digits_dataset, name), getattr(again, name)
        assert torch.equal(a.inputs, b.inputs)
        assert torch.equal(a.targets, b.targets)


def test_digits_random_state_changes_split(digits_dataset) -> None:
    other = DATASETS.build({**DIGITS, "random_state": 1})
    assert not torch.equal(other.test.targets, digits_dataset.test.targets)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"test_size": 1.5}, "test_size"),
        ({"test_size": 0.0}, "test_size"),
        ({"image_size": 4}, "image_size"),
    ],
)
def test_digits_bad_values(override: dict, match: str) -> None:
    with pytest.raises(DlrunError, match=match):
        DATASETS.build({**DIGITS, **override})


# --- batches ---------------------------------------------------------------------------


def image_split(n: int = 10) -> Split:
    inputs = torch.arange(n * 4, dtype=torch.int64).remainder(256).to(torch.uint8)
    inputs = inputs.view(n, 1, 2, 2)
    inputs[0] = 255  # make sure the top of the range is exercised
    return Split(inputs, torch.arange(n), scale=1 / 255)


def test_shuffled_batches_cover_every_sample_once() -> None:
    split = image_split(10)
    generator = torch.Generator().manual_seed(0)
    for _epoch in range(2):
        seen = [y for _, ys in batches(split, 3, shuffle=True, generator=generator) for y in ys]
        assert sorted(int(y) for y in seen) == list(range(10))
    assert len(list(batches(split, 3, shuffle=True, generator=generator))) == num_batches(
        10, 3, drop_last=False
    )


def test_shuffle_changes_order_and_keeps_input_target_pairs() -> None:
    split = image_split(10)
    out = list(batches(split, 4, shuffle=True, generator=torch.Generator().manual_seed(1)))
    order = torch.cat([ys for _, ys in out])
    assert not torch.equal(order, torch.arange(10))
    for xs, ys in out:
        expected = split.inputs[ys].float() / 255
        assert torch.allclose(xs, expected)


def test_unshuffled_batches_keep_order() -> None:
    split = image_split(10)
    ys = torch.cat([y for _, y in batches(split, 4)])
    assert torch.equal(ys, torch.arange(10))
    assert [len(y) for _, y in batches(split, 4)] == [4, 4, 2]


@pytest.mark.parametrize("shuffle", [False, True])
def test_drop_last_drops_the_remainder(shuffle: bool) -> None:
    split = image_split(10)
    out = list(batches(split, 4, shuffle=shuffle, drop_last=True, generator=torch.Generator()))
    assert [len(y) for _, y in out] == [4, 4]
    assert len(out) == num_batches(10, 4, drop_last=True) == 2
    seen = torch.cat([y for _, y in out])
    assert len(set(seen.tolist())) == 8


def test_drop_last_with_exact_multiple_keeps_all() -> None:
    split = image_split(8)
    assert [len(y) for _, y in batches(split, 4, drop_last=True)] == [4, 4]


def test_same_generator_seed_same_order() -> None:
    split = image_split(20)

    def order(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return torch.cat(
            [y for _, y in batches(split, 6, shuffle=True, generator=generator)]
        ).tolist()

    assert order(123) == order(123)
    assert order(123) != order(124)


def test_inputs_come_out_float_in_unit_range() -> None:
    split = image_split(10)
    for xs, _ in batches(split, 3, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert xs.dtype == torch.float32
        assert float(xs.min()) >= 0.0
        assert float(xs.max()) <= 1.0
    all_x = torch.cat([xs for xs, _ in batches(split, 3)])
    assert float(all_x.max()) == pytest.approx(1.0)
    assert torch.allclose(all_x, split.inputs.float() / 255)


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_do_not_modify_the_split(shuffle: bool) -> None:
    split = image_split(10)
    before = split.inputs.clone()
    for xs, _ in batches(split, 5, shuffle=shuffle, generator=torch.Generator()):
        xs.mul_(7)  # even a caller writing into a batch leaves the split alone
    assert split.inputs.dtype == torch.uint8
    assert torch.equal(split.inputs, before)


def test_float_split_without_scale_passes_values_through() -> None:
    inputs = torch.randn(6, 3, dtype=torch.float64)
    split = Split(inputs, torch.arange(6))
    out = torch.cat([xs for xs, _ in batches(split, 4)])
    assert out.dtype == torch.float32
    assert torch.allclose(out, inputs.float())


# --- Split ---------------------------------------------------------------------------


def test_split_head_takes_a_fixed_subset() -> None:
    split = Split(torch.arange(100).view(100, 1).float(), torch.arange(100) % 10)
    head = split.head(30)
    assert len(head) == 30
    assert head.inputs.shape == (30, 1)
    # Inputs and targets stay paired, with no duplicates.
    assert torch.equal(head.targets, head.inputs[:, 0].long() % 10)
    assert len(set(head.inputs[:, 0].tolist())) == 30
    # Shuffled, not simply the first 30.
    assert not torch.equal(head.inputs[:, 0], torch.arange(30).float())
    # Same seed, same subset; another seed, another subset.
    assert torch.equal(split.head(30).inputs, head.inputs)
    assert torch.equal(split.head(30, seed=0).inputs, head.inputs)
    assert not torch.equal(split.head(30, seed=1).inputs, head.inputs)


def test_split_head_none_or_large_returns_whole_split() -> None:
    split = Split(torch.zeros(5, 2), torch.zeros(5, dtype=torch.long))
    assert split.head(None) is split
    assert split.head(5) is split
    assert split.head(50) is split


def test_split_head_keeps_scale() -> None:
    split = image_split(10)
    head = split.head(4)
    assert head.scale == split.scale
    assert head.inputs.dtype == torch.uint8


def test_split_head_on_digits_has_every_class(digits_dataset) -> None:
    head = digits_dataset.train.head(200)
    assert len(head) == 200
    assert set(head.targets.tolist()) == set(range(10))


def test_split_rejects_mismatched_lengths_and_bad_scale() -> None:
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        Split(torch.zeros(3, 1), torch.zeros(2))
    with pytest.raises(ValueError, match="uint8"):
        Split(torch.zeros(3, 1), torch.zeros(3), scale=0.5)


def test_decoded_tensors_are_cached_and_refreshed_when_the_files_change(tmp_path, monkeypatch):
    import os

    from dlrun.data import vision

    arrays = make_arrays(seed=5)
    write_idx_files(tmp_path / "FashionMNIST" / "raw", arrays)
    cfg = {"name": "fashion_mnist", "root": str(tmp_path), "download": False}
    check_loaded(DATASETS.build(cfg), arrays)
    cache = tmp_path / "FashionMNIST" / vision.CACHE_FILE
    assert cache.is_file() and (cache.stat().st_mode & 0o644) == 0o644

    def no_decoding(*args):
        raise AssertionError("decoded again although the cache is fresh")

    monkeypatch.setattr(vision, "_decode", no_decoding)
    check_loaded(DATASETS.build(cfg), arrays)  # from the cache alone
    monkeypatch.undo()

    newer = make_arrays(seed=6)
    write_idx_files(tmp_path / "FashionMNIST" / "raw", newer)
    later = cache.stat().st_mtime + 10
    for name in IDX_FILES:
        os.utime(tmp_path / "FashionMNIST" / "raw" / name, (later, later))
    check_loaded(DATASETS.build(cfg), newer)  # stale cache: decoded again

    cache.write_bytes(b"not a torch file")
    os.utime(cache, (later + 10, later + 10))
    check_loaded(DATASETS.build(cfg), newer)  # damaged cache: decoded again
