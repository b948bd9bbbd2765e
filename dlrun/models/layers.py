"""Choices shared by several models, as enums so that a typo fails while composing."""

from __future__ import annotations

from enum import Enum

from torch import nn


class Activation(str, Enum):
    sigmoid = "sigmoid"
    relu = "relu"
    tanh = "tanh"
    gelu = "gelu"
    identity = "identity"


class Pool(str, Enum):
    avg = "avg"
    max = "max"


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
