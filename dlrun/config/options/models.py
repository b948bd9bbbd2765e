"""Schemas of the models options."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING

from dlrun.config.ranges import at_least, between

# 30! is about 2.7e32; beyond 34! the feature scale of poly_regression no longer fits in
# float32.
MAX_DEGREE = 30


class Cell(str, Enum):
    rnn = "rnn"
    gru = "gru"
    lstm = "lstm"
    lstm_scratch = "lstm_scratch"


@dataclass
class CharRNNConfig:
    name: str = MISSING
    cell: Cell = MISSING
    hidden_size: int = field(default=MISSING, metadata=at_least(1))
    num_layers: int = field(default=MISSING, metadata=at_least(1))
    # null: one-hot inputs of size V (as the tutorial); an int: nn.Embedding of that size.
    embedding: int | None = field(default=MISSING, metadata=at_least(1, null="one-hot inputs"))


@dataclass
class DeepMLPConfig:
    name: str = MISSING
    depth: int = field(default=MISSING, metadata=at_least(1))
    width: int = field(default=MISSING, metadata=at_least(1))
    activation: Activation = MISSING
    # BatchNorm after each hidden Linear, before the activation.
    batch_norm: bool = MISSING


@dataclass
class LeNetConfig:
    name: str = MISSING
    activation: Activation = MISSING
    pool: Pool = MISSING
    # BatchNorm after each convolution and hidden linear layer, before the activation.
    batch_norm: bool = MISSING


@dataclass
class SoftmaxRegressionConfig:
    name: str = MISSING


@dataclass
class LinearRegressionConfig:
    name: str = MISSING
    bias: bool = MISSING


@dataclass
class PolyRegressionConfig:
    name: str = MISSING
    degree: int = field(default=MISSING, metadata=between(0, MAX_DEGREE))


@dataclass
class MLPConfig:
    name: str = MISSING
    hidden: list[int] = field(default_factory=lambda: MISSING, metadata=at_least(1))
    activation: Activation = MISSING
    # One dropout probability for every hidden layer, or one per hidden layer.
    dropout: list[float] = field(
        default_factory=lambda: MISSING, metadata=between(0, 1, high_open=True)
    )
    batch_norm: bool = MISSING


class Activation(str, Enum):
    sigmoid = "sigmoid"
    relu = "relu"
    tanh = "tanh"
    gelu = "gelu"
    identity = "identity"


class Pool(str, Enum):
    avg = "avg"
    max = "max"
