"""Schemas of the two tools that are not a plain training run: the learning-rate finder
(`dlrun-lr-find`, conf/lr_find/) and the debug modes (`debug=...`, conf/debug/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from dlrun.config.ranges import above, at_least, between
from dlrun.errors import DlrunError


@dataclass
class LrFindConfig:
    """The range test: from a fresh model, one optimizer step per learning rate, the rates
    rising exponentially from `min_lr` to `max_lr` over `steps` steps."""

    min_lr: float = field(default=MISSING, metadata=above(0))
    max_lr: float = field(default=MISSING, metadata=above(0))
    steps: int = field(default=MISSING, metadata=at_least(2))
    # The test stops once the smoothed loss exceeds this multiple of its best so far.
    diverge: float = field(default=MISSING, metadata=above(1))


def check_tools(lr_find: Any, debug: Any) -> None:
    """What the ranges cannot state: one tool at a time, and a range that rises."""
    if lr_find is not None and debug is not None:
        raise DlrunError(
            f"dlrun-lr-find runs a range test, and debug={debug.mode.value} is a run of "
            f"another kind: run one at a time (leave out debug=..., or use dlrun)."
        )
    if lr_find is not None and lr_find.min_lr >= lr_find.max_lr:
        raise DlrunError(
            f"lr_find.min_lr={lr_find.min_lr} is not below lr_find.max_lr={lr_find.max_lr}: "
            f"the finder raises the learning rate from min_lr to max_lr. Give a low end below "
            f"the high end, e.g. lr_find.min_lr=1e-7 lr_find.max_lr=10."
        )


class DebugMode(str, Enum):
    fast = "fast"  # one training and one test batch, through a checkpoint and a resume
    overfit = "overfit"  # the same k batches again and again: can the model learn them?
    profile = "profile"  # torch.profiler over a few steps after a warm-up
    anomaly = "anomaly"  # the first module whose output or gradient is not finite


@dataclass
class DebugConfig:
    mode: DebugMode = MISSING
    # overfit: the k batches learnt again and again; profile: the steps it records.
    batches: int = field(default=1, metadata=at_least(1))
    # profile: steps before the recording (first calls, allocations); its top operators.
    warmup: int = field(default=0, metadata=at_least(0))
    top: int = field(default=10, metadata=at_least(1))
    # overfit: what "learnt" means per task, on the k batches in eval mode. Classification:
    # accuracy at least this...
    accuracy: float = field(default=0.99, metadata=between(0, 1))
    # ...regression: loss at most this fraction of predicting the targets' mean...
    loss_ratio: float = field(default=0.05, metadata=above(0))
    # ...language models: perplexity at most this.
    perplexity: float = field(default=1.5, metadata=at_least(1))
