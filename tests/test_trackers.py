"""Trackers: what the TensorBoard and MLflow loggers write can be read back as logged."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import dlrun.conf
import pytest
from omegaconf import OmegaConf

import dlrun.config.schema
import dlrun.outputs.trackers  # noqa: F401  (registers the logger options and their schemas)
from dlrun.errors import DlrunError
from dlrun.outputs.trackers import LOGGERS, Logger, build_loggers, flatten, resolve_tracking_uri

EPOCHS = [
    {"epoch": 1, "train_loss": 1.5, "train_acc": 0.5, "test_loss": 1.25, "test_acc": 0.625},
    {"epoch": 2, "train_loss": 1.0, "train_acc": 0.75, "test_loss": 0.875, "test_acc": 0.6875},
    {"epoch": 3, "train_loss": 0.5, "train_acc": 0.875, "test_loss": 0.75, "test_acc": 0.8125},
]
STEPS = [  # steps.csv rows
    {"step": 10, "epoch": 1, "train_loss": 2.0},
    {"step": 20, "epoch": 2, "train_loss": 1.5},
    {"step": 30, "epoch": 3, "train_loss": 0.25},
]
CONFIG = {
    "model": {"name": "mlp", "hidden": [256, 256], "dropout": None},
    "optimizer": {"name": "sgd", "lr": 0.1, "nesterov": False},
    "regularizer": {},
    "trainer": {"epochs": 3, "resume": None},
    "seed": 0,
    "reference": {"note": "x" * 800},
}
SUMMARY = {
    "status": "completed",
    "epochs_run": 3,
    "stopped_early": None,
    "final": EPOCHS[-1],
    "best": {"monitor": "test_acc", **EPOCHS[-1]},
}


def drive(logger: Logger, run_dir: Path, summary: dict = SUMMARY) -> None:
    """What a run does with a logger: start, epochs and their steps, the folder, finish."""
    run_dir.mkdir(parents=True, exist_ok=True)
    logger.start(run_dir, CONFIG, run_dir.name)
    logger.log_params({"extra": {"batch_size": 32}})
    for metrics, step in zip(EPOCHS, STEPS, strict=True):
        logger.log_metrics(step, step=step["step"], prefix="step/")
        logger.log_metrics({**metrics, "lr": 0.1}, step=metrics["epoch"], prefix="epoch/")
    (run_dir / "metrics.csv").write_text("epoch,test_acc\n1,0.625\n")
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"\0")
    logger.finish(summary)


def build(name: str, **settings: Any) -> Logger:
    (logger,) = build_loggers(OmegaConf.create({name: {"name": name, **settings}}))
    assert logger.name == name
    return logger


def test_flatten_joins_keys_and_keeps_scalars_only():
    flat = flatten(CONFIG)
    assert flat["model.hidden"] == "[256, 256]"
    assert flat["model.dropout"] == "None"
    assert flat["optimizer.lr"] == 0.1 and flat["optimizer.nesterov"] is False
    assert flat["regularizer"] == "{}"
    assert flat["seed"] == 0


def test_tensorboard_events_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    logger = build("tensorboard", log_dir=None)
    drive(logger, run_dir)

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    for key in ("test_acc", "test_loss", "train_loss", "train_acc", "lr"):
        values = events.Scalars(f"epoch/{key}")
        assert [e.step for e in values] == [1, 2, 3]
        expected = [m.get(key, 0.1) for m in EPOCHS]
        assert [e.value for e in values] == pytest.approx(expected)
    losses = events.Scalars("step/train_loss")
    assert [(e.step, e.value) for e in losses] == [(10, 2.0), (20, 1.5), (30, 0.25)]
    assert "epoch/epoch" not in scalars and "step/step" not in scalars
    # add_hparams writes the final metrics into the same run folder (run_name=".").
    assert events.Scalars("final/test_acc")[0].value == pytest.approx(0.8125)
    assert logger.writer is None  # closed


def test_tensorboard_shared_log_dir_gets_a_folder_per_run(tmp_path):
    pytest.importorskip("tensorboard")
    logger = build("tensorboard", log_dir=str(tmp_path / "tb"))
    drive(logger, tmp_path / "run_a")
    assert list((tmp_path / "tb" / "run_a").glob("events.out.tfevents.*"))


@pytest.fixture
def file_store_env(monkeypatch):
    """The logger allows MLflow's file store in os.environ; undo that after the test."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


def test_mlflow_run_reads_back(tmp_path, monkeypatch, file_store_env):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "outputs" / "2026-01-01" / "00-00-00_mlp_sgd"
    logger = build("mlflow", tracking_uri=None, experiment_name="dlrun-test", run_name=None)
    drive(logger, run_dir)

    uri = (tmp_path / "outputs" / "mlruns").as_uri()  # the default store
    assert logger.tracking_uri == uri
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("dlrun-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "00-00-00_mlp_sgd"
    assert run.data.tags["status"] == "completed"

    params = run.data.params
    assert params["optimizer.lr"] == "0.1"
    assert params["model.hidden"] == "[256, 256]"
    assert params["extra.batch_size"] == "32"
    assert params["reference.note"] == "x" * 500  # cut to MLflow's value limit

    run_id = run.info.run_id
    history = client.get_metric_history(run_id, "epoch/test_acc")
    assert [(m.step, m.value) for m in history] == [(1, 0.625), (2, 0.6875), (3, 0.8125)]
    history = client.get_metric_history(run_id, "step/train_loss")
    assert [(m.step, m.value) for m in history] == [(10, 2.0), (20, 1.5), (30, 0.25)]
    assert run.data.metrics["final/test_acc"] == 0.8125
    assert "epoch/epoch" not in run.data.metrics

    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"metrics.csv", "checkpoints"} <= artifacts
    assert [a.path for a in client.list_artifacts(run_id, "checkpoints")] == ["checkpoints/last.pt"]


def test_mlflow_leaves_no_active_run_and_close_marks_failure(tmp_path, file_store_env):
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    logger = build("mlflow", tracking_uri=uri, experiment_name="dlrun", run_name="broken")
    logger.start(tmp_path / "run", CONFIG, "run")
    logger.log_metrics({"train_loss": 1.0}, step=1, prefix="step/")
    logger.close()  # training failed
    logger.close()  # twice is harmless, and so is finish afterwards
    logger.finish(SUMMARY)
    assert mlflow.active_run() is None

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("dlrun").experiment_id])
    assert run.info.status == "FAILED"
    assert run.info.run_name == "broken"
    assert run.data.tags["status"] == "failed"


def test_mlflow_failed_summary_ends_the_run_failed(tmp_path, file_store_env):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    logger = build("mlflow", tracking_uri=uri, experiment_name="dlrun", run_name=None)
    drive(logger, tmp_path / "run", {**SUMMARY, "status": "failed"})
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("dlrun").experiment_id])
    assert run.info.status == "FAILED"


def test_tracking_uri_resolves_against_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None) == (tmp_path / "outputs" / "mlruns").as_uri()
    assert resolve_tracking_uri("store") == (tmp_path / "store").as_uri()
    assert resolve_tracking_uri("file:store") == (tmp_path / "store").as_uri()
    assert resolve_tracking_uri("file:///abs/mlruns") == "file:///abs/mlruns"
    assert resolve_tracking_uri("http://localhost:5000") == "http://localhost:5000"


@pytest.mark.parametrize("name", ["tensorboard", "mlflow"])
def test_a_missing_package_fails_at_build_time(monkeypatch, name):
    real = importlib.util.find_spec

    def find_spec(module, *args, **kwargs):
        return None if module.split(".")[0] == name else real(module, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    settings = {
        "tensorboard": {"log_dir": None},
        "mlflow": {"tracking_uri": None, "experiment_name": "dlrun", "run_name": None},
    }[name]
    with pytest.raises(DlrunError) as raised:
        build(name, **settings)
    assert f"logger {name} needs the `{name}` package: pip install 'dlrun[tracking]'" in str(
        raised.value
    )


def test_none_builds_no_logger_and_importing_loads_no_tracker():
    assert build_loggers(OmegaConf.create({})) == []
    assert build_loggers(None) == []
    assert LOGGERS.names() == ["mlflow", "tensorboard"]
    code = (
        "import sys, dlrun.outputs.trackers; "
        "print('mlflow' in sys.modules, 'tensorboard' in sys.modules)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_misspelt_key_fails_when_built():
    with pytest.raises(DlrunError, match="logger"):
        build("tensorboard", log_dir=None, logdir="x")


def test_yaml_options_compose():
    from conftest import compose

    cfg = compose("logger=[mlflow,tensorboard]")
    assert set(cfg.logger) == {"tensorboard", "mlflow"}
    assert cfg.logger.tensorboard.log_dir is None
    assert cfg.logger.mlflow.experiment_name == "dlrun"
    assert cfg.logger.mlflow.tracking_uri is None and cfg.logger.mlflow.run_name is None
    if all(importlib.util.find_spec(p) for p in ("tensorboard", "mlflow")):
        assert [type(x).__name__ for x in build_loggers(cfg.logger)] == [
            "TensorBoardLogger",
            "MlflowLogger",
        ]

    assert dict(compose("logger=[none]").logger) == {}
    with pytest.raises(Exception, match="experimnt"):
        compose("logger=[mlflow]", "logger.mlflow.experimnt=x")


def test_a_run_logs_its_epochs_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from conftest import SMOKE, run_dlrun, run_folders
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = run_dlrun(*SMOKE, "model=mlp", "logger=[tensorboard]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (folder,) = run_folders(tmp_path)
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("epoch/test_acc")
    metrics = [line.split(",") for line in (folder / "metrics.csv").read_text().splitlines()]
    column = metrics[0].index("test_acc")
    expected = [(int(row[0]), float(row[column])) for row in metrics[1:]]
    assert [s.step for s in scalars] == [step for step, _ in expected]
    assert [s.value for s in scalars] == pytest.approx([value for _, value in expected])
