"""Typed schema of the top-level config and of the trainer group.

Values live in the YAML files under conf/; these dataclasses only say which keys exist and
of what type, so that `trainer.epoch=3` or `trainer.epochs=abc` fails while composing. The
schema of each model, data set, optimizer... is in config/options/.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from dlrun.config import ranges
from dlrun.config.options import SCHEMAS
from dlrun.config.options.report import ReportConfig
from dlrun.config.options.tools import DebugConfig, LrFindConfig, check_tools
from dlrun.config.options.trainer import TrainerConfig, checkpoint_every
from dlrun.config.ranges import at_least
from dlrun.errors import DlrunError


@dataclass
class VerdictConfig:
    """Thresholds of the fit verdict (underfitting / overfitting / good fit)."""

    # Classification: final train accuracy below this is underfitting...
    underfit_train_acc: float = MISSING
    # ...and a train-test accuracy gap above this is overfitting.
    overfit_acc_gap: float = MISSING
    # Regression and language models: a train loss above this fraction of the baseline loss
    # (predicting the mean, or character frequencies) is underfitting...
    underfit_loss_ratio: float = MISSING
    # ...and a test loss above this multiple of the train loss is overfitting.
    overfit_loss_ratio: float = MISSING


@dataclass
class DiagnosticsConfig:
    # Per-layer gradient and weight norms after each epoch into diagnostics.csv.
    layer_norms: bool = MISSING
    # Also every N optimizer steps; 0: at epoch ends only.
    every_n_steps: int = field(default=MISSING, metadata=at_least(0))
    # Vanishing: the input-side layer's gradient norm below this fraction of the output
    # layer's, in `patience` records in a row.
    vanishing_ratio: float = MISSING
    patience: int = MISSING
    # Exploding: any layer's gradient norm above this, or not finite.
    exploding_norm: float = MISSING
    verdict: VerdictConfig = MISSING


class Plots(str, Enum):
    """When a run draws its curves.png and gradients.png."""

    auto = "auto"  # a single run draws them; a sweep's jobs leave them to dlrun-report --plots
    always = "always"
    never = "never"


@dataclass
class Config:
    model: Any = MISSING
    dataset: Any = MISSING
    optimizer: Any = MISSING
    regularizer: dict[str, Any] = field(default_factory=dict)
    logger: dict[str, Any] = field(default_factory=dict)
    init: Any = MISSING
    scheduler: Any = MISSING
    trainer: TrainerConfig = MISSING
    seed: int = MISSING
    # Importable modules that register a user's own models, data sets, optimizers...
    plugins: list[str] = field(default_factory=list)
    # A tutorial's figures for this setup (see reporting/reference.py); set by presets.
    reference: Any = None
    # What a sweep's comparison plot shows.
    report: ReportConfig = MISSING
    diagnostics: DiagnosticsConfig = MISSING
    plots: Plots = MISSING
    # What `dlrun` returns to a hyperparameter search: best.<column> or final.<column>
    # of metrics.csv, e.g. best.test_acc (see recipe/objective.py); null returns nothing.
    optimized_metric: str | None = MISSING
    # Set by dlrun-lr-find (conf/lr_find/) and by debug=... (conf/debug/): a job that is
    # not a plain training run (dlrun/tools/); null for every other run.
    lr_find: LrFindConfig | None = None
    debug: DebugConfig | None = None


def register_configs() -> None:
    """Store the top-level schema and every built-in option's, as the YAML files expect."""
    store = ConfigStore.instance()
    store.store(name="config", group="schema", node=Config)
    store.store(name="trainer", group="schema", node=TrainerConfig)
    store.store(name="lr_find", group="schema", node=LrFindConfig)
    for group, schemas in SCHEMAS.items():
        for name, schema in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=schema)


def validate(cfg: DictConfig) -> None:
    """Check the composed config against the schema once more.

    Hydra's `+key=value` force-adds keys even into typed nodes, so `+trainer.epoch=3` would
    otherwise pass silently; the group options are checked by their builders (registry.py).
    """
    try:
        # As a plain dict: a typed source would carry its force-added keys through the merge.
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.to_container(cfg))
    except ConfigKeyError as err:
        parent, _, leaf = str(err.full_key).rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = [str(k) for k in node if k != leaf] if isinstance(node, DictConfig) else []
        raise DlrunError(f"Invalid config: {unknown_key(err.full_key, keys)}") from err
    except Exception as err:  # omegaconf raises several types; all mean a bad config
        raise DlrunError(f"Invalid config: {first_line(err)}") from err
    check_ranges(cfg)
    checkpoint_every(cfg.trainer.checkpoint_every)
    check_tools(cfg.get("lr_find"), cfg.get("debug"))


def check_ranges(cfg: DictConfig) -> None:
    """Every value within its declared range: the trainer's, and each built-in option's."""
    ranges.check(cfg, Config, "")
    for group in ("model", "dataset", "optimizer", "init", "scheduler"):
        schema = SCHEMAS[group].get(str(cfg[group].get("name")))
        ranges.check(cfg[group], schema, group)
    for group in ("regularizer", "logger"):
        for key, entry in (cfg.get(group) or {}).items():
            schema = SCHEMAS[group].get(str(entry.get("name")))
            ranges.check(entry, schema, f"{group}.{key}")


def unknown_key(key: str, keys: list[str]) -> str:
    """`trainer.epoch` is not a key: the closest of the real ones, and the others."""
    parent, _, leaf = key.rpartition(".")
    where = parent or "the config"
    close = difflib.get_close_matches(leaf, keys, n=1, cutoff=0.5)
    hint = f" Did you mean {parent + '.' if parent else ''}{close[0]}?" if close else ""
    return f"{where} has no key '{leaf}'.{hint} Keys of {where}: {', '.join(keys)}."


def first_line(err: Exception) -> str:
    """OmegaConf's message without the full_key / object_type lines it appends."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
