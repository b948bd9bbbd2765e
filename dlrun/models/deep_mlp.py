"""A deep stack of equal hidden layers, for the vanishing/exploding-gradient study.

depth hidden layers of `width` units: Linear (+BatchNorm) + activation each, then the output
layer. The Linear layers are named `hidden1` ... `hiddenN` and `output` (norms `norm1`...,
activations `act1`...), so per-layer diagnostics read `hidden1.weight`, ..., `output.weight`.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from dlrun.config.options.models import DeepMLPConfig
from dlrun.config.registry import MODELS
from dlrun.data.dataset import CLASSIFICATION, REGRESSION, DatasetMeta
from dlrun.models.layers import activation, require_task


@MODELS.register("deep_mlp")
def deep_mlp(cfg: DeepMLPConfig, meta: DatasetMeta) -> nn.Sequential:
    require_task("deep_mlp", meta.task, CLASSIFICATION, REGRESSION)
    outputs = meta.outputs

    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    size = math.prod(meta.input_shape)
    for i in range(1, cfg.depth + 1):
        layers[f"hidden{i}"] = nn.Linear(size, cfg.width)
        if cfg.batch_norm:
            layers[f"norm{i}"] = nn.BatchNorm1d(cfg.width)
        layers[f"act{i}"] = activation(cfg.activation)
        size = cfg.width
    layers["output"] = nn.Linear(size, outputs)
    return nn.Sequential(layers)
