"""The steps of setting a run up, as plain functions: the recipe calls them in order.

Each takes what it needs and returns what it builds, so dlrun-eval and the benchmarks build
a model, a split or a training state exactly as a run does.
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dlrun.config.options.trainer import DataPath, MonitorMode
from dlrun.config.registry import INITS, MODELS, OPTIMIZERS, SCHEDULERS
from dlrun.data.dataset import Split
from dlrun.data.loader import LoaderSplit
from dlrun.diagnostics.norms import LayerNorms
from dlrun.errors import DlrunError
from dlrun.outputs.run_folder import read_overrides
from dlrun.tasks import Task, direction, metric_columns
from dlrun.training.state import TrainState

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}
MAX_LISTED_WEIGHTS = 32


def build_state(cfg: DictConfig, meta, regularizers: list, device: torch.device) -> TrainState:
    """Model, initialisation, optimizer and scheduler as the config says, on the device."""
    model_cfg = OmegaConf.create(OmegaConf.to_container(cfg.model))
    for regularizer in regularizers:
        regularizer.configure_model(model_cfg)
    model = MODELS.build(model_cfg, meta)
    INITS.build(cfg.init, model)
    model.to(device)
    if cfg.trainer.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = OPTIMIZERS.build(cfg.optimizer, model)
    for regularizer in regularizers:
        regularizer.configure_optimizer(optimizer)
    scheduler = SCHEDULERS.build(cfg.scheduler, optimizer, cfg.trainer.epochs)
    generator = torch.Generator().manual_seed(cfg.seed)
    state = TrainState(model, optimizer, generator, scheduler, regularizers)
    state.scaler = torch.amp.GradScaler(device.type, enabled=cfg.trainer.precision == "16")
    if cfg.trainer.compile:
        state.compiled = torch.compile(model)
    return state


def import_plugins(modules: list[str]) -> None:
    """Import the user's modules; like `python -m`, the current folder is importable."""
    if modules and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise DlrunError(
                f"plugins lists '{module}', which cannot be imported ({err}). Check the module "
                f"name and that its folder is on PYTHONPATH or installed."
            ) from err


def check_precision(cfg: DictConfig) -> None:
    """What the schema cannot say: the precision is one of a few strings."""
    precision = cfg.trainer.precision
    if str(precision) not in PRECISIONS:
        raise DlrunError(f"trainer.precision={precision} is not one of {', '.join(PRECISIONS)}.")


def monitor(trainer: DictConfig, task: Task) -> tuple[str, MonitorMode]:
    """The column whose best epoch is kept, and which way is better.

    A column with no better way (lr) counts its lowest value as best, unless
    trainer.monitor_mode says otherwise.
    """
    if trainer.monitor == "auto":
        return task.monitor, task.metrics[task.monitor.partition("_")[2]]
    columns = metric_columns(task)
    if trainer.monitor not in columns:
        raise DlrunError(
            f"trainer.monitor={trainer.monitor} is not a metric of a {task.name} run: use "
            f"auto or one of {', '.join(columns)}."
        )
    return trainer.monitor, direction(trainer.monitor, trainer.monitor_mode) or MonitorMode.min


def autocast(precision: str, device: torch.device):
    """A context factory: autocast to bfloat16 or float16, or nothing for 32-bit."""
    dtype = PRECISIONS[str(precision)]
    if dtype is None:
        return nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=dtype)


def place_split(split, trainer: DictConfig | dict, device: torch.device):
    """On the device whole (tensor path), or batch by batch through a DataLoader."""
    if DataPath(trainer.get("data_path", "tensor")) is DataPath.tensor:
        return split.to(device)
    if not isinstance(split, Split):
        raise DlrunError(
            "trainer.data_path=dataloader works for data sets of independent samples; "
            "text is read as sequences: use trainer.data_path=tensor."
        )
    return LoaderSplit(
        split, device, int(trainer.get("num_workers", 0)), bool(trainer.get("pin_memory"))
    )


def check_batches(train, test, batch_size: int, trainer: DictConfig) -> None:
    if train.num_batches(batch_size, trainer.drop_last) == 0:
        raise DlrunError(
            f"trainer.batch_size={batch_size} gives no training batch from {len(train)} "
            f"training samples (trainer.drop_last={trainer.drop_last}): lower the batch size "
            f"or set trainer.drop_last=false."
        )
    if test.num_batches(trainer.eval_batch_size) == 0:
        raise DlrunError(f"The test split ({len(test)} samples) is too small to evaluate on.")


def run_overrides(folder: Path) -> list[str]:
    """The overrides the run in `folder` last started with, less where it resumed from."""
    return [line for line in read_overrides(folder) if not line.startswith("trainer.resume=")]


@torch.no_grad()
def shapes(model: nn.Module, task: Task, split) -> str:
    """What one batch looks like going in and coming out, e.g. (N, 784) -> (N, 10).

    Also checks that the output can be scored: a mismatch would train on nonsense.
    """
    x, y = next(iter(split.batches(2)))
    was_training = model.training
    model.eval()
    output, _ = task.forward(model, x, None)
    model.train(was_training)
    task.check_shapes(output, y)

    def shape(t: torch.Tensor) -> str:
        return "(" + ", ".join(["N", *map(str, t.shape[1:])]) + ")"

    return f"input {shape(x)} -> output {shape(output)}"


def model_figures(model: nn.Module) -> dict[str, float]:
    """Figures of the trained model that tutorials quote, e.g. ||w|| in weight decay."""
    weights = torch.cat([p.detach().flatten() for p in model.parameters() if p.ndim >= 2])
    figures = {"weight_norm": torch.linalg.vector_norm(weights).item()}
    if len(weights) <= MAX_LISTED_WEIGHTS:  # small linear models: the weights themselves
        figures["weights"] = [round(w, 4) for w in weights.tolist()]
    return figures


def title(cfg: DictConfig) -> str:
    lr = cfg.optimizer.get("lr")
    return f"{cfg.model.name} on {cfg.dataset.name}, {cfg.optimizer.name}" + (
        f" lr {lr}" if lr is not None else ""
    )


def layer_norms(diagnostics: DictConfig, model: nn.Module) -> LayerNorms | None:
    """Per-layer norms after each epoch's training (and every N steps), if asked for."""
    if not diagnostics.layer_norms and not diagnostics.every_n_steps:
        return None
    return LayerNorms(
        model, diagnostics.vanishing_ratio, diagnostics.patience, diagnostics.exploding_norm
    )
