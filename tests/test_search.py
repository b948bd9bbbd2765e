"""Hyperparameter search: the optimized metric, and Optuna searches through the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_dlrun
from omegaconf import OmegaConf

from dlrun.errors import DlrunError
from dlrun.recipe import objective

SEARCH = ("-m", "hparams_search=optuna", "dataset=digits", "trainer=smoke", "model=mlp")
ROWS = [
    {"epoch": 1, "test_acc": 0.5, "test_loss": 1.2},
    {"epoch": 2, "test_acc": 0.7, "test_loss": 0.9},
    {"epoch": 3, "test_acc": 0.6, "test_loss": 1.0},
]


def test_best_is_the_highest_accuracy_or_the_lowest_loss_and_final_the_last():
    assert objective.objective(ROWS, "best.test_acc") == 0.7
    assert objective.objective(ROWS, "best.test_loss") == 0.9
    assert objective.objective(ROWS, "final.test_acc") == 0.6
    assert objective.objective([], "best.test_acc") is None


@pytest.mark.parametrize("name", ["test_acc", "top.test_acc", "best.", "best"])
def test_a_metric_name_must_say_best_or_final_and_a_column(name):
    with pytest.raises(DlrunError, match=f"optimized_metric={name} is not a metric"):
        objective.check_metric(name)


def test_a_direction_that_would_search_for_the_worst_model_is_refused():
    objective.check_metric("best.test_acc", "maximize")
    objective.check_metric("final.test_loss", "minimize")
    with pytest.raises(DlrunError, match="set hydra.sweeper.direction=maximize"):
        objective.check_metric("best.test_acc", "minimize")
    with pytest.raises(DlrunError, match="set hydra.sweeper.direction=minimize"):
        objective.check_metric("best.test_ppl", "maximize")


def test_a_column_with_no_better_way_has_no_best_epoch():
    columns = ("train_loss", "test_loss", "lr")
    objective.check_columns("final.lr", columns)
    with pytest.raises(DlrunError, match="lr is neither better high nor low.*use final.lr"):
        objective.check_columns("best.lr", columns)


def test_an_unknown_column_fails_before_training(workdir):
    args = ("dataset=digits", "trainer=smoke", "optimized_metric=best.val_acc")
    result = run_dlrun(*args, cwd=workdir)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "optimized_metric=best.val_acc: val_acc is not a metric of this run" in message
    assert "best.test_acc" in message
    assert "epoch 1/" not in result.stderr


def jobs(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/summary.json"))]


def test_optuna_searches_lr_and_weight_decay_for_the_best_test_accuracy(workdir):
    result = run_dlrun(*SEARCH, "hydra.sweeper.n_trials=4", "hydra.sweep.dir=search", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = workdir / "search"
    summaries = jobs(sweep_dir)
    assert len(summaries) == 4
    values = [s["optimized"]["value"] for s in summaries]
    for summary in summaries:
        lr = summary["optimized"]  # the value a trial returned is the best epoch's accuracy
        assert lr["metric"] == "best.test_acc"
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert best.best_value == max(values)
    assert 1e-3 <= best.best_params["optimizer.lr"] <= 1.0
    assert 1e-6 <= best.best_params["optimizer.weight_decay"] <= 1e-2
    overrides = [
        OmegaConf.load(p) for p in sorted(sweep_dir.glob("*/.hydra/overrides.yaml"))
    ]  # each trial ran with the values Optuna asked for
    assert all(any(o.startswith("optimizer.lr=") for o in trial) for trial in overrides)
    assert len({tuple(trial) for trial in overrides}) == 4


def test_a_study_kept_in_a_file_goes_on_where_it_stopped(workdir):
    optuna = pytest.importorskip("optuna")
    storage = f"sqlite:///{workdir / 'study.db'}"
    args = (*SEARCH, "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}")
    args += ("hydra.sweeper.study_name=digits_mlp",)
    for attempt in ("first", "second"):
        result = run_dlrun(*args, f"hydra.sweep.dir={attempt}", cwd=workdir)
        assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="digits_mlp", storage=storage)
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimized_metric=final.test_loss", "set hydra.sweeper.direction=minimize"),
        ("optimized_metric=null", "A search needs the number to optimize"),
        ("optimized_metric=test_acc", "optimized_metric=test_acc is not a metric"),
    ],
)
def test_a_search_that_cannot_work_stops_before_its_first_trial(workdir, override, message):
    result = run_dlrun(*SEARCH, "hydra.sweeper.n_trials=2", override, cwd=workdir)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "Launching" not in result.stdout + result.stderr
    assert not list(workdir.glob("outputs/**/summary.json"))
