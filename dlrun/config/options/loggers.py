"""Schemas of the loggers options."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class TensorBoardConfig:
    name: str = MISSING
    # null: <run folder>/tensorboard; otherwise <log_dir>/<run name>, so runs can share it.
    log_dir: str | None = MISSING


@dataclass
class MlflowConfig:
    name: str = MISSING
    # null: a file store in outputs/mlruns under the current folder (`mlflow ui` there).
    tracking_uri: str | None = MISSING
    experiment_name: str = MISSING
    # null: the run's own name (its folder's name).
    run_name: str | None = MISSING
