"""Regression: a squared (or absolute, or Huber) error between outputs and targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlrun.config.metric_directions import METRICS
from dlrun.config.options.trainer import Loss
from dlrun.data.dataset import REGRESSION
from dlrun.errors import DlrunError
from dlrun.tasks.base import Task, register_task

LOSSES = {
    Loss.mse: F.mse_loss,
    Loss.half_mse: lambda output, target: 0.5 * F.mse_loss(output, target),  # the tutorials'
    Loss.l1: F.l1_loss,
    Loss.huber: F.huber_loss,
}


@register_task
class Regression(Task):
    name = REGRESSION
    metrics = METRICS[REGRESSION]
    monitor = "test_loss"
    losses = tuple(LOSSES)

    def __init__(self, loss: Loss = Loss.auto) -> None:
        super().__init__(loss)
        self.loss_fn = LOSSES[self.loss_name]

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(output, target)

    def check_shapes(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if output.shape != target.shape:
            raise DlrunError(
                f"The model gives outputs of shape {tuple(output.shape)} for targets of "
                f"shape {tuple(target.shape)}: regression needs the two to match."
            )

    def batch_sums(self, output, target, loss) -> dict[str, torch.Tensor]:
        return {"loss": loss.detach() * len(target)}

    def baseline_loss(self, targets: torch.Tensor) -> float:
        """Predicting the training mean for every sample."""
        targets = targets.float()
        return self.loss(targets.mean(dim=0).expand_as(targets), targets).item()
