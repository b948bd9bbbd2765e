"""The debug modes: fast, overfit, profile, anomaly; their folders, reports and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from dlrun.outputs.run_folder import read_rows
from dlrun.tools import debug_overfit
from dlrun.training import anomaly
from tests.conftest import SMOKE, run_dlrun, run_folders

MLP = (*SMOKE, "model=mlp")


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_fast_goes_through_a_checkpoint_a_resume_and_the_plots(workdir):
    result = run_dlrun("debug=fast", *MLP, cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    assert "_debug-fast_mlp_sgd" in folder.name
    summary = summary_of(folder)
    checks = {check["what"]: check["ok"] for check in summary["debug"]["checks"]}
    assert checks == dict.fromkeys(
        ["training step", "test batch", "checkpoint", "resume", "summary.json", "plots"], True
    )
    assert summary["epochs_run"] == 2 and summary["resumed_from"][-1]["epoch"] == 1
    rows = read_rows(folder)
    assert len(rows) == 2
    timings = read_rows(folder, "timings.csv")
    assert all(
        row["train_samples_per_s"] * row["train_seconds"] == pytest.approx(64) for row in timings
    )
    assert "debug=fast checked:" in result.stdout + result.stderr


def test_overfit_learns_its_batches_scored_on_them(workdir):
    result = run_dlrun(
        "debug=overfit",
        *MLP,
        "debug.batches=2",
        "trainer.epochs=60",
        "optimizer=adam",
        "regularizer=[early_stopping]",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    found = summary_of(folder)["debug"]
    assert found["learnt"] is True and found["samples"] == 128
    assert found["because"].startswith("accuracy ") and ">= 0.99" in found["because"]
    printed = result.stdout + result.stderr
    assert "early stopping set aside" in printed
    assert "in a new order each epoch" in printed
    # It stopped at the first epoch that met the criterion, not by early stopping.
    rows = read_rows(folder)
    assert len(rows) < 60 and rows[-1]["test_acc"] >= 0.99
    assert all(row["test_acc"] < 0.99 for row in rows[:-1])
    assert f"Stopped after epoch {len(rows)}: the batches are learnt" in printed


def test_overfit_that_fails_names_what_to_check_and_the_frozen_layers(workdir):
    # All-zero weights: no gradient reaches the hidden layers, so they never change.
    result = run_dlrun("debug=overfit", *MLP, "init=zeros", "trainer.epochs=5", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    found = summary_of(folder)["debug"]
    assert found["learnt"] is False
    checks = " | ".join(found["check"])
    assert "the learning rate:" in checks and "dlrun-lr-find" in checks
    assert "the loss: trainer.loss=auto gives cross_entropy" in checks
    assert "10 classes among the samples" in checks
    assert "1.weight" in checks.split("a frozen layer: ")[1]
    assert "NOT learnt" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("losses", "said", "rate"),
    [
        ([2.3, 2.31, 2.4], "rose from 2.3 to 2.4", "high"),
        ([2.3, 0.2, 0.9], "fell to 0.2 (epoch 2), then climbed back to 0.9", "high"),
        ([2.3, 2.25, 2.2], "hardly fell (2.3 to 2.2)", "low"),
        ([2.3, 1.0, 0.5], "fell (2.3 to 0.5), not far enough", "low"),
    ],
)
def test_overfit_reads_the_rate_from_how_the_loss_moved(losses, said, rate):
    pace, verdict = debug_overfit._pace(losses)
    assert said in pace and verdict == rate


def test_overfit_judges_regression_against_predicting_the_mean(workdir):
    result = run_dlrun(
        "debug=overfit",
        "dataset=cubic",
        "model=poly_regression",
        "trainer=smoke",
        "trainer.epochs=3",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    assert "x the loss of predicting the mean" in summary_of(folder)["debug"]["because"]


def test_profile_writes_a_trace_and_the_top_operators(workdir):
    result = run_dlrun("debug=profile", *MLP, "debug.warmup=1", "debug.batches=2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    # kineto's own lines stay out of the log on the CPU
    assert "profiler_start" not in result.stderr and "gpuGetDeviceCount" not in result.stderr
    trace = json.loads((folder / "profile_trace.json").read_text())
    assert any(event.get("name") == "aten::addmm" for event in trace["traceEvents"])
    found = summary_of(folder)["debug"]
    names = [row["name"] for row in found["top_operators"]]
    assert len(names) == 10 and not any(name.startswith("ProfilerStep") for name in names)
    assert found["step_ms"] > 0
    assert "Top operators by self CPU time" in result.stdout + result.stderr


def test_anomaly_names_the_first_module_whose_output_is_not_finite(workdir):
    result = run_dlrun("debug=anomaly", *MLP, "optimizer.lr=1e12", cwd=workdir)
    assert result.returncode == 3
    assert "the forward output of module 3 (Linear) holds inf" in result.stderr
    (folder,) = run_folders(workdir)
    summary = summary_of(folder)
    assert summary["status"] == "diverged"
    assert summary["debug"]["found"]["module"] == "module 3 (Linear)"


def test_anomaly_finds_nothing_in_a_sound_run(workdir):
    result = run_dlrun("debug=anomaly", *MLP, cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    assert summary_of(folder)["debug"] == {"mode": "anomaly", "found": None}
    assert (
        "no module's output or gradient was NaN or infinite in 16 steps"
        in result.stderr + result.stdout
    )


class ZeroRoot(nn.Module):
    """sqrt(0 * x): finite forward; backward d/dx = 0 * 1/(2 sqrt(0)) = 0 * inf = nan."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x * 0.0)


def test_anomaly_puts_a_backward_nan_down_to_its_module():
    model = nn.Sequential(nn.Linear(3, 3), ZeroRoot(), nn.Linear(3, 1))
    state = type("State", (), {"epoch": 0, "step": 6})
    with pytest.raises(anomaly.NonFinite) as found, anomaly.watch(model, state):
        model(torch.ones(2, 3)).sum().backward()
    assert found.value.module == "module 1 (ZeroRoot)"
    assert "in the backward of module 1 (ZeroRoot)" in str(found.value)
    assert "at step 7 (epoch 1)" in str(found.value)
    assert not model[0]._forward_hooks  # the watch leaves no hook behind


@pytest.mark.parametrize(
    ("arguments", "phrase"),
    [
        (("debug=nope",), "debug has no option 'nope'"),
        (("debug=overfit", "debug.batches=0"), "debug.batches=0 is out of range: use >= 1"),
        (("debug=[fast,overfit]",), "debug takes one option at a time"),
        (("debug.batches=3",), "add debug=anomaly|fast|overfit|profile"),
    ],
)
def test_bad_debug_input_exits_with_one_paragraph(workdir, arguments, phrase):
    result = run_dlrun(*SMOKE, *arguments, cwd=workdir)
    assert result.returncode == 2
    assert phrase in result.stderr
    assert "Traceback" not in result.stderr


def test_reports_mark_debug_runs_and_leave_them_out_of_comparisons(workdir):
    sweep = workdir / "sweep"
    result = run_dlrun(
        "-m",
        *MLP,
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    debug = run_dlrun("debug=fast", *MLP, f"hydra.run.dir={sweep}/9_debug", cwd=workdir)
    assert debug.returncode == 0, debug.stderr
    from dlrun.reporting.folders import build_report

    report = build_report(sweep)
    notes = {run.path.name: run.notes for run in report.runs}
    assert notes["9_debug"] == ["made by debug=fast: not compared"]
    compared = [run.path.name for run in report.compared]
    assert compared == ["0_mlp_sgd_digits_smoke_0", "1_mlp_sgd_digits_smoke_1"]
    assert report.seeds is not None


def test_fused_sweeps_run_debug_jobs_alone(workdir):
    sweep = workdir / "sweep"
    result = run_dlrun(
        "-m",
        "hydra/launcher=fused",
        "debug=fast",
        *MLP,
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stderr.count("debug=fast: a debug run runs alone")
        + result.stdout.count("debug=fast: a debug run runs alone")
        == 2
    )
