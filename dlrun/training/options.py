"""How a run trains: the loop's options, and the hooks through which a run acts on its
training (its rows, files, checkpoints and stops)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from dlrun.training.distributed import Reducer
from dlrun.training.state import TrainState


@dataclass
class EpochReport:
    metrics: dict[str, float]  # a metrics.csv row
    timings: dict[str, float]  # a timings.csv row
    steps: list[dict[str, float]]  # steps.csv rows (per-step training loss)


class RunHooks:
    """What a run does at each point of training. This base does nothing: a bare run (the
    benchmarks') pays for nothing; the recipe's epoch end (recipe/epoch_end.py) does it all."""

    watches_steps = False  # whether `after_step` does anything: it is called only then

    def after_step(self, state: TrainState) -> None:
        """After each optimizer step; the gradients of that step are still in place."""

    def after_training(self, state: TrainState) -> None:
        """After an epoch's training, before its evaluation (gradients of its last step)."""

    def end_epoch(self, state: TrainState, report: EpochReport) -> None:
        """After evaluation: the epoch's rows. Set `state.stop_reason` to stop training."""

    def checkpoint_due(self, state: TrainState) -> tuple[bool, bool]:
        """Whether a step checkpoint is due by the step count (the same on every rank), and
        by the clock (the ranks agree on it)."""
        return False, False

    def save_step(self, state: TrainState) -> None:
        """A checkpoint of `state` inside its epoch, `state.progress` included."""

    def end_training(self, state: TrainState) -> None:
        """When training ends, however it ends: finish what is still in flight."""


@dataclass
class LoopOptions:
    epochs: int
    batch_size: int
    eval_batch_size: int
    shuffle: bool
    drop_last: bool
    progress: bool = False
    log_every_n_steps: int = 0  # 0: no per-step losses
    hooks: RunHooks = field(default_factory=RunHooks)
    autocast: Callable[[], AbstractContextManager] = nullcontext
    channels_last: bool = False
    # Data-parallel runs: adds up metric sums across ranks and agrees on stopping.
    reducer: Reducer | None = None

    def agree(self, state: TrainState, due: bool) -> tuple[str | None, bool]:
        """A stop signal, and whether a checkpoint is due: the same answer on every rank."""
        if self.reducer is None:
            return state.stop_signal, due
        return self.reducer.agree(state.stop_signal, due)
