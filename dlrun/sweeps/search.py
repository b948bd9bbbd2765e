"""A hyperparameter search's check, once before its first trial: the metric it optimizes
(recipe/objective.py) exists and the sweeper's direction looks for the best model."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dlrun.errors import EXIT_USER_ERROR, DlrunError, report
from dlrun.recipe.objective import check_metric


class CheckSearch(Callback):
    """Checks the metric and the direction once, before the first trial, not in every trial."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            if not config.get("optimized_metric"):
                raise DlrunError(
                    "A search needs the number to optimize: set optimized_metric, e.g. "
                    "optimized_metric=best.test_acc."
                )
            check_metric(config.optimized_metric, config.hydra.sweeper.get("direction"))
        except DlrunError as err:
            report(err)
            raise SystemExit(EXIT_USER_ERROR) from None
