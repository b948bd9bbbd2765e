"""A Sequential of known layers run over stacked parameters with batched kernels.

vmap handles any model, but for a tiny one its dispatch costs more than the arithmetic.
For the layers the tutorials' models are made of, the member dimension maps straight onto
a batched kernel: Linear onto `baddbmm`, Conv2d onto one convolution with a group per
member, pools and activations onto a reshape. Inputs and outputs are (M, N, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Layer = Callable[[torch.Tensor, dict[str, torch.Tensor], Iterator[torch.Tensor]], torch.Tensor]
ELEMENTWISE = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.Identity)
POOLS = (nn.AvgPool2d, nn.MaxPool2d)


def batched_forward(model: nn.Module) -> Callable[..., torch.Tensor] | None:
    """forward(params, x, masks) for a Sequential of known layers; None for other models.
    `masks`: the dropout masks in layer order while training, None when evaluating."""
    if not isinstance(model, nn.Sequential):
        return None
    layers = []
    for name, module in model.named_children():
        layer = _layer(name, module)
        if layer is None:
            return None
        layers.append(layer)

    def forward(params: dict[str, torch.Tensor], x: torch.Tensor, masks) -> torch.Tensor:
        drawn = None if masks is None else iter(masks)
        for layer in layers:
            x = layer(x, params, drawn)
        return x

    return forward


def _layer(name: str, module: nn.Module) -> Layer | None:
    if isinstance(module, nn.Linear):
        return _linear(name, module.bias is not None)
    if isinstance(module, nn.Conv2d) and _plain_conv(module):
        return _conv(name, module)
    if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
        return lambda x, params, masks: x.reshape(x.shape[0], x.shape[1], -1)
    if isinstance(module, ELEMENTWISE):
        return lambda x, params, masks: module(x)
    if isinstance(module, POOLS):
        return lambda x, params, masks: _per_sample(module, x)
    if isinstance(module, nn.Dropout):
        return lambda x, params, masks: x if masks is None else x * next(masks)
    return None


def _linear(name: str, bias: bool) -> Layer:
    def linear(x, params, masks):
        weight = params[f"{name}.weight"].transpose(1, 2)  # (M, in, out)
        if bias:
            return torch.baddbmm(params[f"{name}.bias"].unsqueeze(1), x, weight)
        return torch.bmm(x, weight)

    return linear


def _plain_conv(module: nn.Conv2d) -> bool:
    return module.groups == 1 and module.padding_mode == "zeros" and module.padding != "same"


def _conv(name: str, module: nn.Conv2d) -> Layer:
    options: dict[str, Any] = {
        "stride": module.stride,
        "padding": module.padding,
        "dilation": module.dilation,
    }
    has_bias = module.bias is not None

    def conv(x, params, masks):
        members, batch = x.shape[:2]
        weight = params[f"{name}.weight"]  # (M, out, in, k, k)
        merged = x.transpose(0, 1).reshape(batch, members * x.shape[2], *x.shape[3:])
        bias = params[f"{name}.bias"].reshape(-1) if has_bias else None
        out = F.conv2d(
            merged, weight.reshape(-1, *weight.shape[2:]), bias, groups=members, **options
        )
        return out.reshape(batch, members, -1, *out.shape[2:]).transpose(0, 1)

    return conv


def _per_sample(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    members, batch = x.shape[:2]
    out = module(x.reshape(members * batch, *x.shape[2:]))
    return out.reshape(members, batch, *out.shape[1:])
