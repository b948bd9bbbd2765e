"""A fault soak: SIGKILLs at random moments, some inside a checkpoint write, each followed by
a resume. The run ends with the files of a run never stopped, and nothing half-written.

The default suite kills twice (once inside a write) across 6 epochs;
`pytest -m slow tests/test_soak.py -s` kills ten times across 20 epochs and prints how many
steps the resumes repeated.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SMOKE, run_dlrun

from dlrun.outputs.io import read_csv_rows

STEPS_PER_EPOCH = 64  # 512 samples, batches of 8
RUN = (
    *SMOKE,
    "model=mlp",
    "model.hidden=[32]",
    "trainer.batch_size=8",
    "trainer.checkpoint_every=16",
    "diagnostics.every_n_steps=1",  # a row per step: how far each process got
)

# In a process started with SLOW_WRITES=1, checkpoint writes take a tenth of a second between
# writing the bytes and renaming them into place, so that kills aimed at a write land inside
# one. Other processes write at full speed: their kills show what a resume repeats.
SLOW_WRITES = """
import os
import time

from dlrun.outputs import io, run_folder


def slow_write(path, write, durable=True):
    def slowly(handle):
        write(handle)
        handle.flush()
        if os.environ.get("SLOW_WRITES"):
            time.sleep(0.1)

    io.atomic_write(path, slowly, durable)


run_folder.atomic_write = slow_write
"""


def start(workdir: Path, epochs: int, slow: bool, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    env.pop("DLRUN_DATA", None)
    if slow:
        env["SLOW_WRITES"] = "1"
    run = (*RUN, f"trainer.epochs={epochs}", "plugins=[slow_writes]", "hydra.run.dir=soaked")
    return subprocess.Popen(
        [sys.executable, "-m", "dlrun", *run, *extra],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def reached(folder: Path) -> int:
    """The last step whose row reached diagnostics.csv."""
    rows = read_csv_rows(folder / "diagnostics.csv")
    return max((row["step"] for row in rows), default=0)


def checkpoint_step(folder: Path) -> int:
    last = folder / "checkpoints" / "last.pt"
    return torch.load(last, weights_only=True)["step"] if last.is_file() else 0


def wait_then_kill(process: subprocess.Popen, folder: Path, rng: random.Random, aimed: bool):
    """Kill the process once it has trained a random number of steps past where it started
    (counted in steps, so that a faster machine kills as often), or (aimed) once it has
    trained a few and is writing a checkpoint."""
    target = reached(folder) + (8 if aimed else rng.randint(8, 88))
    deadline = time.monotonic() + 120
    while reached(folder) < target:
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.005)
    while aimed and not list((folder / "checkpoints").glob(".last.pt.*.tmp")):
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    if process.poll() is not None:
        return False
    process.kill()
    process.wait(timeout=60)
    return True


def soak(workdir: Path, kills: int, epochs: int, seed: int) -> dict[str, float]:
    (workdir / "slow_writes.py").write_text(SLOW_WRITES)
    folder, rng = workdir / "soaked", random.Random(seed)
    repeated: dict[bool, list[int]] = {False: [], True: []}  # by whether the kill was aimed
    from_epoch_start = []
    process, landed = start(workdir, epochs, slow=False), 0
    while landed < kills:
        aimed = landed % 2 == 1
        if not wait_then_kill(process, folder, rng, aimed):
            break
        landed += 1
        json.loads((folder / "summary.json").read_text())  # whole, whenever it was killed
        got, resumes_at = reached(folder), checkpoint_step(folder)
        repeated[aimed].append(got - resumes_at)
        from_epoch_start.append(got % STEPS_PER_EPOCH)  # what epoch checkpoints repeat
        process = start(workdir, epochs, landed % 2 == 1, "trainer.resume=soaked")
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert landed == kills, f"the run ended after {landed} kills"

    whole = (*RUN, f"trainer.epochs={epochs}", "hydra.run.dir=whole")
    reference = run_dlrun(*whole, cwd=workdir)
    assert reference.returncode == 0, reference.stderr
    for name in ("metrics.csv", "steps.csv", "diagnostics.csv"):
        if (workdir / "whole" / name).exists():
            assert (folder / name).read_bytes() == (workdir / "whole" / name).read_bytes(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert len(summary["resumed_from"]) == kills
    for name in ("metrics.csv", "timings.csv", "diagnostics.csv", "init_stats.csv"):
        read_csv_rows(folder / name)
    for checkpoint in (folder / "checkpoints").glob("*.pt"):
        torch.load(checkpoint, weights_only=True)
    assert not [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".link"))]
    return {
        "kills": landed,
        "resumes": len(summary["resumed_from"]),
        "steps_repeated_random_kills": _mean(repeated[False]),
        "steps_repeated_kills_in_a_slow_write": _mean(repeated[True]),
        "steps_repeated_with_epoch_checkpoints_only": _mean(from_epoch_start),
    }


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def test_two_kills_lose_nothing_and_the_run_ends_as_one_never_stopped(workdir):
    soak(workdir, kills=2, epochs=6, seed=7)


@pytest.mark.slow
def test_ten_kills_across_twenty_epochs(workdir):
    figures = soak(workdir, kills=10, epochs=20, seed=11)
    print("soak:", json.dumps(figures))
