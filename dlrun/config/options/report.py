"""Schema of the `report` node: what a sweep's report compares (reporting/sweep_report.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# What report.file may name: metrics (metrics.csv, per epoch) or steps (steps.csv, per step).
REPORT_FILES = ("metrics", "steps")


@dataclass
class ReportConfig:
    # Which per-job file the comparison plots: metrics (metrics.csv, per epoch) or steps
    # (steps.csv, per step; needs trainer.log_every_n_steps > 0).
    file: str = "metrics"
    # Columns of that file, one line per job and column (same colour per job).
    columns: list[str] = field(default_factory=lambda: ["test_acc"])
    log_y: bool = False
    # [low, high] of the y axis; null: matplotlib's choice.
    ylim: list[float] | None = None
    # Figure title; empty: the sweep folder.
    title: str = ""
    # Over seeds: the configuration the others are compared with (its name, e.g.
    # optimizer=sgd, or one of its settings); empty: the first.
    baseline: str = ""


def as_report_config(report: Any = None) -> ReportConfig:
    """A ReportConfig from a ReportConfig, a DictConfig, a mapping or None (the defaults).

    Raises ValueError for an unknown key, an unknown file or a ylim that is not two numbers.
    """
    if isinstance(report, ReportConfig):
        values = asdict(report)
    elif report is None:
        values = {}
    else:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(report, DictConfig):
            report = OmegaConf.to_container(report, resolve=True)
        if not isinstance(report, Mapping):
            raise ValueError(f"report must be a mapping, not {type(report).__name__}")
        values = dict(report)
    known = {f.name for f in fields(ReportConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown report key(s) {unknown}; known: {sorted(known)}")
    cfg = ReportConfig(**values)
    if cfg.file not in REPORT_FILES:
        raise ValueError(f"report.file must be one of {sorted(REPORT_FILES)}, not {cfg.file!r}")
    if isinstance(cfg.columns, str):
        cfg.columns = [cfg.columns]
    cfg.columns = [str(c) for c in cfg.columns]
    if cfg.ylim is not None:
        ylim = list(cfg.ylim)
        if len(ylim) != 2 or not all(isinstance(v, int | float) for v in ylim):
            raise ValueError(f"report.ylim must be two numbers [low, high], not {cfg.ylim!r}")
        cfg.ylim = [float(v) for v in ylim]
    cfg.log_y = bool(cfg.log_y)
    cfg.title = str(cfg.title or "")
    cfg.baseline = str(cfg.baseline or "")
    return cfg
