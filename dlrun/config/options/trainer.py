"""Schema of the trainer group, and the choices that other groups share."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING

from dlrun.config.ranges import at_least


class MonitorMode(str, Enum):
    min = "min"
    max = "max"


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
    progress: bool = MISSING
    # CPU threads for torch; null keeps torch's choice.
    num_threads: int | None = field(default=MISSING, metadata=at_least(1, null="torch's choice"))
    # 32 | bf16 | 16: autocast to bfloat16 or float16 (16 adds a gradient scaler).
    precision: str = MISSING
    # Image batches and convolution weights in channels-last memory layout (faster on GPUs).
    channels_last: bool = MISSING
    # torch.compile the model; the first step's time, compilation included, is reported.
    compile: bool = MISSING
