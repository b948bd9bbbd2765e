"""A run's PNGs drawn by a helper process, so that training never waits for matplotlib.

Drawing curves.png and gradients.png takes a few tenths of a second: more than a small
model's epoch, more than a sweep job's training. A run hands each drawing (its rows and the
PNG's path) to one helper process per dlrun process, which imports matplotlib once and
draws in order on a core of its own, while the run goes on.

A drawing is named by its function, "module:function"; it is called with the PNG's path
and the arguments handed over, which are JSON. What it returns comes back to `outcome()`.
`prepare()` starts the helper ahead and has it import what a later drawing needs (a sweep's
comparison.png, drawn at its end), while the sweep's jobs run on the other cores.

`wait()` returns once every drawing handed over is on disk. The command calls it before it
ends and the Python API before it returns, so a finished command or call leaves every PNG
in place; a sweep job in a worker process of a launcher calls it at the job's end.

Where the helper cannot start or stops, the drawings it had not confirmed are drawn here,
in this process: a PNG is late, never missing.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import IO, Any

from dlrun.errors import DlrunError

CURVES = "dlrun.outputs.plots:plot_curves"
GRADIENTS = "dlrun.outputs.plots:plot_gradients"
LR_FIND = "dlrun.outputs.plots:plot_lr_find"


def _function(kind: str) -> Any:
    module, _, name = kind.partition(":")
    return getattr(importlib.import_module(module), name)


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
        """Wait for the drawings sent so far; the errors of those that failed (their
        outcomes are kept for `outcome()`)."""
        self.send({"kind": "sync"})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise BrokenPipeError("the drawing helper stopped")
        self.unconfirmed.clear()
        reply = json.loads(line)
        _outcomes.update(reply["outcomes"])
        return reply["errors"]

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


_helper: _Helper | None = None
_extra: list[_Helper] = []  # more helpers, when a process draws for many runs at once
_wanted = 1
_assigned: dict[str, _Helper] = {}  # each PNG's helper: its drawings stay in order
_errors: list[str] = []  # drawings that failed, reported by the next wait()
_outcomes: dict[str, Any] = {}  # per PNG, what its drawing returned, until outcome()


def start() -> None:
    """The helper, started on the first drawing: a run killed before it draws pays nothing."""
    global _helper
    if _helper is None or _helper.process.poll() is not None:
        _helper = _started()


def prepare(modules: list[str]) -> None:
    """Start the helper now and have it import `modules`, for a drawing to come."""
    start()
    if _helper is not None:
        with contextlib.suppress(OSError):  # stopped: a later drawing starts another
            _helper.send({"kind": "import", "modules": modules})


def running() -> bool:
    """Whether a helper is up: a drawing handed over now starts at once."""
    return _helper is not None and _helper.process.poll() is None


def use_helpers(count: int) -> None:
    """Draw on up to `count` helpers: a fused sweep's runs end together, with many PNGs."""
    global _wanted
    _wanted = max(1, count)


def _started() -> _Helper | None:
    try:
        helper = _Helper()
    except OSError:
        return None
    atexit.register(helper.stop)  # what is still queued gets drawn
    return helper


def _helper_for(path: str) -> _Helper | None:
    start()
    if _helper is None:
        return None
    helper = _assigned.get(path)
    if helper is None:
        if len(_extra) + 1 < _wanted and (another := _started()) is not None:
            _extra.append(another)
        helper = min([_helper, *_extra], key=lambda h: len(h.unconfirmed))
        _assigned[path] = helper
    return helper


def draw(kind: str, path: Path, **arguments: Any) -> None:
    """Have `path` drawn by `kind` ("module:function"); it is on disk after `wait()`."""
    request = {"kind": kind, "path": _key(path), "arguments": arguments}
    helper = _helper_for(request["path"])
    if helper is None:
        _draw_here([request], _errors, _outcomes)
        return
    helper.unconfirmed[request["path"]] = request
    try:
        helper.send(request)
    except OSError:  # the helper has stopped: what it had not confirmed is drawn here
        _take_over(helper)


def outcome(path: Path) -> Any:
    """What the drawing of `path` returned, once it is on disk; None if it failed (the
    next `wait()` reports why)."""
    key = _key(path)
    helper = _assigned.get(key)
    if helper is not None and key not in _outcomes:
        try:
            _errors.extend(helper.confirm())
        except OSError:
            _take_over(helper)
    return _outcomes.pop(key, None)


def _key(path: Path) -> str:
    return str(Path(path).absolute())


def wait() -> None:
    """Every drawing handed over is on disk; one that failed raises its reason."""
    for helper in [h for h in (_helper, *_extra) if h is not None]:
        try:
            _errors.extend(helper.confirm())
        except OSError:
            _take_over(helper)
    if _errors:
        errors = list(_errors)
        _errors.clear()
        raise DlrunError(
            f"Could not draw {'; '.join(errors)}. The run's CSV files are whole: redraw its "
            f"figures with `dlrun-report FOLDER --plots` (a sweep's report.html: --html)."
        )


def _take_over(helper: _Helper) -> None:
    global _helper
    requests = list(helper.unconfirmed.values())
    helper.process.kill()
    helper.process.wait()
    if helper is _helper:
        _helper = None
    elif helper in _extra:
        _extra.remove(helper)
    for path in [p for p, h in _assigned.items() if h is helper]:
        del _assigned[path]
    _draw_here(requests, _errors, _outcomes)


def _draw_here(requests: list[dict[str, Any]], errors: list[str], outcomes: dict[str, Any]) -> None:
    for request in requests:
        try:
            drawn = _function(request["kind"])(path=Path(request["path"]), **request["arguments"])
            outcomes[request["path"]] = drawn
        except Exception as err:  # reported by wait(), after the other drawings
            errors.append(f"{Path(request['path']).name} ({type(err).__name__}: {err})")


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The helper: draw each request in order (and import what `prepare` names); on
    `sync`, reply with the errors and the drawings' outcomes so far.

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
    outcomes: dict[str, Any] = {}
    while (item := queue.take()) is not _END:
        if item is _SYNC:
            reply = {"errors": errors, "outcomes": outcomes}
            replies.write(json.dumps(reply).encode() + b"\n")
            replies.flush()
            errors, outcomes = [], {}
        elif item["kind"] == "import":
            _import(item["modules"])
        else:
            _draw_here([item], errors, outcomes)


def _import(modules: list[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # a drawing that needs it says why, when it comes
            continue


_SYNC, _END = object(), object()


class _Queue:
    """Drawings in the order their PNGs were first asked for, each PNG's newest request."""

    def __init__(self) -> None:
        self.order: deque[Any] = deque()  # PNG paths, imports, _SYNC and _END markers
        self.newest: dict[str, dict[str, Any]] = {}
        self.ready = threading.Condition()

    def read(self, requests: IO[bytes]) -> None:
        for line in requests:
            request = json.loads(line)
            with self.ready:
                if request["kind"] == "sync":
                    self.order.append(_SYNC)
                elif request["kind"] == "import":
                    self.order.append(request)
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
    gc.freeze()  # every PNG is written and closed: no collecting at exit (cli/exit.py)
