"""Regularizers, several per run (`regularizer=[l2,early_stopping,grad_clip]`).

Each changes the model, the optimizer or the loss where it acts: before the model is built
(dropout rates), on the optimizer (L2 as weight decay of the weight group), on the loss
(L1), or between backward and step (gradient clipping). The loop only calls the hooks a
regularizer overrides, so unused ones cost nothing per step. Early stopping, which acts on
the run rather than on the model, is chosen in the same group (`regularizer=[l2,
early_stopping]`) but is no Regularizer: the run's epoch end asks it (training/early_stopping.py).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from dlrun.config.options.regularizers import (
    DropoutConfig,
    GradClipConfig,
    L1Config,
    L2Config,
)
from dlrun.config.registry import REGULARIZERS
from dlrun.errors import DlrunError
from dlrun.optim.optimizers import set_weight_decay


class Regularizer:
    """Base: every hook does nothing."""

    name = ""  # the option's key under `regularizer`, set when built

    def configure_model(self, model_cfg: DictConfig) -> None:
        """Change the model's config before it is built."""

    def configure_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Change the optimizer once it is built."""

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """A term added to the training loss."""
        raise NotImplementedError

    def before_step(self, model: nn.Module) -> None:
        """Act on the gradients between backward() and the optimizer step."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() saved, on resume."""


def overrides(regularizer: Regularizer, hook: str) -> bool:
    return getattr(type(regularizer), hook) is not getattr(Regularizer, hook)


def weights(model: nn.Module) -> list[nn.Parameter]:
    """Weight matrices and kernels: the parameters that L1 and L2 penalise (not biases)."""
    return [p for p in model.parameters() if p.ndim >= 2 and p.requires_grad]


class L2(Regularizer):
    def __init__(self, strength: float) -> None:
        self.strength = strength

    def configure_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        current = optimizer.param_groups[0].get("weight_decay", 0.0)
        if current:
            raise DlrunError(
                f"regularizer l2 and optimizer.weight_decay={current} both set an L2 "
                f"penalty: keep one (set optimizer.weight_decay=0 or drop l2)."
            )
        set_weight_decay(optimizer, self.strength)


@REGULARIZERS.register("l2")
def l2(cfg: L2Config) -> Regularizer:
    return L2(cfg.strength)


class L1(Regularizer):
    def __init__(self, strength: float) -> None:
        self.strength = strength

    def penalty(self, model: nn.Module) -> torch.Tensor:
        return self.strength * sum(w.abs().sum() for w in weights(model))


@REGULARIZERS.register("l1")
def l1(cfg: L1Config) -> Regularizer:
    return L1(cfg.strength)


class Dropout(Regularizer):
    def __init__(self, rates: list[float]) -> None:
        self.rates = rates

    def configure_model(self, model_cfg: DictConfig) -> None:
        if "dropout" not in model_cfg:
            raise DlrunError(
                f"regularizer dropout sets the model's dropout rates, but model "
                f"{model_cfg.name} has no `dropout` setting: use a model that has one, "
                f"e.g. model=mlp."
            )
        model_cfg.dropout = list(self.rates)


@REGULARIZERS.register("dropout")
def dropout(cfg: DropoutConfig) -> Regularizer:
    return Dropout(list(cfg.rates))


class GradClip(Regularizer):
    def __init__(self, theta: float) -> None:
        self.theta = theta

    def before_step(self, model: nn.Module) -> None:
        nn.utils.clip_grad_norm_(model.parameters(), self.theta)


@REGULARIZERS.register("grad_clip")
def grad_clip(cfg: GradClipConfig) -> Regularizer:
    return GradClip(cfg.theta)


def build_regularizers(cfg: DictConfig) -> list:
    """One part per entry of the `regularizer` node, named by its option key.

    Most are Regularizers; early stopping is not (training/early_stopping.py).
    """
    regularizers = []
    for key, entry in cfg.items():
        regularizer = REGULARIZERS.build(entry, prefix=f"regularizer.{key}")
        regularizer.name = str(key)
        regularizers.append(regularizer)
    return regularizers
