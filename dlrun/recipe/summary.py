"""summary.json and the log lines that open and close a run."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from dlrun.outputs.provenance import git_commit, versions
from dlrun.outputs.run_folder import RunFolder
from dlrun.recipe.setup import shapes
from dlrun.tasks import Task
from dlrun.training.engine import number
from dlrun.training.state import TrainState
from dlrun.training.world import world_from_env

if TYPE_CHECKING:
    from dlrun.recipe.recipe import Recipe

log = logging.getLogger("dlrun")


class Summary:
    """Builds summary.json from the run folder's rows and the training state."""

    def __init__(self, cfg: DictConfig, task: Task, monitor: str, device, started: float):
        self.cfg, self.task, self.monitor = cfg, task, monitor
        self.device, self.started = device, started
        # Each resume of the run: epoch, step, batches into the epoch, time, what it changed.
        self.resumed_from: list[dict[str, Any]] = []
        # What a tool (dlrun/tools/) adds under its own key: `lr_find`, `debug`.
        self.tool: dict[str, Any] = {}

    def build(self, folder: RunFolder, state: TrainState, status: str) -> dict[str, Any]:
        trainer = self.cfg.trainer
        final = folder.metrics[-1] if folder.metrics else {}
        best = next((r for r in folder.metrics if r["epoch"] == state.best_epoch), {})
        return {
            "status": status,
            "task": self.task.name,
            "epochs_run": state.epoch,
            "epochs_planned": trainer.epochs,
            "stopped_early": state.stop_reason,
            "final": final,
            "best": {"monitor": self.monitor, "epoch": state.best_epoch, **best},
            "wall_seconds": round(time.time() - self.started, 3),
            "train_seconds": round(sum(r["train_seconds"] for r in folder.timings), 3),
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
            "processes": world_from_env().size,  # data-parallel ranks (torchrun)
            "precision": trainer.precision,
            "compile": trainer.compile,
            # The first optimizer step, torch.compile's compilation included when it is on.
            "first_step_seconds": state.first_step_seconds,
            "resumed_from": self.resumed_from,
            "versions": versions(),
            "git": git_commit(),
            **self.tool,
        }

    @staticmethod
    def finish_loggers(loggers: list, summary: dict) -> None:
        """End every logger's run; one that fails does not keep the others open."""
        for logger in loggers:
            try:
                logger.finish(summary)
            except Exception:
                log.exception("Logger %s could not finish", type(logger).__name__)
                logger.close()


def log_start(recipe: Recipe) -> None:
    cfg, meta, model = recipe.cfg, recipe.data.meta, recipe.state.model
    params = sum(p.numel() for p in model.parameters())
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
        *recipe.sizes,
        "x".join(map(str, meta.input_shape)),
        what,
        recipe.device,
    )
    log.info("Run folder: %s", recipe.folder.path)
    if recipe.world.distributed:
        log.info(
            "Data-parallel: %d processes (%s), %d samples per process per step",
            recipe.world.size,
            "nccl" if recipe.device.type == "cuda" else "gloo",
            recipe.batch_size,
        )
    log.info("Batch shapes: %s", shapes(model, recipe.task, recipe.test_split))


def log_end(summary: dict, folder: RunFolder) -> None:
    final, best = summary["final"], summary["best"]
    if not final:
        return
    shown = [k for k in final if k.startswith("test_")]
    epochs = summary["epochs_run"]
    log.info(
        "Done after %d epoch%s: final %s; best epoch %s; %.1fs",
        epochs,
        "" if epochs == 1 else "s",
        ", ".join(f"{k} {number(final[k])}" for k in shown),
        best["epoch"],
        summary["wall_seconds"],
    )
    log.info("Results in %s", folder.path)
