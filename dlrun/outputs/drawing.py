"""A run's PNGs drawn by a helper process, so that training never waits for matplotlib.

Drawing curves.png and gradients.png takes a few tenths of a second: more than a small
model's epoch, more than a sweep job's training. A run hands each drawing (its rows and the
PNG's path) to one helper process per dlrun process, which imports matplotlib once and
draws in order on a core of its own, while the run goes on.

`wait()` returns once every drawing handed over is on disk. The command calls it before it
ends and the Python API before it returns, so a finished command or call leaves every PNG
in place; a sweep job in a worker process of a launcher calls it at the job's end.

Where the helper cannot start or stops, the drawings it had not confirmed are drawn here,
in this process: a PNG is late, never missing.
"""

from __future__ import annotations

import atexit
import json
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import IO, Any

from dlrun.errors import DlrunError


def _drawings() -> dict[str, Any]:
    from dlrun.outputs.plots import plot_curves, plot_gradients

    return {"curves": plot_curves, "gradients": plot_gradients}


class _Helper:
    """The helper process, and the drawings sent since it last confirmed all of them."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dlrun.outputs.drawing"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        # Per PNG the latest drawing: a later one of the same file replaces it.
        self.unconfirmed: dict[str, dict[str, Any]] = {}

    def send(self, request: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()

    def confirm(self) -> list[str]:
        """Wait for the drawings sent so far; the errors of those that failed."""
        self.send({"kind": "sync"})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise BrokenPipeError("the drawing helper stopped")
        self.unconfirmed.clear()
        return json.loads(line)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


_helper: _Helper | None = None
_errors: list[str] = []  # drawings that failed, reported by the next wait()


def start() -> None:
    """The helper, started on the first drawing: a run killed before it draws pays nothing."""
    global _helper
    if _helper is None or _helper.process.poll() is not None:
        try:
            _helper = _Helper()
        except OSError:
            _helper = None
        else:
            atexit.register(_helper.stop)  # what is still queued gets drawn


def draw(kind: str, path: Path, **arguments: Any) -> None:
    """Have `path` drawn (`kind` is curves or gradients); it is on disk after `wait()`."""
    request = {"kind": kind, "path": str(Path(path).absolute()), "arguments": arguments}
    start()
    if _helper is None:
        _draw_here([request], _errors)
        return
    _helper.unconfirmed[request["path"]] = request
    try:
        _helper.send(request)
    except OSError:  # the helper has stopped: what it had not confirmed is drawn here
        _take_over()


def wait() -> None:
    """Every drawing handed over is on disk; one that failed raises its reason."""
    if _helper is not None:
        try:
            _errors.extend(_helper.confirm())
        except OSError:
            _take_over()
    if _errors:
        errors = list(_errors)
        _errors.clear()
        raise DlrunError(
            f"Could not draw {'; '.join(errors)}. The run's CSV files are whole: redraw its "
            f"figures with `dlrun-report FOLDER --plots`."
        )


def _take_over() -> None:
    global _helper
    assert _helper is not None
    requests = list(_helper.unconfirmed.values())
    _helper.process.kill()
    _helper.process.wait()
    _helper = None
    _draw_here(requests, _errors)


def _draw_here(requests: list[dict[str, Any]], errors: list[str]) -> None:
    drawings = _drawings()
    for request in requests:
        try:
            drawings[request["kind"]](path=Path(request["path"]), **request["arguments"])
        except Exception as err:  # reported by wait(), after the other drawings
            errors.append(f"{Path(request['path']).name} ({type(err).__name__}: {err})")


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The helper: draw each request in order; on `sync`, reply with the errors so far.

    Requests are read on a thread of their own, so a run never waits for the pipe, and a
    PNG whose drawing is still queued when a newer one comes is drawn once, from the
    newer rows (a fused sweep's runs hand over many at once).
    """
    # A Ctrl-C or a scheduler's SIGTERM reaches the whole process group: the run decides
    # when to stop, and the helper ends when the run closes its pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    queue = _Queue()
    threading.Thread(target=queue.read, args=(requests,), daemon=True).start()
    errors: list[str] = []
    while (item := queue.take()) is not _END:
        if item is _SYNC:
            replies.write(json.dumps(errors).encode() + b"\n")
            replies.flush()
            errors = []
        else:
            _draw_here([item], errors)


_SYNC, _END = object(), object()


class _Queue:
    """Drawings in the order their PNGs were first asked for, each PNG's newest request."""

    def __init__(self) -> None:
        self.order: deque[Any] = deque()  # PNG paths, _SYNC and _END markers
        self.newest: dict[str, dict[str, Any]] = {}
        self.ready = threading.Condition()

    def read(self, requests: IO[bytes]) -> None:
        for line in requests:
            request = json.loads(line)
            with self.ready:
                if request["kind"] == "sync":
                    self.order.append(_SYNC)
                else:
                    if request["path"] not in self.newest:
                        self.order.append(request["path"])
                    self.newest[request["path"]] = request
                self.ready.notify()
        with self.ready:
            self.order.append(_END)
            self.ready.notify()

    def take(self) -> Any:
        with self.ready:
            while not self.order:
                self.ready.wait()
            item = self.order.popleft()
            return self.newest.pop(item) if isinstance(item, str) else item


if __name__ == "__main__":
    replies, sys.stdout = sys.stdout.buffer, sys.stderr  # a stray print cannot break a reply
    serve(sys.stdin.buffer, replies)
