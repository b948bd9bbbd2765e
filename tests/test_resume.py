"""Resume from any step: step checkpoints, overrides on resume, one writer per run folder."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from conftest import SMOKE, call_main, run_dlrun

from dlrun.errors import DlrunError
from dlrun.outputs.lock import FolderLock
from dlrun.recipe.checkpoints import Checkpoints

MLP = (*SMOKE, "model=mlp", "model.hidden=[32]", "diagnostics.layer_norms=false")
FILES = ("metrics.csv", "steps.csv", "diagnostics.csv", "generated.txt")


class Killed(BaseException):
    """Stands for a SIGKILL right after a checkpoint reached the disk."""


def kill_after_checkpoint(monkeypatch, step: int) -> None:
    save = Checkpoints.save_step

    def save_then_die(self, state):
        save(self, state)
        if state.step == step:
            self.writer.wait()
            raise Killed

    monkeypatch.setattr(Checkpoints, "save_step", save_then_die)


def trained(workdir: Path, name: str, *overrides: str):
    result = run_dlrun(*overrides, f"hydra.run.dir={name}", cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    return workdir / name


def assert_same_files(folder: Path, reference: Path) -> None:
    for name in FILES:
        if (reference / name).exists() or (folder / name).exists():
            assert (folder / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param((*MLP, "trainer.log_every_n_steps=2"), id="tensor"),
        pytest.param((*MLP, "trainer.data_path=dataloader"), id="dataloader"),
        pytest.param((*SMOKE, "experiment=dropout_mlp", "trainer.batch_size=64"), id="dropout"),
        pytest.param(
            ("experiment=char_lstm", "trainer=smoke", "trainer.max_train_samples=null"), id="text"
        ),
    ],
)
def test_a_run_killed_after_a_step_checkpoint_resumes_inside_the_epoch(
    workdir, monkeypatch, overrides
):
    run = (*overrides, "trainer.checkpoint_every=3", "trainer.epochs=2")
    reference = trained(workdir, "whole", *run)
    steps = json.loads((reference / "summary.json").read_text())["epochs_run"]
    assert steps == 2
    kill_after_checkpoint(monkeypatch, step=3)
    with pytest.raises(Killed):
        run_dlrun(*run, "hydra.run.dir=cut", cwd=workdir)
    monkeypatch.undo()
    checkpoint = torch.load(workdir / "cut/checkpoints/last.pt", weights_only=True)
    epoch, batches = checkpoint["epoch"], checkpoint["progress"]["batches"]
    assert checkpoint["step"] == 3 and batches > 0  # inside an epoch

    resumed = trained(workdir, "cut", *run, "trainer.resume=cut")
    assert_same_files(resumed, reference)
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["status"] == "completed"
    resumes = [(r["epoch"], r["step"], r["batches_into_epoch"]) for r in summary["resumed_from"]]
    assert resumes == [(epoch, 3, batches)]


def test_a_run_killed_before_its_first_checkpoint_starts_again_from_the_beginning(workdir):
    reference = trained(workdir, "whole", *MLP)
    cut = trained(workdir, "cut", *MLP)
    for leftover in (cut / "checkpoints").iterdir():  # as if killed in its first steps
        leftover.unlink()
    summary = json.loads((cut / "summary.json").read_text())
    (cut / "summary.json").write_text(json.dumps({**summary, "status": "running"}))

    result = run_dlrun(*MLP, "trainer.resume=cut", "hydra.run.dir=cut", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "no checkpoint yet: starting the run from the beginning" in result.stdout
    assert_same_files(cut, reference)
    resumes = json.loads((cut / "summary.json").read_text())["resumed_from"]
    assert [(r["epoch"], r["step"]) for r in resumes] == [(0, 0)]


def test_a_resume_applies_a_new_lr_and_epochs_and_says_so(workdir):
    folder = trained(workdir, "run", *MLP, "trainer.epochs=1")
    result = run_dlrun(
        *MLP,
        "trainer.epochs=2",
        "optimizer.lr=0.05",
        "trainer.resume=run",
        "hydra.run.dir=run",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert "on resume, optimizer.lr: 0.1 -> 0.05" in result.stdout
    lrs = [line.split(",")[-1] for line in (folder / "metrics.csv").read_text().splitlines()]
    assert lrs == ["lr", "0.1", "0.05"]
    (resume,) = json.loads((folder / "summary.json").read_text())["resumed_from"]
    assert resume["changed"] == {"optimizer.lr": [0.1, 0.05], "trainer.epochs": [1, 2]}


def test_a_resume_refuses_what_it_cannot_change_and_lists_both_values(workdir):
    folder = trained(workdir, "run", *MLP, "trainer.epochs=1")
    before = (folder / "summary.json").read_bytes()
    result = run_dlrun(
        *MLP,
        "trainer.batch_size=32",
        "seed=3",
        "optimizer.lr=0.05",
        "trainer.resume=run",
        "hydra.run.dir=run",
        cwd=workdir,
    )
    assert result.returncode == 2
    message = result.stderr
    assert "seed: 0 in the run, 3 now" in message
    assert "trainer.batch_size: 64 in the run, 32 now" in message
    assert "optimizer.lr" not in message.split("A resume may change only")[0]
    assert "the run's own overrides: dataset=digits trainer=smoke model=mlp" in message
    assert (folder / "summary.json").read_bytes() == before  # nothing written


def test_a_second_writer_of_a_run_folder_stops_at_once_naming_the_holder(workdir):
    folder = trained(workdir, "run", *MLP, "trainer.epochs=1")
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}
    with FolderLock(folder):  # another run writing it
        result = run_dlrun(*MLP, "trainer.resume=run", "hydra.run.dir=run", cwd=workdir)
        assert result.returncode == 2
        assert "is in use by another dlrun run" in result.stderr
        assert f"pid {os.getpid()} on {socket.gethostname()}" in result.stderr
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}
    after.pop("train.log")  # the refused command's own log lines
    before.pop("train.log")
    assert after == before


def run_dlrun_report(workdir: Path) -> str:
    from dlrun.cli import report

    result = call_main(lambda: report.main([str(workdir)]), ["dlrun-report"], workdir)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_run_that_says_running_but_holds_no_lock_was_killed(workdir):
    import dlrun

    folder = trained(workdir, "run", *MLP, "trainer.epochs=1")
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    (folder / ".lock").write_text("pid 999999 on a-machine-long-gone\n")  # a stale lock

    assert dlrun.load(folder).status == "killed"
    report = run_dlrun_report(workdir)
    assert "killed" in report and "last checkpoint checkpoints/last.pt" in report
    with FolderLock(folder):
        assert dlrun.load(folder).status == "running"
    result = run_dlrun(
        *MLP, "trainer.epochs=2", "trainer.resume=run", "hydra.run.dir=run", cwd=workdir
    )
    assert result.returncode == 0, result.stderr  # the stale lock did not block
    assert dlrun.load(folder).status == "completed"


def test_a_folder_that_cannot_be_locked_is_one_paragraph(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DlrunError, match="Cannot lock the run folder .*file/run"):
        FolderLock(tmp_path / "file" / "run").acquire()


def test_leftover_temp_files_of_a_killed_write_are_removed_on_resume(workdir):
    folder = trained(workdir, "run", *MLP, "trainer.epochs=1")
    (folder / "checkpoints" / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    (folder / ".metrics.csv.a1b2.tmp").write_text("epoch,")
    trained(workdir, "run", *MLP, "trainer.epochs=2", "trainer.resume=run")
    assert not list(folder.rglob("*.tmp"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500", (500, None)),
        ("60s", (None, 60.0)),
        ("1.5m", (None, 90.0)),
        ("2h", (None, 7200.0)),
        ("0", (None, None)),
    ],
)
def test_checkpoint_every_reads_steps_or_a_time(value, expected):
    from dlrun.config.options.trainer import checkpoint_every

    every = checkpoint_every(value)
    assert (every.steps, every.seconds) == expected


@pytest.mark.parametrize("value", ["5x", "-3", "0s", "soon"])
def test_a_bad_checkpoint_every_is_one_paragraph(workdir, value):
    result = run_dlrun(*MLP, f"trainer.checkpoint_every={value}", cwd=workdir)
    assert result.returncode == 2
    assert f"trainer.checkpoint_every={value} is neither" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_checkpoint_of_a_newer_layout_is_one_paragraph(workdir):
    folder = trained(workdir, "run", *MLP, "trainer.epochs=1")
    checkpoint = torch.load(folder / "checkpoints/last.pt", weights_only=True)
    torch.save({**checkpoint, "format": "dlrun-checkpoint-v2"}, folder / "checkpoints/last.pt")
    result = run_dlrun(*MLP, "trainer.resume=run", "hydra.run.dir=run", cwd=workdir)
    assert result.returncode == 2
    assert "layout dlrun-checkpoint-v2, and this dlrun reads dlrun-checkpoint-v1" in result.stderr


def test_a_checkpoint_of_another_task_is_refused(workdir):
    trained(workdir, "run", *MLP, "trainer.epochs=1")
    result = run_dlrun(
        "experiment=char_lstm",
        "trainer=smoke",
        "trainer.resume=run",
        "hydra.run.dir=run",
        cwd=workdir,
    )
    assert result.returncode == 2
    assert "dataset.name: digits in the run, " in result.stderr


def test_a_mid_epoch_checkpoint_needs_as_many_processes_as_took_it():
    from dlrun.training.checkpoint import restore_state

    checkpoint = {"epoch": 2, "progress": {"ranks": [{}, {}]}}
    with pytest.raises(DlrunError, match="inside epoch 3 by 2 process.*nproc_per_node=2"):
        restore_state(None, checkpoint, rank=0, processes=1)


def test_an_unwritable_run_dir_is_one_paragraph(workdir):
    result = run_dlrun(*MLP, "hydra.run.dir=/proc/dlrun-run", cwd=workdir)
    assert result.returncode == 2
    assert "Cannot create the run folder /proc/dlrun-run" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_sweep_in_a_folder_still_in_use_stops_at_its_first_job(workdir):
    first = run_dlrun(
        "-m", *MLP, "trainer.epochs=1", "seed=0,1", "hydra.sweep.dir=sweep", cwd=workdir
    )
    assert first.returncode == 0, first.stderr
    job = min(p for p in (workdir / "sweep").iterdir() if (p / "summary.json").is_file())
    summary = (job / "summary.json").read_bytes()
    with FolderLock(job):
        again = run_dlrun(
            "-m", *MLP, "trainer.epochs=1", "seed=0,1", "hydra.sweep.dir=sweep", cwd=workdir
        )
    assert again.returncode == 2
    assert again.stderr.count("is in use by another dlrun run") == 1
    assert (job / "summary.json").read_bytes() == summary


@pytest.mark.parametrize("kind", ["a folder", "unwritable"])
def test_a_lock_that_cannot_be_taken_is_one_paragraph(tmp_path, monkeypatch, kind):
    if kind == "a folder":
        (tmp_path / ".lock").mkdir()  # a .lock that is not ours
    else:  # a read-only run folder (root writes anywhere, so the refusal is staged)

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(DlrunError, match="Cannot lock the run folder .*make it writable"):
        FolderLock(tmp_path).acquire()


def test_a_resumed_run_keeps_the_warnings_of_its_layer_norms(workdir, monkeypatch):
    run = (
        *SMOKE,
        "experiment=vanishing_gradients",
        "trainer.batch_size=32",
        "diagnostics.every_n_steps=1",
        "trainer.checkpoint_every=1",
        "trainer.epochs=1",
    )
    reference = trained(workdir, "whole", *run)
    warnings = json.loads((reference / "summary.json").read_text())["warnings"]
    assert warnings and warnings[0]["step"] < 5  # warned before the kill below
    kill_after_checkpoint(monkeypatch, step=5)
    with pytest.raises(Killed):
        run_dlrun(*run, "hydra.run.dir=cut", cwd=workdir)
    monkeypatch.undo()
    resumed = trained(workdir, "cut", *run, "trainer.resume=cut")
    assert json.loads((resumed / "summary.json").read_text())["warnings"] == warnings
    assert_same_files(resumed, reference)
