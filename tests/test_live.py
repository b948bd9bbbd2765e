"""Watching a sweep: a line per job start and end off a terminal, a live table on one."""

from __future__ import annotations

import io
import json
from pathlib import Path

from conftest import SMOKE, run_dlrun
from rich.console import Console

from dlrun.sweeps.live import SweepWatcher, swept_keys


def job(sweep: Path, name: str, overrides: list[str], summary: dict | None, epochs: int = 0):
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    if epochs:
        rows = "".join(f"{e},{0.5 + e / 10}\n" for e in range(1, epochs + 1))
        (folder / "metrics.csv").write_text("epoch,test_acc\n" + rows)
    return folder


def summary(status: str, **more) -> dict:
    return {"status": status, "epochs_planned": 2, "best": {"monitor": "test_acc"}, **more}


def test_off_a_terminal_each_job_gets_a_line_when_it_starts_and_when_it_ends(tmp_path):
    out = io.StringIO()
    watcher = SweepWatcher(tmp_path, ["optimizer", "seed"], Console(file=out, width=200))
    assert not watcher.live_table
    job(tmp_path, "0_sgd", ["optimizer=sgd", "seed=0", "trainer=smoke"], summary("running"), 1)
    watcher.poll()
    assert out.getvalue() == "job 0 started: optimizer=sgd seed=0\n"

    (tmp_path / "0_sgd" / "summary.json").write_text(
        json.dumps(summary("completed", wall_seconds=1.5))
    )
    (tmp_path / "0_sgd" / "metrics.csv").write_text("epoch,test_acc\n1,0.6\n2,0.7\n")
    job(tmp_path, "1_adam", ["optimizer=adam", "seed=0"], summary("failed", error="lr=-1: no"), 0)
    watcher.poll()
    watcher.poll()  # nothing new: nothing printed twice
    assert out.getvalue().splitlines()[1:] == [
        "job 0 completed: epoch 2/2, test_acc 0.7, 1.5 s",
        "job 1 started: optimizer=adam seed=0",
        "job 1 failed: lr=-1: no",
    ]


def test_on_a_terminal_a_live_table_shows_each_jobs_progress(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=150)
    watcher = SweepWatcher(tmp_path, ["optimizer", "seed"], console)
    assert watcher.live_table
    job(tmp_path, "0_sgd", ["optimizer=sgd", "seed=3"], summary("running"), 1)
    job(tmp_path, "1_adam", ["optimizer=adam", "seed=3"], None)
    watcher.start()
    watcher.stop()
    shown = out.getvalue()
    for text in ("optimizer=sgd", "running", "1/2", "test_acc 0.6", "optimizer=adam", "starting"):
        assert text in shown, text


def test_the_swept_keys_are_those_with_several_values():
    overrides = ["optimizer=sgd,adam", "trainer=smoke", "seed=range(3)", "+experiment/x=a,b"]
    assert swept_keys(overrides) == ["optimizer", "seed", "experiment/x"]


def test_a_failed_job_is_announced_as_it_ends_not_only_in_the_report(workdir):
    result = run_dlrun("-m", *SMOKE, "optimizer.lr=0.1,-1,0.05", cwd=workdir)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("job 1 failed: "))
    assert "optimizer.lr=-1" in lines[failed]
    assert lines.index("job 2 started: optimizer.lr=0.05") > failed
    completed = next(i for i, line in enumerate(lines) if line.startswith("job 0 completed: "))
    assert lines[completed].startswith("job 0 completed: epoch 2/2, test_acc ")
    assert completed < lines.index("job 1 started: optimizer.lr=-1") < failed
