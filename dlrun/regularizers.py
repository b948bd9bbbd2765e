"""Regularizers hook into the loop: each adds a penalty to the training loss.

Weight decay (L2) is not here: it is the optimizer's `weight_decay`, applied to weights only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn

from dlrun.errors import DlrunError
from dlrun.registry import REGULARIZERS


class Regularizer:
    """Base: no penalty. Subclasses override `penalty`."""

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return None


@dataclass
class NoRegularizerConfig:
    name: str = MISSING


@REGULARIZERS.register("none", schema=NoRegularizerConfig)
def no_regularizer(cfg: NoRegularizerConfig) -> Regularizer:
    return Regularizer()


@dataclass
class L1Config:
    name: str = MISSING
    # The penalty is strength * sum(|w|) over weight matrices and kernels (not biases).
    strength: float = MISSING


class L1(Regularizer):
    def __init__(self, strength: float) -> None:
        self.strength = strength

    def penalty(self, model: nn.Module) -> torch.Tensor:
        weights = [p for p in model.parameters() if p.ndim >= 2]
        return self.strength * sum(w.abs().sum() for w in weights)


@REGULARIZERS.register("l1", schema=L1Config)
def l1(cfg: L1Config) -> Regularizer:
    if cfg.strength < 0:
        raise DlrunError(f"regularizer.strength={cfg.strength} is out of range: use >= 0.")
    return L1(cfg.strength)
