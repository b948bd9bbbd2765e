"""Optimizers, built over two parameter groups: weights decay, biases and norm layers do not.

Every knob carries torch's own default in conf/optimizer/*.yaml (`momentum` and `nesterov`
are SGD with momentum 0.9). Adding an optimizer is one schema + one builder here and one
YAML file. Every builder has the signature `(cfg, model) -> torch.optim.Optimizer` and puts
the parameters in the groups of `param_groups`, so `set_weight_decay` can find the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from dlrun.errors import DlrunError
from dlrun.registry import OPTIMIZERS


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices and kernels only, as the L2 penalty in the tutorials.

    Biases and the scale/shift of normalisation layers are 1-d; decaying them only hurts.
    The first group is always the decaying one (possibly empty); the second, when there is
    one, holds the 1-d parameters with no decay.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def set_weight_decay(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set the weight decay of the weights' group (the first of `param_groups`) only.

    Biases and normalisation parameters stay undecayed. With SGD, weight decay `value` is the
    gradient of the penalty value/2 * ||w||^2, i.e. L2 regularisation of strength `value`.
    """
    if not value >= 0:  # also catches NaN
        raise DlrunError(f"weight_decay={value} is out of range: use >= 0.")
    if not optimizer.param_groups or "weight_decay" not in optimizer.param_groups[0]:
        raise DlrunError(
            f"{type(optimizer).__name__} has no weight_decay in its first parameter group; "
            f"build it with dlrun.optim.param_groups to use weight decay."
        )
    optimizer.param_groups[0]["weight_decay"] = float(value)


# --- validation ------------------------------------------------------------------------


def _check_common(lr: float, weight_decay: float) -> None:
    if not lr > 0:
        raise DlrunError(f"optimizer.lr={lr} is out of range: the learning rate must be > 0.")
    if not weight_decay >= 0:
        raise DlrunError(f"optimizer.weight_decay={weight_decay} is out of range: use >= 0.")


def _check_unit(key: str, value: float) -> None:
    """A decay rate such as momentum or alpha: 0 <= value < 1."""
    if not 0 <= value < 1:
        raise DlrunError(f"optimizer.{key}={value} is out of range: use 0 <= {key} < 1.")


def _check_positive(key: str, value: float) -> None:
    if not value > 0:
        raise DlrunError(f"optimizer.{key}={value} is out of range: use {key} > 0.")


def _check_non_negative(key: str, value: float) -> None:
    if not value >= 0:
        raise DlrunError(f"optimizer.{key}={value} is out of range: use {key} >= 0.")


def _check_betas(betas: Sequence[float]) -> tuple[float, float]:
    betas = list(betas)
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise DlrunError(f"optimizer.betas={betas} is invalid: give two values in [0, 1).")
    return betas[0], betas[1]


# --- SGD, with momentum, Nesterov ------------------------------------------------------


@dataclass
class SGDConfig:
    name: str = MISSING
    lr: float = MISSING
    momentum: float = MISSING
    dampening: float = MISSING
    weight_decay: float = MISSING
    nesterov: bool = MISSING


@OPTIMIZERS.register("sgd", schema=SGDConfig)
@OPTIMIZERS.register("momentum", schema=SGDConfig)
@OPTIMIZERS.register("nesterov", schema=SGDConfig)
def sgd(cfg: SGDConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Plain SGD (`sgd`), heavy-ball momentum (`momentum`) and Nesterov momentum (`nesterov`)."""
    _check_common(cfg.lr, cfg.weight_decay)
    _check_unit("momentum", cfg.momentum)
    if not 0 <= cfg.dampening <= 1:
        raise DlrunError(
            f"optimizer.dampening={cfg.dampening} is out of range: use 0 <= dampening <= 1."
        )
    if cfg.nesterov and (cfg.momentum <= 0 or cfg.dampening != 0):
        raise DlrunError(
            "optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0."
        )
    return torch.optim.SGD(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        momentum=cfg.momentum,
        dampening=cfg.dampening,
        nesterov=cfg.nesterov,
    )


# --- AdaGrad, RMSProp ------------------------------------------------------------------


@dataclass
class AdagradConfig:
    name: str = MISSING
    lr: float = MISSING
    lr_decay: float = MISSING
    weight_decay: float = MISSING
    initial_accumulator_value: float = MISSING
    eps: float = MISSING


@OPTIMIZERS.register("adagrad", schema=AdagradConfig)
def adagrad(cfg: AdagradConfig, model: nn.Module) -> torch.optim.Optimizer:
    _check_common(cfg.lr, cfg.weight_decay)
    _check_non_negative("lr_decay", cfg.lr_decay)
    _check_non_negative("initial_accumulator_value", cfg.initial_accumulator_value)
    _check_positive("eps", cfg.eps)
    return torch.optim.Adagrad(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        lr_decay=cfg.lr_decay,
        initial_accumulator_value=cfg.initial_accumulator_value,
        eps=cfg.eps,
    )


@dataclass
class RMSpropConfig:
    name: str = MISSING
    lr: float = MISSING
    alpha: float = MISSING
    eps: float = MISSING
    weight_decay: float = MISSING
    momentum: float = MISSING
    centered: bool = MISSING


@OPTIMIZERS.register("rmsprop", schema=RMSpropConfig)
def rmsprop(cfg: RMSpropConfig, model: nn.Module) -> torch.optim.Optimizer:
    _check_common(cfg.lr, cfg.weight_decay)
    _check_unit("alpha", cfg.alpha)
    _check_positive("eps", cfg.eps)
    _check_unit("momentum", cfg.momentum)
    return torch.optim.RMSprop(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        alpha=cfg.alpha,
        eps=cfg.eps,
        momentum=cfg.momentum,
        centered=cfg.centered,
    )


# --- Adam, AdamW -----------------------------------------------------------------------


@dataclass
class AdamConfig:
    name: str = MISSING
    lr: float = MISSING
    betas: list[float] = field(default_factory=lambda: MISSING)
    eps: float = MISSING
    weight_decay: float = MISSING
    amsgrad: bool = MISSING


@OPTIMIZERS.register("adam", schema=AdamConfig)
def adam(cfg: AdamConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam; its weight decay is an L2 term added to the gradient (see `adamw`)."""
    _check_common(cfg.lr, cfg.weight_decay)
    betas = _check_betas(cfg.betas)
    _check_positive("eps", cfg.eps)
    return torch.optim.Adam(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=betas,
        eps=cfg.eps,
        amsgrad=cfg.amsgrad,
    )


@OPTIMIZERS.register("adamw", schema=AdamConfig)
def adamw(cfg: AdamConfig, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW: weight decay applied to the weights directly, not through the gradient."""
    _check_common(cfg.lr, cfg.weight_decay)
    betas = _check_betas(cfg.betas)
    _check_positive("eps", cfg.eps)
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=betas,
        eps=cfg.eps,
        amsgrad=cfg.amsgrad,
    )
