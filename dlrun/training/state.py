"""What training changes and a checkpoint keeps: the run's state, and the epoch in progress.

An epoch in progress is an `EpochProgress` on the training state: the shuffle and random
state it began with, the batches done, the metric sums so far. A step checkpoint saves it,
and a run resumed from one goes on with the next batch exactly as if it had not stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dlrun.optim.regularizers import Regularizer
from dlrun.optim.schedulers import EpochScheduler
from dlrun.training.seeding import rng_state


@dataclass
class TrainState:
    """Everything that changes while training and goes into a checkpoint."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # draws each epoch's shuffle
    scheduler: EpochScheduler | None = None
    regularizers: list[Regularizer] = field(default_factory=list)
    # Chosen as a regularizer option, though it changes neither model nor loss: its
    # state_dict() goes into checkpoints by option name, beside the regularizers'.
    early_stopping: Any = None
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_value: float | None = None
    best_epoch: int | None = None
    stop_reason: str | None = None
    # torch.compile's wrapper of the model, and DistributedDataParallel's of either.
    compiled: nn.Module | None = None
    ddp: nn.Module | None = None
    # Scales the fp16 loss; None unless trainer.precision=16.
    scaler: torch.amp.GradScaler | None = None
    first_step_seconds: float | None = None
    # Set by a SIGINT/SIGTERM handler: the loop stops after the step in progress.
    stop_signal: str | None = None
    # The epoch in progress; None between epochs. Restored from a mid-epoch checkpoint.
    progress: EpochProgress | None = None
    # Per-layer norms (diagnostics/norms.py) whose warnings depend on the records so far.
    layer_norms: Any = None

    @property
    def forward_model(self) -> nn.Module:
        """What training runs forward."""
        return self.ddp or self.compiled or self.model

    @property
    def eval_model(self) -> nn.Module:
        """What evaluation runs forward: no gradients, so nothing to average across ranks."""
        return self.compiled or self.model


@dataclass
class EpochProgress:
    """Where an epoch stands after `batches` of its steps.

    `generator` and `rng` are the states the epoch began with, before its order was drawn;
    `step_rng` the random state after its last step, set once a resumed epoch has drawn its
    order again. The sums stay on the device, as the loop keeps them.
    """

    generator: torch.Tensor
    rng: dict
    first_bad_step: torch.Tensor  # -1, or the first step whose loss was not finite
    batches: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    count: int = 0
    logged: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    recurrent_state: Any = None
    step_rng: dict | None = None
    seconds: float = 0.0  # training time of this epoch before a resume
    started: float = field(default_factory=time.perf_counter)  # in this process

    def elapsed(self) -> float:
        """The epoch's training time so far, across resumes."""
        return self.seconds + time.perf_counter() - self.started

    @classmethod
    def begin(cls, generator: torch.Generator, device: torch.device) -> EpochProgress:
        first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        return cls(generator.get_state(), rng_state(), first_bad_step)

    def rank_state(self) -> dict[str, Any]:
        """What differs between data-parallel ranks, on the CPU, for a checkpoint."""
        return {
            "rng": self.rng,
            "step_rng": rng_state(),
            "first_bad_step": self.first_bad_step.cpu(),
            "sums": {name: value.cpu() for name, value in self.sums.items()},
            "count": self.count,
            "logged": [(step, loss.cpu()) for step, loss in self.logged],
            "recurrent_state": _moved(self.recurrent_state, torch.device("cpu")),
        }

    @classmethod
    def restore(cls, shared: dict[str, Any], rank: dict[str, Any], device) -> EpochProgress:
        """From a checkpoint's progress: what all ranks share, and this rank's own part."""
        return cls(
            generator=shared["generator"],
            batches=shared["batches"],
            seconds=shared.get("seconds", 0.0),
            rng=rank["rng"],
            first_bad_step=rank["first_bad_step"].to(device),
            sums={name: value.to(device) for name, value in rank["sums"].items()},
            count=rank["count"],
            logged=[(step, loss.to(device)) for step, loss in rank["logged"]],
            recurrent_state=_moved(rank["recurrent_state"], device),
            step_rng=rank["step_rng"],
        )

    @classmethod
    def begin_or_resume(cls, state: TrainState) -> EpochProgress:
        """A new epoch's progress on `state`, or the one a mid-epoch checkpoint restored."""
        if state.progress is None:
            device = next(state.model.parameters()).device
            state.progress = cls.begin(state.generator, device)
        state.progress.started = time.perf_counter()
        return state.progress


def _moved(value: Any, device: torch.device) -> Any:
    """A recurrent state (a tensor, a tuple of them, or None) on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_moved(v, device) for v in value)
    return value
