"""The run folder: the files a run leaves behind, each written atomically.

metrics.csv   one row per epoch, metrics only: the same config and seed give the same file
timings.csv   seconds and throughput per epoch (these differ from run to run)
summary.json  status, final and best metrics, wall time, device, versions, git commit
curves.png    loss and accuracy per epoch
checkpoints/  last.pt and best.pt
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from dlrun.io import atomic_write_json, atomic_write_text
from dlrun.plots import plot_curves


class RunFolder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.metrics_csv = self.path / "metrics.csv"
        self.timings_csv = self.path / "timings.csv"
        self.summary_json = self.path / "summary.json"
        self.curves_png = self.path / "curves.png"
        self.metrics: list[dict[str, Any]] = []
        self.timings: list[dict[str, Any]] = []

    def restore(self, epochs: int) -> None:
        """On resume: keep the rows of the epochs the checkpoint has, drop any later ones."""
        self.metrics = [r for r in _read_csv(self.metrics_csv) if int(r["epoch"]) <= epochs]
        self.timings = [r for r in _read_csv(self.timings_csv) if int(r["epoch"]) <= epochs]

    def add_epoch(self, metrics: dict[str, Any], timings: dict[str, Any]) -> None:
        self.metrics.append(metrics)
        self.timings.append(timings)
        atomic_write_text(self.metrics_csv, _to_csv(self.metrics))
        atomic_write_text(self.timings_csv, _to_csv(self.timings))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.summary_json, summary)

    def plot(self, title: str) -> None:
        if self.metrics:
            plot_curves(self.metrics, self.curves_png, title)


def _to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format(v) for k, v in row.items()})
    return buffer.getvalue()


def _format(value: Any) -> Any:
    # repr of a float round-trips exactly, so a resumed run rewrites earlier rows unchanged.
    return repr(value) if isinstance(value, float) else value


def _read_csv(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _parse(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
