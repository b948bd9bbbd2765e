"""A fused sweep killed (SIGKILL) at any point and run again ends with the files of the same
sweep never stopped: its members' checkpoints become current together (sweeps/fused/commit.py).

Kills are placed in steps, saves and commits, not in seconds, by a plugin module that each
sweep process imports (`plugins=[kill_at]`): the same points on any machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMOKE

# 512 samples in batches of 64: 8 steps an epoch; step checkpoints every 3 steps.
RUN = (
    *SMOKE,
    "model=mlp",
    "model.hidden=[32]",
    "model.dropout=[0.3]",  # each member draws its masks from its own random state
    "trainer.checkpoint_every=3",
    "trainer.log_every_n_steps=1",
    "diagnostics.every_n_steps=2",
    "hydra/launcher=fused",
    "plugins=[kill_at]",
)
THREE_SEEDS = (*RUN, "trainer.epochs=3", "seed=0,1,2")
# The member of 2 epochs leaves after its last; the other trains its third as a group of one.
TWO_LENGTHS = (*RUN, "trainer.epochs=2,3", "seed=0")
FILES = ("metrics.csv", "steps.csv", "diagnostics.csv", "init_stats.csv")

KILL_AT = """
import os
import signal

from dlrun.sweeps.fused import commit
from dlrun.recipe import recipe
from dlrun.recipe.checkpoints import Checkpoints
from dlrun.training import engine

POINT, AT = os.environ.get("KILL_POINT", ""), int(os.environ.get("KILL_AT", "0"))
counts = {}


def reached(point):
    counts[point] = counts.get(point, 0) + 1
    return point == POINT and counts[point] == AT


def die():
    os.kill(os.getpid(), signal.SIGKILL)


record_step = engine.record_step


def record_then_die(totals, loss, sums, count, step, log_every):
    record_step(totals, loss, sums, count, step, log_every)
    if reached("step"):
        die()


def on_save(save):
    def save_or_die(self, *args):
        if reached("save"):  # the members saved before this one are on disk
            for member in saving:
                member.wait()
            die()
        saving.add(self)
        save(self, *args)

    return save_or_die


saving = set()
apply = commit._apply


def apply_one_then_die(sweep_dir, entries):
    if reached("commit"):
        apply(sweep_dir, entries[:1])
        die()
    apply(sweep_dir, entries)


finish = recipe.Recipe.finish


def finish_or_die(self):
    if reached("finish"):
        die()
    return finish(self)


engine.record_step = record_then_die
Checkpoints.save_step = on_save(Checkpoints.save_step)
Checkpoints.save_epoch = on_save(Checkpoints.save_epoch)
commit._apply = apply_one_then_die
recipe.Recipe.finish = finish_or_die
"""


def sweep(
    workdir: Path, args: tuple[str, ...], name: str, point: str = "", at: int = 0
) -> subprocess.CompletedProcess:
    (workdir / "kill_at.py").write_text(KILL_AT)
    env = {k: v for k, v in os.environ.items() if k != "DLRUN_DATA"}
    env.update({"OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0", "KILL_POINT": point})
    env["KILL_AT"] = str(at)
    return subprocess.run(
        [sys.executable, "-m", "dlrun", "-m", *args, f"hydra.sweep.dir={name}"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def members(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def never_stopped(tmp_path_factory, args: tuple[str, ...], runs: int) -> Path:
    workdir = tmp_path_factory.mktemp("whole")
    done = sweep(workdir, args, "whole")
    assert done.returncode == 0, done.stderr
    assert f"train as one program ({runs} runs)" in done.stdout
    return workdir / "whole"


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    return never_stopped(tmp_path_factory, THREE_SEEDS, 3)


def assert_as_never_stopped(folder: Path, whole: Path) -> None:
    for member, reference in zip(members(folder), members(whole), strict=True):
        for name in FILES:
            assert (member / name).read_bytes() == (reference / name).read_bytes(), name
        summary = json.loads((member / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert summary["epochs_run"] == summary["epochs_planned"]
        leftovers = [*member.glob(".*.*"), *(member / "checkpoints").glob(".*")]
        assert not leftovers, leftovers
    assert not list(folder.glob(".group-commit-*"))


@pytest.mark.parametrize(
    ("point", "at"),
    [
        pytest.param("step", 2, id="before-the-first-checkpoint"),
        pytest.param("step", 14, id="mid-epoch"),
        pytest.param("save", 2, id="between-two-members-step-checkpoints"),
        pytest.param("save", 8, id="between-two-members-epoch-checkpoints"),
        pytest.param("commit", 4, id="between-two-renames-of-a-commit"),
        pytest.param("finish", 2, id="after-the-last-epoch"),
    ],
)
def test_a_killed_fused_sweep_ends_as_one_never_stopped(workdir, whole, point, at):
    killed = sweep(workdir, THREE_SEEDS, "s", point, at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = sweep(workdir, THREE_SEEDS, "s")
    assert again.returncode == 0, again.stderr
    assert "train as one program (3 runs)" in again.stdout
    if point == "finish":  # every member was done: none trains again
        assert "runs fused |" not in again.stdout
        for member in members(workdir / "s"):
            assert (member / "train.log").read_text().count("epoch 3/3  train") == 1
    assert_as_never_stopped(workdir / "s", whole)


def test_the_last_member_left_in_its_group_resumes_as_it_trained(workdir, tmp_path_factory):
    """Killed in the longer member's last epoch, after the shorter one ended: on the rerun
    they stand at different steps, and the longer one trains stacked, as it did unstopped."""
    whole = never_stopped(tmp_path_factory, TWO_LENGTHS, 2)
    killed = sweep(workdir, TWO_LENGTHS, "s", "step", 20)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = sweep(workdir, TWO_LENGTHS, "s")
    assert again.returncode == 0, again.stderr
    assert_as_never_stopped(workdir / "s", whole)


def test_a_recorded_commit_is_finished_and_a_stale_record_changes_nothing(tmp_path):
    from dlrun.sweeps.fused.commit import RECORD, recover

    a, b, c = (tmp_path / name / "checkpoints" for name in ("0_a", "1_b", "2_c"))
    for folder in (a, b, c):
        folder.mkdir(parents=True)
        (folder / "last.pt").write_bytes(b"old")
    (a / ".last.pt.x.staged").write_bytes(b"new a")  # killed before this rename
    (b / "last.pt").write_bytes(b"new b")  # renamed, and linked as best first
    (b / "best.pt").write_bytes(b"new b")
    entries = [
        [f"{m}/checkpoints/.last.pt.x.staged", f"{m}/checkpoints/last.pt", None]
        for m in ("0_a", "1_b")
    ]
    entries[0][2] = "0_a/checkpoints/best.pt"
    (tmp_path / RECORD.format(name="x")).write_text(json.dumps(entries))
    # A record whose staged files a later setup removed: c keeps what it has.
    stale = [
        ["2_c/checkpoints/.last.pt.y.staged", "2_c/checkpoints/last.pt", "2_c/checkpoints/best.pt"]
    ]
    (tmp_path / RECORD.format(name="y")).write_text(json.dumps(stale))

    recover(tmp_path)

    assert (a / "last.pt").read_bytes() == (a / "best.pt").read_bytes() == b"new a"
    assert (b / "last.pt").read_bytes() == b"new b"
    assert (c / "last.pt").read_bytes() == b"old" and not (c / "best.pt").exists()
    assert not list(tmp_path.glob(".group-commit-*")) and not list(a.glob("*.staged"))
