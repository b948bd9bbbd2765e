"""dlrun-lr-find: the range test's loop, the command, its folder, its errors, its sweeps."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from dlrun.outputs.run_folder import read_rows
from dlrun.training.lr_range import learning_rates, range_test
from tests.conftest import SMOKE, call_main, run_dlrun

FEW = ("lr_find.steps=30",)


def lr_find(*args: str, cwd: Path):
    """`dlrun-lr-find ARGS` in this process: its exit status and output."""
    from dlrun.cli import lr_find as command

    argv, saved = ["dlrun-lr-find", *args], sys.argv
    sys.argv = argv
    try:
        return call_main(command.main, argv, cwd)
    finally:
        sys.argv = saved
        from tests.conftest import _close_log_handlers

        _close_log_handlers()


class FakeSteps:
    """Steps whose loss is a function of the learning rate of the first group."""

    def __init__(self, loss_at, ratio: float = 10.0) -> None:
        model = torch.nn.Linear(2, 1)
        groups = [{"params": [model.weight], "lr": 1.0}, {"params": [model.bias], "lr": ratio}]
        self.state = type("State", (), {"optimizer": torch.optim.SGD(groups), "progress": None})
        self.loss_at, self.seen = loss_at, []

    def begin_epoch(self) -> None:
        self.state.progress = object()

    def batches(self):
        return iter([(None, False), (None, True)])

    def step(self, batch):
        lrs = [group["lr"] for group in self.state.optimizer.param_groups]
        self.seen.append(lrs)
        return torch.tensor(self.loss_at(lrs[0]), requires_grad=True), {}, 1


def test_rates_rise_geometrically_and_every_group_keeps_its_ratio():
    steps = FakeSteps(lambda lr: 1.0, ratio=10.0)
    lrs = learning_rates(1e-6, 1.0, 7)
    test = range_test(steps, lrs, diverge=4.0)
    assert test.lrs == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert [second / first for first, second in steps.seen] == pytest.approx([10.0] * 7)
    assert test.stopped.startswith("it reached max_lr")


def test_the_test_stops_when_the_smoothed_loss_passes_the_threshold():
    steps = FakeSteps(lambda lr: 1.0 if lr < 1e-2 else 1e3)
    test = range_test(steps, learning_rates(1e-6, 10.0, 50), diverge=4.0)
    assert len(test.lrs) < 50
    assert "passed 4x its best" in test.stopped
    assert test.lrs[-1] >= 1e-2


def test_the_test_stops_at_a_loss_that_is_not_finite():
    steps = FakeSteps(lambda lr: 1.0 if lr < 1e-3 else math.nan)
    test = range_test(steps, learning_rates(1e-6, 10.0, 50), diverge=4.0)
    assert math.isnan(test.losses[-1])
    assert "became nan" in test.stopped


def test_the_command_writes_its_folder_and_prints_the_suggestion(workdir):
    result = lr_find(*SMOKE, "model=mlp", "optimizer=sgd", "scheduler=step", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = [p for p in (workdir / "outputs").glob("*/*")]
    assert "_lr-find_mlp_sgd" in folder.name
    rows = read_rows(folder, "lr_find.csv")
    assert list(rows[0]) == ["step", "lr", "loss", "smoothed"]
    assert rows[0]["lr"] == pytest.approx(1e-7)
    ratios = [b["lr"] / a["lr"] for a, b in zip(rows, rows[1:], strict=False)]
    assert ratios == pytest.approx([ratios[0]] * len(ratios))
    assert (folder / "lr_find.png").stat().st_size > 10_000
    found = json.loads((folder / "summary.json").read_text())["lr_find"]
    assert 1e-7 <= found["suggested_lr"] <= 10
    assert found["command"].startswith("dlrun dataset=digits trainer=smoke model=mlp")
    assert "lr_find" not in found["command"] and "scheduler=step" in found["command"]
    printed = result.stdout + result.stderr
    assert "scheduler=step set aside" in printed
    assert f"Train with it: {found['command']}" in printed
    assert not (folder / "metrics.csv").exists()


def test_a_loss_that_never_falls_suggests_nothing_and_is_no_error(workdir):
    tiny = ("lr_find.min_lr=1e-12", "lr_find.max_lr=1e-11", *FEW)
    result = lr_find(*SMOKE, "model=mlp", *tiny, cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = list((workdir / "outputs").glob("*/*"))
    found = json.loads((folder / "summary.json").read_text())["lr_find"]
    assert found["suggested_lr"] is None and found["command"] is None
    assert "never fell" in found["reason"]
    assert "No learning rate suggested" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        ("dataset=text", "model=char_rnn", "trainer=smoke", "optimizer=adam"),
        ("dataset=cubic", "model=poly_regression", "trainer=smoke", "optimizer=momentum"),
        (*SMOKE, "model=lenet", "optimizer=rmsprop", "regularizer=[l2,grad_clip]"),
    ],
    ids=["char_lstm", "regression", "lenet"],
)
def test_every_task_gets_a_finite_curve(workdir, overrides):
    result = lr_find(*overrides, *FEW, cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = list((workdir / "outputs").glob("*/*"))
    rows = read_rows(folder, "lr_find.csv")
    assert math.isfinite(rows[0]["loss"]) and len(rows) >= 8


@pytest.mark.parametrize(
    ("arguments", "phrase"),
    [
        (("lr_find.min_lr=1", "lr_find.max_lr=0.1"), "is not below lr_find.max_lr=0.1"),
        (("lr_find.steps=0",), "lr_find.steps=0 is out of range"),
        (("lr_find.diverge=1",), "lr_find.diverge=1.0 is out of range"),
        (("debug=fast",), "run one at a time"),
    ],
)
def test_bad_settings_exit_with_one_paragraph(workdir, arguments, phrase):
    result = lr_find(*SMOKE, *arguments, cwd=workdir)
    assert result.returncode == 2
    assert phrase in result.stderr
    assert "Traceback" not in result.stderr


def test_the_finders_keys_without_the_finder_are_refused(workdir):
    result = run_dlrun(*SMOKE, "lr_find.steps=5", cwd=workdir)
    assert result.returncode == 2
    assert "use dlrun-lr-find" in result.stderr


def test_a_sweep_runs_one_finder_per_job_and_reports_their_suggestions(workdir):
    sweep = workdir / "sweep"
    result = lr_find(
        "-m", *SMOKE, "optimizer=sgd,adam", *FEW, f"hydra.sweep.dir={sweep}", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    names = [
        "0_lr-find_lenet_sgd_digits_smoke_steps30",
        "1_lr-find_lenet_adam_digits_smoke_steps30",
    ]
    assert [job.name for job in jobs] == names
    assert all((job / "lr_find.csv").is_file() for job in jobs)
    table = (sweep / "sweep_summary.csv").read_text()
    assert "suggested_lr" in table.splitlines()[0]
    assert table.count("made by lr-find: not compared") == 2


def test_the_python_api_returns_the_run_with_its_curve(tmp_path):
    import dlrun

    run = dlrun.lr_find([*SMOKE, "optimizer=adam", *FEW], output_dir=tmp_path / "find")
    assert run.path == tmp_path / "find"
    assert run.summary["lr_find"]["steps_run"] == len(run.lr_curve)
    assert list(run.lr_curve.columns) == ["step", "lr", "loss", "smoothed"]


def test_a_fall_to_the_baseline_only_is_no_suggestion():
    from dlrun.diagnostics.lr_suggestion import Suggestion
    from dlrun.tools.lr_find import beyond_baseline

    found = Suggestion(0.02, 40, "steepest fall", [2.5, 2.45, 2.33, math.nan])
    withheld = beyond_baseline(found, baseline=2.3026, steps=100)
    assert withheld.lr is None and withheld.smoothed == found.smoothed
    assert "no lower than a model that ignores its inputs (2.3)" in withheld.reason
    assert "(lr_find.steps=1000)" in withheld.reason
    assert "(lr_find.steps=10000)" in beyond_baseline(found, baseline=2.3, steps=1000).reason
    assert beyond_baseline(found, baseline=2.6, steps=100) is found
    assert beyond_baseline(found, baseline=None, steps=100) is found
