"""Generated regression data: synthetic_linreg, cubic and polynomial (dlrun/data/synthetic.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from dlrun.config.registry import DATASETS
from dlrun.data import synthetic  # noqa: F401  (registers the generated data sets)
from dlrun.errors import DlrunError

CONF = Path(__file__).resolve().parents[1] / "conf" / "dataset"


def yaml_config(name: str, **overrides) -> dict:
    """The option's YAML file as shipped (its defaults list left out), with overrides."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
    cfg.pop("defaults")
    return {**cfg, **overrides}


def build(name: str, **overrides):
    return DATASETS.build(yaml_config(name, **overrides))


def assert_same(a, b) -> None:
    for split in ("train", "test"):
        assert torch.equal(getattr(a, split).inputs, getattr(b, split).inputs)
        assert torch.equal(getattr(a, split).targets, getattr(b, split).targets)


def check_regression(ds, n_train: int, n_test: int, features: int) -> None:
    assert ds.train.inputs.shape == (n_train, features)
    assert ds.test.inputs.shape == (n_test, features)
    assert ds.train.targets.shape == (n_train, 1)
    assert ds.test.targets.shape == (n_test, 1)
    for split in (ds.train, ds.test):
        assert split.inputs.dtype == torch.float32
        assert split.targets.dtype == torch.float32
        assert split.scale is None
        assert torch.isfinite(split.inputs).all() and torch.isfinite(split.targets).all()
    assert ds.meta.task == "regression"
    assert ds.meta.input_shape == (features,)
    assert ds.meta.num_outputs == 1
    assert ds.meta.num_classes == 0


@pytest.mark.parametrize("name", ["synthetic_linreg", "cubic", "polynomial"])
def test_yaml_composes_with_its_schema(name: str) -> None:
    with initialize_config_module(version_base="1.3", config_module="dlrun.conf"):
        cfg = compose(f"dataset/{name}", overrides=["dataset.seed=3"])
    assert cfg.dataset.name == name
    assert cfg.dataset.seed == 3
    ds = DATASETS.build(cfg.dataset)
    assert ds.meta.task == "regression"


@pytest.mark.parametrize("name", ["synthetic_linreg", "cubic", "polynomial"])
def test_misspelt_knob_is_refused(name: str) -> None:
    with pytest.raises(DlrunError, match="sede"):
        DATASETS.build({**yaml_config(name), "sede": 1})


@pytest.mark.parametrize("name", ["synthetic_linreg", "cubic", "polynomial"])
def test_same_seed_same_data_other_seed_other_data(name: str) -> None:
    first = build(name, seed=7)
    assert_same(first, build(name, seed=7))
    other = build(name, seed=8)
    assert not torch.equal(first.train.targets, other.train.targets)
    assert not torch.equal(first.test.targets, other.test.targets)


@pytest.mark.parametrize("name", ["synthetic_linreg", "cubic", "polynomial"])
def test_data_does_not_touch_the_global_rng(name: str) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = build(name)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(999)  # the global state has no say in the data either
    assert_same(first, build(name))


@pytest.mark.parametrize("name", ["synthetic_linreg", "polynomial"])
def test_training_split_does_not_depend_on_test_size(name: str) -> None:
    a, b = build(name, n_test=10), build(name, n_test=50)
    assert torch.equal(a.train.inputs, b.train.inputs)
    assert torch.equal(a.train.targets, b.train.targets)
    assert len(b.test) == 50


# --- synthetic_linreg -------------------------------------------------------------------


def test_linreg_shapes_and_meta_as_in_the_tutorial() -> None:
    ds = build("synthetic_linreg")
    check_regression(ds, n_train=20, n_test=100, features=200)


def test_linreg_least_squares_recovers_weights_and_bias() -> None:
    ds = build("synthetic_linreg", d=5, n_train=4000, true_w=0.7, true_b=-0.3, noise=0.01)
    x, y = ds.train.inputs.double(), ds.train.targets.double()
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution[:, 0]
    assert torch.allclose(solution[:5], torch.full((5,), 0.7, dtype=x.dtype), atol=2e-3)
    assert solution[5].item() == pytest.approx(-0.3, abs=2e-3)
    residual = y - design @ solution.unsqueeze(1)
    assert residual.std().item() == pytest.approx(0.01, rel=0.1)


def test_linreg_defaults_follow_the_formula_within_noise() -> None:
    ds = build("synthetic_linreg")
    for split in (ds.train, ds.test):
        expected = 0.01 * split.inputs.sum(dim=1, keepdim=True) + 0.05
        assert (split.targets - expected).abs().max().item() < 5 * 0.01
    assert ds.train.inputs.std().item() == pytest.approx(1.0, abs=0.05)  # x ~ N(0, 1)


def test_linreg_without_noise_is_exact() -> None:
    ds = build("synthetic_linreg", d=3, noise=0.0, true_w=2.0, true_b=1.0)
    expected = 2.0 * ds.test.inputs.sum(dim=1, keepdim=True) + 1.0
    assert torch.allclose(ds.test.targets, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"d": 0}, "d"),
        ({"n_train": 0}, "n_train"),
        ({"n_test": -1}, "n_test"),
        ({"noise": -0.1}, "noise"),
    ],
)
def test_linreg_bad_values_name_the_key(override: dict, key: str) -> None:
    with pytest.raises(DlrunError, match=rf"dataset\.{key}="):
        build("synthetic_linreg", **override)


# --- cubic ------------------------------------------------------------------------------


def test_cubic_shapes_and_meta() -> None:
    ds = build("cubic")
    check_regression(ds, n_train=1500, n_test=300, features=1)
    assert ds.meta.feature_names == ("x",)


def test_cubic_x_is_evenly_spaced_over_minus_one_to_one() -> None:
    ds = build("cubic")
    for split, n in ((ds.train, 1500), (ds.test, 300)):
        x = split.inputs[:, 0].double()
        assert x[0].item() == -1.0 and x[-1].item() == 1.0
        steps = x.diff()
        assert torch.allclose(steps, torch.full_like(steps, 2 / (n - 1)), atol=1e-6)


def test_cubic_y_is_x_cubed_plus_noise() -> None:
    ds = build("cubic")
    x, y = ds.train.inputs, ds.train.targets
    residual = y - x**3
    assert residual.mean().abs().item() < 0.02
    assert residual.std().item() == pytest.approx(0.1, rel=0.1)
    assert residual.abs().max().item() < 0.5
    exact = build("cubic", noise=0.0)
    assert torch.allclose(exact.train.targets, exact.train.inputs**3)


def test_cubic_test_noise_is_drawn_afresh() -> None:
    ds = build("cubic", n_train=200, n_test=200)
    assert torch.equal(ds.train.inputs, ds.test.inputs)  # the same grid...
    assert not torch.equal(ds.train.targets, ds.test.targets)  # ...with other noise


@pytest.mark.parametrize(
    ("override", "key"), [({"n_train": 1}, "n_train"), ({"noise": -1.0}, "noise")]
)
def test_cubic_bad_values_name_the_key(override: dict, key: str) -> None:
    with pytest.raises(DlrunError, match=rf"dataset\.{key}="):
        build("cubic", **override)


# --- polynomial -------------------------------------------------------------------------


def true_polynomial(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return 5 + 1.2 * x - 3.4 * x**2 / 2 + 5.6 * x**3 / 6


def test_polynomial_shapes_and_raw_inputs() -> None:
    ds = build("polynomial")
    check_regression(ds, n_train=100, n_test=100, features=1)
    x = torch.cat([ds.train.inputs, ds.test.inputs])
    assert x.mean().abs().item() < 0.25  # raw x ~ N(0, 1), not polynomial features
    assert x.std().item() == pytest.approx(1.0, abs=0.2)


def test_polynomial_targets_close_to_the_true_polynomial() -> None:
    ds = build("polynomial")
    for split in (ds.train, ds.test):
        residual = split.targets.double() - true_polynomial(split.inputs)
        assert residual.abs().max().item() < 0.5  # 5 sigma of noise 0.1
        assert residual.std().item() == pytest.approx(0.1, rel=0.3)


def test_polynomial_least_squares_on_scaled_powers_recovers_true_w() -> None:
    ds = build("polynomial", n_train=5000, noise=0.1)
    x, y = ds.train.inputs.double(), ds.train.targets.double()
    features = torch.cat([x**i / math.factorial(i) for i in range(4)], dim=1)
    solution = torch.linalg.lstsq(features, y).solution[:, 0]
    expected = torch.tensor([5.0, 1.2, -3.4, 5.6], dtype=torch.float64)
    assert torch.allclose(solution, expected, atol=0.05)


def test_polynomial_takes_other_weights() -> None:
    ds = build("polynomial", true_w=[1.0, 0.0, 2.0], noise=0.0)
    x = ds.train.inputs
    assert torch.allclose(ds.train.targets, 1.0 + 2.0 * x**2 / 2, atol=1e-5)


def test_polynomial_empty_weights_are_refused() -> None:
    with pytest.raises(DlrunError, match=r"dataset\.true_w"):
        build("polynomial", true_w=[])
