"""One writer per run folder: an exclusive lock, held while a run writes its folder.

The lock is the operating system's on RUN/.lock: `fcntl.flock` on Linux and macOS, and
`msvcrt.locking` on Windows (of one byte past the text, which Windows would otherwise keep
others from reading). The system lets go of it when its process ends, however it ends, so a
lock left by a killed run never blocks the next one. The file names the pid and host of its
holder, for the message a second run prints. A run whose summary says `running` while
nobody holds its lock was killed (outputs/run_folder.py's `status()`).
"""

from __future__ import annotations

import importlib
import os
import socket
from datetime import datetime
from functools import cache
from pathlib import Path

from dlrun.errors import DlrunError, FolderInUse

LOCK = ".lock"
WINDOWS_BYTE = 1 << 20  # the byte msvcrt locks: past any holder's text


@cache
def _system():
    """fcntl where it exists, else msvcrt: imported when a lock is first taken, so that
    importing dlrun needs neither."""
    try:
        return importlib.import_module("fcntl")
    except ImportError:
        return importlib.import_module("msvcrt")


def _try_lock(fd: int, shared: bool = False) -> bool:
    """Take the lock without waiting; False when another process holds it. Windows has no
    shared lock: `shared` takes it whole there, for as long as the caller holds it."""
    system = _system()
    if system.__name__ == "fcntl":
        try:
            system.flock(fd, (system.LOCK_SH if shared else system.LOCK_EX) | system.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    os.lseek(fd, WINDOWS_BYTE, os.SEEK_SET)
    try:
        system.locking(fd, system.LK_NBLCK, 1)
    except OSError:
        return False
    finally:
        os.lseek(fd, 0, os.SEEK_SET)
    return True


def _unlock(fd: int) -> None:
    system = _system()
    if system.__name__ == "fcntl":
        system.flock(fd, system.LOCK_UN)
        return
    os.lseek(fd, WINDOWS_BYTE, os.SEEK_SET)
    system.locking(fd, system.LK_UNLCK, 1)


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
        if not _try_lock(fd):
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
            _unlock(self._fd)
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
        if not _try_lock(fd, shared=True):
            return True
        _unlock(fd)
    finally:
        os.close(fd)
    return False
