"""Linear models: softmax regression, linear regression and polynomial regression.

softmax_regression  classification: flatten, one Linear to the class logits
linear_regression   regression: flatten, one Linear to the outputs
poly_regression     regression on one raw scalar x: features x^i / i! for i = 0..degree,
                    then one Linear without bias (x^0 / 0! = 1 is the bias term)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlrun.config.options.models import (
    LinearRegressionConfig,
    PolyRegressionConfig,
    SoftmaxRegressionConfig,
)
from dlrun.config.registry import MODELS
from dlrun.data.dataset import CLASSIFICATION, REGRESSION, DatasetMeta
from dlrun.errors import DlrunError
from dlrun.models.layers import require_task


@MODELS.register("softmax_regression")
def softmax_regression(cfg: SoftmaxRegressionConfig, meta: DatasetMeta) -> nn.Sequential:
    """Logits = flatten(x) W + b; the softmax lives in the cross-entropy loss."""
    require_task("softmax_regression", meta.task, CLASSIFICATION)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(meta.input_shape), meta.num_classes))


@MODELS.register("linear_regression")
def linear_regression(cfg: LinearRegressionConfig, meta: DatasetMeta) -> nn.Sequential:
    """y_hat = flatten(x) w + b, one output per regression target."""
    require_task("linear_regression", meta.task, REGRESSION)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(meta.input_shape), meta.num_outputs, bias=cfg.bias),
    )


class PolyRegression(nn.Module):
    """y_hat = sum_i w_i x^i / i!, i = 0..degree: a linear model over polynomial features.

    Dividing by i! keeps the high powers from dwarfing the low ones (the tutorial's choice),
    so one learning rate suits every weight.
    """

    def __init__(self, degree: int, num_outputs: int) -> None:
        super().__init__()
        self.degree = degree
        self.linear = nn.Linear(degree + 1, num_outputs, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1) raw scalars -> (N, degree + 1) features [x^0/0!, x^1/1!, ..., x^d/d!]."""
        return torch.cat([x**i / math.factorial(i) for i in range(self.degree + 1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))

    def extra_repr(self) -> str:
        return f"degree={self.degree}"


@MODELS.register("poly_regression")
def poly_regression(cfg: PolyRegressionConfig, meta: DatasetMeta) -> PolyRegression:
    require_task("poly_regression", meta.task, REGRESSION)
    if tuple(meta.input_shape) != (1,):
        raise DlrunError(
            f"model=poly_regression needs one raw scalar input per sample (input_shape (1,)), "
            f"but this data set gives {tuple(meta.input_shape)}: use model=linear_regression "
            f"for several features."
        )
    return PolyRegression(cfg.degree, meta.num_outputs)
