"""Multilayer perceptron: flatten, then Linear (+BatchNorm) + activation (+Dropout) per layer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from omegaconf import MISSING
from torch import nn

from dlrun.data import CLASSIFICATION, REGRESSION, DatasetMeta
from dlrun.errors import DlrunError
from dlrun.models.layers import Activation, activation, require_task
from dlrun.registry import MODELS


@dataclass
class MLPConfig:
    name: str = MISSING
    hidden: list[int] = field(default_factory=lambda: MISSING)
    activation: Activation = MISSING
    # One dropout probability for every hidden layer, or one per hidden layer.
    dropout: list[float] = field(default_factory=lambda: MISSING)
    batch_norm: bool = MISSING


@MODELS.register("mlp", schema=MLPConfig)
def mlp(cfg: MLPConfig, meta: DatasetMeta) -> nn.Sequential:
    require_task("mlp", meta.task, CLASSIFICATION, REGRESSION)
    hidden = list(cfg.hidden)
    dropout = list(cfg.dropout)
    if len(dropout) == 1:
        dropout = dropout * len(hidden)
    if len(dropout) != len(hidden):
        raise DlrunError(
            f"model.dropout has {len(dropout)} values for {len(hidden)} hidden layers: give "
            f"one value for all, or one per hidden layer."
        )
    for p in dropout:
        if not 0 <= p < 1:
            raise DlrunError(f"model.dropout={p} is out of range: use 0 <= p < 1.")
    for size in hidden:
        if size < 1:
            raise DlrunError(f"model.hidden has a layer of size {size}: sizes must be >= 1.")

    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(meta.input_shape)
    for size, p in zip(hidden, dropout, strict=True):
        layers.append(nn.Linear(width, size))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(activation(cfg.activation))
        if p > 0:
            layers.append(nn.Dropout(p))
        width = size
    layers.append(nn.Linear(width, meta.outputs))
    return nn.Sequential(*layers)
