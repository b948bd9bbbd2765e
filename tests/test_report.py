"""`dlrun-report`: one table of the runs under a folder, from their files alone.

One module-scoped folder holds two real smoke runs and a two-job sweep, plus two broken
copies made by hand (a torn summary.json, a missing metrics.csv).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMOKE, call_main, run_dlrun

from dlrun.reporting.folders import differing_keys, flatten

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_report(*args: str, cwd: Path, process: bool = False) -> subprocess.CompletedProcess:
    """`dlrun-report ARGS`: in this process through its `main()`, or in its own."""
    if process:
        return subprocess.run(
            [sys.executable, "-m", "dlrun.cli.report", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
    from dlrun.cli import report

    return call_main(lambda: report.main(list(args)), ["dlrun-report", *args], cwd)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("report")
    for args in (["optimizer=sgd"], ["optimizer=adam"], ["-m", "optimizer=sgd,adam"]):
        result = run_dlrun(*args, *SMOKE, cwd=work)
        assert result.returncode == 0, result.stderr
    outputs = work / "outputs"
    runs = [p for p in outputs.glob("*/*") if p.parent.name != "multirun"]
    (first,) = (p for p in runs if "_sgd" in p.name)  # runs of one second sort by name
    torn = outputs / "broken" / "torn_summary"
    shutil.copytree(first, torn)
    (torn / "summary.json").write_text('{"status": "compl')
    no_metrics = outputs / "broken" / "no_metrics"
    shutil.copytree(first, no_metrics)
    (no_metrics / "metrics.csv").unlink()
    return outputs


def test_every_run_is_a_row_with_its_status_and_what_differs(outputs, tmp_path):
    result = run_report(str(outputs), "--csv", str(tmp_path / "table.csv"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (outputs / "report.csv").exists()  # --csv put it elsewhere

    rows = {row["run"]: row for row in read_csv(tmp_path / "table.csv")}
    assert len(rows) == 6
    sweep_jobs = [name for name in rows if name.startswith("multirun/")]
    assert len(sweep_jobs) == 2
    header = list(next(iter(rows.values())))
    assert header[:2] == ["run", "optimizer.name"]
    assert "model.name" not in header and "dataset.name" not in header  # the same everywhere
    assert sorted(rows[name]["optimizer.name"] for name in sweep_jobs) == ["adam", "sgd"]
    assert [r["optimizer.name"] for r in rows.values()].count("adam") == 2

    assert rows["broken/torn_summary"]["status"] == "unreadable"
    assert "unreadable summary.json" in rows["broken/torn_summary"]["notes"]
    assert rows["broken/torn_summary"]["optimizer.name"] == "sgd"  # the config still reads
    assert rows["broken/no_metrics"]["status"] == "completed"
    assert "no metrics.csv" in rows["broken/no_metrics"]["notes"]
    healthy = [name for name in rows if not name.startswith("broken/")]
    assert len(healthy) == 4
    for name in healthy:
        row = rows[name]
        summary = json.loads((outputs / name / "summary.json").read_text())
        assert row["status"] == "completed" and row["notes"] == ""
        assert float(row["final_test_acc"]) == summary["final"]["test_acc"]
        assert float(row["final_test_loss"]) == summary["final"]["test_loss"]
        assert float(row["best_test_acc"]) == summary["best"]["test_acc"]
        assert int(row["best_epoch"]) == summary["best"]["epoch"]
        assert float(row["wall_seconds"]) == summary["wall_seconds"]
        assert row["epochs_run"] == "2"

    assert "optimizer.name" in result.stdout and "unreadable" in result.stdout
    assert "6 runs (1 sweep), 5 completed" in result.stdout


def test_plots_are_redrawn_from_the_files(outputs, tmp_path):
    copy = tmp_path / "copied"
    shutil.copytree(outputs, copy)
    run = next(p for p in copy.glob("*/*") if p.parent.name not in ("multirun", "broken"))
    (sweep,) = copy.glob("multirun/*/*")
    for path in (run / "curves.png", sweep / "comparison.png", sweep / "sweep_summary.csv"):
        path.unlink()

    result = run_report(str(copy), "--plots", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (run / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert (sweep / "comparison.png").read_bytes().startswith(PNG_MAGIC)
    assert len(read_csv(sweep / "sweep_summary.csv")) == 2
    assert len(read_csv(copy / "report.csv")) == 6  # the default place of the table
    assert "Redrew 5 curves.png and 1 sweep reports" in result.stdout


def test_an_empty_folder_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_report(str(tmp_path / "empty"), cwd=tmp_path, process=True)
    assert result.returncode == 2
    assert "No runs under" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "empty" / "report.csv").exists()

    result = run_report(str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_only_values_that_differ_are_compared():
    lenet = flatten(
        {
            "model": {"name": "lenet", "activation": "sigmoid"},
            "optimizer": {"name": "sgd", "lr": 0.1},
            "regularizer": {},
            "reference": {"test_acc": 0.78},
        }
    )
    mlp = flatten(
        {
            "model": {"name": "mlp", "activation": "sigmoid", "hidden": [256, 256]},
            "optimizer": {"name": "sgd", "lr": 0.5},
            "regularizer": {"l2": {"name": "l2", "strength": 3}},
            "reference": None,
        }
    )
    assert mlp["model.hidden"] == "[256, 256]"
    assert lenet["regularizer"] == "none" and mlp["regularizer"] == "l2"
    assert "reference" not in lenet and "reference.test_acc" not in lenet
    # model.hidden and regularizer.l2.* exist in one run only: its name says it already.
    assert differing_keys([lenet, mlp]) == ["model.name", "optimizer.lr", "regularizer"]


def test_a_diverged_run_is_reported_as_diverged(tmp_path):
    finished = run_dlrun(*SMOKE, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    diverged = run_dlrun(
        *SMOKE,
        "dataset=synthetic_linreg",
        "model=linear_regression",
        "optimizer.lr=10",
        "trainer.epochs=30",
        cwd=tmp_path,
    )
    assert diverged.returncode == 3, diverged.stderr
    for png in (tmp_path / "outputs").glob("*/*/gradients.png"):
        png.unlink()

    result = run_report(str(tmp_path / "outputs"), "--plots", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "outputs" / "report.csv")
    assert sorted(row["status"] for row in rows) == ["completed", "diverged"]
    assert sorted(row["model.name"] for row in rows) == ["lenet", "linear_regression"]
    assert len(list((tmp_path / "outputs").glob("*/*/gradients.png"))) == 2
