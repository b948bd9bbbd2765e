"""One run, as data flowing through: config -> data -> model -> optimizer -> loop -> run folder."""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import time
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dlrun.config import validate
from dlrun.data import Dataset
from dlrun.errors import DlrunError
from dlrun.provenance import git_commit, versions
from dlrun.registry import DATASETS, INITS, MODELS, OPTIMIZERS, REGULARIZERS
from dlrun.runfolder import RunFolder
from dlrun.train.checkpoint import (
    BEST,
    LAST,
    copy_checkpoint,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from dlrun.train.device import resolve_device
from dlrun.train.loop import EPOCH_METRICS, LoopOptions, TrainState, fit
from dlrun.train.seeding import seed_everything, set_rng_state

log = logging.getLogger("dlrun")

# Keys that must match for a checkpoint to be continued under a new config.
RESUME_MUST_MATCH = ("model", "dataset")


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


def check_trainer(cfg: DictConfig) -> None:
    trainer = cfg.trainer
    for key in ("epochs", "batch_size", "eval_batch_size"):
        if trainer[key] < 1:
            raise DlrunError(f"trainer.{key}={trainer[key]} is out of range: it must be >= 1.")
    for key in ("max_train_samples", "max_test_samples", "num_threads"):
        if trainer[key] is not None and trainer[key] < 1:
            raise DlrunError(
                f"trainer.{key}={trainer[key]} is out of range: use null (all) or a value >= 1."
            )


def run(cfg: DictConfig, output_dir: str) -> dict[str, Any]:
    """Train as configured, leave the run folder in `output_dir`, return the summary."""
    started = time.time()
    validate(cfg)
    import_plugins(list(cfg.plugins))
    check_trainer(cfg)
    trainer = cfg.trainer
    if trainer.monitor not in EPOCH_METRICS:
        raise DlrunError(
            f"trainer.monitor={trainer.monitor} is not a metric: use one of "
            f"{', '.join(EPOCH_METRICS)}."
        )
    if trainer.num_threads is not None:
        torch.set_num_threads(trainer.num_threads)
    seed_everything(cfg.seed)
    device = resolve_device(trainer.device)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)

    checkpoint = None
    if trainer.resume:
        checkpoint = load_checkpoint(find_checkpoint(trainer.resume))
        _check_resumable(checkpoint["config"], config, trainer.resume)

    data = DATASETS.build(cfg.dataset)
    train_split = data.train.head(trainer.max_train_samples, seed=cfg.seed).to(device)
    test_split = data.test.head(trainer.max_test_samples, seed=cfg.seed).to(device)
    model = MODELS.build(cfg.model, data.meta)
    INITS.build(cfg.init, model)
    model.to(device)
    optimizer = OPTIMIZERS.build(cfg.optimizer, model)
    regularizer = REGULARIZERS.build(cfg.regularizer)
    state = TrainState(model, optimizer, torch.Generator().manual_seed(cfg.seed))
    if trainer.drop_last and len(train_split) < trainer.batch_size:
        raise DlrunError(
            f"trainer.drop_last=true with trainer.batch_size={trainer.batch_size} leaves no "
            f"batch from {len(train_split)} training samples: lower the batch size or set "
            f"trainer.drop_last=false."
        )

    folder = RunFolder(output_dir)
    if checkpoint is not None:
        _restore(state, checkpoint)
        folder.restore(state.epoch)
        log.info("Resuming after epoch %d from %s", state.epoch, trainer.resume)

    _log_start(cfg, data, model, device, len(train_split), len(test_split), folder)
    summary = _summary(cfg, folder, state, device, started, status="running")
    folder.write_summary(summary)
    monitor, mode = trainer.monitor, trainer.monitor_mode.value

    def on_epoch_end(state: TrainState, metrics: dict, timings: dict) -> None:
        value = metrics[monitor]
        improved = state.best_value is None or (
            value > state.best_value if mode == "max" else value < state.best_value
        )
        if improved:
            state.best_value, state.best_epoch = value, state.epoch
        folder.add_epoch(metrics, timings)
        save_checkpoint(folder.checkpoints / LAST, state, config)
        if improved:
            copy_checkpoint(folder.checkpoints / LAST, folder.checkpoints / BEST)
        folder.write_summary(_summary(cfg, folder, state, device, started, status="running"))
        folder.plot(_title(cfg))
        _log_epoch(metrics, timings, trainer.epochs)

    options = LoopOptions(
        epochs=trainer.epochs,
        batch_size=trainer.batch_size,
        eval_batch_size=trainer.eval_batch_size,
        shuffle=trainer.shuffle,
        drop_last=trainer.drop_last,
        progress=trainer.progress,
        regularizers=[regularizer],
    )
    fit(state, train_split, test_split, _loss_for(data), options, on_epoch_end)

    summary = _summary(cfg, folder, state, device, started, status="completed")
    folder.write_summary(summary)
    folder.plot(_title(cfg))
    _log_end(summary, folder)
    return summary


def _loss_for(data: Dataset) -> nn.Module:
    if data.meta.task == "classification":
        return nn.CrossEntropyLoss()
    raise DlrunError(f"No loss is defined for task '{data.meta.task}'.")


def _check_resumable(saved: dict, current: dict, resume: str) -> None:
    for key in RESUME_MUST_MATCH:
        if saved.get(key) != current.get(key):
            raise DlrunError(
                f"trainer.resume={resume} was trained with a different {key} config "
                f"({saved.get(key)}) than this run ({current.get(key)}). Resume with the "
                f"same {key} settings, or start a new run without trainer.resume."
            )


def _restore(state: TrainState, checkpoint: dict) -> None:
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.generator.set_state(checkpoint["generator"])
    state.epoch = checkpoint["epoch"]
    state.best_value = checkpoint["best_value"]
    state.best_epoch = checkpoint["best_epoch"]
    set_rng_state(checkpoint["rng"])


def _summary(cfg, folder: RunFolder, state: TrainState, device, started: float, status: str):
    final = folder.metrics[-1] if folder.metrics else {}
    best = next((r for r in folder.metrics if r["epoch"] == state.best_epoch), {})
    return {
        "status": status,
        "epochs_run": state.epoch,
        "epochs_planned": cfg.trainer.epochs,
        "final": final,
        "best": {"monitor": cfg.trainer.monitor, "epoch": state.best_epoch, **best},
        "wall_seconds": round(time.time() - started, 3),
        "train_seconds": round(sum(r["train_seconds"] for r in folder.timings), 3),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
        "git": git_commit(),
    }


def _title(cfg: DictConfig) -> str:
    lr = cfg.optimizer.get("lr")
    return f"{cfg.model.name} on {cfg.dataset.name}, {cfg.optimizer.name}" + (
        f" lr {lr}" if lr is not None else ""
    )


def _log_start(cfg, data: Dataset, model: nn.Module, device, n_train, n_test, folder) -> None:
    params = sum(p.numel() for p in model.parameters())
    log.info(
        "%s (%s params) on %s: %d train / %d test samples, input %s, %d classes; device %s",
        cfg.model.name,
        f"{params:,}",
        cfg.dataset.name,
        n_train,
        n_test,
        "x".join(map(str, data.meta.input_shape)),
        data.meta.num_classes,
        device,
    )
    log.info("Run folder: %s", folder.path)


def _log_epoch(metrics: dict, timings: dict, epochs: int) -> None:
    width = len(str(epochs))
    log.info(
        "epoch %*d/%d  train loss %.4f acc %.4f | test loss %.4f acc %.4f | "
        "%.1fs + %.1fs test, %s samples/s",
        width,
        metrics["epoch"],
        epochs,
        metrics["train_loss"],
        metrics["train_acc"],
        metrics["test_loss"],
        metrics["test_acc"],
        timings["train_seconds"],
        timings["test_seconds"],
        f"{timings['train_samples_per_s']:,.0f}",
    )


def _log_end(summary: dict, folder: RunFolder) -> None:
    final, best = summary["final"], summary["best"]
    if not final:
        return
    log.info(
        "Done: final test acc %.4f (train %.4f); best %s %.4f at epoch %s; %.1fs",
        final["test_acc"],
        final["train_acc"],
        best["monitor"],
        best.get(best["monitor"], math.nan),
        best["epoch"],
        summary["wall_seconds"],
    )
    log.info("Results in %s", folder.path)
