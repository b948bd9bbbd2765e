"""The step contract, and its implementation for one model.

The epoch driver (training/engine.py) trains whatever implements `Steps`: one model here
(`ModelSteps`), or a fused group's members stacked into one program (sweeps/fused/steps.py). A
`Steps` begins each member's epoch, hands out its batches, takes one optimizer step for every
member at once, and runs the test pass; the driver does everything around it once.

What the steps add up (metric sums, the first non-finite loss, the losses logged) stays on
the device until the epoch's end: one host sync per epoch, not one per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from dlrun.data.contracts import BatchSource
from dlrun.optim.regularizers import Regularizer, overrides
from dlrun.tasks import Task
from dlrun.training.distributed import Reducer
from dlrun.training.options import LoopOptions
from dlrun.training.seeding import set_rng_state
from dlrun.training.state import EpochProgress, TrainState

COUNT = "_count"  # the sample count, reduced across ranks with the metric sums


class StepTotals(Protocol):
    """What an epoch's steps add up: an EpochProgress, or a fused group's, stacked."""

    sums: dict[str, torch.Tensor]
    first_bad_step: torch.Tensor
    count: int
    batches: int
    logged: list[tuple[int, torch.Tensor]]


class Steps(Protocol):
    """One optimizer step, and the test pass, for every member of what trains together."""

    task: Task
    device: torch.device
    num_batches: int  # in a whole epoch, for the progress bar

    def begin_epoch(self) -> StepTotals:
        """Each member's epoch begun, or taken up where a checkpoint left it."""
        ...

    def batches(self) -> Iterator[tuple[Any, bool]]:
        """The rest of the epoch's batches, each with whether it is the last."""
        ...

    def step(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        """Forward, loss, backward, optimizer step: the loss (one per member when stacked),
        the batch's metric sums, its sample count."""
        ...

    def settle(self) -> None:
        """The totals so far into each member's own EpochProgress (for a checkpoint, or the
        epoch's end)."""
        ...

    def evaluate(self, members: Sequence[int]) -> list[dict[str, float]]:
        """The test metrics (with "count") of the members at these positions."""
        ...

    def commit(self) -> None:
        """The checkpoints the members just saved become current, together."""
        ...


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


class ModelSteps:
    """`Steps` for one model: mixed precision, channels-last, a recurrent state carried from
    batch to batch, data-parallel ranks."""

    def __init__(
        self,
        state: TrainState,
        train: BatchSource,
        test: BatchSource,
        task: Task,
        options: LoopOptions,
    ) -> None:
        self.state, self.train, self.test = state, train, test
        self.task, self.options = task, options
        self.device = next(state.model.parameters()).device
        self.num_batches = train.num_batches(options.batch_size, options.drop_last)
        self.hooks = StepHooks.of(state)

    def begin_epoch(self) -> EpochProgress:
        self.state.model.train()
        return EpochProgress.begin_or_resume(self.state)

    def batches(self) -> Iterator[tuple[Any, bool]]:
        assert self.state.progress is not None
        return resumed_batches(self.state.progress, self.train, self.options, self.state.generator)

    def step(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        (x, y), progress, options = batch, self.state.progress, self.options
        assert progress is not None
        stateful = self.train.stateful
        if stateful and progress.recurrent_state is not None:
            progress.recurrent_state = self.state.model.detach_state(progress.recurrent_state)
        if options.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        carried = progress.recurrent_state if stateful else None
        output, loss, progress.recurrent_state = self._step(x, y, carried)
        sums = self.task.batch_sums(output.detach().float(), y, loss.float())
        return loss, sums, self.task.count(y)

    def _step(self, x, y, carried):
        """Forward, loss (+ penalties), backward, step: the output, the loss, the new state."""
        state, hooks, task = self.state, self.hooks, self.task
        model, optimizer, scaler = state.model, state.optimizer, hooks.scaler
        with self.options.autocast():
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

    def settle(self) -> None:
        """The totals are the run's own EpochProgress already."""

    def evaluate(self, members: Sequence[int]) -> list[dict[str, float]]:
        options = self.options
        metrics = evaluate(
            self.state.eval_model,
            self.test,
            self.task,
            options.eval_batch_size,
            options.autocast,
            options.reducer,
        )
        return [metrics for _ in members]

    def commit(self) -> None:
        """One run's checkpoint is current once written."""


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


def record_step(
    totals: StepTotals, loss, sums: dict[str, torch.Tensor], count: int, step: int, log_every: int
) -> None:
    """The step's share of the epoch's metrics; the first non-finite loss is tracked on the
    device too."""
    bad = ~torch.isfinite(loss.detach())
    first_bad = totals.first_bad_step
    totals.first_bad_step = torch.where(bad & (first_bad < 0), step, first_bad)
    accumulate(totals.sums, sums)
    totals.count += count
    totals.batches += 1
    if log_every and step % log_every == 0:
        totals.logged.append((step, loss.detach()))


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


def accumulate(sums: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> None:
    for name, value in batch.items():
        sums[name] = sums[name] + value if name in sums else value
