"""Jobs that are not a plain training run: the learning-rate finder (`dlrun-lr-find`,
lr_find.py) and the debug modes (`debug=fast|overfit|profile|anomaly`, debug_*.py).

Each sets its run up through the recipe's own steps (recipe/recipe.py), so a model, data set
or checkpoint is built as a training run builds it, and leaves a run folder whose name and
summary.json say what made it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """What a job does: the finder, a debug mode, or training; its summary."""
    if cfg.get("lr_find") is not None:
        from dlrun.tools.lr_find import find

        return find(cfg, output_dir)
    if cfg.get("debug") is not None:
        from dlrun.tools.debug import run_debug

        return run_debug(cfg, output_dir)
    from dlrun.recipe.recipe import run as train

    return train(cfg, output_dir)
