"""One run as an object: `setup()`, `train()`, `finish()`.

    recipe = Recipe(cfg, output_dir)   # cfg checked by config/schema.py's validate
    recipe.setup()             # runtime, data, training state, outputs
    summary = recipe.train()   # the loop, then summary.json, plots and loggers closed

The command line, dlrun-eval, the benchmarks and the Python API all set a run up through
these methods, so a model, data set or checkpoint is built one way only. Under torchrun this
is one rank of a data-parallel run (training/distributed.py); rank 0 writes the run folder.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

import dlrun.builtins  # noqa: F401  (registers the built-in models, data sets, optimizers...)
from dlrun.config.options.trainer import checkpoint_every
from dlrun.config.registry import DATASETS
from dlrun.diagnostics.verdict import fit_verdict
from dlrun.errors import RunDiverged, RunInterrupted
from dlrun.models.initializers import weight_stats
from dlrun.optim.regularizers import Regularizer, build_regularizers
from dlrun.outputs.lock import FolderLock
from dlrun.outputs.run_folder import CHECKPOINTS, LAST, RunFolder, find_checkpoint
from dlrun.outputs.trackers import build_loggers
from dlrun.recipe import objective, resume, setup
from dlrun.recipe.checkpoints import Checkpoints
from dlrun.recipe.epoch_end import (
    Curves,
    EpochEnd,
    EpochLine,
    GeneratedText,
    NormRows,
    Shown,
    Trackers,
)
from dlrun.recipe.shared_data import SharedData
from dlrun.recipe.summary import Summary, log_end, log_start
from dlrun.reporting.reference import compare, render
from dlrun.tasks import metric_columns, task_for
from dlrun.training import distributed
from dlrun.training.checkpoint import load_checkpoint, restore_state
from dlrun.training.device import resolve_device
from dlrun.training.distributed import Reducer, Shard
from dlrun.training.early_stopping import EarlyStopping
from dlrun.training.engine import Diverged, Interrupted, fit
from dlrun.training.options import LoopOptions, RunHooks
from dlrun.training.seeding import seed_everything
from dlrun.training.signals import graceful_stop
from dlrun.training.world import World, world_from_env

log = logging.getLogger("dlrun")


class Recipe:
    """Everything one run needs lives on `self`, set up step by step."""

    def __init__(
        self,
        cfg: DictConfig,
        output_dir: str | Path,
        world: World | None = None,
        shared: SharedData | None = None,
    ):
        self.cfg, self.trainer = cfg, cfg.trainer
        self.shared = shared  # data sets shared with other runs in this process
        self.output_dir = Path(output_dir)
        self.world = world or world_from_env()
        self.started = time.time()
        self.checkpoint: dict[str, Any] | None = None
        self.changes: dict[str, tuple[Any, Any]] = {}  # what this resume changes
        # What a debug mode (dlrun/tools/) records in summary.json under its own key.
        self.tool: dict[str, Any] = {}

    # --- setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        self.setup_runtime()
        self.setup_data()
        self.setup_state()
        self.setup_outputs()

    def setup_runtime(self) -> None:
        """Plugins, threads, seeds, the device; the checkpoint to continue from. The config
        was validated by whoever started the run (its job, dlrun-eval), before torch."""
        cfg, world = self.cfg, self.world
        setup.import_plugins(list(cfg.plugins))
        setup.check_precision(cfg)
        if self.trainer.num_threads is not None:
            torch.set_num_threads(self.trainer.num_threads)
        if not world.is_main:  # rank 0 speaks for the run
            log.setLevel(logging.WARNING)
        seed_everything(cfg.seed)
        self.device = resolve_device(self.trainer.device)
        if world.distributed:
            self.device = distributed.start(world, self.device)
        self.config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        if self.trainer.resume:
            self.setup_resume(self.trainer.resume)
        parts = build_regularizers(cfg.regularizer)
        self.regularizers = [p for p in parts if isinstance(p, Regularizer)]
        self.early_stopping = next((p for p in parts if isinstance(p, EarlyStopping)), None)
        # A missing package fails before any data loads.
        self.loggers = build_loggers(cfg.logger) if world.is_main else []

    def setup_resume(self, target: str) -> None:
        """The checkpoint to continue from, and what this resume changes (refused if it may
        not). A run killed before its first checkpoint starts again from the beginning."""
        found = find_checkpoint(target)
        if found is None:
            log.warning("%s has no checkpoint yet: starting the run from the beginning", target)
            return
        self.checkpoint = load_checkpoint(found)
        self.changes = resume.changes(self.checkpoint["config"], self.config)
        resume.check(self.changes, target, setup.run_overrides(self.output_dir))

    def setup_data(self) -> None:
        """The data set, its task, and the splits placed on the device (sharded per rank)."""
        cfg, trainer, world = self.cfg, self.trainer, self.world
        if self.shared is None:
            self.data = DATASETS.build(cfg.dataset)
        else:
            dataset = self.config["dataset"]
            self.data = self.shared.dataset(dataset, lambda: DATASETS.build(cfg.dataset))
        self.task = task_for(self.data.meta, trainer.loss)
        self.monitor, self.mode = setup.monitor(trainer, self.task)
        if cfg.optimized_metric:
            objective.check_columns(cfg.optimized_metric, metric_columns(self.task))
        train_part = self.data.train.head(trainer.max_train_samples, seed=cfg.seed)
        test_part = self.data.test.head(trainer.max_test_samples, seed=cfg.seed)
        self.sizes = len(train_part), len(test_part)
        self.train_targets = train_part.targets
        self.train_split = self._placed(train_part)
        self.test_split = self._placed(test_part)
        self.batch_size = trainer.batch_size or len(self.train_split)
        if world.distributed:
            self.train_split = Shard(self.train_split, world, even=True)
            self.test_split = Shard(self.test_split, world, even=False)
            self.batch_size = distributed.per_rank_batch(self.batch_size, world)
        setup.check_batches(self.train_split, self.test_split, self.batch_size, trainer)

    def _placed(self, split):
        def place():
            return setup.place_split(split, self.trainer, self.device)

        return place() if self.shared is None else self.shared.placed(split, self.device, place)

    def setup_state(self) -> None:
        """Model, initialisation, optimizer, scheduler: built, or restored from the checkpoint."""
        self.state = setup.build_state(self.cfg, self.data.meta, self.regularizers, self.device)
        self.state.early_stopping = self.early_stopping
        if self.world.distributed:
            self.state.ddp = distributed.wrap(self.state.compiled or self.state.model, self.device)
        self.init_stats = weight_stats(self.state.model) if self.checkpoint is None else None
        if self.checkpoint is not None:
            restore_state(self.state, self.checkpoint, self.world.rank, self.world.size)
            self._apply_changes()
        if self.world.distributed:
            distributed.seed_epoch(self.cfg.seed, self.world, self.state.epoch)

    def _apply_changes(self) -> None:
        cfg, changed = self.cfg, self.changes
        lr = cfg.optimizer.lr if "optimizer.lr" in changed else None
        decay = None
        if "optimizer.weight_decay" in changed:
            decay = cfg.optimizer.weight_decay
        if "regularizer.l2.strength" in changed:
            decay = cfg.regularizer.l2.strength
        resume.apply_to_optimizer(self.state.optimizer, self.state.scheduler, lr, decay)

    def setup_outputs(self) -> None:
        """The run folder, the epoch end that fills it, the loggers' runs started."""
        self.folder = RunFolder(self.output_dir, writes=self.world.is_main)
        self.folder.remove_leftovers()
        resumed_from = self.folder.resumes() if self.trainer.resume else []
        if self.checkpoint is None:
            self.folder.clear_rows()
            self.folder.write_init_stats(self.init_stats)
            if self.trainer.resume:  # killed before its first checkpoint: a fresh start
                resumed_from.append(_resume_entry(0, 0, 0, {}))
        else:
            resumed_from.append(self._resumed())
        self.summary = Summary(self.cfg, self.task, self.monitor, self.device, self.started)
        self.summary.resumed_from = resumed_from
        self.summary.tool = self.tool
        log_start(self)
        self.write_summary("running")
        self.curves = Curves(
            self.folder,
            setup.title(self.cfg),
            self.task.name == "regression",
            drawn=self.cfg.plots != "never",
        )
        # Gradients are the same on every rank after averaging: rank 0's norms are the run's.
        diagnostics = self.cfg.diagnostics
        self.norms = (
            setup.layer_norms(diagnostics, self.state.model) if self.world.is_main else None
        )
        self.state.layer_norms = self.norms
        if self.norms is not None and self.checkpoint and self.checkpoint.get("layer_norms"):
            self.norms.load_state_dict(self.checkpoint["layer_norms"])
        self.epoch_end = self._epoch_end()
        for logger in self.loggers:
            logger.start(self.folder.path, self.config, self.folder.path.name)

    def _resumed(self) -> dict[str, Any]:
        """The run folder back at the checkpoint, and what the log and summary.json say."""
        state, checkpoint = self.state, self.checkpoint
        assert checkpoint is not None
        rewritten = self.folder.restore(state.epoch, checkpoint.get("history"))
        if rewritten:
            log.warning(
                "%s did not match the checkpoint's rows: written again from it",
                ", ".join(rewritten),
            )
        batches = state.progress.batches if state.progress else 0
        where = f"epoch {state.epoch}"
        if batches:
            where = f"step {state.step} ({batches} batches into epoch {state.epoch + 1})"
        log.info("Resuming after %s from %s", where, self.trainer.resume)
        for key, (old, new) in self.changes.items():
            if key != "trainer.resume":
                log.info("  on resume, %s: %s -> %s (%s)", key, old, new, resume.reason(key))
        return _resume_entry(state.epoch, state.step, batches, resume.applied(self.changes))

    def _epoch_end(self) -> EpochEnd:
        every = checkpoint_every(self.trainer.checkpoint_every)
        self.checkpoints = Checkpoints(self.folder, self.config, every, self.world)
        diagnostics, norms = self.cfg.diagnostics, None
        if self.norms is not None:
            after_epochs, every_n_steps = diagnostics.layer_norms, diagnostics.every_n_steps
            norms = NormRows(self.norms, self.folder, after_epochs, every_n_steps)
        shown = None
        if self.world.is_main:
            shown = Shown(
                trackers=Trackers(self.loggers),
                write_summary=self.write_summary,
                curves=self.curves,
                line=EpochLine(self.task, self.trainer.epochs),
                generation=GeneratedText(self.data, self.folder) if self.data.generation else None,
            )
        return EpochEnd(
            folder=self.folder,
            checkpoints=self.checkpoints,
            monitor=self.monitor,
            mode=self.mode,
            world=self.world,
            seed=self.cfg.seed,
            stopping=self.early_stopping,
            norms=norms,
            shown=shown,
        )

    def loop_options(self, hooks: RunHooks | None = None) -> LoopOptions:
        """How the loop runs; `hooks` replace the run's epoch end (benchmarks time bare
        epochs)."""
        trainer = self.trainer
        return LoopOptions(
            autocast=setup.autocast(trainer.precision, self.device),
            channels_last=trainer.channels_last,
            epochs=trainer.epochs,
            batch_size=self.batch_size,
            eval_batch_size=trainer.eval_batch_size,
            shuffle=trainer.shuffle,
            drop_last=trainer.drop_last,
            progress=trainer.progress,
            log_every_n_steps=trainer.log_every_n_steps,
            hooks=self.epoch_end if hooks is None else hooks,
            reducer=Reducer(self.device) if self.world.distributed else None,
        )

    # --- train and finish ------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Train to the end, or to a stop; the run folder says which, and so does the error."""
        try:
            # torchrun passes a terminal's Ctrl-C on to processes that had it already.
            grace = 5.0 if self.world.distributed else 0.0
            with graceful_stop(self.state, repeat_grace=grace), self.watching():
                fit(self.state, self.train_split, self.test_split, self.task, self.loop_options())
        except (Interrupted, Diverged) as err:
            return self.end(err)
        except BaseException as err:
            self.failed(err)
            raise
        return self.end()

    def watching(self) -> AbstractContextManager:
        """What watches the loop from outside: a debug mode's profiler or anomaly checks."""
        return nullcontext()

    def end(self, stop: Interrupted | Diverged | None = None) -> dict[str, Any]:
        """After the loop: the completed run's summary, or the stop's error (RunInterrupted,
        RunDiverged) with the run folder saying so. A fused sweep ends its runs here too."""
        if isinstance(stop, Interrupted):
            self._interrupted(stop)
        if isinstance(stop, Diverged):
            self._diverged(stop)
        return self.finish()

    def failed(self, err: BaseException) -> None:
        """The loggers' runs end as failed, not left open."""
        self.summary.finish_loggers(
            self.loggers, {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        )

    def finish(self) -> dict[str, Any]:
        """A completed run's summary: fit verdict, reference figures, the search's value."""
        cfg, state = self.cfg, self.state
        summary = self.summary.build(self.folder, state, "completed")
        summary["warnings"] = self.norms.warnings if self.norms else []
        baseline = self.task.baseline_loss(self.train_targets)
        summary["fit"] = fit_verdict(
            summary["final"], self.task.name, cfg.diagnostics.verdict, baseline
        )
        summary["extras"] = setup.model_figures(state.model)
        summary["reference"] = compare(cfg.reference, cfg, self.folder.metrics, summary["extras"])
        if cfg.optimized_metric:
            value = objective.objective(self.folder.metrics, cfg.optimized_metric)
            summary["optimized"] = {"metric": cfg.optimized_metric, "value": value}
        self.close(summary)
        if summary["reference"] and summary["reference"]["figures"]:
            log.info("%s", render(summary["reference"]))
        log.info("Fit: %s (%s)", summary["fit"]["verdict"], summary["fit"]["because"])
        log_end(summary, self.folder)
        return summary

    def write_summary(self, status: str) -> dict[str, Any]:
        summary = self.summary.build(self.folder, self.state, status)
        self.folder.write_summary(summary)
        return summary

    def close(self, summary: dict[str, Any]) -> None:
        """The run's last word: summary.json, the final plots, the loggers' runs ended."""
        self.folder.write_summary(summary)
        self.curves.draw()
        self.summary.finish_loggers(self.loggers, summary)

    def _interrupted(self, err: Interrupted) -> None:
        # The loop saved last.pt at the stop (a step checkpoint), unless it stopped between
        # epochs, where the last epoch's checkpoint is the state: a resume goes on from there.
        summary = self.summary.build(self.folder, self.state, "interrupted")
        summary["interrupted_at"] = {
            "signal": err.signal_name,
            "epoch": err.epoch,
            "step": err.step,
        }
        self.close(summary)
        raise RunInterrupted(
            f"Stopped by {err}. {CHECKPOINTS}/{LAST} holds the run at that step; continue "
            f"with trainer.resume={self.folder.path}.",
            err.signal_name,
        ) from None

    def _diverged(self, err: Diverged) -> None:
        summary = self.summary.build(self.folder, self.state, "diverged")
        summary["diverged_at"] = {"epoch": err.epoch, "step": err.step}
        summary["warnings"] = self.norms.warnings if self.norms else []
        self.close(summary)
        raise RunDiverged(
            f"The run diverged: {err}. It stopped; {CHECKPOINTS}/{LAST} holds the last "
            f"checkpoint before the loss went bad. Try a smaller optimizer.lr, gradient clipping "
            f"(regularizer=[grad_clip]) or another initialisation."
        ) from None


def _resume_entry(epoch: int, step: int, batches: int, changed: dict) -> dict[str, Any]:
    """One resume, as summary.json's `resumed_from` lists it."""
    return {
        "epoch": epoch,
        "step": step,
        "batches_into_epoch": batches,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "changed": changed,
    }


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """Train as configured, leave the run folder in `output_dir`, return the summary."""
    lock = FolderLock(output_dir) if world_from_env().is_main else nullcontext()
    try:
        with lock:  # one writer per run folder
            recipe = Recipe(cfg, output_dir)
            recipe.setup()
            return recipe.train()
    finally:
        distributed.stop()
