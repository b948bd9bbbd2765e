"""Schemas of the regularizers options."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from dlrun.config.options.trainer import MonitorMode
from dlrun.config.ranges import above, at_least, between


@dataclass
class L2Config:
    name: str = MISSING
    # lambda in lambda/2 * ||w||^2, applied as the weight decay of the weight group.
    strength: float = field(default=MISSING, metadata=at_least(0))


@dataclass
class L1Config:
    name: str = MISSING
    # lambda in lambda * sum(|w|) over weights (not biases), added to the training loss.
    strength: float = field(default=MISSING, metadata=at_least(0))


@dataclass
class DropoutConfig:
    name: str = MISSING
    # Dropout probability of each hidden layer (one value for all, or one per layer).
    rates: list[float] = field(
        default_factory=lambda: MISSING, metadata=between(0, 1, high_open=True)
    )


@dataclass
class GradClipConfig:
    name: str = MISSING
    # Rescale all gradients together when their global L2 norm exceeds theta.
    theta: float = field(default=MISSING, metadata=above(0))


@dataclass
class EarlyStoppingConfig:
    name: str = MISSING
    monitor: str = MISSING  # a metrics.csv column
    mode: MonitorMode = MISSING
    patience: int = field(
        default=MISSING, metadata=at_least(1)
    )  # epochs without improvement before stopping
    min_delta: float = field(
        default=MISSING, metadata=at_least(0)
    )  # smaller changes do not count as improvement
    restore_best: bool = MISSING  # put back the weights of the best epoch when stopping
