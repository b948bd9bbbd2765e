"""trainer.precision, channels_last and compile run end to end (their speed is a GPU matter)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SMOKE, run_dlrun, run_folders


def test_precisions_and_memory_layouts_train(workdir):
    result = run_dlrun(
        "-m",
        *SMOKE,
        "trainer.epochs=1",
        "trainer.precision=32,bf16,16",
        "trainer.channels_last=false,true",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [
        json.loads(p.read_text())
        for p in (workdir / "outputs" / "multirun").glob("*/*/*/summary.json")
    ]
    assert len(summaries) == 6
    assert {s["precision"] for s in summaries} == {"32", "bf16", "16"}
    for summary in summaries:
        assert summary["status"] == "completed"
        assert summary["first_step_seconds"] > 0


def test_fp16_checkpoints_its_gradient_scaler(workdir):
    result = run_dlrun(*SMOKE, "trainer.epochs=1", "trainer.precision=16", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert last["scaler"]["scale"] > 0


def test_an_unknown_precision_is_refused(workdir):
    result = run_dlrun(*SMOKE, "trainer.precision=8", cwd=workdir)
    assert result.returncode == 2
    assert "trainer.precision=8" in result.stderr and "bf16" in result.stderr


@pytest.mark.slow
def test_compiled_model_trains_and_reports_its_first_step(workdir):
    result = run_dlrun(*SMOKE, "model=mlp", "trainer.compile=true", cwd=workdir, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = run_folders(workdir)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["compile"] is True and summary["first_step_seconds"] > 0
    state = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert not any(key.startswith("_orig_mod") for key in state)  # plain, loadable weights
