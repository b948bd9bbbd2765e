"""Schemas of the optimizers options."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from dlrun.config.ranges import above, at_least, between


@dataclass
class SGDConfig:
    name: str = MISSING
    lr: float = field(default=MISSING, metadata=above(0))
    momentum: float = field(default=MISSING, metadata=between(0, 1, high_open=True))
    dampening: float = field(default=MISSING, metadata=between(0, 1))
    weight_decay: float = field(default=MISSING, metadata=at_least(0))
    nesterov: bool = MISSING


@dataclass
class AdagradConfig:
    name: str = MISSING
    lr: float = field(default=MISSING, metadata=above(0))
    lr_decay: float = field(default=MISSING, metadata=at_least(0))
    weight_decay: float = field(default=MISSING, metadata=at_least(0))
    initial_accumulator_value: float = field(default=MISSING, metadata=at_least(0))
    eps: float = field(default=MISSING, metadata=above(0))


@dataclass
class RMSpropConfig:
    name: str = MISSING
    lr: float = field(default=MISSING, metadata=above(0))
    alpha: float = field(default=MISSING, metadata=between(0, 1, high_open=True))
    eps: float = field(default=MISSING, metadata=above(0))
    weight_decay: float = field(default=MISSING, metadata=at_least(0))
    momentum: float = field(default=MISSING, metadata=between(0, 1, high_open=True))
    centered: bool = MISSING


@dataclass
class AdamConfig:
    name: str = MISSING
    lr: float = field(default=MISSING, metadata=above(0))
    betas: list[float] = field(
        default_factory=lambda: MISSING, metadata=between(0, 1, high_open=True)
    )
    eps: float = field(default=MISSING, metadata=above(0))
    weight_decay: float = field(default=MISSING, metadata=at_least(0))
    amsgrad: bool = MISSING
