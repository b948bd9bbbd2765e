"""Multilayer perceptron: flatten, then Linear (+BatchNorm) + activation (+Dropout) per layer."""

from __future__ import annotations

import math

from torch import nn

from dlrun.config.options.models import MLPConfig
from dlrun.config.registry import MODELS
from dlrun.data.dataset import CLASSIFICATION, REGRESSION, DatasetMeta
from dlrun.errors import DlrunError
from dlrun.models.layers import activation, require_task


@MODELS.register("mlp")
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
