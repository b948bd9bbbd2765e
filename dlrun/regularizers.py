"""Regularizers, several per run (`regularizer=[l2,early_stopping,grad_clip]`).

Each hooks into the run where it acts: before the model is built (dropout rates), on the
optimizer (L2 as weight decay of the weight group), on the loss (L1), between backward and
step (gradient clipping), or after each epoch (early stopping). The loop only calls the
hooks a regularizer overrides, so unused ones cost nothing per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from omegaconf import MISSING, DictConfig
from torch import nn

from dlrun.config import MonitorMode
from dlrun.errors import DlrunError
from dlrun.optim import set_weight_decay
from dlrun.registry import REGULARIZERS


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

    def after_epoch(self, model: nn.Module, epoch: int, metrics: dict[str, float]) -> str | None:
        """Return why training should stop now, or None to go on."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() saved, on resume."""


def overrides(regularizer: Regularizer, hook: str) -> bool:
    return getattr(type(regularizer), hook) is not getattr(Regularizer, hook)


def _non_negative(key: str, value: float) -> None:
    if value < 0:
        raise DlrunError(f"regularizer.{key}={value} is out of range: use >= 0.")


def weights(model: nn.Module) -> list[nn.Parameter]:
    """Weight matrices and kernels: the parameters that L1 and L2 penalise (not biases)."""
    return [p for p in model.parameters() if p.ndim >= 2 and p.requires_grad]


@dataclass
class L2Config:
    name: str = MISSING
    # lambda in lambda/2 * ||w||^2, applied as the weight decay of the weight group.
    strength: float = MISSING


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


@REGULARIZERS.register("l2", schema=L2Config)
def l2(cfg: L2Config) -> Regularizer:
    _non_negative("l2.strength", cfg.strength)
    return L2(cfg.strength)


@dataclass
class L1Config:
    name: str = MISSING
    # lambda in lambda * sum(|w|) over weights (not biases), added to the training loss.
    strength: float = MISSING


class L1(Regularizer):
    def __init__(self, strength: float) -> None:
        self.strength = strength

    def penalty(self, model: nn.Module) -> torch.Tensor:
        return self.strength * sum(w.abs().sum() for w in weights(model))


@REGULARIZERS.register("l1", schema=L1Config)
def l1(cfg: L1Config) -> Regularizer:
    _non_negative("l1.strength", cfg.strength)
    return L1(cfg.strength)


@dataclass
class DropoutConfig:
    name: str = MISSING
    # Dropout probability of each hidden layer (one value for all, or one per layer).
    rates: list[float] = field(default_factory=lambda: MISSING)


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


@REGULARIZERS.register("dropout", schema=DropoutConfig)
def dropout(cfg: DropoutConfig) -> Regularizer:
    for rate in cfg.rates:
        if not 0 <= rate < 1:
            raise DlrunError(f"regularizer.dropout.rates has {rate}: use 0 <= p < 1.")
    return Dropout(list(cfg.rates))


@dataclass
class GradClipConfig:
    name: str = MISSING
    # Rescale all gradients together when their global L2 norm exceeds theta.
    theta: float = MISSING


class GradClip(Regularizer):
    def __init__(self, theta: float) -> None:
        self.theta = theta

    def before_step(self, model: nn.Module) -> None:
        nn.utils.clip_grad_norm_(model.parameters(), self.theta)


@REGULARIZERS.register("grad_clip", schema=GradClipConfig)
def grad_clip(cfg: GradClipConfig) -> Regularizer:
    if cfg.theta <= 0:
        raise DlrunError(f"regularizer.grad_clip.theta={cfg.theta} is out of range: use > 0.")
    return GradClip(cfg.theta)


@dataclass
class EarlyStoppingConfig:
    name: str = MISSING
    monitor: str = MISSING  # a metrics.csv column
    mode: MonitorMode = MISSING
    patience: int = MISSING  # epochs without improvement before stopping
    min_delta: float = MISSING  # smaller changes do not count as improvement
    restore_best: bool = MISSING  # put back the weights of the best epoch when stopping


class EarlyStopping(Regularizer):
    def __init__(self, cfg: EarlyStoppingConfig) -> None:
        self.monitor, self.mode = cfg.monitor, MonitorMode(cfg.mode)
        self.patience, self.min_delta, self.restore_best = (
            cfg.patience,
            cfg.min_delta,
            cfg.restore_best,
        )
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def after_epoch(self, model: nn.Module, epoch: int, metrics: dict[str, float]) -> str | None:
        if self.monitor not in metrics:
            raise DlrunError(
                f"regularizer.early_stopping.monitor={self.monitor} is not a metric of this "
                f"run: use one of {', '.join(k for k in metrics if k != 'epoch')}."
            )
        value = metrics[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return None
        self.wait += 1
        if self.wait < self.patience:
            return None
        if self.restore_best and self.best_weights is not None:
            model.load_state_dict(self.best_weights)
        return (
            f"early stopping: {self.monitor} has not improved by more than {self.min_delta} "
            f"for {self.patience} epochs (best {self.best:.4g} at epoch {self.best_epoch}"
            f"{', weights restored' if self.restore_best else ''})"
        )

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode is MonitorMode.max:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.best_weights = state["wait"], state["best_weights"]


@REGULARIZERS.register("early_stopping", schema=EarlyStoppingConfig)
def early_stopping(cfg: EarlyStoppingConfig) -> Regularizer:
    if cfg.patience < 1:
        raise DlrunError(f"regularizer.early_stopping.patience={cfg.patience}: use >= 1.")
    _non_negative("early_stopping.min_delta", cfg.min_delta)
    return EarlyStopping(cfg)


def build_regularizers(cfg: DictConfig) -> list[Regularizer]:
    """One regularizer per entry of the `regularizer` node, keyed by option name."""
    regularizers = []
    for key, entry in cfg.items():
        regularizer = REGULARIZERS.build(entry)
        regularizer.name = str(key)
        regularizers.append(regularizer)
    return regularizers
