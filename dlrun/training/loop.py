"""The loop: epochs of training, each followed by a pass over the test split.

It knows models, optimizers, tasks and batches, nothing about LeNet, Fashion-MNIST or run
folders: what happens after a step or an epoch (metrics, checkpoints, plots, early stopping)
is a callback (training/callbacks.py), and what a regularizer does to the loss or the
gradients is one of its hooks.

An epoch in progress is an `EpochProgress` on the training state: the shuffle and random
state it began with, the batches done, the metric sums so far. A step checkpoint saves it,
and a run resumed from one goes on with the next batch exactly as if it had not stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from dlrun.data.contracts import BatchSource
from dlrun.optim.regularizers import Regularizer, overrides
from dlrun.optim.schedulers import EpochScheduler
from dlrun.tasks import Task
from dlrun.training.callbacks import Callback, EpochReport, overriding
from dlrun.training.distributed import Reducer
from dlrun.training.seeding import rng_state, set_rng_state

COUNT = "_count"  # the sample count, reduced across ranks with the metric sums


@dataclass
class TrainState:
    """Everything that changes while training and goes into a checkpoint."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # draws each epoch's shuffle
    scheduler: EpochScheduler | None = None
    regularizers: list[Regularizer] = field(default_factory=list)
    # Callbacks chosen as regularizer options (early stopping): their state_dict() goes into
    # checkpoints by option name, beside the regularizers'.
    stateful_callbacks: list[Any] = field(default_factory=list)
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_value: float | None = None
    best_epoch: int | None = None
    stop_reason: str | None = None
    # torch.compile's wrapper of the model, and DistributedDataParallel's of either.
    compiled: nn.Module | None = None
    ddp: nn.Module | None = None
    # Scales the fp16 loss; None unless trainer.precision=16.
    scaler: torch.amp.GradScaler | None = None
    first_step_seconds: float | None = None
    # Set by a SIGINT/SIGTERM handler: the loop stops after the step in progress.
    stop_signal: str | None = None
    # The epoch in progress; None between epochs. Restored from a mid-epoch checkpoint.
    progress: EpochProgress | None = None
    # Per-layer norms (diagnostics/norms.py) whose warnings depend on the records so far.
    layer_norms: Any = None

    @property
    def forward_model(self) -> nn.Module:
        """What training runs forward."""
        return self.ddp or self.compiled or self.model

    @property
    def eval_model(self) -> nn.Module:
        """What evaluation runs forward: no gradients, so nothing to average across ranks."""
        return self.compiled or self.model


@dataclass
class EpochProgress:
    """Where an epoch stands after `batches` of its steps.

    `generator` and `rng` are the states the epoch began with, before its order was drawn;
    `step_rng` the random state after its last step, set once a resumed epoch has drawn its
    order again. The sums stay on the device, as the loop keeps them.
    """

    generator: torch.Tensor
    rng: dict
    first_bad_step: torch.Tensor  # -1, or the first step whose loss was not finite
    batches: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    count: int = 0
    logged: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    recurrent_state: Any = None
    step_rng: dict | None = None
    seconds: float = 0.0  # training time of this epoch before a resume
    started: float = field(default_factory=time.perf_counter)  # in this process

    def elapsed(self) -> float:
        """The epoch's training time so far, across resumes."""
        return self.seconds + time.perf_counter() - self.started

    @classmethod
    def begin(cls, generator: torch.Generator, device: torch.device) -> EpochProgress:
        first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        return cls(generator.get_state(), rng_state(), first_bad_step)

    def rank_state(self) -> dict[str, Any]:
        """What differs between data-parallel ranks, on the CPU, for a checkpoint."""
        return {
            "rng": self.rng,
            "step_rng": rng_state(),
            "first_bad_step": self.first_bad_step.cpu(),
            "sums": {name: value.cpu() for name, value in self.sums.items()},
            "count": self.count,
            "logged": [(step, loss.cpu()) for step, loss in self.logged],
            "recurrent_state": _moved(self.recurrent_state, torch.device("cpu")),
        }

    @classmethod
    def restore(cls, shared: dict[str, Any], rank: dict[str, Any], device) -> EpochProgress:
        """From a checkpoint's progress: what all ranks share, and this rank's own part."""
        return cls(
            generator=shared["generator"],
            batches=shared["batches"],
            seconds=shared.get("seconds", 0.0),
            rng=rank["rng"],
            first_bad_step=rank["first_bad_step"].to(device),
            sums={name: value.to(device) for name, value in rank["sums"].items()},
            count=rank["count"],
            logged=[(step, loss.to(device)) for step, loss in rank["logged"]],
            recurrent_state=_moved(rank["recurrent_state"], device),
            step_rng=rank["step_rng"],
        )


class StepCheckpoints(Protocol):
    """Checkpoints inside an epoch: the loop asks after every step."""

    def due(self, state: TrainState) -> tuple[bool, bool]:
        """Whether a checkpoint is due by the step count (the same on every rank), and by
        the clock (the ranks agree on it)."""
        ...

    def save(self, state: TrainState) -> None:
        """A checkpoint of `state`, `state.progress` included (every rank calls it)."""
        ...


@dataclass
class LoopOptions:
    epochs: int
    batch_size: int
    eval_batch_size: int
    shuffle: bool
    drop_last: bool
    progress: bool = False
    log_every_n_steps: int = 0  # 0: no per-step losses
    callbacks: list[Callback] = field(default_factory=list)
    autocast: Callable[[], AbstractContextManager] = nullcontext
    channels_last: bool = False
    # Data-parallel runs: adds up metric sums across ranks and agrees on stopping.
    reducer: Reducer | None = None
    step_checkpoints: StepCheckpoints | None = None

    def stop_signal(self, state: TrainState) -> str | None:
        return self.agree(state, due=False)[0]

    def agree(self, state: TrainState, due: bool) -> tuple[str | None, bool]:
        """A stop signal, and whether a checkpoint is due: the same answer on every rank."""
        if self.reducer is None:
            return state.stop_signal, due
        return self.reducer.agree(state.stop_signal, due)


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


def fit(
    state: TrainState,
    train: BatchSource,
    test: BatchSource,
    task: Task,
    options: LoopOptions,
) -> None:
    """Train from `state.epoch` up to `options.epochs`, calling the callbacks as it goes."""
    try:
        _epochs(state, train, test, task, options)
    finally:
        for callback in overriding(options.callbacks, "on_fit_end"):
            callback.on_fit_end(state)


def _epochs(
    state: TrainState, train: BatchSource, test: BatchSource, task: Task, options: LoopOptions
) -> None:
    after_train = overriding(options.callbacks, "on_train_epoch_end")
    while state.epoch < options.epochs and state.stop_reason is None:
        epoch = state.epoch + 1
        if stop := options.stop_signal(state):
            raise Interrupted(stop, epoch, state.step)
        lr = state.optimizer.param_groups[0]["lr"]
        total = train.num_batches(options.batch_size, options.drop_last)
        with progress_bar(options.progress, f"epoch {epoch}/{options.epochs}", total) as advance:
            trained = train_epoch(state, train, task, options, advance)
        for callback in after_train:
            callback.on_train_epoch_end(state)
        start = time.perf_counter()
        test_metrics = evaluate(
            state.eval_model, test, task, options.eval_batch_size, options.autocast, options.reducer
        )
        end_epoch(state, options, lr, trained, (test_metrics, time.perf_counter() - start))


def end_epoch(
    state: TrainState,
    options: LoopOptions,
    lr: float,
    trained: tuple[dict[str, float], list[dict[str, float]], float],
    tested: tuple[dict[str, float], float],
) -> None:
    """An epoch's training (metrics, step rows, seconds) and test pass (metrics, seconds)
    become its rows: the scheduler steps on them and the callbacks hear of them."""
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
    report = EpochReport(metrics, timings, steps)
    for callback in overriding(options.callbacks, "on_epoch_end"):
        callback.on_epoch_end(state, report)


def train_epoch(
    state: TrainState,
    split: BatchSource,
    task: Task,
    options: LoopOptions,
    advance: Callable[[], None],
) -> tuple[dict[str, float], list[dict[str, float]], float]:
    """One epoch's training (or the rest of one): its metrics, steps.csv rows, seconds."""
    model = state.model
    hooks = StepHooks.of(state)
    on_step = overriding(options.callbacks, "on_step_end")
    model.train()
    progress = begin_epoch(state, model)
    for (x, y), last in resumed_batches(progress, split, options, state.generator):
        first_step = state.first_step_seconds is None
        started = time.perf_counter()
        if split.stateful and progress.recurrent_state is not None:
            progress.recurrent_state = model.detach_state(progress.recurrent_state)
        if options.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        carried = progress.recurrent_state if split.stateful else None
        output, loss, progress.recurrent_state = _step(state, task, options, x, y, carried, hooks)
        state.step += 1
        if first_step:  # one sync per run: the first step carries any compilation
            _synchronize(x.device)
            state.first_step_seconds = time.perf_counter() - started
        sums = task.batch_sums(output.detach().float(), y, loss.float())
        record_step(progress, loss, sums, task.count(y), state.step, options.log_every_n_steps)
        for callback in on_step:
            callback.on_step_end(state)
        # After the epoch's last step, its end is near: its own checkpoint and stop come then.
        if not last:
            checkpoint_or_stop(state, options)
        advance()
    first_bad_step = progress.first_bad_step
    if options.reducer is not None:
        first_bad_step = options.reducer.max(first_bad_step)
    if (diverged_at := int(first_bad_step)) >= 0:
        raise Diverged(state.epoch + 1, diverged_at)
    metrics, count = finalize(task, progress.sums, progress.count, options.reducer)
    state.progress = None
    rows = step_rows(progress.logged, state.epoch + 1)
    return {**metrics, "count": count}, rows, progress.elapsed()


def begin_epoch(state: TrainState, model: nn.Module) -> EpochProgress:
    """A new epoch's progress, or the one a mid-epoch checkpoint restored."""
    if state.progress is None:
        state.progress = EpochProgress.begin(state.generator, _device(model))
    state.progress.started = time.perf_counter()
    return state.progress


def resumed_batches(
    progress: EpochProgress, split: BatchSource, options: LoopOptions, generator: torch.Generator
) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], bool]]:
    """The epoch's batches from `progress.batches` on, each with whether it is the last. A
    resumed epoch draws its order from the states it began with, then takes up the random
    state of its last step."""
    if progress.step_rng is not None:
        generator.set_state(progress.generator)
        set_rng_state(progress.rng)
    batches = iter(
        split.batches(
            options.batch_size,
            shuffle=options.shuffle,
            drop_last=options.drop_last,
            generator=generator,
            skip=progress.batches,
        )
    )
    # One batch ahead, to know the epoch's last (text epochs vary in length).
    batch = next(batches, None)
    while batch is not None:
        following = next(batches, None)
        _take_step_rng(progress)
        yield batch, following is None
        batch = following
    _take_step_rng(progress)


def _take_step_rng(progress: EpochProgress) -> None:
    if progress.step_rng is not None:
        set_rng_state(progress.step_rng)
        progress.step_rng = None


class StepTotals(Protocol):
    """What an epoch's steps add up: an EpochProgress, or a fused group's, stacked."""

    sums: dict[str, torch.Tensor]
    first_bad_step: torch.Tensor
    count: int
    batches: int
    logged: list[tuple[int, torch.Tensor]]


def record_step(
    totals: StepTotals, loss, sums: dict[str, torch.Tensor], count: int, step: int, log_every: int
) -> None:
    """The step's share of the epoch's metrics. Sums stay on the device: one host sync per
    epoch, not one per step, and the first non-finite loss is tracked there too."""
    bad = ~torch.isfinite(loss.detach())
    first_bad = totals.first_bad_step
    totals.first_bad_step = torch.where(bad & (first_bad < 0), step, first_bad)
    accumulate(totals.sums, sums)
    totals.count += count
    totals.batches += 1
    if log_every and step % log_every == 0:
        totals.logged.append((step, loss.detach()))


def checkpoint_or_stop(state: TrainState, options: LoopOptions) -> None:
    """A step checkpoint when one is due, and always before stopping for a signal."""
    checkpoints = options.step_checkpoints
    by_steps, by_time = checkpoints.due(state) if checkpoints is not None else (False, False)
    stop, by_time = options.agree(state, by_time)
    if checkpoints is not None and (by_steps or by_time or stop):
        checkpoints.save(state)
    if stop:
        raise Interrupted(stop, state.epoch + 1, state.step)


@dataclass
class StepHooks:
    """What one optimizer step calls besides the model: the loss scaler, the regularizers."""

    scaler: torch.amp.GradScaler
    penalties: list[Regularizer]
    before_step: list[Regularizer]

    @classmethod
    def of(cls, state: TrainState) -> StepHooks:
        regularizers = state.regularizers
        return cls(
            scaler=state.scaler or torch.amp.GradScaler(enabled=False),
            penalties=[r for r in regularizers if overrides(r, "penalty")],
            before_step=[r for r in regularizers if overrides(r, "before_step")],
        )


def _step(state: TrainState, task: Task, options: LoopOptions, x, y, carried, hooks: StepHooks):
    """Forward, loss (+ penalties), backward, step: the output, the loss, the new state."""
    model, optimizer, scaler = state.model, state.optimizer, hooks.scaler
    with options.autocast():
        output, recurrent_state = task.forward(state.forward_model, x, carried)
        loss = task.loss(output, y)
        objective = loss
        for regularizer in hooks.penalties:
            objective = objective + regularizer.penalty(model)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(objective).backward()
    if hooks.before_step:
        scaler.unscale_(optimizer)  # hooks such as clipping see the true gradients
        for regularizer in hooks.before_step:
            regularizer.before_step(model)
    scaler.step(optimizer)
    scaler.update()
    return output, loss, recurrent_state


def step_rows(logged: list[tuple[int, torch.Tensor]], epoch: int) -> list[dict[str, float]]:
    """steps.csv rows of the losses kept every log_every_n_steps steps: one sync for all."""
    if not logged:
        return []
    values = torch.stack([loss for _, loss in logged]).tolist()
    return [
        {"step": step, "epoch": epoch, "train_loss": value}
        for (step, _), value in zip(logged, values, strict=True)
    ]


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    split: BatchSource,
    task: Task,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    reducer: Reducer | None = None,
) -> dict[str, float]:
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    recurrent_state = None
    for x, y in split.batches(batch_size):
        with autocast():
            output, recurrent_state = task.forward(
                model, x, recurrent_state if split.stateful else None
            )
            loss = task.loss(output, y)
        accumulate(sums, task.batch_sums(output.float(), y, loss.float()))
        count += task.count(y)
    metrics, count = finalize(task, sums, count, reducer)
    return {**metrics, "count": count}


def finalize(
    task: Task, sums: dict[str, torch.Tensor], count: int, reducer: Reducer | None
) -> tuple[dict[str, float], int]:
    """Metrics from the sums of one pass, over every rank's share in data-parallel runs."""
    if reducer is not None:
        sums = reducer.sum({**sums, COUNT: torch.tensor(count)})
        count = int(sums.pop(COUNT).item())
    return task.finalize({k: v.item() for k, v in sums.items()}, count), count


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _moved(value: Any, device: torch.device) -> Any:
    """A recurrent state (a tensor, a tuple of them, or None) on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_moved(v, device) for v in value)
    return value


def accumulate(sums: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> None:
    for name, value in batch.items():
        sums[name] = sums[name] + value if name in sums else value


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
