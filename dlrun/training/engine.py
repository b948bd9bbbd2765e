"""The epoch driver: epochs of training, each followed by a pass over the test split.

One driver trains one run (`fit`) and a fused group of runs (`train`): the step itself is a
`Steps` (training/steps.py), one model or a stacked group. Around it the driver does, once
for both: the stop signal, first-step timing, metric sums, step checkpoints, divergence,
evaluation, the epoch's rows and its log line. What a run does with them (files, plots,
trackers, early stopping, checkpoints) is its `RunHooks` (training/options.py), the recipe's
epoch end.

It knows models, optimizers, tasks and batches, nothing about LeNet, Fashion-MNIST or run
folders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dlrun.data.contracts import BatchSource
from dlrun.tasks import Task
from dlrun.training.options import EpochReport, LoopOptions
from dlrun.training.state import TrainState
from dlrun.training.steps import ModelSteps, Steps, finalize, record_step, step_rows

log = logging.getLogger("dlrun")


class Trainee(Protocol):
    """A run as the driver trains it: its state, how it trains, and a context in which its
    hooks act (a fused member's own log and random state)."""

    state: TrainState
    options: LoopOptions

    def turn(self) -> AbstractContextManager: ...


@dataclass(eq=False)
class Run:
    """A run trained on its own: its hooks act in the process as it is."""

    state: TrainState
    options: LoopOptions

    def turn(self) -> AbstractContextManager:
        return nullcontext()


class Interrupted(Exception):
    """A stop was asked for (SIGINT, SIGTERM); the loop stopped between two steps."""

    def __init__(self, signal_name: str, epoch: int, step: int) -> None:
        super().__init__(f"{signal_name} after step {step} (epoch {epoch})")
        self.signal_name, self.epoch, self.step = signal_name, epoch, step


class Diverged(Exception):
    """The training loss stopped being a finite number."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(f"the training loss became NaN or infinite at step {step} (epoch {epoch})")
        self.epoch, self.step = epoch, step


# What happens to a run that leaves: None when it trained to its end, else why it stopped.
Leave = Callable[[Trainee, Exception | None], None]


def fit(
    state: TrainState, train: BatchSource, test: BatchSource, task: Task, options: LoopOptions
) -> None:
    """Train one run from `state.epoch` up to `options.epochs`; a stop is raised."""
    stops: list[Exception | None] = []
    steps = ModelSteps(state, train, test, task, options)
    train_group([Run(state, options)], lambda group: steps, lambda run, stop: stops.append(stop))
    if stops[0] is not None:
        raise stops[0]


def train_group(
    trainees: Sequence[Trainee], steps_for: Callable[[list[Trainee]], Steps], leave: Leave
) -> None:
    """Train the runs together to their ends; each leaves once, through `leave`, after its
    hooks' `end_training`. `steps_for` makes the step of the runs still training."""
    group, steps = list(trainees), None
    try:
        while True:
            if over := [trainee for trainee in group if _trained(trainee)]:
                _part(group, dict.fromkeys(over), leave)
                steps = None  # made for the runs the group had
            if not group:
                return
            steps = steps or steps_for(group)
            try:
                diverged = _epoch(group, steps)
            except Interrupted as error:
                _part(group, dict.fromkeys(group, error), leave)
                return
            if diverged:
                _part(group, diverged, leave)
                steps = None
    finally:
        for trainee in group:  # a failure: what is in flight still lands
            trainee.options.hooks.end_training(trainee.state)


def _trained(trainee: Trainee) -> bool:
    """Whether the run's training is over (all its epochs, or stopped early): checked before
    every epoch, so that a run killed after its last epoch trains no more when set up again."""
    state = trainee.state
    return state.epoch >= trainee.options.epochs or state.stop_reason is not None


def _part(group: list[Trainee], stops: dict[Trainee, Exception | None], leave: Leave) -> None:
    """The runs in `stops` leave the group, each with its stop."""
    for trainee, stop in stops.items():
        group.remove(trainee)
        with trainee.turn():
            trainee.options.hooks.end_training(trainee.state)
        leave(trainee, stop)


def _epoch(group: list[Trainee], steps: Steps) -> dict[Trainee, Diverged]:
    """One epoch of every run (or the rest of one); the runs whose loss went bad."""
    lead, options = group[0].state, group[0].options
    if stop := options.agree(lead, due=False)[0]:
        raise Interrupted(stop, lead.epoch + 1, lead.step)
    lrs = [trainee.state.optimizer.param_groups[0]["lr"] for trainee in group]
    title = f"epoch {lead.epoch + 1}/{options.epochs}"
    if len(group) > 1:
        title += f", {len(group)} runs fused"
    with progress_bar(options.progress, title, steps.num_batches) as advance:
        _train_epoch(group, steps, advance)
    return _end_epoch(group, steps, lrs)


def _train_epoch(group: list[Trainee], steps: Steps, advance: Callable[[], None]) -> None:
    lead, options = group[0].state, group[0].options
    watching = [trainee for trainee in group if trainee.options.hooks.watches_steps]
    totals = steps.begin_epoch()
    for batch, last in steps.batches():
        started = time.perf_counter()
        loss, sums, count = steps.step(batch)
        for trainee in group:
            trainee.state.step += 1
        if lead.first_step_seconds is None:  # one sync per run: it carries any compilation
            _synchronize(steps.device)
            for trainee in group:
                trainee.state.first_step_seconds = time.perf_counter() - started
        record_step(totals, loss, sums, count, lead.step, options.log_every_n_steps)
        for trainee in watching:
            with trainee.turn():
                trainee.options.hooks.after_step(trainee.state)
        # After the epoch's last step, its end is near: its own checkpoint and stop come then.
        if not last:
            _checkpoint_or_stop(group, steps)
        advance()
    steps.settle()


def _checkpoint_or_stop(group: list[Trainee], steps: Steps) -> None:
    """A step checkpoint of every run when one is due, and always before stopping for a
    signal: the runs of a group are saved at one step."""
    lead, options = group[0].state, group[0].options
    by_steps, by_time = options.hooks.checkpoint_due(lead)
    stop, by_time = options.agree(lead, by_time)
    if by_steps or by_time or stop:
        steps.settle()
        for trainee in group:
            with trainee.turn():
                trainee.options.hooks.save_step(trainee.state)
        steps.commit()
    if stop:
        raise Interrupted(stop, lead.epoch + 1, lead.step)


def _end_epoch(group: list[Trainee], steps: Steps, lrs: list[float]) -> dict[Trainee, Diverged]:
    """Each run's training metrics, then one test pass for the runs still sound, then each
    one's epoch end in its own turn."""
    diverged: dict[Trainee, Diverged] = {}
    trained: dict[int, tuple] = {}
    for position, trainee in enumerate(group):
        state, reducer = trainee.state, trainee.options.reducer
        progress = state.progress
        assert progress is not None
        first_bad = progress.first_bad_step
        if reducer is not None:
            first_bad = reducer.max(first_bad)
        if (at := int(first_bad)) >= 0:
            diverged[trainee] = Diverged(state.epoch + 1, at)
            continue
        metrics, count = finalize(steps.task, progress.sums, progress.count, reducer)
        state.progress = None
        rows = step_rows(progress.logged, state.epoch + 1)
        trained[position] = ({**metrics, "count": count}, rows, progress.elapsed())
        with trainee.turn():
            trainee.options.hooks.after_training(state)
    if not trained:
        return diverged
    start = time.perf_counter()
    tested = steps.evaluate(list(trained))
    seconds = time.perf_counter() - start
    for (position, training), test_metrics in zip(trained.items(), tested, strict=True):
        trainee = group[position]
        with trainee.turn():
            _report(trainee, lrs[position], training, (test_metrics, seconds))
    steps.commit()
    if len(tested) > 1:
        train_seconds = next(iter(trained.values()))[2]
        _log_group(steps.task, [group[p] for p in trained], tested, (train_seconds, seconds))
    return diverged


def _report(
    trainee: Trainee,
    lr: float,
    trained: tuple[dict[str, float], list[dict[str, float]], float],
    tested: tuple[dict[str, float], float],
) -> None:
    """An epoch's training (metrics, step rows, seconds) and test pass (metrics, seconds)
    become its rows: the scheduler steps on them and the run's epoch end has them."""
    state = trainee.state
    (train_metrics, steps, train_seconds), (test_metrics, test_seconds) = trained, tested
    epoch = state.epoch = state.epoch + 1
    metrics: dict[str, float] = {"epoch": epoch}
    metrics.update({f"train_{k}": v for k, v in train_metrics.items() if k != "count"})
    metrics.update({f"test_{k}": v for k, v in test_metrics.items() if k != "count"})
    metrics["lr"] = lr
    if state.scheduler is not None:
        state.scheduler.step(metrics)
    timings = {
        "epoch": epoch,
        "train_seconds": train_seconds,
        "test_seconds": test_seconds,
        "train_samples_per_s": train_metrics["count"] / train_seconds,
    }
    trainee.options.hooks.end_epoch(state, EpochReport(metrics, timings, steps))


def _log_group(
    task: Task, group: list[Trainee], tested: list[dict[str, float]], seconds: tuple[float, float]
) -> None:
    """One console line per epoch for a group; each run's own line is in its train.log."""
    lead = group[0]
    metric = next(iter(task.metrics))
    values = [metrics[metric] for metrics in tested]
    log.info(
        "epoch %d/%d  %d runs fused | test %s %s to %s | %.1fs + %.1fs test",
        lead.state.epoch,
        lead.options.epochs,
        len(group),
        metric,
        number(min(values)),
        number(max(values)),
        *seconds,
    )


def number(value: float) -> str:
    """A metric as the log shows it."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def progress_bar(
    enabled: bool, title: str, total: int | None = None
) -> Iterator[Callable[[], None]]:
    """A transient rich progress bar over batches, or a no-op when off or not on a terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda: None
        return
    columns = (
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(title, total=total)
        yield lambda: progress.advance(task)
