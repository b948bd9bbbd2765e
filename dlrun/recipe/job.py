"""What one job of the `dlrun` command does around its run: how it was started, what it
returns to Hydra, and what each kind of failure does to it and to the sweep.

The command's task function (cli/main.py) and the fused launcher (dlrun/sweeps/fused/) both go
through these, so a fused sweep's member fails, stops or diverges as a job run alone does.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig

from dlrun.errors import (
    EXIT_USER_ERROR,
    DlrunError,
    FolderInUse,
    RunDiverged,
    RunInterrupted,
    report,
)
from dlrun.training.world import world_from_env

EXIT_DIVERGED = 3

log = logging.getLogger("dlrun")


class Caller:
    """Who started the command: the shell (errors printed, exit statuses) or the Python API
    (errors raised), and the folders the last call left, for the API to open."""

    raise_errors = False
    output_dir: str | None = None
    pid: int | None = None  # the command's process; a launcher's workers are others
    job_started = False  # whether Hydra got as far as calling a job (its folder exists)


@contextmanager
def job_errors(output_dir: str, in_sweep: bool) -> Iterator[None]:
    """A job's failures as the command answers them. In a sweep, a failed job is recorded
    in its summary.json and the sweep goes on; a signal or a folder in use stops it."""
    try:
        yield
    except RunInterrupted as err:  # a sweep stops too: the user or the scheduler asked
        if Caller.raise_errors:
            raise
        _report(err)
        raise SystemExit(128 + signal.Signals[err.signal_name].value) from None
    except RunDiverged as err:  # summary.json already says `diverged`
        if Caller.raise_errors and not in_sweep:
            raise
        _report(err)
        if not in_sweep:
            raise SystemExit(EXIT_DIVERGED) from None
    except DlrunError as err:
        if Caller.raise_errors and not in_sweep:
            raise
        _report(err)
        # A folder another run writes: the sweep is a second one in the same folder, so it
        # stops here, leaving that folder to its writer.
        if not in_sweep or isinstance(err, FolderInUse):
            raise SystemExit(EXIT_USER_ERROR) from None
        mark_failed(output_dir, str(err))
    except Exception as err:
        if not in_sweep:
            raise
        log.exception("Job failed")  # the traceback goes to this job's train.log
        mark_failed(output_dir, f"{type(err).__name__}: {err}")


def prepare_job(cfg: DictConfig, hydra_cfg, output_dir: str, in_sweep: bool) -> None:
    """What depends on how this job was started: its thread share, continuing, the metric,
    its figures (a sweep's jobs draw theirs on request: `plots: auto`)."""
    from dlrun.outputs.run_folder import checkpoint_file
    from dlrun.recipe import objective
    from dlrun.training.threads import thread_budget

    launcher = hydra_cfg.launcher if in_sweep else None
    threads = thread_budget(cfg.trainer.num_threads, launcher, world_from_env())
    if threads is not None:
        cfg.trainer.num_threads = threads
    if in_sweep and not cfg.trainer.resume and checkpoint_file(output_dir).is_file():
        log.info("This job's folder has a checkpoint: continuing from it")
        cfg.trainer.resume = output_dir
    if in_sweep and cfg.plots == "auto":
        cfg.plots = "never"
    if cfg.optimized_metric:
        direction = hydra_cfg.sweeper.get("direction") if in_sweep else None
        objective.check_metric(cfg.optimized_metric, direction)


def job_value(cfg: DictConfig, summary: dict[str, Any]) -> dict | float | None:
    """What the job returns to Hydra: its summary, or the optimized metric to a search."""
    if cfg.optimized_metric:
        return summary["optimized"]["value"]
    return summary


def mark_failed(output_dir: str, error: str) -> None:
    from dlrun.outputs.run_folder import RunFolder

    RunFolder(output_dir).mark_failed(error)


def _report(err: DlrunError) -> None:
    """Rank 0 speaks for a data-parallel run: the other ranks stopped for the same reason."""
    if world_from_env().is_main:
        report(err)
