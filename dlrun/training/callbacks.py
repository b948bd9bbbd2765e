"""The one way to act on a run while it trains: callbacks, called by the loop in list order.

Checkpoints, the run folder's files, plots, loggers, layer norms, early stopping and text
generation are all callbacks (recipe/callbacks.py, training/early_stopping.py). The loop calls
only the hooks a callback overrides, so an unused hook costs nothing per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlrun.training.loop import TrainState


@dataclass
class EpochReport:
    metrics: dict[str, float]  # a metrics.csv row
    timings: dict[str, float]  # a timings.csv row
    steps: list[dict[str, float]]  # steps.csv rows (per-step training loss)


class Callback:
    """Base: every hook does nothing."""

    def on_step_end(self, state: TrainState) -> None:
        """After each optimizer step; the gradients of that step are still in place."""

    def on_train_epoch_end(self, state: TrainState) -> None:
        """After an epoch's training, before its evaluation (gradients of its last step)."""

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
        """After evaluation: the epoch's metrics. Set `state.stop_reason` to stop training."""

    def on_fit_end(self, state: TrainState) -> None:
        """When training ends, however it ends (done, stopped, diverged, failed): finish
        what is still in flight."""


def overriding(callbacks: list[Callback], hook: str) -> list[Callback]:
    """The callbacks whose class defines `hook`: the only ones the loop calls for it."""
    return [c for c in callbacks if getattr(type(c), hook) is not getattr(Callback, hook)]
