"""Decoded data sets kept as tensors, so the next run loads them instead of decoding again.

Fashion-MNIST and MNIST keep theirs beside the IDX files (vision.py); a data set that ships
inside a package (scikit-learn's digits) keeps it in the user's cache folder: $DLRUN_CACHE,
else $XDG_CACHE_HOME/dlrun, else ~/.cache/dlrun. A cache that cannot be written or read is
skipped, never an error: the data set is decoded as if there were none.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import torch

from dlrun.errors import DlrunError
from dlrun.outputs.io import atomic_write


def cache_folder() -> Path:
    if os.environ.get("DLRUN_CACHE"):
        return Path(os.environ["DLRUN_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlrun"


def cached(path: Path, build: Callable[[], dict]) -> dict:
    """The tensors saved at `path`, or `build()`'s, saved there for next time."""
    with contextlib.suppress(Exception):  # absent, torn or foreign: build afresh
        return torch.load(path, map_location="cpu", weights_only=True)
    tensors = build()
    with contextlib.suppress(DlrunError, OSError):  # a read-only folder: build again next time
        atomic_write(path, lambda handle: torch.save(tensors, handle))
    return tensors
