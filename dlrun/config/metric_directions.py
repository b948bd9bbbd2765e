"""Which metrics each task reports, and which way each is better: a table read without torch.

The tasks (dlrun/tasks/) take their metrics from it, and a task a plugin registers is added
to it (tasks/base.py, register_task). So "better" is decided here, once, for a run's best
epoch, early stopping, a search's objective and the reports alike, and `dlrun-report` and
report.html read it without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterable

from dlrun.config.options.trainer import MonitorMode
from dlrun.errors import DlrunError

SPLITS = ("train", "test")
# Per task (the data set's `DatasetMeta.task`), its metrics: metrics.csv has train_<m>, test_<m>.
METRICS: dict[str, dict[str, MonitorMode]] = {
    "classification": {"loss": MonitorMode.min, "acc": MonitorMode.max},
    "regression": {"loss": MonitorMode.min},
    "language_model": {"loss": MonitorMode.min, "ppl": MonitorMode.min},
}


def add_task(name: str, metrics: dict[str, MonitorMode]) -> None:
    """A task's metrics, refused when one of them is better the other way in another task."""
    for metric, way in metrics.items():
        for other, theirs in METRICS.items():
            if other != name and theirs.get(metric, way) is not way:
                raise DlrunError(
                    f"Task {name} says {metric} is better {way.value}, task {other} says "
                    f"{theirs[metric].value}: one metric name, one direction."
                )
    METRICS[name] = metrics


def direction(column: str, chosen: str | MonitorMode | None = None) -> MonitorMode | None:
    """Which way a metrics.csv column is better: the user's key when set (`chosen`:
    trainer.monitor_mode, regularizer.early_stopping.mode), else as its task declares; None
    for a column no task ranks (lr). The one place that decides it."""
    if chosen is not None:
        return MonitorMode(chosen)
    _, _, metric = column.partition("_")
    for metrics in METRICS.values():
        if column.startswith(SPLITS) and metric in metrics:
            return metrics[metric]
    return None


def task_of_columns(columns: Iterable[str]) -> str | None:
    """The task whose metrics.csv has exactly these metric columns (a run without summary)."""
    found = {column for column in columns if column.startswith(SPLITS)}
    for name, metrics in METRICS.items():
        if found == {f"{split}_{metric}" for split in SPLITS for metric in metrics}:
            return name
    return None
