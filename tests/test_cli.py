"""End to end through the real `dlrun` command: the run folder, reproducibility, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
import yaml
from conftest import SMOKE, run_dlrun, run_folders

from dlrun.training.checkpoint import load_checkpoint


def test_smoke_run_leaves_a_complete_run_folder(workdir):
    result = run_dlrun(*SMOKE, "optimizer=adam", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    assert folder.name.endswith("_lenet_adam_digits_smoke")

    config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())
    assert config["model"]["name"] == "lenet"
    assert config["optimizer"]["name"] == "adam"
    overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    assert overrides == [*SMOKE, "optimizer=adam"]

    metrics = pd.read_csv(folder / "metrics.csv")
    assert list(metrics.columns) == [
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "lr",
    ]
    assert metrics["epoch"].tolist() == [1, 2]
    assert metrics[["train_acc", "test_acc"]].stack().between(0, 1).all()
    # Adam at 1e-3 on digits learns something even in two short epochs.
    assert metrics["train_loss"].iloc[1] < metrics["train_loss"].iloc[0]
    timings = pd.read_csv(folder / "timings.csv")
    assert (timings["train_seconds"] > 0).all() and (timings["train_samples_per_s"] > 0).all()

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["epochs_run"] == 2
    assert summary["final"]["test_acc"] == metrics["test_acc"].iloc[-1]
    best_epoch = int(metrics["test_acc"].idxmax()) + 1
    assert summary["best"]["epoch"] == best_epoch
    assert summary["best"]["test_acc"] == metrics["test_acc"].max()
    assert summary["device"] == "cpu"
    assert summary["versions"]["torch"] == torch.__version__
    assert summary["wall_seconds"] > 0
    assert "git" in summary

    last = load_checkpoint(folder / "checkpoints" / "last.pt")
    assert last["epoch"] == 2
    assert {"model", "optimizer", "rng", "generator", "config"} <= set(last)
    assert last["config"]["model"]["name"] == "lenet"
    best = torch.load(folder / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == best_epoch

    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = (folder / "train.log").read_text()
    assert "epoch 1/2" in log and "epoch 2/2" in log
    assert not list(folder.rglob("*.tmp")), "a temp file was left behind"


RESUME_RUN = (
    *SMOKE,
    "model=mlp",
    "model.hidden=[64,32]",
    "model.dropout=[0.5]",  # dropout draws from the global RNG: resume must restore it
    "optimizer=adam",
    "trainer.max_train_samples=300",
)


def folder_of(result) -> Path:
    (line,) = (line for line in result.stdout.splitlines() if "Run folder: " in line)
    return Path(line.split("Run folder: ", 1)[1].strip())


def test_same_seed_gives_identical_metrics_and_resume_matches(workdir):
    full = run_dlrun(*RESUME_RUN, "trainer.epochs=4", cwd=workdir)
    assert full.returncode == 0, full.stderr
    again = run_dlrun(*RESUME_RUN, "trainer.epochs=4", cwd=workdir)
    assert again.returncode == 0, again.stderr
    half = run_dlrun(*RESUME_RUN, "trainer.epochs=2", cwd=workdir)
    assert half.returncode == 0, half.stderr
    # Named by the second they start in: the runs' order is in what each one printed.
    first, second, partial = (folder_of(run) for run in (full, again, half))
    assert first != second, "two runs must never share a folder"

    resumed = run_dlrun(*RESUME_RUN, "trainer.epochs=4", f"trainer.resume={partial}", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert len(run_folders(workdir)) == 3, "a resumed run continues in its own folder"

    reference = (first / "metrics.csv").read_text()
    assert reference.count("\n") == 5
    assert (second / "metrics.csv").read_text() == reference
    assert (partial / "metrics.csv").read_text() == reference
    assert "Resuming after epoch 2" in resumed.stdout
    first_overrides = yaml.safe_load((partial / ".hydra" / "overrides.yaml").read_text())
    assert "trainer.epochs=2" in first_overrides, "resuming must keep the first run's config"
    (resume_config,) = (partial / ".hydra").glob("resume_*/overrides.yaml")
    assert "trainer.epochs=4" in yaml.safe_load(resume_config.read_text())
    summary = json.loads((partial / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 4
    assert len(pd.read_csv(partial / "timings.csv")) == 4


def test_multirun_gives_one_folder_per_job(workdir):
    result = run_dlrun("-m", "optimizer=sgd,adam", *SMOKE, cwd=workdir)
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in (workdir / "outputs" / "multirun").glob("*/*/*") if p.is_dir())
    assert [j.name.split("_", 1)[0] for j in jobs] == ["0", "1"]
    assert jobs[0].name.startswith("0_lenet_sgd") and jobs[1].name.startswith("1_lenet_adam")
    for job in jobs:
        assert json.loads((job / "summary.json").read_text())["status"] == "completed"
        assert len(pd.read_csv(job / "metrics.csv")) == 2


def test_char_lstm_learns_a_tiny_repeated_corpus(workdir):
    corpus = workdir / "tiny.txt"
    corpus.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    result = run_dlrun(
        "dataset=text",
        f"dataset.path={corpus}",
        'dataset.prefixes=["the "]',
        "model=char_rnn",
        "model.hidden_size=32",
        "optimizer=adam",
        "optimizer.lr=0.02",
        "regularizer=[grad_clip]",
        "trainer=smoke",
        "trainer.max_train_samples=null",
        "trainer.batch_size=16",
        "trainer.epochs=5",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    metrics = pd.read_csv(folder / "metrics.csv")
    vocab_size = len(set("the cat sat on the mat. "))  # 11 characters
    assert metrics["test_ppl"].iloc[0] > 3
    assert metrics["test_ppl"].iloc[-1] < vocab_size / 4
    generated = (folder / "generated.txt").read_text()
    assert generated.count("epoch ") == 5 and "'the ' -> " in generated
    assert "'the ' -> " in result.stdout
