"""Schemas of the init options."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING

from dlrun.config.ranges import above, at_least


class Bias(str, Enum):
    zeros = "zeros"  # set to 0
    keep = "keep"  # leave as the layer built them
    same = "same"  # the weights' method (uniform, normal, zeros, ones, constant)


class Nonlinearity(str, Enum):
    relu = "relu"
    leaky_relu = "leaky_relu"
    linear = "linear"
    sigmoid = "sigmoid"
    tanh = "tanh"


class FanMode(str, Enum):
    fan_in = "fan_in"
    fan_out = "fan_out"


@dataclass
class DefaultInitConfig:
    name: str = MISSING
    # keep (PyTorch's uniform +-1/sqrt(fan_in)) or zeros; a default here so that configs
    # written before the knob existed keep their meaning.
    bias: Bias = Bias.keep


@dataclass
class ZerosConfig:
    name: str = MISSING
    bias: Bias = Bias.zeros  # see DefaultInitConfig


@dataclass
class OnesConfig:
    name: str = MISSING
    bias: Bias = Bias.zeros


@dataclass
class ConstantConfig:
    name: str = MISSING
    value: float = MISSING
    bias: Bias = Bias.zeros


@dataclass
class UniformConfig:
    name: str = MISSING
    # U(a, b); null a means -1/sqrt(fan_in) and null b +1/sqrt(fan_in), per layer.
    a: float | None = MISSING
    b: float | None = MISSING
    bias: Bias = Bias.zeros


@dataclass
class NormalConfig:
    name: str = MISSING
    mean: float = MISSING
    std: float = field(default=MISSING, metadata=at_least(0))
    bias: Bias = Bias.zeros


@dataclass
class XavierUniformConfig:
    name: str = MISSING
    gain: float = field(default=MISSING, metadata=above(0))
    bias: Bias = Bias.zeros


@dataclass
class XavierNormalConfig:
    name: str = MISSING
    gain: float = field(default=MISSING, metadata=above(0))
    bias: Bias = Bias.zeros


@dataclass
class KaimingConfig:
    name: str = MISSING
    nonlinearity: Nonlinearity = MISSING
    mode: FanMode = MISSING
    # Negative slope of the leaky ReLU after the layer; used with leaky_relu only.
    a: float = field(default=MISSING, metadata=at_least(0))
    bias: Bias = Bias.zeros
