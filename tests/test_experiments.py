"""Every experiment preset runs (smoke-sized), sweeps itself, and reports beside its reference."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import run_dlrun, run_folders, write_fake_fashion_mnist, write_fake_phone_csv

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
SMOKE = ("trainer=smoke", "trainer.epochs=1")


def sweep_jobs(workdir: Path) -> list[Path]:
    return sorted(p.parent for p in (workdir / "outputs" / "multirun").glob("*/*/*/summary.json"))


def test_every_preset_runs_in_one_smoke_sweep(workdir):
    data = write_fake_fashion_mnist(workdir / "data")
    phone = write_fake_phone_csv(workdir / "phones.csv")
    env = {"DLRUN_DATA": str(data)}
    result = run_dlrun(
        "-m", "experiment=glob(*,exclude=phone_*)", *SMOKE, cwd=workdir, env=env, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for preset in ("phone_price", "phone_price_tuned"):  # one by one: a sweep composes its
        # first config without the preset, where dataset.path does not exist yet
        result = run_dlrun(f"experiment={preset}", f"dataset.path={phone}", *SMOKE, cwd=workdir)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    phone_runs = run_folders(workdir)
    assert len(phone_runs) == 2
    for run in phone_runs:
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    jobs = sweep_jobs(workdir)
    assert len(jobs) == len(PRESETS) - 2
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed", job
    assert {"lenet_fashion", "char_lstm", "phone_price_tuned"} <= set(PRESETS)


def test_phone_preset_says_the_csv_path_is_required(workdir):
    result = run_dlrun("experiment=phone_price", *SMOKE, cwd=workdir)
    assert result.returncode == 2
    assert "dataset.path" in result.stderr and "Traceback" not in result.stderr
    assert not list((workdir / "outputs").glob("*/*/summary.json"))


def test_weight_decay_sweeps_itself_and_prints_the_reference(workdir):
    result = run_dlrun("-m", "experiment=weight_decay", "trainer.epochs=5", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (workdir / "outputs" / "multirun").glob("*/*")
    table = pd.read_csv(sweep / "sweep_summary.csv")
    assert sorted(table["regularizer.l2.strength"].tolist()) == [0, 3]
    assert (sweep / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    norms = {}
    for job in sweep_jobs(workdir):
        summary = json.loads((job / "summary.json").read_text())
        rows = {row["figure"]: row for row in summary["reference"]["figures"]}
        assert rows["weight_norm"]["ours"] == summary["extras"]["weight_norm"]
        strength = 3 if "strength3" in job.name else 0
        norms[strength] = summary["extras"]["weight_norm"]
        assert rows["weight_norm"]["reference"] == (
            "0.035-0.052" if strength == 3 else "11.6-13.4 (other builds up to 15.1)"
        )
    assert norms[3] < norms[0]  # decay shrinks the weights
    assert "Reference: d2l.ai, weight decay" in result.stdout


def test_optimizers_sweep_compares_per_step_losses(workdir):
    result = run_dlrun("-m", "experiment=optimizers", "trainer.epochs=1", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sweep_jobs(workdir)
    assert len(jobs) == 5
    configs = [json.loads((j / "summary.json").read_text()) for j in jobs]
    assert all(c["status"] == "completed" for c in configs)
    names = [(j / ".hydra" / "config.yaml").read_text() for j in jobs]
    assert sum("momentum: 0.8" in text for text in names) == 1
    assert sum("alpha: 0.9" in text for text in names) == 1
    for job in jobs:
        steps = pd.read_csv(job / "steps.csv")
        assert len(steps) == 1500 // 20  # all 1500 points of the cubic, batch 20
        losses = steps["train_loss"]
        assert losses.notna().all() and losses.tail(10).mean() < losses.head(10).mean(), job
    (sweep,) = (workdir / "outputs" / "multirun").glob("*/*")
    assert (sweep / "comparison.png").is_file()
    assert len(run_folders(workdir)) == 0
