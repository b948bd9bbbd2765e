"""Optimizers, built over two parameter groups: weights decay, biases and norm layers do not.

Every knob carries torch's own default in conf/optimizer/*.yaml. Adding an optimizer is one
schema + one builder here and one YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from omegaconf import MISSING
from torch import nn

from dlrun.errors import DlrunError
from dlrun.registry import OPTIMIZERS


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices and kernels only, as the L2 penalty in the tutorials.

    Biases and the scale/shift of normalisation layers are 1-d; decaying them only hurts.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def _check_common(lr: float, weight_decay: float) -> None:
    if lr <= 0:
        raise DlrunError(f"optimizer.lr={lr} is out of range: the learning rate must be > 0.")
    if weight_decay < 0:
        raise DlrunError(f"optimizer.weight_decay={weight_decay} is out of range: use >= 0.")


@dataclass
class SGDConfig:
    name: str = MISSING
    lr: float = MISSING
    momentum: float = MISSING
    dampening: float = MISSING
    weight_decay: float = MISSING
    nesterov: bool = MISSING


@OPTIMIZERS.register("sgd", schema=SGDConfig)
def sgd(cfg: SGDConfig, model: nn.Module) -> torch.optim.Optimizer:
    _check_common(cfg.lr, cfg.weight_decay)
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
    _check_common(cfg.lr, cfg.weight_decay)
    if len(cfg.betas) != 2 or not all(0 <= b < 1 for b in cfg.betas):
        raise DlrunError(
            f"optimizer.betas={list(cfg.betas)} is invalid: give two values in [0, 1)."
        )
    return torch.optim.Adam(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=tuple(cfg.betas),
        eps=cfg.eps,
        amsgrad=cfg.amsgrad,
    )
