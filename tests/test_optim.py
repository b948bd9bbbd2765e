"""Optimizers: built from their YAML, equal to torch's by hand, weight decay on weights only."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from conftest import compose
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from torch import nn

import dlrun.builtins  # noqa: F401  (registers the built-in options)
from dlrun.config.registry import OPTIMIZERS
from dlrun.errors import DlrunError
from dlrun.optim.optimizers import set_weight_decay

NAMES = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
TORCH_CLASS = {
    "sgd": torch.optim.SGD,
    "momentum": torch.optim.SGD,
    "nesterov": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def compose_optimizer(*overrides: str) -> dict:
    cfg = compose(*overrides, "dataset=digits")
    return OmegaConf.to_container(cfg.optimizer, resolve=True)


@pytest.fixture(scope="module")
def yaml_cfgs() -> dict[str, dict]:
    """Each optimizer's config as its YAML file composes it."""
    return {name: compose_optimizer(f"optimizer={name}") for name in NAMES}


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))


def weights_and_rest(model: nn.Module) -> tuple[list, list]:
    weights = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return weights, rest


def by_hand(cfg: dict, model: nn.Module) -> torch.optim.Optimizer:
    """The torch optimizer with the same hyperparameters, groups written out here."""
    hyper = {k: v for k, v in cfg.items() if k not in ("name", "weight_decay")}
    if "betas" in hyper:
        hyper["betas"] = tuple(hyper["betas"])
    weights, rest = weights_and_rest(model)
    groups = [
        {"params": weights, "weight_decay": cfg["weight_decay"]},
        {"params": rest, "weight_decay": 0.0},
    ]
    return TORCH_CLASS[cfg["name"]](groups, **hyper)


def take_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 5, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def zero_gradient_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """One step whose loss has zero gradient: only weight decay can move anything."""
    optimizer.zero_grad()
    (model(torch.randn(4, 5)) * 0).sum().backward()
    optimizer.step()


@pytest.mark.parametrize("name", NAMES)
def test_yaml_builds_the_right_torch_optimizer(name: str, yaml_cfgs: dict) -> None:
    cfg = yaml_cfgs[name]
    assert cfg["name"] == name
    optimizer = OPTIMIZERS.build(cfg, make_model())
    assert type(optimizer) is TORCH_CLASS[name]
    groups = optimizer.param_groups
    assert len(groups) == 2
    assert groups[0]["weight_decay"] == cfg["weight_decay"]
    assert groups[1]["weight_decay"] == 0.0
    for key, value in cfg.items():
        if key not in ("name", "weight_decay"):
            expected = tuple(value) if key == "betas" else value
            assert all(g[key] == expected for g in groups), key


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("weight_decay", [None, 0.05])
def test_steps_match_torch_built_by_hand(name: str, weight_decay: float | None, yaml_cfgs):
    cfg = dict(yaml_cfgs[name])
    if weight_decay is not None:
        cfg["weight_decay"] = weight_decay
    ours_model = make_model()
    hand_model = copy.deepcopy(ours_model)
    take_steps(ours_model, OPTIMIZERS.build(cfg, ours_model))
    take_steps(hand_model, by_hand(cfg, hand_model))
    before = make_model()
    for ours, hand, start in zip(
        ours_model.parameters(), hand_model.parameters(), before.parameters(), strict=True
    ):
        if ours.ndim >= 2:  # (the bias before BatchNorm gets no gradient)
            assert not torch.equal(ours, start)  # the steps did something
        assert torch.equal(ours, hand)


@pytest.mark.parametrize(
    "overrides",
    [
        {"momentum": 0.5, "dampening": 0.3},
        {"lr_decay": 0.1, "initial_accumulator_value": 0.2},
        {"momentum": 0.5, "centered": True, "alpha": 0.9},
        {"amsgrad": True, "betas": [0.8, 0.99]},
    ],
    ids=["sgd", "adagrad", "rmsprop", "adamw"],
)
def test_non_default_knobs_match_torch(overrides: dict, yaml_cfgs: dict, request) -> None:
    cfg = {**yaml_cfgs[request.node.callspec.id], **overrides, "weight_decay": 0.02}
    ours_model = make_model()
    hand_model = copy.deepcopy(ours_model)
    take_steps(ours_model, OPTIMIZERS.build(cfg, ours_model))
    take_steps(hand_model, by_hand(cfg, hand_model))
    for ours, hand in zip(ours_model.parameters(), hand_model.parameters(), strict=True):
        assert torch.equal(ours, hand)


@pytest.mark.parametrize("name", ["adagrad", "rmsprop", "adam", "adamw"])
def test_yaml_values_are_torch_defaults(name: str, yaml_cfgs: dict) -> None:
    signature = inspect.signature(TORCH_CLASS[name]).parameters
    for key, value in yaml_cfgs[name].items():
        if key != "name":
            default = signature[key].default
            assert (tuple(value) if key == "betas" else value) == default, key


def test_momentum_and_nesterov_are_sgd_with_momentum(yaml_cfgs: dict) -> None:
    momentum = OPTIMIZERS.build(yaml_cfgs["momentum"], make_model()).param_groups[0]
    nesterov = OPTIMIZERS.build(yaml_cfgs["nesterov"], make_model()).param_groups[0]
    assert (momentum["momentum"], momentum["nesterov"], momentum["dampening"]) == (0.9, False, 0)
    assert (nesterov["momentum"], nesterov["nesterov"], nesterov["dampening"]) == (0.9, True, 0)


def test_sgd_weight_decay_shrinks_weights_and_leaves_biases(yaml_cfgs: dict) -> None:
    model = make_model()
    optimizer = OPTIMIZERS.build({**yaml_cfgs["sgd"], "lr": 0.5, "weight_decay": 0.1}, model)
    weights, rest = weights_and_rest(model)
    before_w = [w.detach().clone() for w in weights]
    before_rest = [p.detach().clone() for p in rest]
    zero_gradient_step(model, optimizer)
    for w, start in zip(weights, before_w, strict=True):
        assert torch.allclose(w, start * (1 - 0.5 * 0.1), atol=1e-7)
    for p, start in zip(rest, before_rest, strict=True):
        assert torch.equal(p, start)


@pytest.mark.parametrize("name", NAMES)
def test_weight_decay_never_moves_biases_or_norm_params(name: str, yaml_cfgs: dict) -> None:
    model = make_model()
    optimizer = OPTIMIZERS.build({**yaml_cfgs[name], "weight_decay": 0.1}, model)
    weights, rest = weights_and_rest(model)
    before_w = [w.detach().clone() for w in weights]
    before_rest = [p.detach().clone() for p in rest]
    zero_gradient_step(model, optimizer)
    zero_gradient_step(model, optimizer)
    for w, start in zip(weights, before_w, strict=True):
        assert float(w.detach().norm()) < float(start.norm())
    for p, start in zip(rest, before_rest, strict=True):
        assert torch.equal(p, start)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_set_weight_decay_touches_the_weight_group_only(name: str, yaml_cfgs: dict) -> None:
    model = make_model()
    optimizer = OPTIMIZERS.build({**yaml_cfgs[name], "lr": 0.5, "weight_decay": 0.0}, model)
    set_weight_decay(optimizer, 0.3)
    assert optimizer.param_groups[0]["weight_decay"] == 0.3
    assert optimizer.param_groups[1]["weight_decay"] == 0.0
    weights, rest = weights_and_rest(model)
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {id(w) for w in weights}
    before_w = [w.detach().clone() for w in weights]
    before_rest = [p.detach().clone() for p in rest]
    zero_gradient_step(model, optimizer)
    # SGD: w - lr * wd * w; AdamW: w * (1 - lr * wd), the same with a zero gradient.
    for w, start in zip(weights, before_w, strict=True):
        assert torch.allclose(w, start * (1 - 0.5 * 0.3), atol=1e-7)
    for p, start in zip(rest, before_rest, strict=True):
        assert torch.equal(p, start)
    set_weight_decay(optimizer, 0)
    assert optimizer.param_groups[0]["weight_decay"] == 0.0


def test_set_weight_decay_rejects_negative(yaml_cfgs: dict) -> None:
    optimizer = OPTIMIZERS.build(yaml_cfgs["sgd"], make_model())
    with pytest.raises(DlrunError, match="weight_decay=-0.1"):
        set_weight_decay(optimizer, -0.1)
    assert optimizer.param_groups[0]["weight_decay"] == 0.0


def test_model_without_weights_still_builds(yaml_cfgs: dict) -> None:
    model = nn.BatchNorm1d(4)  # only 1-d parameters: an empty decaying group
    optimizer = OPTIMIZERS.build({**yaml_cfgs["adamw"]}, model)
    assert optimizer.param_groups[0]["params"] == []
    set_weight_decay(optimizer, 0.5)


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("sgd", "lr", 0.0),
        ("adagrad", "lr", -0.01),
        ("adamw", "weight_decay", -0.01),
        ("rmsprop", "weight_decay", -1.0),
        ("momentum", "momentum", 1.0),
        ("nesterov", "momentum", -0.5),
        ("sgd", "dampening", 1.5),
        ("rmsprop", "momentum", 1.0),
        ("rmsprop", "alpha", 1.0),
        ("rmsprop", "alpha", -0.1),
        ("rmsprop", "eps", 0.0),
        ("adagrad", "eps", -1e-10),
        ("adagrad", "lr_decay", -0.1),
        ("adagrad", "initial_accumulator_value", -1.0),
        ("adam", "eps", 0.0),
        ("adamw", "betas", [0.9, 1.0]),
        ("adamw", "betas", [0.9]),
        ("adam", "betas", [-0.1, 0.9]),
    ],
)
def test_bad_values_name_key_and_value(name: str, key: str, value, yaml_cfgs: dict) -> None:
    with pytest.raises(DlrunError) as info:
        OPTIMIZERS.build({**yaml_cfgs[name], key: value}, make_model())
    message = str(info.value)
    assert f"optimizer.{key}={value}" in message


def test_nesterov_without_momentum_is_rejected(yaml_cfgs: dict) -> None:
    with pytest.raises(DlrunError, match="nesterov"):
        OPTIMIZERS.build({**yaml_cfgs["nesterov"], "momentum": 0.0}, make_model())


def test_misspelt_knob_fails_while_composing() -> None:
    with pytest.raises(ConfigCompositionException):
        compose_optimizer("optimizer=rmsprop", "optimizer.alhpa=0.9")
    with pytest.raises(ConfigCompositionException):
        compose_optimizer("optimizer=adagrad", "optimizer.lr_decay=fast")


def test_override_reaches_the_optimizer() -> None:
    cfg = compose_optimizer("optimizer=rmsprop", "optimizer.alpha=0.9", "optimizer.lr=0.05")
    group = OPTIMIZERS.build(cfg, make_model()).param_groups[0]
    assert (group["alpha"], group["lr"]) == (0.9, 0.05)
