"""Early stopping: end training when a metric has stopped improving.

Chosen in the regularizer group (`regularizer=[l2,early_stopping]`), since that is where the
tutorials put it, but it changes neither the model nor the loss: the recipe's epoch end asks
it after each epoch whether to stop (recipe/epoch_end.py). Its state travels in checkpoints
under its option name, as a regularizer's does.
"""

from __future__ import annotations

import torch

from dlrun.config.options.regularizers import EarlyStoppingConfig
from dlrun.config.registry import REGULARIZERS
from dlrun.errors import DlrunError
from dlrun.tasks import direction
from dlrun.training.state import TrainState


class EarlyStopping:
    name = ""  # the option's key under `regularizer`, set when built

    def __init__(self, cfg: EarlyStoppingConfig) -> None:
        self.monitor, self.mode = cfg.monitor, direction(cfg.monitor, cfg.mode)
        self.patience, self.min_delta, self.restore_best = (
            cfg.patience,
            cfg.min_delta,
            cfg.restore_best,
        )
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def after_epoch(self, state: TrainState, metrics: dict[str, float]) -> str | None:
        """Why training stops after this epoch, or None; the best weights are put back first
        when restore_best is set."""
        if self.monitor not in metrics:
            raise DlrunError(
                f"regularizer.early_stopping.monitor={self.monitor} is not a metric of this "
                f"run: use one of {', '.join(k for k in metrics if k != 'epoch')}."
            )
        value, model = metrics[self.monitor], state.model
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
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
        return self.best is None or self.mode.better(value, self.best, by=self.min_delta)

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


@REGULARIZERS.register("early_stopping")
def early_stopping(cfg: EarlyStoppingConfig) -> EarlyStopping:
    return EarlyStopping(cfg)
