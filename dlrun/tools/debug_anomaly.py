"""`debug=anomaly`: the run as configured, watched for the first NaN or infinity in any
module's forward output or backward gradient (training/anomaly.py), which it names. It
stops there as a diverged run does (status 3, its last checkpoint kept), a little earlier
and with the place said; slower, as every value is checked."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlrun.outputs.lock import FolderLock
from dlrun.outputs.run_folder import DEBUG
from dlrun.recipe.recipe import Recipe
from dlrun.tools.debug import tool_entry
from dlrun.training import anomaly
from dlrun.training.engine import Diverged, Interrupted

log = logging.getLogger("dlrun")


class AnomalyRecipe(Recipe):
    def watching(self) -> AbstractContextManager:
        return anomaly.watch(self.state.model, self.state)

    def end(self, stop: Interrupted | Diverged | None = None) -> dict[str, Any]:
        if isinstance(stop, anomaly.NonFinite):
            self.tool[DEBUG]["found"] = {
                "where": stop.where,
                "module": stop.module,
                "epoch": stop.epoch,
                "step": stop.step,
            }
        elif stop is None:
            log.info(
                "debug=anomaly: no module's output or gradient was NaN or infinite in %d steps",
                self.state.step,
            )
        return super().end(stop)


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    log.info("debug=anomaly: every module's output and gradient checked (slower)")
    with FolderLock(output_dir):
        recipe = AnomalyRecipe(cfg, output_dir)
        recipe.tool.update(tool_entry("anomaly", found=None))
        recipe.setup()
        return recipe.train()
