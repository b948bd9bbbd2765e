"""The `dlrun` command: Hydra composes the config, `run` does the work.

User errors (DlrunError) print as one paragraph and exit with status 2; Hydra reports
config errors (unknown option, misspelt key, wrong type) itself, with status 1. A run whose
loss turns NaN or infinite stops with status 3, its last good checkpoint kept. SIGINT or
SIGTERM stops a run after the step in progress, saved, with status 128 + the signal. In a sweep
a failed job is recorded in its summary.json and the sweep goes on; the command then exits
with status 1. A sweep job whose folder already holds a checkpoint (a SLURM job requeued, or
a sweep started again with the same hydra.sweep.dir) continues from it.

Under torchrun every process runs this command; rank 0 writes the run folder, the others
get a scratch folder that is removed when they finish (train/distributed.py).
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console

import dlrun.builtins  # noqa: F401  (registers models, data sets, optimizers... and schemas)
from dlrun import search, sweep
from dlrun.config import register_configs
from dlrun.errors import EXIT_USER_ERROR, DlrunError, RunDiverged, RunInterrupted, report
from dlrun.extras import check_plugins
from dlrun.naming import register_resolvers
from dlrun.run import run
from dlrun.runfolder import RunFolder
from dlrun.train.checkpoint import LAST
from dlrun.train.distributed import World, world_from_env
from dlrun.train.threads import thread_budget

EXIT_DIVERGED = 3
EXIT_STOPPED_AT_ONCE = 130
EXIT_SWEEP_FAILED = 1

log = logging.getLogger("dlrun")


@hydra.main(version_base="1.3", config_path="pkg://dlrun.conf", config_name="config")
def _train(cfg: DictConfig) -> dict | float | None:
    """One run; returns its summary, or the optimized_metric's value to a search."""
    hydra_cfg = HydraConfig.get()
    output_dir = hydra_cfg.runtime.output_dir
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        _prepare_job(cfg, hydra_cfg, output_dir, in_sweep)
        summary = run(cfg, output_dir)
        if cfg.optimized_metric:
            return summary["optimized"]["value"]
        return summary
    except RunInterrupted as err:  # a sweep stops too: the user or the scheduler asked
        _report(err)
        raise SystemExit(128 + signal.Signals[err.signal_name].value) from None
    except RunDiverged as err:  # summary.json already says `diverged`
        _report(err)
        if not in_sweep:
            raise SystemExit(EXIT_DIVERGED) from None
    except DlrunError as err:
        _report(err)
        if not in_sweep:
            raise SystemExit(EXIT_USER_ERROR) from None
        RunFolder(output_dir).mark_failed(str(err))
    except Exception as err:
        if not in_sweep:
            raise
        log.exception("Job failed")  # the traceback goes to this job's train.log
        RunFolder(output_dir).mark_failed(f"{type(err).__name__}: {err}")
    return None


def _report(err: DlrunError) -> None:
    """Rank 0 speaks for a data-parallel run: the other ranks stopped for the same reason."""
    if world_from_env().is_main:
        report(err)


def _prepare_job(cfg: DictConfig, hydra_cfg, output_dir: str, in_sweep: bool) -> None:
    """What depends on how this job was started: its thread share, continuing, the metric."""
    launcher = hydra_cfg.launcher if in_sweep else None
    threads = thread_budget(cfg.trainer.num_threads, launcher, world_from_env())
    if threads is not None:
        cfg.trainer.num_threads = threads
    if in_sweep and not cfg.trainer.resume and (Path(output_dir) / "checkpoints" / LAST).is_file():
        log.info("This job's folder has a checkpoint: continuing from it")
        cfg.trainer.resume = output_dir
    if cfg.optimized_metric:
        direction = hydra_cfg.sweeper.get("direction") if in_sweep else None
        search.check_metric(cfg.optimized_metric, direction)


def main() -> None:
    register_resolvers()
    register_configs()
    arguments = sys.argv[1:]
    scratch = None
    try:
        check_plugins(arguments)
        world = world_from_env()
        if world.distributed:
            scratch = _rank_arguments(arguments, world)
    except DlrunError as err:
        report(err)
        sys.exit(EXIT_USER_ERROR)
    try:
        _train()
    except KeyboardInterrupt:  # a second SIGINT/SIGTERM, or one outside training
        Console(stderr=True).print("Stopped at once; files written so far are whole.")
        sys.exit(EXIT_STOPPED_AT_ONCE)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if sweep.last_failed_jobs:
        sys.exit(EXIT_SWEEP_FAILED)


def _rank_arguments(arguments: list[str], world: World) -> str | None:
    """Under torchrun: one run, whose folder only rank 0 writes; the others' scratch folder."""
    if {"-m", "--multirun"} & set(arguments):
        raise DlrunError(
            "torchrun starts one data-parallel run; a sweep (-m) under it would run every job in "
            "every process. Sweep by starting torchrun once per setting, or from a script."
        )
    if world.is_main:
        return None
    scratch = tempfile.mkdtemp(prefix=f"dlrun-rank{world.rank}-")
    sys.argv += [f"hydra.run.dir={scratch}", "hydra.output_subdir=null"]
    return scratch
