"""Choices shared by several models, as enums so that a typo fails while composing."""

from __future__ import annotations

from torch import nn

from dlrun.config.options.models import Activation, Pool
from dlrun.errors import DlrunError

_ACTIVATIONS = {
    Activation.sigmoid: nn.Sigmoid,
    Activation.relu: nn.ReLU,
    Activation.tanh: nn.Tanh,
    Activation.gelu: nn.GELU,
    Activation.identity: nn.Identity,
}


def activation(kind: Activation) -> nn.Module:
    return _ACTIVATIONS[Activation(kind)]()


def pool(kind: Pool, size: int = 2) -> nn.Module:
    if Pool(kind) is Pool.avg:
        return nn.AvgPool2d(size, size)
    return nn.MaxPool2d(size, size)


# Which models fit each task, for the error a model gives on a data set it cannot serve.
MODELS_FOR_TASK = {
    "classification": "model=softmax_regression, model=mlp, model=deep_mlp or model=lenet",
    "regression": "model=linear_regression, model=poly_regression, model=mlp or model=deep_mlp",
    "language_model": "model=char_rnn",
}


def require_task(model: str, task: str, *tasks: str) -> None:
    """Raise a DlrunError when a data set's `task` is not one that `model` can learn."""
    if task not in tasks:
        needs = " or ".join(tasks)
        instead = MODELS_FOR_TASK.get(task, "another model")
        raise DlrunError(
            f"model={model} needs a {needs} data set, but this data set's task is {task}: "
            f"use {instead} instead."
        )
