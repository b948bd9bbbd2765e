"""Typed schema of the top-level config and of the trainer group.

Values live in the YAML files under conf/; these dataclasses only say which keys exist and
of what type, so that `trainer.epoch=3` or `trainer.epochs=abc` fails while composing. The
schema of each model, data set, optimizer... sits beside its builder (see registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from dlrun.errors import DlrunError
from dlrun.sweep import ReportConfig


class MonitorMode(str, Enum):
    min = "min"
    max = "max"


class DataPath(str, Enum):
    tensor = "tensor"  # whole splits on the device, batches by indexing
    dataloader = "dataloader"  # torch DataLoader over CPU tensors, batches moved one by one


class Loss(str, Enum):
    auto = "auto"  # the task's own: cross entropy, or mse for regression
    cross_entropy = "cross_entropy"
    mse = "mse"
    half_mse = "half_mse"  # (y_hat - y)^2 / 2, the tutorials' squared loss
    l1 = "l1"
    huber = "huber"


@dataclass
class TrainerConfig:
    epochs: int = MISSING
    # null: the whole training split in one batch (batch gradient descent); 1: stochastic.
    batch_size: int | None = MISSING
    eval_batch_size: int = MISSING
    shuffle: bool = MISSING
    drop_last: bool = MISSING
    data_path: DataPath = MISSING
    # DataLoader path only: worker processes and pinned host memory for faster copies.
    num_workers: int = MISSING
    pin_memory: bool = MISSING
    # auto | cpu | cuda | cuda:N | mps
    device: str = MISSING
    # Train or test on the first N samples of a fixed shuffle; null means all.
    max_train_samples: int | None = MISSING
    max_test_samples: int | None = MISSING
    loss: Loss = MISSING
    # Which epoch is kept as checkpoints/best.pt: the best value of this metrics.csv column;
    # auto: test_acc (classification), test_loss (regression), test_ppl (language model).
    monitor: str = MISSING
    # null: max for accuracies, min for the rest.
    monitor_mode: MonitorMode | None = MISSING
    # Record the training loss every N steps in steps.csv; 0: off.
    log_every_n_steps: int = MISSING
    # A run folder or checkpoint to continue from; the run continues in that folder.
    resume: str | None = MISSING
    progress: bool = MISSING
    # CPU threads for torch; null keeps torch's choice.
    num_threads: int | None = MISSING
    # 32 | bf16 | 16: autocast to bfloat16 or float16 (16 adds a gradient scaler).
    precision: str = MISSING
    # Image batches and convolution weights in channels-last memory layout (faster on GPUs).
    channels_last: bool = MISSING
    # torch.compile the model; the first step's time, compilation included, is reported.
    compile: bool = MISSING


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
    every_n_steps: int = MISSING
    # Vanishing: the input-side layer's gradient norm below this fraction of the output
    # layer's, in `patience` records in a row.
    vanishing_ratio: float = MISSING
    patience: int = MISSING
    # Exploding: any layer's gradient norm above this, or not finite.
    exploding_norm: float = MISSING
    verdict: VerdictConfig = MISSING


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
    # A tutorial's figures for this setup (see reference.py); set by experiment presets.
    reference: Any = None
    # What a sweep's comparison plot shows.
    report: ReportConfig = MISSING
    diagnostics: DiagnosticsConfig = MISSING
    # What `dlrun` returns to a hyperparameter search: best.<column> or final.<column>
    # of metrics.csv, e.g. best.test_acc (see search.py); null returns nothing.
    optimized_metric: str | None = MISSING


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="config", group="schema", node=Config)
    store.store(name="trainer", group="schema", node=TrainerConfig)


def validate(cfg: DictConfig) -> None:
    """Check the composed config against the schema once more.

    Hydra's `+key=value` force-adds keys even into typed nodes, so `+trainer.epoch=3` would
    otherwise pass silently; the group options are checked by their builders (registry.py).
    """
    try:
        # As a plain dict: a typed source would carry its force-added keys through the merge.
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.to_container(cfg))
    except Exception as err:  # omegaconf raises several types; all mean a bad config
        raise DlrunError(f"Invalid config: {err}") from err
