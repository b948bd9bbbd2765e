"""Optimizers, built over two parameter groups: weights decay, biases and norm layers do not.

Every knob carries torch's own default in conf/optimizer/*.yaml (`momentum` and `nesterov`
are SGD with momentum 0.9). Adding an optimizer is one schema + one builder here and one
YAML file. Every builder has the signature `(cfg, model) -> torch.optim.Optimizer` and puts
the parameters in the groups of `param_groups`, so `set_weight_decay` can find the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlrun.config.options.optimizers import AdagradConfig, AdamConfig, RMSpropConfig, SGDConfig
from dlrun.config.registry import OPTIMIZERS
from dlrun.errors import DlrunError


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
            f"build it with dlrun.optim.optimizers.param_groups to use weight decay."
        )
    optimizer.param_groups[0]["weight_decay"] = float(value)


# --- validation ------------------------------------------------------------------------


def _check_betas(betas: Sequence[float]) -> tuple[float, float]:
    """Two values; their range is declared in the schema."""
    betas = list(betas)
    if len(betas) != 2:
        raise DlrunError(f"optimizer.betas={betas} is invalid: give two values in [0, 1).")
    return betas[0], betas[1]


# --- SGD, with momentum, Nesterov ------------------------------------------------------


@OPTIMIZERS.register("sgd")
@OPTIMIZERS.register("momentum")
@OPTIMIZERS.register("nesterov")
def sgd(cfg: SGDConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Plain SGD (`sgd`), heavy-ball momentum (`momentum`) and Nesterov momentum (`nesterov`)."""
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


@OPTIMIZERS.register("adagrad")
def adagrad(cfg: AdagradConfig, model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        lr_decay=cfg.lr_decay,
        initial_accumulator_value=cfg.initial_accumulator_value,
        eps=cfg.eps,
    )


@OPTIMIZERS.register("rmsprop")
def rmsprop(cfg: RMSpropConfig, model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        alpha=cfg.alpha,
        eps=cfg.eps,
        momentum=cfg.momentum,
        centered=cfg.centered,
    )


# --- Adam, AdamW -----------------------------------------------------------------------


@OPTIMIZERS.register("adam")
def adam(cfg: AdamConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam; its weight decay is an L2 term added to the gradient (see `adamw`)."""
    betas = _check_betas(cfg.betas)
    return torch.optim.Adam(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=betas,
        eps=cfg.eps,
        amsgrad=cfg.amsgrad,
    )


@OPTIMIZERS.register("adamw")
def adamw(cfg: AdamConfig, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW: weight decay applied to the weights directly, not through the gradient."""
    betas = _check_betas(cfg.betas)
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=betas,
        eps=cfg.eps,
        amsgrad=cfg.amsgrad,
    )
