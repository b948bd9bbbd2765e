"""`dlrun-eval`: a checkpoint scores again exactly what its run recorded, on the CPU.

Two real smoke runs (seconds each) are shared by the module; the command runs in a
subprocess, as a user runs it.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMOKE, run_dlrun, run_folders

from dlrun.cli.eval_checkpoint import parse_args
from dlrun.errors import DlrunError
from dlrun.outputs.run_folder import folder_of
from dlrun.recipe.evaluation import find_eval_checkpoint


def run_eval(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlrun.cli.eval_checkpoint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def train(cwd: Path, *overrides: str) -> Path:
    result = run_dlrun(*SMOKE, *overrides, cwd=cwd)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(cwd)
    return folder


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory) -> Path:
    """LeNet whose best.pt stays at epoch 1: it monitors the learning rate, which never
    changes and so never improves; best.pt and last.pt are different epochs."""
    return train(tmp_path_factory.mktemp("lenet"), "trainer.monitor=lr")


@pytest.fixture(scope="module")
def dropout_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("dropout"), "model=mlp", "model.dropout=[0.5]")


def metrics_rows(folder: Path) -> dict[int, dict[str, float]]:
    with (folder / "metrics.csv").open(newline="") as handle:
        return {
            int(row["epoch"]): {k: float(v) for k, v in row.items()}
            for row in csv.DictReader(handle)
        }


def test_last_checkpoint_scores_the_last_row_exactly(lenet_run):
    result = run_eval(f"ckpt={lenet_run}", "device=cpu", cwd=lenet_run.parent)
    assert result.returncode == 0, result.stderr

    rows = metrics_rows(lenet_run)
    last = max(rows)
    saved = json.loads((lenet_run / "eval.json").read_text())
    assert saved["epoch"] == last
    assert saved["checkpoint"] == str(lenet_run / "checkpoints" / "last.pt")
    assert saved["device"] == "cpu" and saved["split"] == "test"
    assert saved["samples"] == 256  # trainer=smoke's max_test_samples
    assert saved["metrics"] == {
        "test_loss": rows[last]["test_loss"],
        "test_acc": rows[last]["test_acc"],
    }
    assert "test_acc" in result.stdout and f"epoch {last}" in result.stdout
    assert "eval.json" in result.stdout


def test_best_checkpoint_scores_the_best_epochs_row(lenet_run):
    summary = json.loads((lenet_run / "summary.json").read_text())
    best = summary["best"]["epoch"]
    rows = metrics_rows(lenet_run)
    assert best != max(rows), "the fixture should keep best.pt at an earlier epoch"

    # The checkpoints/ folder works as well as the run folder.
    result = run_eval(str(lenet_run / "checkpoints"), "which=best", cwd=lenet_run.parent)
    assert result.returncode == 0, result.stderr

    saved = json.loads((lenet_run / "eval.json").read_text())
    assert saved["checkpoint"] == str(lenet_run / "checkpoints" / "best.pt")
    assert saved["epoch"] == best
    assert saved["device"] == "cpu"  # the run's trainer.device, by default
    assert saved["metrics"]["test_loss"] == rows[best]["test_loss"]
    assert saved["metrics"]["test_acc"] == rows[best]["test_acc"]


def test_dropout_model_is_evaluated_in_eval_mode(dropout_run, tmp_path):
    out = tmp_path / "result.json"
    checkpoint = dropout_run / "checkpoints" / "last.pt"
    result = run_eval(f"ckpt={checkpoint}", f"out={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    rows = metrics_rows(dropout_run)
    last = max(rows)
    saved = json.loads(out.read_text())
    assert saved["epoch"] == last
    assert saved["metrics"]["test_loss"] == rows[last]["test_loss"]
    assert saved["metrics"]["test_acc"] == rows[last]["test_acc"]
    assert not (dropout_run / "eval.json").exists()  # out= put it elsewhere


def test_a_missing_path_is_one_clear_error(tmp_path):
    result = run_eval(f"ckpt={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "nowhere" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_a_checkpoint_is_one_clear_error(lenet_run, tmp_path):
    result = run_eval(f"ckpt={lenet_run / 'summary.json'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "summary.json is not a dlrun checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_checkpoint_paths_resolve_like_the_usage_says(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("last.pt", "best.pt"):
        (run / "checkpoints" / name).write_bytes(b"")
    assert find_eval_checkpoint(str(run)) == run / "checkpoints" / "last.pt"
    assert find_eval_checkpoint(str(run), "best") == run / "checkpoints" / "best.pt"
    assert find_eval_checkpoint(str(run / "checkpoints")) == run / "checkpoints" / "last.pt"
    pt = run / "checkpoints" / "best.pt"
    assert find_eval_checkpoint(str(pt)) == pt
    assert folder_of(pt) == run
    with pytest.raises(DlrunError, match="holds no checkpoint"):
        find_eval_checkpoint(str(tmp_path))
    with pytest.raises(DlrunError, match="is a file"):
        find_eval_checkpoint(str(pt), "last")


def test_arguments_are_checked():
    options = parse_args(["ckpt=a", "which=best", "batch_size=32", "device=cpu"])
    assert (options.ckpt, options.which, options.batch_size, options.device) == (
        "a",
        "best",
        32,
        "cpu",
    )
    assert parse_args(["some/run"]).ckpt == "some/run"
    for bad, message in [
        (["ckpt=a", "wich=best"], "unknown option 'wich'"),
        (["ckpt=a", "which=first"], "which=last or which=best"),
        (["ckpt=a", "batch_size=0"], "batch_size=0"),
        (["ckpt=a", "split=val"], "split=test or split=train"),
        (["device=cpu"], "needs a checkpoint"),
    ]:
        with pytest.raises(DlrunError, match=message):
            parse_args(bad)


def test_help_needs_no_torch():
    code = (
        "import sys, dlrun.cli.eval_checkpoint as e; e.main(['--help']); "
        "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: dlrun-eval ckpt=PATH")
    assert result.stdout.rstrip().endswith("[]")
