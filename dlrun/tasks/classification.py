"""Classification: cross entropy, accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlrun.config.metric_directions import METRICS
from dlrun.config.options.trainer import Loss
from dlrun.data.dataset import CLASSIFICATION
from dlrun.errors import DlrunError
from dlrun.tasks.base import Task, frequency_entropy, register_task


@register_task
class Classification(Task):
    name = CLASSIFICATION
    metrics = METRICS[CLASSIFICATION]
    monitor = "test_acc"
    losses = (Loss.cross_entropy,)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def check_shapes(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if output.ndim != 2 or output.shape[0] != target.shape[0] or output.shape[1] < 2:
            raise DlrunError(
                f"The model gives outputs of shape {tuple(output.shape)} for targets of "
                f"shape {tuple(target.shape)}: classification needs (N, classes)."
            )

    def baseline_loss(self, targets: torch.Tensor) -> float:
        """Predicting each class with its frequency: the entropy of the class shares."""
        return frequency_entropy(targets)

    def batch_sums(self, output, target, loss) -> dict[str, torch.Tensor]:
        return {"loss": loss.detach() * len(target), "acc": (output.argmax(1) == target).sum()}
