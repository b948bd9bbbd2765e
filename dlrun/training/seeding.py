"""Seeds and random-number-generator state, saved in checkpoints so a resumed run matches."""

from __future__ import annotations

import random

import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too


def rng_state() -> dict:
    # Python's Mersenne Twister state as one tensor: 625 ints pickled one by one cost more
    # than the rest of a small model's checkpoint.
    version, internal, gauss = random.getstate()
    state = {
        "python": (version, torch.tensor(internal, dtype=torch.int64), gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    if isinstance(internal, torch.Tensor):  # checkpoints before it was a tensor: a tuple
        internal = internal.tolist()
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
