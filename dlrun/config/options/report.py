"""Schema of the `report` node: what a sweep's report compares (reporting/sweep_report.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
