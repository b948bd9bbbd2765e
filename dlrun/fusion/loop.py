"""The fused loop: the members' epochs in lockstep, one forward, backward and step for all.

It is training/loop.py's loop with a member dimension. Each member keeps its own
`EpochProgress`, batch order, callbacks and checkpoints; what the loop adds up per step
(metric sums, the first non-finite loss, logged losses) is kept stacked, one entry per
member, and handed back to each member's progress when a checkpoint or the epoch's end
needs it. Members take their step checkpoints together, so that a resumed group starts
from one step; a member leaves the group after the epoch that ends it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from dlrun.fusion.members import Member
from dlrun.fusion.optimizers import merged
from dlrun.fusion.stacked import StackedModel
from dlrun.recipe.callbacks import number
from dlrun.training.callbacks import overriding
from dlrun.training.loop import (
    Diverged,
    EpochProgress,
    Interrupted,
    accumulate,
    begin_epoch,
    end_epoch,
    finalize,
    progress_bar,
    record_step,
    resumed_batches,
    step_rows,
)
from dlrun.training.signals import graceful_stop

log = logging.getLogger("dlrun")

# What happens to a member that leaves: None when its run ended, else why it stopped.
Leave = Callable[[Member, Exception | None], None]


def train_together(members: list[Member], leave: Leave) -> None:
    """Train the members to their ends; `leave` is called once for each."""
    group = list(members)
    with graceful_stop(*(member.state for member in group)):
        model = None  # built again only when a member has left
        while group:
            model = model or StackedModel(
                [m.state.model for m in group], group[0].recipe.task, group[0].sample
            )
            try:
                diverged = _epoch(group, model)
            except Interrupted as error:
                for member in group:
                    leave(member, error)
                return
            for member in list(group):
                state = member.state
                if member in diverged:
                    leave(member, diverged[member])
                elif state.epoch >= member.options.epochs or state.stop_reason is not None:
                    leave(member, None)
                else:
                    continue
                group.remove(member)
                model = None


@dataclass
class GroupProgress:
    """What the members' steps add up, stacked: entry i is member i's."""

    sums: dict[str, torch.Tensor]
    first_bad_step: torch.Tensor
    count: int
    batches: int
    logged: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    @classmethod
    def gather(cls, progresses: list[EpochProgress]) -> GroupProgress:
        first = progresses[0]
        return cls(
            sums={k: torch.stack([p.sums[k] for p in progresses]) for k in first.sums},
            first_bad_step=torch.stack([p.first_bad_step for p in progresses]),
            count=first.count,
            batches=first.batches,
            logged=[
                (step, torch.stack([p.logged[i][1] for p in progresses]))
                for i, (step, _) in enumerate(first.logged)
            ],
        )

    def scatter(self, progresses: list[EpochProgress]) -> None:
        """Each member's share into its own progress (for a checkpoint, or the epoch's end)."""
        for i, progress in enumerate(progresses):
            progress.sums = {name: value[i].clone() for name, value in self.sums.items()}
            progress.first_bad_step = self.first_bad_step[i].clone()
            progress.count, progress.batches = self.count, self.batches
            progress.logged = [(step, losses[i].clone()) for step, losses in self.logged]


def _epoch(group: list[Member], model: StackedModel) -> dict[Member, Diverged]:
    """One epoch of every member (or the rest of one); the members whose loss went bad."""
    lead = group[0]
    if stop := lead.state.stop_signal:  # every member's state heard of it
        raise Interrupted(stop, lead.state.epoch + 1, lead.state.step)
    # Merged each epoch: the members' schedulers change their groups at epoch ends.
    optimizers = merged([m.state.optimizer for m in group])
    lrs = {m: m.state.optimizer.param_groups[0]["lr"] for m in group}
    progresses = []
    for member in group:
        with member.random():
            progresses.append(begin_epoch(member.state, member.state.model))
    batches = [
        resumed_batches(p, m.recipe.train_split, m.options, m.state.generator)
        for m, p in zip(group, progresses, strict=True)
    ]
    progress = GroupProgress.gather(progresses)
    options = lead.options
    total = lead.recipe.train_split.num_batches(options.batch_size, options.drop_last)
    title = f"epoch {lead.state.epoch + 1}/{options.epochs}, {len(group)} runs fused"
    with progress_bar(options.progress, title, total) as advance:
        while (step := _next_batches(group, batches, progress.batches == 0)) is not None:
            (xs, ys), last = step
            started = time.perf_counter()
            losses, sums = _step(group, model, optimizers, xs, ys)
            for member in group:
                member.state.step += 1
            if lead.state.first_step_seconds is None:
                _first_step(group, xs, started)
            count = lead.recipe.task.count(ys[0])
            record_step(progress, losses, sums, count, lead.state.step, options.log_every_n_steps)
            _on_step(group)
            if not last:
                _checkpoint_or_stop(group, progress, progresses)
            advance()
    progress.scatter(progresses)
    return _end_epoch(group, model, progresses, lrs)


def _next_batches(group: list[Member], batches: list, first: bool):
    """Every member's next batch, stacked, and whether it is the epoch's last; None at
    the end. The first of an epoch may draw from the random state (a resumed epoch sets
    it), so the member's own is in place for it."""
    xs, ys, last = [], [], False
    for member, source in zip(group, batches, strict=True):
        with member.random() if first else nullcontext():
            item = next(source, None)
        if item is None:
            return None
        (x, y), last = item
        xs.append(x)
        ys.append(y)
    return (torch.stack(xs), torch.stack(ys)), last


def _step(group: list[Member], model: StackedModel, optimizers: list, xs, ys):
    """Forward (+ penalties), backward and step for every member at once."""
    masks = []
    if model.mask_shapes:
        drawn = []
        for i, member in enumerate(group):
            with member.random():
                drawn.append(model.draw_masks(i, xs.shape[1], xs.device))
        masks = [torch.stack(layer) for layer in zip(*drawn, strict=True)]
    losses, sums = model.train_step(xs, ys, masks)
    objective = losses.sum()
    for member in group:
        for regularizer in member.hooks.penalties:
            objective = objective + regularizer.penalty(member.state.model)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    objective.backward()
    for member in group:
        for regularizer in member.hooks.before_step:
            regularizer.before_step(member.state.model)
    for optimizer in optimizers:
        optimizer.step()
    return losses, sums


def _first_step(group: list[Member], xs: torch.Tensor, started: float) -> None:
    """One sync per run, as alone: the first step carries any warm-up."""
    if xs.device.type == "cuda":
        torch.cuda.synchronize(xs.device)
    for member in group:
        member.state.first_step_seconds = time.perf_counter() - started


def _on_step(group: list[Member]) -> None:
    for member in group:
        callbacks = overriding(member.options.callbacks, "on_step_end")
        if callbacks:
            with member.turn():
                for callback in callbacks:
                    callback.on_step_end(member.state)


def _checkpoint_or_stop(group: list[Member], progress: GroupProgress, progresses) -> None:
    """Step checkpoints of every member at once, when the first one's is due or a signal
    came: the members' last.pt files then hold the same step."""
    lead = group[0]
    checkpoints = lead.options.step_checkpoints
    by_steps, by_time = checkpoints.due(lead.state) if checkpoints is not None else (False, False)
    stop = lead.state.stop_signal
    if by_steps or by_time or stop:
        progress.scatter(progresses)
        for member in group:
            with member.turn():
                member.options.step_checkpoints.save(member.state)
    if stop:
        raise Interrupted(stop, lead.state.epoch + 1, lead.state.step)


def _end_epoch(group, model: StackedModel, progresses, lrs) -> dict[Member, Diverged]:
    diverged = {}
    trained = {}
    for member, progress in zip(group, progresses, strict=True):
        state = member.state
        if (at := int(progress.first_bad_step)) >= 0:
            diverged[member] = Diverged(state.epoch + 1, at)
            continue
        task = member.recipe.task
        metrics, count = finalize(task, progress.sums, progress.count, None)
        state.progress = None
        rows = step_rows(progress.logged, state.epoch + 1)
        trained[member] = ({**metrics, "count": count}, rows, progress.elapsed())
        with member.turn():
            for callback in overriding(member.options.callbacks, "on_train_epoch_end"):
                callback.on_train_epoch_end(state)
    if not trained:
        return diverged
    start = time.perf_counter()
    tested = _evaluate(group, model, trained)
    seconds = time.perf_counter() - start
    for member, test_metrics in tested.items():
        with member.turn():
            tested_part = (test_metrics, seconds)
            end_epoch(member.state, member.options, lrs[member], trained[member], tested_part)
    _log_epoch(tested, trained[next(iter(tested))][2], seconds)
    return diverged


def _log_epoch(tested: dict, train_seconds: float, test_seconds: float) -> None:
    """One console line per epoch for the group; each run's own line is in its train.log."""
    lead = next(iter(tested))
    metric = next(iter(lead.recipe.task.metrics))
    values = [metrics[metric] for metrics in tested.values()]
    log.info(
        "epoch %d/%d  %d runs fused | test %s %s to %s | %.1fs + %.1fs test",
        lead.state.epoch,
        lead.options.epochs,
        len(tested),
        metric,
        number(min(values)),
        number(max(values)),
        train_seconds,
        test_seconds,
    )


@torch.inference_mode()
def _evaluate(group: list[Member], model: StackedModel, trained: dict) -> dict:
    """Every member's test metrics from one vmapped pass per test batch."""
    splits = [m.recipe.test_split for m in group]
    shared = all(split is splits[0] for split in splits)
    size = group[0].options.eval_batch_size
    sources = [split.batches(size) for split in (splits[:1] if shared else splits)]
    sums: dict[str, torch.Tensor] = {}
    count = 0
    task = group[0].recipe.task
    for batch in zip(*sources, strict=True):
        if shared:
            (x, y), one = batch[0], batch[0][1]
        else:
            x, y = (torch.stack(parts) for parts in zip(*batch, strict=True))
            one = y[0]
        accumulate(sums, model.eval_sums(x, y, shared))
        count += task.count(one)
    tested = {}
    for i, member in enumerate(group):
        if member in trained:
            metrics, _ = finalize(task, {k: v[i] for k, v in sums.items()}, count, None)
            tested[member] = {**metrics, "count": count}
    return tested
