"""Checkpoints: everything needed to continue a run exactly where it stopped.

Stored with torch.save and read back with `weights_only=True`, so loading a checkpoint can
never run code. The config and the run folder's rows travel as JSON strings: pickling their
many small values one by one cost more than the rest of a small model's checkpoint.

A checkpoint written inside an epoch also holds the epoch's progress (state.EpochProgress):
the shuffle and random states it began with, the batches done, and each data-parallel rank's
random state, metric sums and recurrent state, so that a resume goes on with the next batch.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from dlrun.errors import DlrunError
from dlrun.outputs.run_folder import BEST, CHECKPOINTS
from dlrun.training.seeding import rng_state, set_rng_state
from dlrun.training.state import EpochProgress, TrainState

FORMAT = "dlrun-checkpoint-v1"


def checkpoint_bytes(
    state: TrainState,
    config: dict[str, Any],
    history: str | None = None,
    ranks: list[dict[str, Any]] | None = None,
) -> bytes:
    """The state as a checkpoint file's bytes: a copy that later steps no longer change.

    `history` holds the run folder's rows so far, as JSON (RunFolder.history_json); `ranks`
    each rank's share of the epoch in progress (EpochProgress.rank_state), when the
    checkpoint is taken inside an epoch.
    """
    progress = state.progress
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
        "history": history,
        "layer_norms": None if state.layer_norms is None else state.layer_norms.state_dict(),
        "progress": None
        if progress is None or ranks is None
        else {
            "generator": progress.generator,
            "batches": progress.batches,
            "seconds": progress.elapsed(),
            "ranks": ranks,
        },
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def restore_state(
    state: TrainState, checkpoint: dict[str, Any], rank: int = 0, processes: int = 1
) -> None:
    """Put a run back where the checkpoint left it, random-number state included, and inside
    its epoch if it was taken there (`rank`'s share of it)."""
    progress = checkpoint.get("progress")
    if progress is not None and len(progress["ranks"]) != processes:
        taken = len(progress["ranks"])
        raise DlrunError(
            f"This checkpoint was taken inside epoch {checkpoint['epoch'] + 1} by {taken} "
            f"process(es), and this run has {processes}: each one's share of the epoch is in "
            f"it. Resume with {taken} (torchrun --nproc_per_node={taken}"
            f"{'' if taken > 1 else ', or plain dlrun'})."
        )
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
    if progress is not None:
        device = next(state.model.parameters()).device
        state.progress = EpochProgress.restore(progress, progress["ranks"][rank], device)


def _named_parts(state: TrainState) -> list[Any]:
    """The regularizer options in config order, early stopping included."""
    stopping = [] if state.early_stopping is None else [state.early_stopping]
    return [*state.regularizers, *stopping]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint on the CPU; a damaged or foreign file gives one clear error."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for damaged or foreign files
        raise DlrunError(
            f"{path} is not a readable dlrun checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}). It may be truncated, "
            f"or not a checkpoint at all; resume from another one, e.g. {CHECKPOINTS}/{BEST}."
        ) from err
    found = payload.get("format") if isinstance(payload, dict) else None
    if isinstance(found, str) and found.startswith(FORMAT.rsplit("-", 1)[0]) and found != FORMAT:
        raise DlrunError(
            f"{path} is a dlrun checkpoint of layout {found}, and this dlrun reads "
            f"{FORMAT}: it was written by another version. Continue it with that version."
        )
    if found != FORMAT:
        raise DlrunError(f"{path} is a torch file but not a dlrun checkpoint ({FORMAT}).")
    if isinstance(payload.get("config"), str):  # older checkpoints hold the containers
        payload["config"] = json.loads(payload["config"])
    if isinstance(payload.get("history"), str):
        payload["history"] = json.loads(payload["history"])
    return payload
