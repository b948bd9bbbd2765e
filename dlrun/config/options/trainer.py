"""Schema of the trainer group, and the choices that other groups share."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING

from dlrun.config.ranges import at_least
from dlrun.errors import DlrunError


class MonitorMode(str, Enum):
    """Which way a metric is better. Every comparison of two values of a metric, and every
    pick of its best, goes through these two methods."""

    min = "min"
    max = "max"

    def better(self, value: float, than: float, by: float = 0.0) -> bool:
        """Whether `value` beats `than` by more than `by`."""
        return value > than + by if self is MonitorMode.max else value < than - by

    def best(self, values: Iterable[float]) -> float:
        return max(values) if self is MonitorMode.max else min(values)


class DataPath(str, Enum):
    tensor = "tensor"  # whole splits on the device, batches by indexing
    dataloader = "dataloader"  # torch DataLoader over CPU tensors, batches moved one by one


class Loss(str, Enum):
    auto = "auto"  # the task's own: cross entropy, or mse for regression
    cross_entropy = "cross_entropy"
    mse = "mse"
    half_mse = "half_mse"  # (y_hat - y)^2 / 2, the tutorials' squared loss
    l1 = "l1"
    huber = "huber"


@dataclass
class TrainerConfig:
    epochs: int = field(default=MISSING, metadata=at_least(1))
    # null: the whole training split in one batch (batch gradient descent); 1: stochastic.
    batch_size: int | None = field(
        default=MISSING, metadata=at_least(1, null="the whole split in one batch")
    )
    eval_batch_size: int = field(default=MISSING, metadata=at_least(1))
    shuffle: bool = MISSING
    drop_last: bool = MISSING
    data_path: DataPath = MISSING
    # DataLoader path only: worker processes and pinned host memory for faster copies.
    num_workers: int = field(default=MISSING, metadata=at_least(0))
    pin_memory: bool = MISSING
    # auto | cpu | cuda | cuda:N | mps
    device: str = MISSING
    # Train or test on the first N samples of a fixed shuffle; null means all.
    max_train_samples: int | None = field(default=MISSING, metadata=at_least(1, null="all"))
    max_test_samples: int | None = field(default=MISSING, metadata=at_least(1, null="all"))
    loss: Loss = MISSING
    # Which epoch is kept as checkpoints/best.pt: the best value of this metrics.csv column;
    # auto: test_acc (classification), test_loss (regression), test_ppl (language model).
    monitor: str = MISSING
    # null: max for accuracies, min for the rest.
    monitor_mode: MonitorMode | None = MISSING
    # Record the training loss every N steps in steps.csv; 0: off.
    log_every_n_steps: int = field(default=MISSING, metadata=at_least(0))
    # A run folder or checkpoint to continue from; the run continues in that folder.
    resume: str | None = MISSING
    # Checkpoints inside an epoch: every N optimizer steps (`500`) or every so long (`60s`,
    # `10m`, `1h`); `0`: only after each epoch. See checkpoint_every().
    checkpoint_every: str = MISSING
    progress: bool = MISSING
    # CPU threads for torch; null keeps torch's choice.
    num_threads: int | None = field(default=MISSING, metadata=at_least(1, null="torch's choice"))
    # 32 | bf16 | 16: autocast to bfloat16 or float16 (16 adds a gradient scaler).
    precision: str = MISSING
    # Image batches and convolution weights in channels-last memory layout (faster on GPUs).
    channels_last: bool = MISSING
    # torch.compile the model; the first step's time, compilation included, is reported.
    compile: bool = MISSING


@dataclass(frozen=True)
class CheckpointEvery:
    """How often a checkpoint is taken inside an epoch: by steps, by time, or never."""

    steps: int | None = None
    seconds: float | None = None


SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600}


def checkpoint_every(value: object) -> CheckpointEvery:
    """`trainer.checkpoint_every` read: `500` (steps), `60s`, `10m`, `1.5h`, or `0` (off)."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        steps = int(text)
        return CheckpointEvery(steps=steps or None)
    timed = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh])", text)
    if timed and float(timed[1]) > 0:
        return CheckpointEvery(seconds=float(timed[1]) * SECONDS_PER_UNIT[timed[2]])
    raise DlrunError(
        f"trainer.checkpoint_every={value} is neither a number of steps nor a time: use N "
        f"(every N optimizer steps, e.g. 500), a time such as 60s, 10m or 1h, or 0 for "
        f"checkpoints only after each epoch."
    )
