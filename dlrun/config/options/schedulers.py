"""Schemas of the schedulers options."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from dlrun.config.options.trainer import MonitorMode
from dlrun.config.ranges import above, between


@dataclass
class NoneConfig:
    name: str = MISSING


@dataclass
class StepConfig:
    name: str = MISSING
    step_size: int = field(default=MISSING, metadata=above(0))
    gamma: float = field(default=MISSING, metadata=above(0))


@dataclass
class MultiStepConfig:
    name: str = MISSING
    milestones: list[int] = field(default_factory=lambda: MISSING)
    gamma: float = field(default=MISSING, metadata=above(0))


@dataclass
class ExponentialConfig:
    name: str = MISSING
    gamma: float = field(default=MISSING, metadata=above(0))


@dataclass
class CosineConfig:
    name: str = MISSING
    t_max: int | None = field(
        default=MISSING, metadata=above(0)
    )  # epochs of one half-cosine; null: trainer.epochs
    eta_min: float = MISSING


@dataclass
class PlateauConfig:
    name: str = MISSING
    monitor: str = MISSING
    mode: MonitorMode = MISSING
    factor: float = field(default=MISSING, metadata=between(0, 1, low_open=True, high_open=True))
    patience: int = MISSING
    threshold: float = MISSING
    min_lr: float = MISSING
