"""Per-layer norms and their warnings, the fit verdict, and the divergence guard."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from conftest import SMOKE, run_dlrun, run_folders
from torch import nn

from dlrun.config.schema import VerdictConfig
from dlrun.diagnostics.norms import LayerNorms, layers
from dlrun.diagnostics.verdict import fit_verdict

VERDICT = VerdictConfig(
    underfit_train_acc=0.7, overfit_acc_gap=0.05, underfit_loss_ratio=0.25, overfit_loss_ratio=1.5
)


def deep_net(activation: type[nn.Module], depth: int = 20) -> nn.Sequential:
    torch.manual_seed(0)
    parts: list[nn.Module] = []
    for _ in range(depth):
        parts += [nn.Linear(32, 32), activation()]
    model = nn.Sequential(*parts, nn.Linear(32, 4))
    for layer in model[::2]:  # Kaiming keeps a ReLU stack's signal: only the activation differs
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    return model


def backward(model: nn.Module) -> None:
    model.zero_grad()
    nn.functional.cross_entropy(model(torch.randn(64, 32)), torch.randint(0, 4, (64,))).backward()


def monitor(model: nn.Module) -> LayerNorms:
    return LayerNorms(model, vanishing_ratio=1e-3, patience=3, exploding_norm=1e3)


def test_norms_are_recorded_per_layer_from_input_to_output():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3), nn.Linear(3, 2))
    model.train()
    backward_rows = monitor(model)
    model.zero_grad()
    model(torch.randn(8, 4)).sum().backward()
    rows = backward_rows.record(epoch=1, step=5)
    assert [r["layer"] for r in rows] == ["0", "2", "3"]
    expected = torch.cat([model[0].weight.grad.flatten(), model[0].bias.grad]).norm().item()
    assert rows[0]["grad_norm"] == pytest.approx(expected, rel=1e-5)
    weights = torch.cat([model[3].weight.flatten(), model[3].bias]).norm().item()
    assert rows[-1]["weight_norm"] == pytest.approx(weights, rel=1e-5)
    assert {r["step"] for r in rows} == {5}
    assert [name for name, _ in layers(model)] == ["0", "2", "3"]


def test_deep_sigmoid_stack_warns_of_vanishing_gradients_and_relu_does_not():
    sigmoid, relu = deep_net(nn.Sigmoid), deep_net(nn.ReLU)
    found = {}
    for name, model in (("sigmoid", sigmoid), ("relu", relu)):
        norms = monitor(model)
        for step in range(1, 5):
            backward(model)
            norms.record(epoch=1, step=step)
        found[name] = norms.warnings
    (warning,) = found["sigmoid"]
    assert warning["kind"] == "vanishing" and warning["step"] == 3  # after 3 records
    assert warning["layers"] == ["0", "40"] and "input-side layer 0" in warning["message"]
    assert found["relu"] == []


def test_huge_or_non_finite_gradients_warn_once_naming_the_layer():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    norms = monitor(model)
    for step in (1, 2):
        model[0].weight.grad = torch.full((3, 3), 1e4)
        model[0].bias.grad = torch.zeros(3)
        model[1].weight.grad = torch.full((1, 3), float("nan"))
        model[1].bias.grad = torch.zeros(1)
        norms.record(epoch=1, step=step)
    (warning,) = norms.warnings
    assert warning["kind"] == "exploding" and warning["layers"] == ["1", "0"]


@pytest.mark.parametrize(
    ("final", "verdict"),
    [
        ({"train_acc": 0.5, "test_acc": 0.5}, "underfitting"),
        ({"train_acc": 0.99, "test_acc": 0.80}, "overfitting"),
        ({"train_acc": 0.90, "test_acc": 0.88}, "good fit"),
    ],
)
def test_classification_verdict(final, verdict):
    result = fit_verdict(final, "classification", VERDICT, None)
    assert result["verdict"] == verdict
    assert result["figures"]["gap"] == pytest.approx(final["train_acc"] - final["test_acc"])


@pytest.mark.parametrize(
    ("final", "verdict"),
    [
        ({"train_loss": 9.0, "test_loss": 17.0}, "underfitting"),  # baseline 30
        ({"train_loss": 0.02, "test_loss": 0.1}, "overfitting"),
        ({"train_loss": 0.01, "test_loss": 0.0146}, "good fit"),
    ],
)
def test_regression_verdict_reads_losses_against_the_baseline(final, verdict):
    assert fit_verdict(final, "regression", VERDICT, baseline_loss=30.0)["verdict"] == verdict


def test_run_writes_diagnostics_gradients_plot_and_verdict(workdir):
    result = run_dlrun(*SMOKE, "model=mlp", "diagnostics.every_n_steps=4", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(workdir)
    rows = pd.read_csv(folder / "diagnostics.csv", dtype={"layer": str})
    assert set(rows["layer"]) == {"1", "3"}  # Flatten, Linear, ReLU, Linear: two layers
    assert rows["step"].tolist() == [4, 4, 8, 8, 12, 12, 16, 16]  # 8 steps an epoch, no twice
    assert (rows["grad_norm"] > 0).all() and (rows["weight_norm"] > 0).all()
    assert (folder / "gradients.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["fit"]["verdict"] in {"underfitting", "overfitting", "good fit"}
    assert summary["warnings"] == []
    assert "Fit: " in result.stdout


DIVERGING = ("dataset=synthetic_linreg", "model=linear_regression", "optimizer.lr=10")


def test_divergence_stops_cleanly_and_keeps_the_last_good_checkpoint(workdir):
    result = run_dlrun(*SMOKE, *DIVERGING, "trainer.epochs=30", cwd=workdir)
    assert result.returncode == 3
    assert "diverged" in result.stderr and "Traceback" not in result.stderr
    (folder,) = run_folders(workdir)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "diverged"
    epoch, step = summary["diverged_at"]["epoch"], summary["diverged_at"]["step"]
    assert 1 < epoch < 30 and step == epoch  # 20 samples, batch 64: one step per epoch
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == epoch - 1
    assert all(torch.isfinite(t).all() for t in last["model"].values())
    assert len(pd.read_csv(folder / "metrics.csv")) == epoch - 1
    assert any(w["kind"] == "exploding" for w in summary["warnings"])


def test_a_diverging_job_does_not_stop_its_sweep(workdir):
    result = run_dlrun(
        "-m", *SMOKE, *DIVERGING[:2], "optimizer.lr=0.01,1e6", "trainer.epochs=30", cwd=workdir
    )
    assert result.returncode == 1
    (sweep,) = (workdir / "outputs" / "multirun").glob("*/*")
    table = pd.read_csv(sweep / "sweep_summary.csv").sort_values("optimizer.lr")
    assert table["status"].tolist() == ["completed", "diverged"]
