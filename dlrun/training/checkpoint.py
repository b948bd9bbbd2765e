"""Checkpoints: everything needed to continue a run exactly where it stopped.

Stored with torch.save and read back with `weights_only=True`, so loading a checkpoint can
never run code. The config travels as one JSON string: pickling its few hundred nested
values one by one cost more than the rest of a small model's checkpoint.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import torch

from dlrun.errors import DlrunError
from dlrun.outputs.io import atomic_link, atomic_write
from dlrun.training.loop import TrainState
from dlrun.training.seeding import rng_state, set_rng_state

FORMAT = "dlrun-checkpoint-v1"
LAST, BEST = "last.pt", "best.pt"
INTERRUPTED = "interrupted.pt"  # the weights when a SIGINT/SIGTERM stopped a run mid-epoch


def save_checkpoint(path: Path, state: TrainState, config: dict[str, Any], *copies: Path) -> None:
    """The state at `path`, and the same file at each of `copies` (best.pt)."""
    _write(path, checkpoint_bytes(state, config), copies)


def checkpoint_bytes(state: TrainState, config: dict[str, Any]) -> bytes:
    """The state as a checkpoint file's bytes: a copy that later steps no longer change."""
    payload = {
        "format": FORMAT,
        "epoch": state.epoch,
        "step": state.step,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict() if state.scheduler else None,
        "scaler": state.scaler.state_dict() if state.scaler else {},
        "regularizers": {r.name: r.state_dict() for r in _named_parts(state)},
        "generator": state.generator.get_state(),
        "rng": rng_state(),
        "best_value": state.best_value,
        "best_epoch": state.best_epoch,
        "stop_reason": state.stop_reason,
        "config": json.dumps(config),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _write(path: Path, data: bytes, copies: tuple[Path, ...]) -> None:
    atomic_write(path, lambda handle: handle.write(data))
    for copy in copies:
        atomic_link(path, copy)


class CheckpointWriter:
    """Checkpoints written to disk on a thread of their own.

    The state is serialized at once, on the caller's thread, so the file holds this step's
    state; writing it out and syncing it to the disk (milliseconds, more than the rest of a
    small model's epoch) overlap the next epoch. One write at a time, in order. `wait()`
    returns once the last one is on disk, and raises the error of a write that failed.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, path: Path, state: TrainState, config: dict[str, Any], *copies: Path) -> None:
        data = checkpoint_bytes(state, config)
        self.wait()
        self._thread = threading.Thread(
            target=self._run, args=(path, data, copies), name="dlrun-checkpoint"
        )
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self, path: Path, data: bytes, copies: tuple[Path, ...]) -> None:
        try:
            _write(path, data, copies)
        except BaseException as err:  # raised on the run's thread by wait()
            self._error = err


def restore_state(state: TrainState, checkpoint: dict[str, Any]) -> None:
    """Put a run back where the checkpoint left it, random-number state included."""
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    if state.scheduler is not None and checkpoint["scheduler"] is not None:
        state.scheduler.load_state_dict(checkpoint["scheduler"])
    if state.scaler is not None and checkpoint.get("scaler"):
        state.scaler.load_state_dict(checkpoint["scaler"])
    for regularizer in _named_parts(state):  # one added on resume starts afresh
        if regularizer.name in checkpoint["regularizers"]:
            regularizer.load_state_dict(checkpoint["regularizers"][regularizer.name])
    state.generator.set_state(checkpoint["generator"])
    state.epoch, state.step = checkpoint["epoch"], checkpoint["step"]
    state.best_value, state.best_epoch = checkpoint["best_value"], checkpoint["best_epoch"]
    state.stop_reason = checkpoint["stop_reason"]
    set_rng_state(checkpoint["rng"])


def _named_parts(state: TrainState) -> list[Any]:
    """The regularizer options in config order, early stopping included."""
    return [*state.regularizers, *state.stateful_callbacks]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint on the CPU; a damaged or foreign file gives one clear error."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for damaged or foreign files
        raise DlrunError(
            f"{path} is not a readable dlrun checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}). It may be truncated, "
            f"or not a checkpoint at all; resume from another one, e.g. checkpoints/{BEST}."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DlrunError(f"{path} is a torch file but not a dlrun checkpoint ({FORMAT}).")
    if isinstance(payload.get("config"), str):  # older checkpoints hold the containers
        payload["config"] = json.loads(payload["config"])
    return payload


def find_checkpoint(resume: str) -> Path:
    """`trainer.resume` may name a run folder, its checkpoints/ folder, or a .pt file."""
    path = Path(resume).expanduser()
    candidates = [path, path / LAST, path / "checkpoints" / LAST]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise DlrunError(
            f"trainer.resume={resume} does not lead to a checkpoint: looked for {path}, "
            f"{path / LAST} and {path / 'checkpoints' / LAST}. Give a run folder or a .pt file."
        )
    return found
