"""What a hyperparameter search optimizes: one number from a run's summary.

`optimized_metric: best.test_acc` makes the training command return the highest test
accuracy of any epoch, which Hydra's Optuna sweeper reads as the trial's value; best is the
highest for accuracies and the lowest for losses and perplexities. `final.<column>` takes
the last epoch's value instead. The name and the sweeper's direction are checked before any
data loads, so a misspelt name or a search for the worst model fails at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlrun.config.options.trainer import MonitorMode
from dlrun.errors import DlrunError
from dlrun.outputs.run_folder import METRICS_CSV

WHERE = ("best", "final")


def check_metric(name: str, direction: Any = None) -> None:
    """A `best.<column>` or `final.<column>` name whose direction matches the sweeper's."""
    where, _, column = name.partition(".")
    if where not in WHERE or not column:
        raise DlrunError(
            f"optimized_metric={name} is not a metric: use best.<column> or final.<column> "
            f"with a {METRICS_CSV} column, e.g. best.test_acc or final.test_loss."
        )
    direction = getattr(direction, "name", direction)  # the sweeper's Direction enum
    if isinstance(direction, str):
        wanted = "maximize" if _higher_is_better(column) else "minimize"
        if direction.lower() != wanted:
            raise DlrunError(
                f"optimized_metric={name} with hydra.sweeper.direction={direction} would search "
                f"for the worst model: set hydra.sweeper.direction={wanted}."
            )


def check_columns(name: str, columns: Sequence[str]) -> None:
    """The column exists in this run's metrics.csv (known once the task is)."""
    column = name.partition(".")[2]
    if column not in columns:
        raise DlrunError(
            f"optimized_metric={name}: {column} is not a metric of this run; use one of "
            f"{', '.join(f'best.{c}' for c in columns)} (or final.<column>)."
        )
    if name.startswith("best.") and _direction(column) is None:
        raise DlrunError(
            f"optimized_metric={name}: {column} is neither better high nor low, so it has no "
            f"best epoch; use final.{column}, or best.<column> of a metric."
        )


def objective(rows: Sequence[dict[str, Any]], name: str) -> float | None:
    """The value a sweeper optimizes, from metrics.csv rows; None when no epoch finished."""
    where, _, column = name.partition(".")
    values = [float(row[column]) for row in rows]
    if not values:
        return None
    if where == "final":
        return values[-1]
    return (_direction(column) or MonitorMode.min).best(values)


def _direction(column: str):
    """As the column's task declares it; imported here, so a config check loads no torch."""
    from dlrun.tasks import direction

    return direction(column)


def _higher_is_better(column: str) -> bool:
    return _direction(column) is MonitorMode.max
