"""`Steps` for a fused group (training/steps.py): the members' steps as one program.

Each member keeps its own `EpochProgress`, batch order, optimizer and epoch end; the epoch
driver (training/engine.py) treats the group as it treats one run. What the steps add up
(metric sums, the first non-finite loss, logged losses) is kept stacked here, one entry per
member, and handed back to each member's progress when a checkpoint or the epoch's end
needs it (`settle`). The members' checkpoints of one step become current together
(sweeps/fused/commit.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlrun.sweeps.fused.commit import GroupCommit
from dlrun.sweeps.fused.members import Member
from dlrun.sweeps.fused.optimizers import merged
from dlrun.sweeps.fused.stacked import StackedModel
from dlrun.training.state import EpochProgress
from dlrun.training.steps import accumulate, finalize, resumed_batches


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
        """Each member's share into its own progress."""
        for i, progress in enumerate(progresses):
            progress.sums = {name: value[i].clone() for name, value in self.sums.items()}
            progress.first_bad_step = self.first_bad_step[i].clone()
            progress.count, progress.batches = self.count, self.batches
            progress.logged = [(step, losses[i].clone()) for step, losses in self.logged]


class StackedSteps:
    """One forward, backward and step for every member; one vmapped test pass."""

    def __init__(self, group: Sequence[Member], sweep_dir: Path) -> None:
        self.group = list(group)
        self.commits = GroupCommit(sweep_dir, [m.recipe.checkpoints for m in self.group])
        lead = self.group[0]
        self.task = lead.recipe.task
        self.model = StackedModel([m.state.model for m in self.group], self.task, lead.sample)
        self.device = lead.sample.device
        self.num_batches = lead.recipe.train_split.num_batches(
            lead.options.batch_size, lead.options.drop_last
        )

    def begin_epoch(self) -> GroupProgress:
        # Merged each epoch: the members' schedulers change their groups at epoch ends.
        self.optimizers = merged([m.state.optimizer for m in self.group])
        self.progresses = []
        for member in self.group:
            with member.random():
                self.progresses.append(EpochProgress.begin_or_resume(member.state))
        self.totals = GroupProgress.gather(self.progresses)
        return self.totals

    def batches(self) -> Iterator[tuple[Any, bool]]:
        """Every member's next batch, stacked. The first of an epoch may draw from the
        random state (a resumed epoch sets it), so the member's own is in place for it."""
        sources = [
            resumed_batches(p, m.recipe.train_split, m.options, m.state.generator)
            for m, p in zip(self.group, self.progresses, strict=True)
        ]
        while True:
            first = self.totals.batches == 0
            xs, ys, last = [], [], False
            for member, source in zip(self.group, sources, strict=True):
                with member.random() if first else nullcontext():
                    item = next(source, None)
                if item is None:
                    return
                (x, y), last = item
                xs.append(x)
                ys.append(y)
            yield (torch.stack(xs), torch.stack(ys)), last

    def step(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        """Forward (+ penalties), backward and step for every member at once."""
        xs, ys = batch
        losses, sums = self.model.train_step(xs, ys, self._masks(xs))
        objective = losses.sum()
        for member in self.group:
            for regularizer in member.hooks.penalties:
                objective = objective + regularizer.penalty(member.state.model)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        objective.backward()
        for member in self.group:
            for regularizer in member.hooks.before_step:
                regularizer.before_step(member.state.model)
        for optimizer in self.optimizers:
            optimizer.step()
        return losses, sums, self.task.count(ys[0])

    def _masks(self, xs: torch.Tensor) -> list[torch.Tensor]:
        """Each member's dropout masks, drawn from its own random state, stacked by layer."""
        if not self.model.mask_shapes:
            return []
        drawn = []
        for i, member in enumerate(self.group):
            with member.random():
                drawn.append(self.model.draw_masks(i, xs.shape[1], xs.device))
        return [torch.stack(layer) for layer in zip(*drawn, strict=True)]

    def settle(self) -> None:
        self.totals.scatter(self.progresses)

    def commit(self) -> None:
        self.commits.commit()

    @torch.inference_mode()
    def evaluate(self, members: Sequence[int]) -> list[dict[str, float]]:
        """Every member's test metrics from one vmapped pass per test batch."""
        splits = [m.recipe.test_split for m in self.group]
        shared = all(split is splits[0] for split in splits)
        size = self.group[0].options.eval_batch_size
        sources = [split.batches(size) for split in (splits[:1] if shared else splits)]
        sums: dict[str, torch.Tensor] = {}
        count = 0
        for batch in zip(*sources, strict=True):
            if shared:
                (x, y), one = batch[0], batch[0][1]
            else:
                x, y = (torch.stack(parts) for parts in zip(*batch, strict=True))
                one = y[0]
            accumulate(sums, self.model.eval_sums(x, y, shared))
            count += self.task.count(one)
        tested = []
        for i in members:
            metrics, _ = finalize(self.task, {k: v[i] for k, v in sums.items()}, count, None)
            tested.append({**metrics, "count": count})
        return tested
