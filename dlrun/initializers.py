"""Parameter initialisation applied after a model is built (`init=` group).

`default` keeps what PyTorch's layers do on construction; the others set the weights of
Linear and Conv layers and zero their biases, as in the tutorials.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING
from torch import nn

from dlrun.registry import INITS

WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class DefaultInitConfig:
    name: str = MISSING


@INITS.register("default", schema=DefaultInitConfig)
def default(cfg: DefaultInitConfig, model: nn.Module) -> None:
    """PyTorch's own initialisation (Kaiming-uniform with a=sqrt(5)), left as built."""


@dataclass
class XavierUniformConfig:
    name: str = MISSING
    gain: float = MISSING


@INITS.register("xavier_uniform", schema=XavierUniformConfig)
def xavier_uniform(cfg: XavierUniformConfig, model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, WEIGHTED_LAYERS):
            nn.init.xavier_uniform_(module.weight, gain=cfg.gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
