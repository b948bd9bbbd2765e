"""Language modelling: next-token cross entropy and perplexity = exp(mean cross entropy)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlrun.config.metric_directions import METRICS
from dlrun.config.options.trainer import Loss
from dlrun.data.dataset import LANGUAGE_MODEL
from dlrun.errors import DlrunError
from dlrun.models.contracts import RecurrentModel
from dlrun.tasks.base import Task, frequency_entropy, register_task

# exp() of a larger mean cross entropy overflows a float.
MAX_LOG_PPL = 700.0


@register_task
class LanguageModel(Task):
    name = LANGUAGE_MODEL
    metrics = METRICS[LANGUAGE_MODEL]
    monitor = "test_ppl"
    losses = (Loss.cross_entropy,)

    def forward(self, model: RecurrentModel, x: torch.Tensor, state):
        """A recurrent model: the hidden state goes in and comes out (models/contracts.py)."""
        return model(x, state)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))

    def count(self, target: torch.Tensor) -> int:
        return target.numel()

    def check_shapes(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if output.ndim != 3 or output.shape[:2] != target.shape:
            raise DlrunError(
                f"The model gives outputs of shape {tuple(output.shape)} for targets of "
                f"shape {tuple(target.shape)}: a language model needs (N, steps, vocabulary)."
            )

    def batch_sums(self, output, target, loss) -> dict[str, torch.Tensor]:
        return {"loss": loss.detach() * target.numel()}

    def finalize(self, sums: dict[str, float], count: int) -> dict[str, float]:
        loss = sums["loss"] / count
        return {"loss": loss, "ppl": math.exp(min(loss, MAX_LOG_PPL))}

    def baseline_loss(self, targets: torch.Tensor) -> float:
        """Predicting each character with its frequency: the unigram entropy."""
        return frequency_entropy(targets)
