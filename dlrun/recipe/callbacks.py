"""What a run does after each step and epoch, as callbacks: files, checkpoints, logs, plots.

The recipe lists them in the order they act after an epoch: early stopping first (it may
put back the best weights before they are saved), then the best epoch, the run folder's
rows, the loggers, summary.json, the plots, the log line, generated text, and last the
checkpoint, which carries all of the epoch's rows. Ranks other than 0 of a data-parallel run
keep only the first three and the checkpoints, to which each rank gives its share of the
epoch in progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from dlrun.config.options.trainer import CheckpointEvery, MonitorMode
from dlrun.data.base import Dataset
from dlrun.diagnostics.norms import LayerNorms
from dlrun.outputs.run_folder import RunFolder
from dlrun.tasks import Task
from dlrun.training import distributed
from dlrun.training.callbacks import Callback, EpochReport
from dlrun.training.checkpoint import BEST, LAST, CheckpointWriter, checkpoint_bytes
from dlrun.training.loop import TrainState
from dlrun.training.world import World

log = logging.getLogger("dlrun")

# How often summary.json is rewritten while a run trains, in seconds.
SUMMARY_EVERY_SECONDS = 2.0


class BestEpoch(Callback):
    """Keeps state.best_value / best_epoch: the monitored column's best epoch so far."""

    def __init__(self, monitor: str, mode: MonitorMode) -> None:
        self.monitor, self.mode = monitor, mode
        self.improved = False

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
        value = report.metrics[self.monitor]
        best = state.best_value
        self.improved = best is None or (
            value > best if self.mode is MonitorMode.max else value < best
        )
        if self.improved:
            state.best_value, state.best_epoch = value, state.epoch


class EpochRows(Callback):
    """metrics.csv, timings.csv and steps.csv get the epoch's rows."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
        self.folder.add_epoch(report.metrics, report.timings, report.steps)


class ReseedRanks(Callback):
    """Data-parallel runs: each rank's random state for the next epoch (training/distributed.py)."""

    def __init__(self, seed: int, world: World) -> None:
        self.seed, self.world = seed, world

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
        distributed.seed_epoch(self.seed, self.world, state.epoch)


class LogToTrackers(Callback):
    """TensorBoard, MLflow...: the epoch's metrics, and the per-step losses."""

    def __init__(self, loggers: list) -> None:
        self.loggers = loggers

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
        for logger in self.loggers:
            logger.log_metrics(report.metrics, step=state.epoch, prefix="epoch/")
            for row in report.steps:
                logger.log_metrics(row, step=row["step"], prefix="step/")


class Checkpoints(Callback):
    """checkpoints/last.pt after every epoch, inside epochs every trainer.checkpoint_every
    (steps or time), and before a stop for a signal; best.pt is a copy of it when the epoch
    is best. Written on a thread of their own (CheckpointWriter), on disk when training ends.

    The loop asks `due()` and calls `save()` inside epochs (loop.StepCheckpoints). Every
    data-parallel rank takes part, since each one's share of the epoch goes in; rank 0 writes.
    """

    def __init__(
        self,
        folder: RunFolder,
        config: dict[str, Any],
        best: BestEpoch,
        every: CheckpointEvery,
        world: World,
    ) -> None:
        self.folder, self.config, self.best = folder, config, best
        self.every, self.world = every, world
        self.writer = CheckpointWriter()
        self.saved_at = time.monotonic()

    def due(self, state: TrainState) -> tuple[bool, bool]:
        steps, seconds = self.every.steps, self.every.seconds
        by_steps = steps is not None and state.step % steps == 0
        by_time = (
            seconds is not None
            and self.world.is_main
            and time.monotonic() - self.saved_at >= seconds
        )
        return by_steps, by_time

    def save(self, state: TrainState) -> None:
        """last.pt inside the epoch; skipped after a non-finite loss, so that last.pt always
        holds a state worth continuing from."""
        assert state.progress is not None
        ranks = distributed.gather(state.progress.rank_state(), self.world)
        if not self.world.is_main or any(int(r["first_bad_step"]) >= 0 for r in ranks):
            return
        data = checkpoint_bytes(state, self.config, self.folder.history_json(), ranks)
        self.writer.save(self.folder.checkpoints / LAST, data)
        self.saved_at = time.monotonic()

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
        if not self.world.is_main:
            return
        best = [self.folder.checkpoints / BEST] if self.best.improved else []
        data = checkpoint_bytes(state, self.config, self.folder.history_json())
        self.writer.save(self.folder.checkpoints / LAST, data, *best)
        self.saved_at = time.monotonic()

    def on_fit_end(self, state: TrainState) -> None:
        self.writer.wait()


class RunningSummary(Callback):
    """summary.json says `running`, with the epochs so far: at most every few seconds (the
    run's end writes the last word whatever the time)."""

    def __init__(self, write: Callable[[str], dict[str, Any]], every: float) -> None:
        self.write, self.every = write, every
        self.written = time.monotonic()

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
        if time.monotonic() - self.written >= self.every:
            self.write("running")
            self.written = time.monotonic()


class Curves(Callback):
    """curves.png (and gradients.png), at most every few seconds while training."""

    def __init__(self, folder: RunFolder, title: str, log_loss: bool) -> None:
        self.folder, self.title, self.log_loss = folder, title, log_loss

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
        self.folder.plot(self.title, log_loss=self.log_loss)

    def draw(self) -> None:
        """The last drawing, whenever the run ends."""
        self.folder.plot(self.title, log_loss=self.log_loss, final=True)


class EpochLog(Callback):
    """One line per epoch in the log: train and test metrics, seconds, throughput."""

    def __init__(self, task: Task, epochs: int) -> None:
        self.task, self.epochs = task, epochs

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
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


class GeneratedText(Callback):
    """Language models: continue each prefix, into the log and generated.txt."""

    def __init__(self, data: Dataset, folder: RunFolder) -> None:
        self.spec, self.vocab, self.folder = data.generation, data.meta.vocab, folder

    def on_epoch_end(self, state: TrainState, report: EpochReport) -> None:
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


class EpochLayerNorms(Callback):
    """Per-layer gradient and weight norms into diagnostics.csv after each epoch's training."""

    def __init__(self, norms: LayerNorms, folder: RunFolder) -> None:
        self.norms, self.folder = norms, folder

    def on_train_epoch_end(self, state: TrainState) -> None:
        self.folder.add_diagnostics(self.norms.record(state.epoch + 1, state.step))


class StepLayerNorms(Callback):
    """The same every N optimizer steps (diagnostics.every_n_steps); added only when N > 0,
    so that a run without it pays nothing per step."""

    def __init__(self, norms: LayerNorms, folder: RunFolder, every: int) -> None:
        self.norms, self.folder, self.every = norms, folder, every

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self.folder.add_diagnostics(self.norms.record(state.epoch + 1, state.step))


def number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
