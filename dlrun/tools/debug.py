"""The debug modes, one at a time (`debug=fast|overfit|profile|anomaly`, conf/debug/):
the checks a learner reaches for before a long run. Each mode's module says what it does;
here is what they share: the data they train on, said openly in the log."""

from __future__ import annotations

import logging
from importlib import import_module
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlrun.config.options.tools import DebugMode
from dlrun.outputs.run_folder import DEBUG

log = logging.getLogger("dlrun")


def run_debug(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """The mode's run in `output_dir`; its summary, whose `debug` entry says what it found."""
    mode = DebugMode(cfg.debug.mode).value
    if cfg.reference is not None:  # a preset's figures: a debug run is not comparable
        log.info("debug=%s: the preset's reference figures are not compared", mode)
        cfg.reference = None
    return import_module(f"dlrun.tools.debug_{mode}").run(cfg, output_dir)


def limit_batches(cfg: DictConfig, train: int, test: int | None) -> int:
    """Train on `train` batches' worth of samples (the first of a fixed shuffle) and test on
    `test` batches (None: the test split as configured); the samples trained on."""
    trainer = cfg.trainer
    batch = trainer.batch_size or trainer.eval_batch_size
    samples = _fewer(trainer.max_train_samples, train * batch)
    trainer.max_train_samples = samples
    if test is not None:
        trainer.max_test_samples = _fewer(trainer.max_test_samples, test * trainer.eval_batch_size)
    return samples


def _fewer(limit: int | None, samples: int) -> int:
    return samples if limit is None else min(limit, samples)


def tool_entry(mode: str, **found: Any) -> dict[str, Any]:
    """summary.json's `debug` entry: the mode, then what it found."""
    return {DEBUG: {"mode": mode, **found}}
