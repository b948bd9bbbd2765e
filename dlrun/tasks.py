"""What is learnt from a data set: its loss, the metrics reported, how a batch runs.

The data set's metadata picks the task; `trainer.loss` may pick another loss that suits it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlrun.config import Loss
from dlrun.data import CLASSIFICATION, LANGUAGE_MODEL, REGRESSION, DatasetMeta
from dlrun.errors import DlrunError

REGRESSION_LOSSES = {
    Loss.mse: F.mse_loss,
    Loss.half_mse: lambda output, target: 0.5 * F.mse_loss(output, target),
    Loss.l1: F.l1_loss,
    Loss.huber: F.huber_loss,
}


class Task:
    """Classification: cross entropy, accuracy."""

    name = CLASSIFICATION
    metrics: tuple[str, ...] = ("loss", "acc")
    monitor = ("test_acc", "max")

    def forward(self, model: nn.Module, x: torch.Tensor, state):
        return model(x), None

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def count(self, target: torch.Tensor) -> int:
        return len(target)

    def check_shapes(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Fail before training when the model's output cannot be scored against targets."""
        if output.ndim != 2 or output.shape[0] != target.shape[0] or output.shape[1] < 2:
            raise DlrunError(
                f"The model gives outputs of shape {tuple(output.shape)} for targets of "
                f"shape {tuple(target.shape)}: classification needs (N, classes)."
            )

    def batch_sums(self, output, target, loss) -> dict[str, torch.Tensor]:
        """Sums over the batch, kept on the device: read once per epoch, not per step."""
        return {"loss": loss.detach() * len(target), "acc": (output.argmax(1) == target).sum()}

    def finalize(self, sums: dict[str, float], count: int) -> dict[str, float]:
        return {name: sums[name] / count for name in self.metrics}

    def baseline_loss(self, targets: torch.Tensor) -> float | None:
        """The loss of a model that learns nothing from the inputs (for the fit verdict)."""
        return None


class Regression(Task):
    name = REGRESSION
    metrics = ("loss",)
    monitor = ("test_loss", "min")

    def __init__(self, loss: Loss) -> None:
        self.loss_fn = REGRESSION_LOSSES[loss]

    def loss(self, output, target):
        return self.loss_fn(output, target)

    def batch_sums(self, output, target, loss):
        return {"loss": loss.detach() * len(target)}

    def baseline_loss(self, targets):
        """Predicting the training mean for every sample."""
        targets = targets.float()
        return self.loss(targets.mean(dim=0).expand_as(targets), targets).item()

    def check_shapes(self, output, target):
        if output.shape != target.shape:
            raise DlrunError(
                f"The model gives outputs of shape {tuple(output.shape)} for targets of "
                f"shape {tuple(target.shape)}: regression needs the two to match."
            )


class LanguageModel(Task):
    """Next-token cross entropy and perplexity = exp(mean cross entropy)."""

    name = LANGUAGE_MODEL
    metrics = ("loss", "ppl")
    monitor = ("test_ppl", "min")

    def forward(self, model, x, state):
        return model(x, state)

    def loss(self, output, target):
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))

    def count(self, target):
        return target.numel()

    def check_shapes(self, output, target):
        if output.ndim != 3 or output.shape[:2] != target.shape:
            raise DlrunError(
                f"The model gives outputs of shape {tuple(output.shape)} for targets of "
                f"shape {tuple(target.shape)}: a language model needs (N, steps, vocabulary)."
            )

    def batch_sums(self, output, target, loss):
        return {"loss": loss.detach() * target.numel()}

    def baseline_loss(self, targets):
        """Predicting each character with its frequency: the unigram entropy."""
        counts = torch.bincount(targets.flatten()).float()
        p = counts[counts > 0] / counts.sum()
        return -(p * p.log()).sum().item()

    def finalize(self, sums, count):
        loss = sums["loss"] / count
        return {"loss": loss, "ppl": math.exp(min(loss, 700.0))}


def task_for(meta: DatasetMeta, loss: Loss) -> Task:
    allowed = {
        CLASSIFICATION: (Loss.auto, Loss.cross_entropy),
        REGRESSION: (Loss.auto, *REGRESSION_LOSSES),
        LANGUAGE_MODEL: (Loss.auto, Loss.cross_entropy),
    }[meta.task]
    if loss not in allowed:
        names = ", ".join(option.value for option in allowed)
        raise DlrunError(
            f"trainer.loss={loss.value} does not suit a {meta.task} data set: use {names}."
        )
    if meta.task == CLASSIFICATION:
        return Task()
    if meta.task == REGRESSION:
        return Regression(Loss.mse if loss is Loss.auto else loss)
    return LanguageModel()


def metric_columns(task: Task) -> tuple[str, ...]:
    """The columns of metrics.csv besides `epoch`, in order."""
    splits = tuple(f"{split}_{name}" for split in ("train", "test") for name in task.metrics)
    return (*splits, "lr")
