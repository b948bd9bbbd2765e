"""One writer per run folder: an exclusive lock, held while a run writes its folder.

The lock is `fcntl.flock` on RUN/.lock. The kernel lets go of it when its process ends,
however it ends, so a lock left by a killed run never blocks the next one. The file names
the pid and host of its holder, for the message a second run prints. A run whose summary
says `running` while nobody holds its lock was killed: `status()` says so.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from dlrun.errors import DlrunError, FolderInUse

LOCK = ".lock"


class FolderLock:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock at once, or stop with the holder's pid and host."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise DlrunError(
                f"Cannot lock the run folder {self.folder}: {err.strerror or err}. A run needs "
                f"to write its folder: make it writable, or choose another one (hydra.run.dir, "
                f"or a resume of a copy)."
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise FolderInUse(
                f"The run folder {self.folder} is in use by another dlrun run ({holder}): two "
                f"runs writing one folder would mix their rows and checkpoints. Wait for it to "
                f"end, stop it (Ctrl-C or kill), or resume into another folder."
            ) from None
        started = datetime.now().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def held(folder: str | Path) -> bool:
    """Whether some process holds the folder's lock now."""
    try:
        fd = os.open(Path(folder) / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def status(folder: str | Path, summary: dict[str, Any]) -> str:
    """summary.json's status, or `killed` for a `running` run that nobody holds."""
    found = str(summary.get("status") or "unknown")
    return "killed" if found == "running" and not held(folder) else found


def killed_note(folder: str | Path) -> str:
    """What a killed run left to continue from."""
    last = Path(folder) / "checkpoints" / "last.pt"
    if not last.is_file():
        return "killed before its first checkpoint: a resume starts it from the beginning"
    written = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.stat().st_mtime))
    return f"killed; last checkpoint checkpoints/last.pt, written {written}"
