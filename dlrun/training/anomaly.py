"""Where a NaN or an infinity first appears: `debug=anomaly`'s watch over a model.

Forward hooks check every module's output as it is made; a leaf's hook runs before its
parents', so the first module named is the innermost one whose output went bad. Backward,
`torch.autograd.detect_anomaly` checks what every autograd function returns (weight
gradients included) and full backward hooks check the gradient each module passes back to
its input; a backward pre-hook remembers whose backward is running, so an error of
detect_anomaly is put down to its module, or to the loss when no module's backward had
started.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from dlrun.training.engine import Diverged
from dlrun.training.state import TrainState

# torch's warnings about this watch, which it states itself: anomaly mode is slower, a full
# backward hook on the first layer sees an input that needs no gradient, and detect_anomaly's
# own report of where an error arose is replaced by the module's name.
QUIET = (
    "Anomaly Detection has been enabled",
    "Full backward hook is firing",
    "Error detected in",
)


class NonFinite(Diverged):
    """The first value that went bad, and where."""

    def __init__(self, epoch: int, step: int, where: str, module: str | None) -> None:
        super().__init__(epoch, step)
        self.where, self.module = where, module

    def __str__(self) -> str:
        return f"{self.where}, at step {self.step} (epoch {self.epoch})"


@contextmanager
def watch(model: nn.Module, state: TrainState) -> Iterator[None]:
    """Raise NonFinite at the first non-finite output or gradient while the loop runs."""
    names = {module: name or "the model" for name, module in model.named_modules()}
    running: list[nn.Module] = []  # the module whose backward started last

    def found(where: str, module: nn.Module | None) -> NonFinite:
        name = _label(names, module) if module is not None else None
        return NonFinite(state.epoch + 1, state.step + 1, where, name)

    def forward(module: nn.Module, inputs: Any, output: Any) -> None:
        if bad := _bad(output):
            source = "its input was finite" if not _bad(inputs) else "so was its input"
            where = f"the forward output of {_label(names, module)} holds {bad} ({source})"
            raise found(where, module)

    def backward_started(module: nn.Module, grad_output: Any) -> None:
        running[:] = [module]

    def backward(module: nn.Module, grad_input: Any, grad_output: Any) -> None:
        if bad := _bad(grad_input):
            raise found(f"the gradient {_label(names, module)} passes back holds {bad}", module)

    handles = [m.register_forward_hook(forward) for m in names]
    for module in (m for m in names if not any(True for _ in m.children())):
        handles.append(module.register_full_backward_pre_hook(backward_started))
        handles.append(module.register_full_backward_hook(backward))
    try:
        with warnings.catch_warnings():
            for said in QUIET:
                warnings.filterwarnings("ignore", message=said)
            with torch.autograd.detect_anomaly(check_nan=True):
                yield
    except RuntimeError as err:
        if "returned nan values" not in str(err) and "returned inf" not in str(err):
            raise
        module = running[-1] if running else None
        op = str(err).split("'")[1] if "'" in str(err) else "an autograd function"
        where = f"the backward of {_label(names, module)}" if module else "the loss's backward"
        raise found(f"{op} in {where} returned a non-finite gradient", module) from err
    finally:
        for handle in handles:
            handle.remove()


def _label(names: dict[nn.Module, str], module: nn.Module) -> str:
    name = names[module]
    kind = type(module).__name__
    return f"{name} ({kind})" if name == "the model" else f"module {name} ({kind})"


def _bad(value: Any) -> str | None:
    """`nan in 3 of 640 values` for the first tensor with a non-finite value, else None."""
    for tensor in _tensors(value):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            kind = "nan" if bool(torch.isnan(tensor).any()) else "inf"
            count = int((~torch.isfinite(tensor)).sum())
            return f"{kind} in {count} of {tensor.numel()} values"
    return None


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _tensors(item)
