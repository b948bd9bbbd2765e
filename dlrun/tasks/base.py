"""The task contract and the task registry.

A task says what is learnt from a data set: how a batch runs forward, its loss, the metrics
it reports and, for each metric, whether higher or lower is better. The data set's
metadata (`DatasetMeta.task`) picks the task; `trainer.loss` may pick another loss that
suits it. Every decision about "better" (the best epoch, early stopping, a search's
objective, the sweep and folder reports) asks `direction`, never the column's spelling.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from dlrun.config.metric_directions import SPLITS, add_task
from dlrun.config.options.trainer import Loss, MonitorMode
from dlrun.data.dataset import DatasetMeta
from dlrun.errors import DlrunError


class Task:
    """What every task shares: one input per forward, one count per sample, mean metrics."""

    name: ClassVar[str]
    # Each reported metric and which way is better; metrics.csv has train_<m> and test_<m>.
    metrics: ClassVar[dict[str, MonitorMode]]
    # The metrics.csv column whose best epoch is kept as best.pt under trainer.monitor=auto.
    monitor: ClassVar[str]
    # trainer.loss values that suit the task; `auto` is the first of the others.
    losses: ClassVar[tuple[Loss, ...]]

    def __init__(self, loss: Loss = Loss.auto) -> None:
        self.loss_name = self.losses[0] if loss is Loss.auto else loss

    def forward(self, model: nn.Module, x: torch.Tensor, state):
        """The output and the recurrent state to carry to the next batch (None: stateless)."""
        return model(x), None

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def count(self, target: torch.Tensor) -> int:
        return len(target)

    def check_shapes(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Fail before training when the model's output cannot be scored against targets."""
        raise NotImplementedError

    def batch_sums(self, output, target, loss) -> dict[str, torch.Tensor]:
        """Sums over the batch, kept on the device: read once per epoch, not per step."""
        raise NotImplementedError

    def finalize(self, sums: dict[str, float], count: int) -> dict[str, float]:
        return {name: sums[name] / count for name in self.metrics}

    def baseline_loss(self, targets: torch.Tensor) -> float | None:
        """The loss of a model that learns nothing from the inputs (for the fit verdict)."""
        return None


def frequency_entropy(targets: torch.Tensor) -> float:
    """The cross entropy of predicting each class (or character) with its frequency."""
    counts = torch.bincount(targets.flatten()).float()
    p = counts[counts > 0] / counts.sum()
    return -(p * p.log()).sum().item()


TASKS: dict[str, type[Task]] = {}


def register_task(task: type[Task]) -> type[Task]:
    """Class decorator: the task for data sets whose metadata names `task.name`; its metrics
    join the table of directions (config/metric_directions.py)."""
    add_task(task.name, task.metrics)
    TASKS[task.name] = task
    return task


def task_for(meta: DatasetMeta, loss: Loss) -> Task:
    task = TASKS.get(meta.task)
    if task is None:
        raise DlrunError(
            f"The data set's task {meta.task!r} has no task: known tasks are "
            f"{', '.join(sorted(TASKS))}."
        )
    if loss is not Loss.auto and loss not in task.losses:
        names = ", ".join(option.value for option in (Loss.auto, *task.losses))
        raise DlrunError(
            f"trainer.loss={loss.value} does not suit a {meta.task} data set: use {names}."
        )
    return task(loss)


def metric_columns(task: Task) -> tuple[str, ...]:
    """The columns of metrics.csv besides `epoch`, in order."""
    splits = tuple(f"{split}_{name}" for split in SPLITS for name in task.metrics)
    return (*splits, "lr")
