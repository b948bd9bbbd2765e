"""Generated regression data: the linear, cubic and polynomial toy problems of the tutorials.

Every set is drawn from a local torch.Generator seeded by `dataset.seed` (never the global
random state), so the same config always gives the same tensors. The training split is
drawn first, so changing the test size leaves the training data as it was.

Inputs are float32 (N, features); targets are float32 (N, 1).
"""

from __future__ import annotations

import math

import torch

from dlrun.config.options.data import CubicConfig, PolynomialConfig, SyntheticLinRegConfig
from dlrun.config.registry import DATASETS
from dlrun.data.dataset import REGRESSION, Dataset, DatasetMeta, Split
from dlrun.errors import DlrunError


def _regression(train: Split, test: Split, input_shape: tuple[int, ...], **names) -> Dataset:
    meta = DatasetMeta(task=REGRESSION, input_shape=input_shape, num_outputs=1, **names)
    return Dataset(train=train, test=test, meta=meta)


# --- synthetic_linreg: y = x w + b + noise, many features, few samples (weight decay) -------


@DATASETS.register("synthetic_linreg")
def synthetic_linreg(cfg: SyntheticLinRegConfig) -> Dataset:
    """x ~ N(0, 1) in d dimensions; y = x @ w + b + N(0, noise^2), every weight = true_w."""
    generator = torch.Generator().manual_seed(cfg.seed)
    w = torch.full((cfg.d, 1), float(cfg.true_w))

    def draw(n: int) -> Split:
        x = torch.randn(n, cfg.d, generator=generator)
        y = x @ w + cfg.true_b + cfg.noise * torch.randn(n, 1, generator=generator)
        return Split(x, y)

    train = draw(cfg.n_train)
    test = draw(cfg.n_test)
    return _regression(train, test, (cfg.d,))


# --- cubic: y = x^3 + noise on an even grid (optimizer comparison) --------------------------


@DATASETS.register("cubic")
def cubic(cfg: CubicConfig) -> Dataset:
    """Train: n_train points evenly spaced in [-1, 1] (1500 in the tutorial, all trained on).

    Test: n_test points evenly spaced in [-1, 1] with noise drawn afresh, so the test loss
    measures the fit to x^3 rather than to the training noise.
    """
    generator = torch.Generator().manual_seed(cfg.seed)

    def draw(n: int) -> Split:
        x = torch.linspace(-1.0, 1.0, n).unsqueeze(1)
        y = x**3 + cfg.noise * torch.randn(n, 1, generator=generator)
        return Split(x, y)

    train = draw(cfg.n_train)
    test = draw(cfg.n_test)
    return _regression(train, test, (1,), feature_names=("x",))


# --- polynomial: y = sum_i w_i x^i / i! + noise (under- and over-fitting) -----------------


@DATASETS.register("polynomial")
def polynomial(cfg: PolynomialConfig) -> Dataset:
    """x ~ N(0, 1); y = sum_i true_w[i] * x^i / i! + N(0, noise^2).

    The inputs are the raw x, shape (N, 1): the model builds its own features x^i / i!, so
    one data set serves the right degree, a linear fit and a too-high degree alike.
    """
    if len(cfg.true_w) == 0:
        raise DlrunError(
            "dataset.true_w=[] is empty: give at least one coefficient, e.g. [5, 1.2, -3.4, 5.6]."
        )
    generator = torch.Generator().manual_seed(cfg.seed)
    weights = [float(w) for w in cfg.true_w]

    def draw(n: int) -> Split:
        x = torch.randn(n, 1, generator=generator)
        y = polynomial_value(x, weights) + cfg.noise * torch.randn(n, 1, generator=generator)
        return Split(x, y)

    train = draw(cfg.n_train)
    test = draw(cfg.n_test)
    return _regression(train, test, (1,), feature_names=("x",))


def polynomial_value(x: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """sum_i weights[i] * x^i / i!, elementwise (computed in float64, returned as x's dtype)."""
    x64 = x.double()
    total = torch.zeros_like(x64)
    for i, w in enumerate(weights):
        total += w * x64**i / math.factorial(i)
    return total.to(x.dtype)
