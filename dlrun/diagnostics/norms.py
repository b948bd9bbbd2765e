"""Per-layer gradient and weight norms, with warnings for vanishing and exploding gradients.

A layer is a module that owns parameters (a Linear, a Conv2d, an LSTM...), in the order
the model lists them: input side first, output side last. Norms are computed on the device
and read in one transfer per record.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

log = logging.getLogger("dlrun")


def layers(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """(module name, its own parameters) for every module that has some, input side first."""
    found = []
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if params:
            found.append((name or type(module).__name__, params))
    return found


@dataclass
class LayerNorms:
    model: nn.Module
    vanishing_ratio: float
    patience: int
    exploding_norm: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.layers = layers(self.model)
        self._vanishing_streak = 0
        self._warned: set[str] = set()

    def state_dict(self) -> dict[str, Any]:
        """What the warnings depend on, for a checkpoint: a resumed run warns as one never
        stopped."""
        return {
            "vanishing_streak": self._vanishing_streak,
            "warned": sorted(self._warned),
            "warnings": list(self.warnings),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._vanishing_streak = state["vanishing_streak"]
        self._warned = set(state["warned"])
        self.warnings = list(state["warnings"])

    def record(self, epoch: int, step: int) -> list[dict[str, Any]]:
        """Norms of every layer now (after a backward pass), as diagnostics.csv rows.

        A step already recorded (every N steps and at the epoch's end) is not recorded twice.
        """
        if self.rows and self.rows[-1]["step"] == step:
            return []
        zero = torch.zeros(())
        grads, weights = [], []
        for _, params in self.layers:
            grad_parts = [p.grad.detach().norm() for p in params if p.grad is not None]
            grads.append(torch.stack(grad_parts).norm() if grad_parts else zero.to(params[0]))
            weights.append(torch.stack([p.detach().norm() for p in params]).norm())
        values = torch.stack([torch.stack(grads), torch.stack(weights)]).float().tolist()
        rows = [
            {"epoch": epoch, "step": step, "layer": name, "grad_norm": g, "weight_norm": w}
            for (name, _), g, w in zip(self.layers, values[0], values[1], strict=True)
        ]
        self.rows.extend(rows)
        self._check(rows, epoch, step)
        return rows

    def _check(self, rows: list[dict[str, Any]], epoch: int, step: int) -> None:
        bad = [r for r in rows if not math.isfinite(r["grad_norm"])]
        huge = [
            r
            for r in rows
            if math.isfinite(r["grad_norm"]) and r["grad_norm"] > self.exploding_norm
        ]
        if (bad or huge) and "exploding" not in self._warned:
            named = ", ".join(f"{r['layer']} ({r['grad_norm']:.3g})" for r in bad + huge)
            self._warn(
                "exploding",
                epoch,
                step,
                f"Exploding gradients at step {step} (epoch {epoch}): gradient norm above "
                f"{self.exploding_norm:g} or not finite in {named}.",
                [r["layer"] for r in bad + huge],
            )
        if len(rows) < 2:
            return
        first, last = rows[0], rows[-1]
        if last["grad_norm"] > 0 and first["grad_norm"] < self.vanishing_ratio * last["grad_norm"]:
            self._vanishing_streak += 1
        else:
            self._vanishing_streak = 0
        if self._vanishing_streak >= self.patience and "vanishing" not in self._warned:
            ratio = first["grad_norm"] / last["grad_norm"]
            self._warn(
                "vanishing",
                epoch,
                step,
                f"Vanishing gradients in the last {self.patience} records (up to step {step}, "
                f"epoch {epoch}): the input-side layer {first['layer']} has gradient norm "
                f"{first['grad_norm']:.3g}, {ratio:.3g} times that of the output layer "
                f"{last['layer']} ({last['grad_norm']:.3g}); the threshold is "
                f"{self.vanishing_ratio:g}.",
                [first["layer"], last["layer"]],
            )

    def _warn(self, kind: str, epoch: int, step: int, message: str, names: list[str]) -> None:
        self._warned.add(kind)
        self.warnings.append(
            {"kind": kind, "epoch": epoch, "step": step, "layers": names, "message": message}
        )
        log.warning("Warning: %s", message)
