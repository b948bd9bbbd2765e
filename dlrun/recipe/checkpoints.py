"""A run's checkpoints: checkpoints/last.pt after every epoch, inside epochs every
trainer.checkpoint_every (steps or time), and before a stop for a signal; best.pt is a copy
of it when the epoch is best. Written on a thread of their own (CheckpointWriter), on disk
when training ends.

Every data-parallel rank takes part in a step checkpoint, since each one's share of the
epoch goes in; rank 0 writes.

A fused group's members stage their checkpoints instead (`stage_as`): each is written
beside last.pt, and becomes last.pt when the group commits them together (sweeps/fused/commit.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dlrun.config.options.trainer import CheckpointEvery
from dlrun.outputs.run_folder import BEST, LAST, CheckpointWriter, RunFolder, staged_file
from dlrun.training import distributed
from dlrun.training.checkpoint import checkpoint_bytes
from dlrun.training.state import TrainState
from dlrun.training.world import World


class Checkpoints:
    def __init__(
        self, folder: RunFolder, config: dict[str, Any], every: CheckpointEvery, world: World
    ) -> None:
        self.folder, self.config = folder, config
        self.every, self.world = every, world
        self.writer = CheckpointWriter()
        self.saved_at = time.monotonic()
        # Set by a fused group: the name of the commit its next checkpoint waits for.
        self.stage_as: str | None = None
        # The staged file and where it goes once committed: last.pt, and best.pt or None.
        self.staged: tuple[Path, Path, Path | None] | None = None

    def stage(self, commit: str) -> None:
        """From now on, write beside last.pt for the commit named `commit` (a fused group)."""
        self.stage_as, self.staged = commit, None

    def due(self, state: TrainState) -> tuple[bool, bool]:
        steps, seconds = self.every.steps, self.every.seconds
        by_steps = steps is not None and state.step % steps == 0
        by_time = (
            seconds is not None
            and self.world.is_main
            and time.monotonic() - self.saved_at >= seconds
        )
        return by_steps, by_time

    def save_step(self, state: TrainState) -> None:
        """last.pt inside the epoch; skipped after a non-finite loss, so that last.pt always
        holds a state worth continuing from."""
        assert state.progress is not None
        ranks = distributed.gather(state.progress.rank_state(), self.world)
        if not self.world.is_main or any(int(r["first_bad_step"]) >= 0 for r in ranks):
            return
        self._write(checkpoint_bytes(state, self.config, self.folder.history_json(), ranks))

    def save_epoch(self, state: TrainState, best: bool) -> None:
        """last.pt at the epoch's end, carrying all of its rows; best.pt too when `best`."""
        if self.world.is_main:
            self._write(checkpoint_bytes(state, self.config, self.folder.history_json()), best)

    def _write(self, data: bytes, best: bool = False) -> None:
        last, copy = self.folder.checkpoints / LAST, self.folder.checkpoints / BEST
        if self.stage_as is None:
            self.writer.save(last, data, *([copy] if best else []))
        else:
            staged = staged_file(last, self.stage_as)
            self.writer.save(staged, data)
            self.staged = (staged, last, copy if best else None)
        self.saved_at = time.monotonic()

    def wait(self) -> None:
        """Every checkpoint asked for is on disk (or its write's error raised)."""
        self.writer.wait()
