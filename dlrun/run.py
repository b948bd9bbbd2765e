"""One run, as data flowing through: config -> data -> model -> optimizer -> loop -> run folder."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from contextlib import nullcontext
from functools import partial
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dlrun import search
from dlrun.config import DataPath, MonitorMode, validate
from dlrun.data import Dataset, Split
from dlrun.data.loader import LoaderSplit
from dlrun.diagnostics.norms import LayerNorms
from dlrun.diagnostics.verdict import fit_verdict
from dlrun.errors import DlrunError, RunDiverged, RunInterrupted
from dlrun.initializers import weight_stats
from dlrun.loggers import build_loggers
from dlrun.provenance import git_commit, versions
from dlrun.reference import compare, render
from dlrun.registry import DATASETS, INITS, MODELS, OPTIMIZERS, SCHEDULERS
from dlrun.regularizers import build_regularizers
from dlrun.runfolder import RunFolder
from dlrun.tasks import Task, metric_columns, task_for
from dlrun.train import distributed
from dlrun.train.checkpoint import (
    BEST,
    INTERRUPTED,
    LAST,
    copy_checkpoint,
    find_checkpoint,
    load_checkpoint,
    restore_state,
    save_checkpoint,
)
from dlrun.train.device import resolve_device
from dlrun.train.distributed import Reducer, Shard, World, world_from_env
from dlrun.train.loop import (
    Diverged,
    EpochReport,
    Interrupted,
    LoopOptions,
    TrainState,
    fit,
)
from dlrun.train.seeding import seed_everything
from dlrun.train.signals import graceful_stop

log = logging.getLogger("dlrun")

# Keys that must match for a checkpoint to be continued under a new config.
RESUME_MUST_MATCH = ("model", "dataset")
PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}
MAX_LISTED_WEIGHTS = 32


def run(cfg: DictConfig, output_dir: str) -> dict[str, Any]:
    """Train as configured, leave the run folder in `output_dir`, return the summary.

    Under torchrun this is one rank of a data-parallel run (train/distributed.py).
    """
    world = world_from_env()
    try:
        return _run(cfg, output_dir, world)
    finally:
        distributed.stop()


def _run(cfg: DictConfig, output_dir: str, world: World) -> dict[str, Any]:
    started = time.time()
    validate(cfg)
    import_plugins(list(cfg.plugins))
    check_trainer(cfg)
    trainer = cfg.trainer
    if trainer.num_threads is not None:
        torch.set_num_threads(trainer.num_threads)
    if not world.is_main:  # rank 0 speaks for the run
        log.setLevel(logging.WARNING)
    seed_everything(cfg.seed)
    device = resolve_device(trainer.device)
    if world.distributed:
        device = distributed.start(world, device)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)

    checkpoint = None
    if trainer.resume:
        checkpoint = load_checkpoint(find_checkpoint(trainer.resume))
        _check_resumable(checkpoint["config"], config, trainer.resume)

    regularizers = build_regularizers(cfg.regularizer)
    # A missing package fails before any data loads.
    loggers = build_loggers(cfg.logger) if world.is_main else []

    data = DATASETS.build(cfg.dataset)
    task = task_for(data.meta, trainer.loss)
    monitor, mode = _monitor(trainer, task)
    if cfg.optimized_metric:
        search.check_columns(cfg.optimized_metric, metric_columns(task))
    train_part = data.train.head(trainer.max_train_samples, seed=cfg.seed)
    train_targets = train_part.targets
    train_split = place_split(train_part, trainer, device)
    test_part = data.test.head(trainer.max_test_samples, seed=cfg.seed)
    test_split = place_split(test_part, trainer, device)
    batch_size = trainer.batch_size or len(train_split)
    if world.distributed:
        train_split = Shard(train_split, world, even=True)
        test_split = Shard(test_split, world, even=False)
        batch_size = distributed.per_rank_batch(batch_size, world)
    _check_batches(train_split, test_split, batch_size, trainer)

    state = build_state(cfg, data.meta, regularizers, device)
    model = state.model
    if world.distributed:
        state.ddp = distributed.wrap(state.compiled or model, device)

    folder = RunFolder(output_dir, writes=world.is_main)
    if checkpoint is None:
        folder.write_init_stats(weight_stats(model))
    else:
        restore_state(state, checkpoint)
        folder.restore(state.epoch)
        log.info("Resuming after epoch %d from %s", state.epoch, trainer.resume)
    if world.distributed:
        distributed.seed_epoch(cfg.seed, world, state.epoch)

    _log_start(cfg, data, model, device, len(train_part), len(test_part), folder)
    if world.distributed:
        log.info(
            "Data-parallel: %d processes (%s), %d samples per process per step",
            world.size,
            "nccl" if device.type == "cuda" else "gloo",
            batch_size,
        )
    log.info("Batch shapes: %s", _shapes(model, task, test_split))
    folder.write_summary(_summary(cfg, task, folder, state, device, started, "running"))

    def on_epoch_end(state: TrainState, report: EpochReport) -> None:
        value = report.metrics[monitor]
        improved = state.best_value is None or (
            value > state.best_value if mode is MonitorMode.max else value < state.best_value
        )
        if improved:
            state.best_value, state.best_epoch = value, state.epoch
        folder.add_epoch(report.metrics, report.timings, report.steps)  # rank 0 writes
        if world.distributed:
            distributed.seed_epoch(cfg.seed, world, state.epoch)
        if not world.is_main:
            return
        for logger in loggers:
            logger.log_metrics(report.metrics, step=state.epoch, prefix="epoch/")
            for row in report.steps:
                logger.log_metrics(row, step=row["step"], prefix="step/")
        save_checkpoint(folder.checkpoints / LAST, state, config)
        if improved:
            copy_checkpoint(folder.checkpoints / LAST, folder.checkpoints / BEST)
        folder.write_summary(_summary(cfg, task, folder, state, device, started, "running"))
        folder.plot(_title(cfg), log_loss=task.name == "regression")
        _log_epoch(task, report, trainer.epochs)
        _generate(data, state, folder)
        if state.stop_reason:
            log.info("Stopped after epoch %d: %s", state.epoch, state.stop_reason)

    options = LoopOptions(
        autocast=_autocast(trainer.precision, device),
        channels_last=trainer.channels_last,
        epochs=trainer.epochs,
        batch_size=batch_size,
        eval_batch_size=trainer.eval_batch_size,
        shuffle=trainer.shuffle,
        drop_last=trainer.drop_last,
        progress=trainer.progress,
        log_every_n_steps=trainer.log_every_n_steps,
        reducer=Reducer(device) if world.distributed else None,
    )
    # Gradients are the same on every rank after averaging: rank 0's norms are the run's.
    norms = _layer_norms(cfg.diagnostics, state, folder, options) if world.is_main else None
    for logger in loggers:
        logger.start(folder.path, config, folder.path.name)

    def close(summary: dict[str, Any]) -> None:
        """The run's last word: summary.json, the final plots, the loggers' runs ended."""
        folder.write_summary(summary)
        folder.plot(_title(cfg), log_loss=task.name == "regression", final=True)
        _finish(loggers, summary)

    try:
        # torchrun passes a terminal's Ctrl-C on to processes that had it already.
        with graceful_stop(state, repeat_grace=5.0 if world.distributed else 0.0):
            fit(state, train_split, test_split, task, options, on_epoch_end)
    except Interrupted as err:
        # The epoch in progress is not finished: last.pt stays at the last whole epoch, so a
        # resume repeats this epoch and ends exactly as an uninterrupted run would.
        if world.is_main:
            save_checkpoint(folder.checkpoints / INTERRUPTED, state, config)
        summary = _summary(cfg, task, folder, state, device, started, "interrupted")
        summary["interrupted_at"] = {
            "signal": err.signal_name,
            "epoch": err.epoch,
            "step": err.step,
        }
        close(summary)
        raise RunInterrupted(
            f"Stopped by {err}. checkpoints/{LAST} holds the last whole epoch "
            f"({state.epoch}) and checkpoints/{INTERRUPTED} the weights at the stop; continue "
            f"with trainer.resume={folder.path}.",
            err.signal_name,
        ) from None
    except Diverged as err:
        summary = _summary(cfg, task, folder, state, device, started, "diverged")
        summary["diverged_at"] = {"epoch": err.epoch, "step": err.step}
        summary["warnings"] = norms.warnings if norms else []
        close(summary)
        raise RunDiverged(
            f"The run diverged: {err}. It stopped; checkpoints/last.pt holds the last good "
            f"epoch ({state.epoch}). Try a smaller optimizer.lr, gradient clipping "
            f"(regularizer=[grad_clip]) or another initialisation."
        ) from None
    except BaseException as err:  # the loggers' runs end as failed, not left open
        _finish(loggers, {"status": "failed", "error": f"{type(err).__name__}: {err}"})
        raise

    summary = _summary(cfg, task, folder, state, device, started, "completed")
    summary["warnings"] = norms.warnings if norms else []
    baseline = task.baseline_loss(train_targets)
    summary["fit"] = fit_verdict(summary["final"], task.name, cfg.diagnostics.verdict, baseline)
    summary["extras"] = extras(state.model)
    summary["reference"] = compare(cfg.reference, cfg, folder.metrics, summary["extras"])
    if cfg.optimized_metric:
        value = search.objective(folder.metrics, cfg.optimized_metric)
        summary["optimized"] = {"metric": cfg.optimized_metric, "value": value}
    close(summary)
    if summary["reference"] and summary["reference"]["figures"]:
        log.info("%s", render(summary["reference"]))
    log.info("Fit: %s (%s)", summary["fit"]["verdict"], summary["fit"]["because"])
    _log_end(summary, folder)
    return summary


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


def check_trainer(cfg: DictConfig) -> None:
    trainer = cfg.trainer
    for key in ("epochs", "batch_size", "eval_batch_size"):
        if trainer[key] is not None and trainer[key] < 1:
            raise DlrunError(f"trainer.{key}={trainer[key]} is out of range: it must be >= 1.")
    if trainer.num_workers < 0:
        raise DlrunError(f"trainer.num_workers={trainer.num_workers}: use 0 or more.")
    for key in ("max_train_samples", "max_test_samples", "num_threads"):
        if trainer[key] is not None and trainer[key] < 1:
            raise DlrunError(
                f"trainer.{key}={trainer[key]} is out of range: use null (all) or a value >= 1."
            )
    if str(trainer.precision) not in PRECISIONS:
        raise DlrunError(
            f"trainer.precision={trainer.precision} is not one of {', '.join(PRECISIONS)}."
        )
    if trainer.log_every_n_steps < 0:
        raise DlrunError(
            f"trainer.log_every_n_steps={trainer.log_every_n_steps}: use 0 (off) or >= 1."
        )


def _monitor(trainer: DictConfig, task: Task) -> tuple[str, MonitorMode]:
    if trainer.monitor == "auto":
        monitor, mode = task.monitor
        return monitor, MonitorMode(mode)
    columns = metric_columns(task)
    if trainer.monitor not in columns:
        raise DlrunError(
            f"trainer.monitor={trainer.monitor} is not a metric of a {task.name} run: use "
            f"auto or one of {', '.join(columns)}."
        )
    if trainer.monitor_mode is not None:
        return trainer.monitor, MonitorMode(trainer.monitor_mode)
    return trainer.monitor, MonitorMode.max if trainer.monitor.endswith("_acc") else MonitorMode.min


def _autocast(precision: str, device: torch.device):
    """A context factory: autocast to bfloat16 or float16, or nothing for 32-bit."""
    dtype = PRECISIONS[str(precision)]
    if dtype is None:
        return nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=dtype)


def _finish(loggers: list, summary: dict) -> None:
    """End every logger's run; one that fails does not keep the others open."""
    for logger in loggers:
        try:
            logger.finish(summary)
        except Exception:
            log.exception("Logger %s could not finish", type(logger).__name__)
            logger.close()


def _layer_norms(diagnostics, state: TrainState, folder: RunFolder, options: LoopOptions):
    """Record per-layer norms after each epoch's training (and every N steps, if asked)."""
    if not diagnostics.layer_norms and not diagnostics.every_n_steps:
        return None
    if diagnostics.every_n_steps < 0:
        raise DlrunError(
            f"diagnostics.every_n_steps={diagnostics.every_n_steps}: use 0 (off) or >= 1."
        )
    norms = LayerNorms(
        state.model, diagnostics.vanishing_ratio, diagnostics.patience, diagnostics.exploding_norm
    )

    def record(state: TrainState) -> None:
        folder.add_diagnostics(norms.record(state.epoch + 1, state.step))

    if diagnostics.layer_norms:
        options.after_train = record
    if diagnostics.every_n_steps:
        options.on_step, options.every_n_steps = record, diagnostics.every_n_steps
    return norms


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


def _check_batches(train, test, batch_size: int, trainer: DictConfig) -> None:
    if train.num_batches(batch_size, trainer.drop_last) == 0:
        raise DlrunError(
            f"trainer.batch_size={batch_size} gives no training batch from {len(train)} "
            f"training samples (trainer.drop_last={trainer.drop_last}): lower the batch size "
            f"or set trainer.drop_last=false."
        )
    if test.num_batches(trainer.eval_batch_size) == 0:
        raise DlrunError(f"The test split ({len(test)} samples) is too small to evaluate on.")


def _check_resumable(saved: dict, current: dict, resume: str) -> None:
    for key in RESUME_MUST_MATCH:
        if saved.get(key) != current.get(key):
            raise DlrunError(
                f"trainer.resume={resume} was trained with a different {key} config "
                f"({saved.get(key)}) than this run ({current.get(key)}). Resume with the "
                f"same {key} settings, or start a new run without trainer.resume."
            )


@torch.no_grad()
def _shapes(model: nn.Module, task: Task, split) -> str:
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


def extras(model: nn.Module) -> dict[str, float]:
    """Figures of the trained model that tutorials quote, e.g. ||w|| in weight decay."""
    weights = torch.cat([p.detach().flatten() for p in model.parameters() if p.ndim >= 2])
    figures = {"weight_norm": torch.linalg.vector_norm(weights).item()}
    if len(weights) <= MAX_LISTED_WEIGHTS:  # small linear models: the weights themselves
        figures["weights"] = [round(w, 4) for w in weights.tolist()]
    return figures


def _generate(data: Dataset, state: TrainState, folder: RunFolder) -> None:
    """Language models: continue each prefix, into the log and generated.txt."""
    spec = data.generation
    if spec is None or not spec.every or not spec.prefixes or state.epoch % spec.every:
        return
    vocab = data.meta.vocab
    index = {char: i for i, char in enumerate(vocab)}
    samples = {}
    for prefix in spec.prefixes:
        ids = state.model.generate([index[c] for c in prefix], spec.num_chars)
        samples[prefix] = "".join(vocab[i] for i in ids)
        log.info("  %r -> %r", prefix, samples[prefix])
    folder.add_generated(state.epoch, samples)


def _summary(cfg, task: Task, folder: RunFolder, state, device, started: float, status: str):
    monitor, _ = _monitor(cfg.trainer, task)
    final = folder.metrics[-1] if folder.metrics else {}
    best = next((r for r in folder.metrics if r["epoch"] == state.best_epoch), {})
    return {
        "status": status,
        "task": task.name,
        "epochs_run": state.epoch,
        "epochs_planned": cfg.trainer.epochs,
        "stopped_early": state.stop_reason,
        "final": final,
        "best": {"monitor": monitor, "epoch": state.best_epoch, **best},
        "wall_seconds": round(time.time() - started, 3),
        "train_seconds": round(sum(r["train_seconds"] for r in folder.timings), 3),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "processes": world_from_env().size,  # data-parallel ranks (torchrun)
        "precision": cfg.trainer.precision,
        "compile": cfg.trainer.compile,
        # The first optimizer step, torch.compile's compilation included when it is on.
        "first_step_seconds": state.first_step_seconds,
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
    meta = data.meta
    what = {
        "classification": f"{meta.num_classes} classes",
        "regression": f"{meta.num_outputs} output(s)",
        "language_model": f"{len(meta.vocab)} characters",
    }[meta.task]
    log.info(
        "%s (%s params) on %s: %d train / %d test samples, input %s, %s; device %s",
        cfg.model.name,
        f"{params:,}",
        cfg.dataset.name,
        n_train,
        n_test,
        "x".join(map(str, meta.input_shape)),
        what,
        device,
    )
    log.info("Run folder: %s", folder.path)


def _log_epoch(task: Task, report: EpochReport, epochs: int) -> None:
    metrics, timings = report.metrics, report.timings

    def split(name: str) -> str:
        return " ".join(f"{m} {_number(metrics[f'{name}_{m}'])}" for m in task.metrics)

    log.info(
        "epoch %*d/%d  train %s | test %s | %.1fs + %.1fs test, %s samples/s",
        len(str(epochs)),
        metrics["epoch"],
        epochs,
        split("train"),
        split("test"),
        timings["train_seconds"],
        timings["test_seconds"],
        f"{timings['train_samples_per_s']:,.0f}",
    )


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def _log_end(summary: dict, folder: RunFolder) -> None:
    final, best = summary["final"], summary["best"]
    if not final:
        return
    shown = [k for k in final if k.startswith("test_")]
    log.info(
        "Done after %d epochs: final %s; best epoch %s; %.1fs",
        summary["epochs_run"],
        ", ".join(f"{k} {_number(final[k])}" for k in shown),
        best["epoch"],
        summary["wall_seconds"],
    )
    log.info("Results in %s", folder.path)
