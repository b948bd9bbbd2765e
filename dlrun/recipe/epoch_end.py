"""What a run does after its steps and epochs: the recipe's `RunHooks`, as code in order.

After each epoch, in this order: the stop rule (early stopping, which may put the best
weights back before they are saved, or debug=overfit's check that its batches are learnt),
the best epoch, the run folder's rows, the trackers, summary.json, the plots, the log line,
generated text, and last the checkpoint, which carries all of the epoch's rows. Ranks
other than 0 of a data-parallel run keep the rows' bookkeeping and the checkpoint, to which
each rank gives its share of the epoch in progress.

Each optional part is a small object, None when the run does without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dlrun.config.options.trainer import MonitorMode
from dlrun.data.dataset import Dataset
from dlrun.diagnostics.norms import LayerNorms
from dlrun.outputs.run_folder import RunFolder
from dlrun.recipe.checkpoints import Checkpoints
from dlrun.tasks import Task
from dlrun.training import distributed
from dlrun.training.engine import number
from dlrun.training.options import EpochReport, RunHooks
from dlrun.training.state import TrainState
from dlrun.training.world import World

log = logging.getLogger("dlrun")

# How often summary.json is rewritten while a run trains, in seconds.
SUMMARY_EVERY_SECONDS = 2.0


class StopRule(Protocol):
    """What may end training after an epoch: early stopping, or debug=overfit once its
    batches are learnt."""

    def after_epoch(self, state: TrainState, metrics: dict[str, float]) -> str | None:
        """Why training stops after this epoch, or None to go on."""
        ...


@dataclass
class EpochEnd(RunHooks):
    folder: RunFolder
    checkpoints: Checkpoints
    monitor: str
    mode: MonitorMode
    world: World
    seed: int
    stopping: StopRule | None = None
    norms: NormRows | None = None
    # Rank 0 only: what the run shows and tells.
    shown: Shown | None = None
    # Called after every optimizer step (a debug mode's profiler).
    step_watchers: list[Callable[[TrainState], None]] = field(default_factory=list)

    @property
    def watches_steps(self) -> bool:
        return bool(self.step_watchers) or (self.norms is not None and self.norms.every_n_steps > 0)

    def after_step(self, state: TrainState) -> None:
        if self.norms is not None and self.norms.every_n_steps > 0:
            self.norms.after_step(state)
        for watcher in self.step_watchers:
            watcher(state)

    def after_training(self, state: TrainState) -> None:
        if self.norms is not None:
            self.norms.after_training(state)

    def end_epoch(self, state: TrainState, report: EpochReport) -> None:
        metrics = report.metrics
        if self.stopping is not None:
            state.stop_reason = state.stop_reason or self.stopping.after_epoch(state, metrics)
        best = _best_epoch(state, metrics[self.monitor], self.mode)
        self.folder.add_epoch(metrics, report.timings, report.steps)
        if self.world.distributed:  # each rank's random state for the next epoch
            distributed.seed_epoch(self.seed, self.world, state.epoch)
        if self.shown is not None:
            self.shown.epoch(state, report)
        self.checkpoints.save_epoch(state, best)

    def checkpoint_due(self, state: TrainState) -> tuple[bool, bool]:
        return self.checkpoints.due(state)

    def save_step(self, state: TrainState) -> None:
        self.checkpoints.save_step(state)

    def end_training(self, state: TrainState) -> None:
        self.checkpoints.wait()


def _best_epoch(state: TrainState, value: float, mode: MonitorMode) -> bool:
    """Whether this epoch is the monitored column's best so far (state.best_*) updated."""
    best = state.best_value
    improved = best is None or mode.better(value, best)
    if improved:
        state.best_value, state.best_epoch = value, state.epoch
    return improved


@dataclass
class NormRows:
    """Per-layer gradient and weight norms into diagnostics.csv: after each epoch's training
    (diagnostics.layer_norms), and every N optimizer steps (diagnostics.every_n_steps)."""

    norms: LayerNorms
    folder: RunFolder
    after_epochs: bool
    every_n_steps: int

    def after_step(self, state: TrainState) -> None:
        if state.step % self.every_n_steps == 0:
            self.folder.add_diagnostics(self.norms.record(state.epoch + 1, state.step))

    def after_training(self, state: TrainState) -> None:
        if self.after_epochs:
            self.folder.add_diagnostics(self.norms.record(state.epoch + 1, state.step))


@dataclass
class Shown:
    """What rank 0 shows and tells after an epoch, in order: trackers, summary.json, plots,
    the log line, generated text."""

    trackers: Trackers
    write_summary: Callable[[str], Any]
    curves: Curves
    line: EpochLine
    generation: GeneratedText | None = None
    summary_written: float = 0.0

    def __post_init__(self) -> None:
        self.summary_written = time.monotonic()

    def epoch(self, state: TrainState, report: EpochReport) -> None:
        self.trackers.log_epoch(state.epoch, report)
        # summary.json says `running` at most every few seconds; the run's end writes it last.
        if time.monotonic() - self.summary_written >= SUMMARY_EVERY_SECONDS:
            self.write_summary("running")
            self.summary_written = time.monotonic()
        self.curves.update()
        self.line.log(state, report)
        if self.generation is not None:
            self.generation.after_epoch(state)


@dataclass
class Trackers:
    """TensorBoard, MLflow...: the epoch's metrics, and the per-step losses."""

    loggers: list

    def log_epoch(self, epoch: int, report: EpochReport) -> None:
        for logger in self.loggers:
            logger.log_metrics(report.metrics, step=epoch, prefix="epoch/")
            for row in report.steps:
                logger.log_metrics(row, step=row["step"], prefix="step/")


@dataclass
class Curves:
    """curves.png (and gradients.png), at most every few seconds while training; none where
    `plots` says so (dlrun-report --plots draws them from the files later)."""

    folder: RunFolder
    title: str
    log_loss: bool
    drawn: bool = True

    def update(self) -> None:
        if self.drawn:
            self.folder.plot(self.title, log_loss=self.log_loss)

    def draw(self) -> None:
        """The last drawing, whenever the run ends."""
        if self.drawn:
            self.folder.plot(self.title, log_loss=self.log_loss, final=True)


@dataclass
class EpochLine:
    """One line per epoch in the log: train and test metrics, seconds, throughput."""

    task: Task
    epochs: int

    def log(self, state: TrainState, report: EpochReport) -> None:
        metrics, timings = report.metrics, report.timings

        def split(name: str) -> str:
            return " ".join(f"{m} {number(metrics[f'{name}_{m}'])}" for m in self.task.metrics)

        log.info(
            "epoch %*d/%d  train %s | test %s | %.1fs + %.1fs test, %s samples/s",
            len(str(self.epochs)),
            metrics["epoch"],
            self.epochs,
            split("train"),
            split("test"),
            timings["train_seconds"],
            timings["test_seconds"],
            f"{timings['train_samples_per_s']:,.0f}",
        )
        if state.stop_reason:
            log.info("Stopped after epoch %d: %s", state.epoch, state.stop_reason)


class GeneratedText:
    """Language models: continue each prefix, into the log and generated.txt."""

    def __init__(self, data: Dataset, folder: RunFolder) -> None:
        self.spec, self.vocab, self.folder = data.generation, data.meta.vocab, folder

    def after_epoch(self, state: TrainState) -> None:
        spec = self.spec
        if spec is None or not spec.every or not spec.prefixes or state.epoch % spec.every:
            return
        index = {char: i for i, char in enumerate(self.vocab)}
        samples = {}
        for prefix in spec.prefixes:
            ids = state.model.generate([index[c] for c in prefix], spec.num_chars)
            samples[prefix] = "".join(self.vocab[i] for i in ids)
            log.info("  %r -> %r", prefix, samples[prefix])
        self.folder.add_generated(state.epoch, samples)
