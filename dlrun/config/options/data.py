"""Schemas of the data options."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING

from dlrun.config.ranges import at_least, between


@dataclass
class DigitsConfig:
    name: str = MISSING
    image_size: int = field(default=MISSING, metadata=at_least(8))
    test_size: float = field(default=MISSING, metadata=between(0, 1, low_open=True, high_open=True))
    random_state: int = MISSING


@dataclass
class SyntheticLinRegConfig:
    name: str = MISSING
    d: int = field(default=MISSING, metadata=at_least(1))
    n_train: int = field(default=MISSING, metadata=at_least(1))
    n_test: int = field(default=MISSING, metadata=at_least(1))
    true_w: float = MISSING
    true_b: float = MISSING
    noise: float = field(default=MISSING, metadata=at_least(0))
    seed: int = MISSING


@dataclass
class CubicConfig:
    name: str = MISSING
    n_train: int = field(default=MISSING, metadata=at_least(2))
    n_test: int = field(default=MISSING, metadata=at_least(2))
    noise: float = field(default=MISSING, metadata=at_least(0))
    seed: int = MISSING


@dataclass
class PolynomialConfig:
    name: str = MISSING
    true_w: list[float] = MISSING
    n_train: int = field(default=MISSING, metadata=at_least(1))
    n_test: int = field(default=MISSING, metadata=at_least(1))
    noise: float = field(default=MISSING, metadata=at_least(0))
    seed: int = MISSING


class TabularTask(str, Enum):
    classification = "classification"
    regression = "regression"


@dataclass
class CsvConfig:
    name: str = MISSING
    path: str = MISSING
    target: str | None = MISSING
    features: list[str] | None = MISSING
    task: TabularTask = MISSING
    test_size: float = field(default=MISSING, metadata=between(0, 1, low_open=True, high_open=True))
    random_state: int = MISSING
    standardize: bool = MISSING


@dataclass
class WineConfig:
    name: str = MISSING
    test_size: float = field(default=MISSING, metadata=between(0, 1, low_open=True, high_open=True))
    random_state: int = MISSING
    standardize: bool = MISSING


@dataclass
class TextConfig:
    name: str = MISSING
    path: str | None = MISSING
    max_chars: int | None = field(default=MISSING, metadata=at_least(1, null="all"))
    lowercase: bool = MISSING
    num_steps: int = field(default=MISSING, metadata=at_least(1))
    sampling: Sampling = MISSING
    test_fraction: float = field(
        default=MISSING, metadata=between(0, 1, low_open=True, high_open=True)
    )
    prefixes: list[str] = field(default_factory=lambda: MISSING)
    generate_every: int = field(default=MISSING, metadata=at_least(0))
    generate_chars: int = field(default=MISSING, metadata=at_least(0))


@dataclass
class VisionDatasetConfig:
    name: str = MISSING
    root: str = MISSING
    download: bool = MISSING


class Sampling(str, Enum):
    consecutive = "consecutive"
    random = "random"
