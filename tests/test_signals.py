"""SIGTERM/SIGINT stop a run between steps, saved; a resume then ends as if never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import SMOKE, run_dlrun, run_folders

# Long enough to stop in the middle (about 3 s of training after the 5 to 10 s start).
SLOW = (*SMOKE, "model=mlp", "trainer.batch_size=8", "trainer.epochs=40")
SLOW += ("diagnostics.layer_norms=false",)


def start(workdir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DLRUN_DATA", None)
    return subprocess.Popen(
        [sys.executable, "-m", "dlrun", *SLOW],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_epochs(workdir: Path, epochs: int, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for metrics in (workdir / "outputs").glob("*/*/metrics.csv"):
            if len(metrics.read_text().splitlines()) > epochs:
                return metrics.parent
        time.sleep(0.05)
    raise AssertionError(f"no run reached {epochs} epochs")


def test_sigterm_stops_saved_and_resume_matches_an_uninterrupted_run(workdir):
    process = start(workdir)
    folder = wait_for_epochs(workdir, 2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "trainer.resume=" in stderr

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["interrupted_at"]["signal"] == "SIGTERM"
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert last["epoch"] == len(rows) - 1 < 40
    assert last["step"] == summary["interrupted_at"]["step"]  # saved at the stop, mid-epoch

    resumed = run_dlrun(*SLOW, f"trainer.resume={folder}", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    fresh = workdir / "fresh"
    fresh.mkdir()
    whole = run_dlrun(*SLOW, cwd=fresh)
    assert whole.returncode == 0, whole.stderr
    (uninterrupted,) = run_folders(fresh)
    assert (folder / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()


def test_a_second_signal_stops_at_once(workdir):
    process = start(workdir)
    wait_for_epochs(workdir, 1)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Traceback" not in stderr
