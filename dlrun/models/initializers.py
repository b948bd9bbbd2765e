"""Parameter initialisation applied after a model is built (`init=` group).

`default` keeps what PyTorch's layers do on construction. The others set the weights of
Linear and Conv layers, the recurrent weights of nn.RNN/GRU/LSTM (and their cells), and
the tensors a hand-written module lists in an `init_weights` attribute. Their biases follow
the `bias` knob: zeros (the tutorials' choice), keep (as built) or same (the weights'
method). Normalisation layers are always left as built.

A hand-written module takes part by exposing its parameters:

    self.init_weights = [self.W_xi, self.W_hi, ...]   # get the method
    self.init_biases = [self.b_i, ...]                 # optional: follow the `bias` knob
    init_weights_transposed = True                     # optional: weights are (in, out)

(plain attributes or properties). Fans follow torch's (out, in, *kernel) layout; a module
whose matrices multiply from the right (X @ W, shape (in, out)) sets
`init_weights_transposed` so that fan_in is its number of inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from dlrun.config.options.init import (
    Bias,
    ConstantConfig,
    DefaultInitConfig,
    FanMode,
    KaimingConfig,
    Nonlinearity,
    NormalConfig,
    OnesConfig,
    UniformConfig,
    XavierNormalConfig,
    XavierUniformConfig,
    ZerosConfig,
)
from dlrun.config.registry import INITS
from dlrun.errors import DlrunError

WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
RECURRENT_LAYERS = (nn.RNNBase, nn.RNNCellBase)  # RNN, GRU, LSTM and their cells


# --- which tensors an init touches -----------------------------------------------------


@dataclass
class Target:
    """The tensors of one module that an init sets.

    `weights` get the method; `biases` follow the `bias` knob, each with the fan-in of the
    weight it belongs to (for `uniform`'s default bound 1/sqrt(fan_in)).
    """

    name: str
    weights: list[torch.Tensor]
    biases: list[tuple[nn.Parameter, int]]


def fan_in(tensor: torch.Tensor) -> int:
    """torch's convention: dim 1 times the receptive field ((out, in, *kernel) layout)."""
    if tensor.ndim < 2:
        return tensor.numel()
    return tensor.shape[1] * math.prod(tensor.shape[2:])


def targets(model: nn.Module) -> Iterator[Target]:
    """The modules an init sets, in module order; each parameter appears once."""
    seen: set[int] = set()

    def fresh(params: list[nn.Parameter]) -> list[nn.Parameter]:
        out = [p for p in params if p is not None and id(p) not in seen]
        seen.update(id(p) for p in out)
        return out

    for name, module in model.named_modules():
        listed = getattr(module, "init_weights", None)
        if isinstance(listed, list | tuple | nn.ParameterList):
            weights = fresh(list(listed))
            if getattr(module, "init_weights_transposed", False):
                # Views share storage: the init writes through them into (in, out) matrices.
                weights = [w.t() if w.ndim == 2 else w for w in weights]
            first_fan = fan_in(weights[0]) if weights else 1
            biases = fresh(list(getattr(module, "init_biases", None) or []))
            yield Target(name, weights, [(b, first_fan) for b in biases])
        elif isinstance(module, WEIGHTED_LAYERS):
            weights = fresh([module.weight])
            biases = fresh([module.bias]) if module.bias is not None else []
            yield Target(name, weights, [(b, fan_in(module.weight)) for b in biases])
        elif isinstance(module, RECURRENT_LAYERS):
            own = dict(module.named_parameters(recurse=False))
            weights = fresh([p for key, p in own.items() if key.startswith("weight")])
            biases = fresh([p for key, p in own.items() if key.startswith("bias")])
            by_id = {id(p): key for key, p in own.items()}
            yield Target(
                name,
                weights,
                # bias_ih_l0 belongs to weight_ih_l0
                [(b, fan_in(own["weight" + by_id[id(b)][len("bias") :]])) for b in biases],
            )


def _apply(
    model: nn.Module,
    weight_fn: Callable[[torch.Tensor, int], None],
    bias: Bias,
    bias_fn: Callable[[torch.Tensor, int], None] | None,
    method: str,
) -> None:
    """weight_fn(tensor, fan_in) on every weight; biases per `bias`."""
    bias = Bias(bias)
    if bias is Bias.same and bias_fn is None:
        raise DlrunError(
            f"init.bias=same is not available for init={method}: it needs a weight matrix's "
            f"fans; use init.bias=zeros or keep."
        )
    with torch.no_grad():
        for target in targets(model):
            for weight in target.weights:
                weight_fn(weight, fan_in(weight))
            if bias is Bias.keep:
                continue
            for tensor, fan in target.biases:
                if bias is Bias.zeros:
                    tensor.zero_()
                else:
                    bias_fn(tensor, fan)


# --- default ---------------------------------------------------------------------------


@INITS.register("default")
def default(cfg: DefaultInitConfig, model: nn.Module) -> None:
    """PyTorch's own initialisation (Kaiming-uniform with a=sqrt(5)), left as built."""
    if Bias(cfg.bias) is Bias.zeros:
        _apply(model, lambda w, fan: None, Bias.zeros, None, "default")


# --- constant-valued ---------------------------------------------------------------------


@INITS.register("zeros")
def zeros(cfg: ZerosConfig, model: nn.Module) -> None:
    def fill(tensor: torch.Tensor, fan: int) -> None:
        tensor.zero_()

    _apply(model, fill, cfg.bias, fill, "zeros")


@INITS.register("ones")
def ones(cfg: OnesConfig, model: nn.Module) -> None:
    def fill(tensor: torch.Tensor, fan: int) -> None:
        tensor.fill_(1.0)

    _apply(model, fill, cfg.bias, fill, "ones")


@INITS.register("constant")
def constant(cfg: ConstantConfig, model: nn.Module) -> None:
    if not math.isfinite(cfg.value):
        raise DlrunError(f"init.value={cfg.value} is invalid: give a finite number.")

    def fill(tensor: torch.Tensor, fan: int) -> None:
        tensor.fill_(cfg.value)

    _apply(model, fill, cfg.bias, fill, "constant")


# --- random ----------------------------------------------------------------------------


@INITS.register("uniform")
def uniform(cfg: UniformConfig, model: nn.Module) -> None:
    if cfg.a is not None and cfg.b is not None and not cfg.a < cfg.b:
        raise DlrunError(f"init.a={cfg.a} and init.b={cfg.b} are invalid: a must be < b.")

    def draw(tensor: torch.Tensor, fan: int) -> None:
        bound = 1 / math.sqrt(max(fan, 1))
        low = -bound if cfg.a is None else cfg.a
        high = bound if cfg.b is None else cfg.b
        if not low < high:
            raise DlrunError(
                f"init.a={low} and init.b={high} are invalid for a layer with fan_in {fan}: "
                f"a must be < b (a null bound is -+1/sqrt(fan_in))."
            )
        tensor.uniform_(low, high)

    _apply(model, draw, cfg.bias, draw, "uniform")


@INITS.register("normal")
def normal(cfg: NormalConfig, model: nn.Module) -> None:
    def draw(tensor: torch.Tensor, fan: int) -> None:
        tensor.normal_(cfg.mean, cfg.std)

    _apply(model, draw, cfg.bias, draw, "normal")


@INITS.register("xavier_uniform")
def xavier_uniform(cfg: XavierUniformConfig, model: nn.Module) -> None:
    _apply(
        model,
        lambda w, fan: nn.init.xavier_uniform_(w, gain=cfg.gain),
        cfg.bias,
        None,
        "xavier_uniform",
    )


@INITS.register("xavier_normal")
def xavier_normal(cfg: XavierNormalConfig, model: nn.Module) -> None:
    _apply(
        model,
        lambda w, fan: nn.init.xavier_normal_(w, gain=cfg.gain),
        cfg.bias,
        None,
        "xavier_normal",
    )


def _kaiming(cfg: KaimingConfig, model: nn.Module, init: Callable, method: str) -> None:
    nonlinearity = Nonlinearity(cfg.nonlinearity).value
    mode = FanMode(cfg.mode).value
    _apply(
        model,
        lambda w, fan: init(w, a=cfg.a, mode=mode, nonlinearity=nonlinearity),
        cfg.bias,
        None,
        method,
    )


@INITS.register("kaiming_uniform")
def kaiming_uniform(cfg: KaimingConfig, model: nn.Module) -> None:
    _kaiming(cfg, model, nn.init.kaiming_uniform_, "kaiming_uniform")


@INITS.register("kaiming_normal")
def kaiming_normal(cfg: KaimingConfig, model: nn.Module) -> None:
    _kaiming(cfg, model, nn.init.kaiming_normal_, "kaiming_normal")


# --- statistics ------------------------------------------------------------------------


def weight_stats(model: nn.Module) -> list[dict]:
    """One row per parameter of every module that holds parameters, in module order.

    Keys: layer (module name, "" for the model itself), type (its class), param, shape
    ("120x400"), numel, mean, std (population, 0 for one element), min, max, norm (L2).
    """
    rows = []
    for layer, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            values = param.detach().to(device="cpu", dtype=torch.float64)
            empty = values.numel() == 0
            rows.append(
                {
                    "layer": layer,
                    "type": type(module).__name__,
                    "param": param_name,
                    "shape": "x".join(str(size) for size in values.shape) or "scalar",
                    "numel": values.numel(),
                    "mean": math.nan if empty else values.mean().item(),
                    "std": math.nan if empty else values.std(correction=0).item(),
                    "min": math.nan if empty else values.min().item(),
                    "max": math.nan if empty else values.max().item(),
                    "norm": values.norm().item(),
                }
            )
    return rows
