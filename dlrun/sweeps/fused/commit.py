"""A fused group's checkpoints become current together: a group commit.

A group's members save at the same steps, one after another. A kill between two of those
writes would leave some members a checkpoint ahead of the others, and a rerun could not
train them as one group again. So each member stages its checkpoint beside last.pt; once
every staged file is on disk, a commit record naming them all is written to the sweep
folder, each staged file is linked as best.pt where its epoch was best and renamed over
last.pt, and the record is removed.

A kill before the record leaves staged files that the members' next setup removes
(RunFolder.remove_leftovers): the group resumes from the commit before. A kill after it
leaves the record, and `recover` finishes its renames before the rerun sets any member up.
Each commit has a name of its own, in its record's and its staged files' names, so that a
record left behind (a rerun under another launcher removed its staged files) never applies
to a later commit's files.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from dlrun.outputs.io import atomic_link, atomic_write
from dlrun.recipe.checkpoints import Checkpoints

log = logging.getLogger("dlrun")
RECORD = ".group-commit-{name}.json"


class GroupCommit:
    def __init__(self, sweep_dir: Path, members: Sequence[Checkpoints]) -> None:
        self.sweep_dir, self.members = Path(sweep_dir), list(members)
        self._stage()

    def _stage(self) -> None:
        name = uuid.uuid4().hex[:12]
        for checkpoints in self.members:
            checkpoints.stage(name)

    def commit(self) -> None:
        """Every checkpoint staged since the last commit becomes current, all or none."""
        for checkpoints in self.members:
            checkpoints.wait()
        staged = [c.staged for c in self.members if c.staged is not None]
        if staged:
            name = self.members[0].stage_as
            record = self.sweep_dir / RECORD.format(name=name)
            entries = [[_relative(path, self.sweep_dir) for path in entry] for entry in staged]
            atomic_write(record, lambda handle: handle.write(json.dumps(entries).encode()))
            _apply(self.sweep_dir, entries)
            record.unlink()
        self._stage()


def recover(sweep_dir: Path) -> None:
    """Finish the commits a killed sweep recorded but did not apply."""
    for record in sorted(Path(sweep_dir).glob(RECORD.format(name="*"))):
        _apply(sweep_dir, json.loads(record.read_text()))
        log.info("Finished a fused group's checkpoint commit that a stop interrupted")
        record.unlink()


def _apply(sweep_dir: Path, entries: list[list[str | None]]) -> None:
    """Each staged file linked as best.pt where its epoch was best, then renamed over
    last.pt. A staged file that is gone was applied already (its link came first), or was
    removed by a later setup that found no record: either way there is nothing to do."""
    for staged, last, best in entries:
        assert staged is not None and last is not None
        source = sweep_dir / staged
        if not source.is_file():
            continue
        if best is not None:
            atomic_link(source, sweep_dir / best)
        os.replace(source, sweep_dir / last)


def _relative(path: Path | None, root: Path) -> str | None:
    return None if path is None else os.path.relpath(path, root)
