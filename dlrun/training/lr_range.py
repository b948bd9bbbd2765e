"""The learning-rate range test's loop (Smith, 2017): from a fresh model, one optimizer
step per learning rate, the rates rising exponentially,

    lr_i = min_lr * (max_lr / min_lr) ** (i / (steps - 1)),    i = 0 .. steps - 1,

until the loss diverges: it is not finite, or its running smoothed value exceeds `diverge`
times the best so far. Every parameter group moves with the first, at its own ratio to it,
so groups that train at different rates keep their proportions.

The steps are the run's own (`ModelSteps`): its loss, penalties, clipping and mixed
precision, the batches drawn as its epochs draw them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from dlrun.diagnostics.lr_suggestion import RunningSmoother, diverged
from dlrun.training.steps import ModelSteps


@dataclass
class RangeTest:
    lrs: list[float]  # the rates stepped with, in order
    losses: list[float]  # each step's training loss
    stopped: str  # why the test ended


def learning_rates(min_lr: float, max_lr: float, steps: int) -> list[float]:
    ratio = max_lr / min_lr
    return [min_lr * ratio ** (i / (steps - 1)) for i in range(steps)]


def range_test(steps: ModelSteps, lrs: list[float], diverge: float) -> RangeTest:
    """Step once at each rate of `lrs` until the loss diverges."""
    groups = steps.state.optimizer.param_groups
    first = groups[0]["lr"]
    ratios = [group["lr"] / first if first else 1.0 for group in groups]
    smoother = RunningSmoother()
    test = RangeTest([], [], f"it reached max_lr {lrs[-1]:.2g}")
    batches = _endless(steps)
    for lr in lrs:
        for group, ratio in zip(groups, ratios, strict=True):
            group["lr"] = lr * ratio
        loss, _, _ = steps.step(next(batches))
        value = float(loss.detach())  # a sync per step: the test must see each loss to stop in time
        test.lrs.append(lr)
        test.losses.append(value)
        if not math.isfinite(value):
            test.stopped = f"the loss became {value} at lr {lr:.2g}"
            break
        if diverged(smoother.best, smoother.add(value), diverge):
            test.stopped = (
                f"the smoothed loss passed {diverge:g}x its best ({smoother.best:.4g}) at "
                f"lr {lr:.2g}"
            )
            break
    return test


def _endless(steps: ModelSteps) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The run's batches, epoch after epoch, for as many steps as the test takes."""
    while True:
        steps.state.progress = None
        steps.begin_epoch()
        for batch, _ in steps.batches():
            yield batch
