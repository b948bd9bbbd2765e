"""A sweep you can watch: its jobs' progress, read from their folders while the sweep runs.

On a terminal, a live table (rich): job, configuration, seed, status, epoch/total and the
latest value of the monitored metric, redrawn every second. Elsewhere (CI, a pipe, a
notebook), one plain line when a job starts and one when it ends. A failed job shows as
failed when it ends, not only in the report at the sweep's end.

Everything is read from the job folders (.hydra/overrides.yaml, summary.json, metrics.csv),
as the sweep report is, so it works whatever launcher runs the jobs: in this process, where
the sweep's callback also looks at each job's start and end, or in a launcher's workers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.outputs.run_folder import read_rows
from dlrun.reporting.seeds import SEED_KEY
from dlrun.reporting.table import format_value, rich_table

if TYPE_CHECKING:
    from rich.console import Console

# How often the folders are read and the table redrawn, in seconds; a job's start or end
# has them read at once, unless they were read less than EVENT_GAP_SECONDS ago.
POLL_SECONDS = 1.0
EVENT_GAP_SECONDS = 0.25
ENDED = ("completed", "failed", "diverged", "interrupted")
STYLES = {"completed": "green", "running": "yellow", "starting": "yellow"}  # others: red


@dataclass
class JobState:
    number: str
    overrides: dict[str, str]
    status: str  # starting, running, or how it ended
    epoch: int | None = None
    epochs: int | None = None
    monitor: str | None = None
    value: float | None = None
    error: str | None = None
    wall_seconds: float | None = None


def read_job(path: Path) -> JobState:
    """What a job folder says now; a file that is being written is read again next time."""
    from dlrun.reporting.sweep_jobs import job_label, load_job

    job = load_job(path)
    summary = job.summary or {}
    state = JobState(job_label(path), job.overrides, str(summary.get("status") or "starting"))
    state.epochs, state.error = summary.get("epochs_planned"), summary.get("error")
    state.wall_seconds = summary.get("wall_seconds")
    state.monitor = (summary.get("best") or {}).get("monitor")
    rows = read_rows(path)
    if rows:
        state.epoch = rows[-1].get("epoch")
        state.value = rows[-1].get(state.monitor) if state.monitor else None
    return state


# The watcher of the sweep in progress, stopped by the command however the sweep ends.
active: SweepWatcher | None = None


def watch(sweep_dir: Path, task_overrides: list[str], console: Console) -> SweepWatcher:
    global active
    stop_active()
    active = SweepWatcher(sweep_dir, swept_keys(task_overrides), console)
    active.start()
    return active


def stop_active() -> None:
    global active
    if active is not None:
        watcher, active = active, None
        watcher.stop()


class SweepWatcher:
    """Reads the sweep's job folders every POLL_SECONDS on a thread, and on `poll()`."""

    def __init__(self, sweep_dir: Path, swept: list[str], console: Console) -> None:
        self.sweep_dir, self.swept, self.console = sweep_dir, swept, console
        self.live_table = console.is_terminal and not console.is_jupyter
        self.seen: dict[str, str] = {}  # job folder -> the status last shown
        self.ended: dict[Path, JobState] = {}  # not read again: an ended job stays so
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.live: Any = None
        self.polled = 0.0  # time.monotonic() of the last poll
        self.thread = threading.Thread(target=self._loop, name="dlrun-sweep-watch", daemon=True)

    def start(self) -> None:
        if self.live_table:
            from rich.live import Live

            self.live = Live(self._table([]), console=self.console, transient=True)
            self.live.start()
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.poll()
        if self.live is not None:
            self.live.stop()

    def poll_soon(self) -> None:
        """A job started or ended: read the folders now, unless they were just read (a
        fused group's jobs start and end dozens at a time)."""
        if time.monotonic() - self.polled >= EVENT_GAP_SECONDS:
            self.poll()

    def poll(self) -> None:
        from dlrun.reporting.sweep_jobs import find_jobs

        with self.lock:
            self.polled = time.monotonic()
            # A job whose overrides.yaml is still being written is read at the next poll.
            jobs = [job for job in map(self._read, find_jobs(self.sweep_dir)) if job.overrides]
            if self.live is not None:
                self.live.update(self._table(jobs))
            else:
                self._announce(jobs)
            self.seen = {job.number: job.status for job in jobs}

    def _read(self, path: Path) -> JobState:
        if path in self.ended:
            return self.ended[path]
        job = read_job(path)
        if job.status in ENDED:
            self.ended[path] = job
        return job

    def _loop(self) -> None:
        while not self.stopped.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # a folder mid-write: read again next time
                continue

    def _announce(self, jobs: list[JobState]) -> None:
        for job in jobs:
            before = self.seen.get(job.number)
            if before is None:
                self.console.print(f"job {job.number} started: {self._config(job)}")
            if job.status in ENDED and before not in ENDED:
                self.console.print(f"job {job.number} {job.status}: {self._outcome(job)}")

    def _config(self, job: JobState) -> str:
        shown = [f"{k}={job.overrides[k]}" for k in self.swept if k in job.overrides]
        return " ".join(shown) or " ".join(f"{k}={v}" for k, v in job.overrides.items())

    def _outcome(self, job: JobState) -> str:
        if job.error:
            return job.error
        parts = [f"epoch {job.epoch}/{job.epochs}"]
        if job.monitor and job.value is not None:
            parts.append(f"{job.monitor} {format_value(job.value)}")
        if job.wall_seconds is not None:
            parts.append(f"{job.wall_seconds:.1f} s")
        return ", ".join(parts)

    def _table(self, jobs: list[JobState]):
        from rich.markup import escape

        headings = ("job", "configuration", "seed", "status", "epoch", "latest")
        table = rich_table(headings, title=f"sweep {escape(str(self.sweep_dir))}", simple=False)
        for job in jobs:
            shown = [f"{k}={job.overrides[k]}" for k in self.swept if k in job.overrides]
            shown = [text for text in shown if not text.startswith(f"{SEED_KEY}=")]
            latest = f"{job.monitor} {format_value(job.value)}" if job.value is not None else ""
            table.add_row(
                job.number,
                escape(" ".join(shown)),
                escape(job.overrides.get(SEED_KEY, "")),
                f"[{STYLES.get(job.status, 'red')}]{escape(job.status)}[/]",
                f"{job.epoch or 0}/{job.epochs or '?'}",
                escape(latest),
            )
        return table


def swept_keys(task_overrides: list[str]) -> list[str]:
    """The keys a sweep varies (`optimizer=sgd,adam`, `seed=range(5)`), in command order,
    without the `+` of a key that is added, as the jobs' overrides.yaml has them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(task_overrides)
    return [o.get_key_element().lstrip("+") for o in parsed if o.is_sweep_override()]
