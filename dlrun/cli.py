"""The `dlrun` command: Hydra composes the config, `run` does the work.

User errors (DlrunError) print as one paragraph and exit with status 2; Hydra reports
config errors (unknown option, misspelt key, wrong type) itself, with status 1. A run whose
loss turns NaN or infinite stops with status 3, its last good checkpoint kept. SIGINT or
SIGTERM stops a run after the step in progress, saved, with status 128 + the signal. In a sweep
a failed job is recorded in its summary.json and the sweep goes on; the command then exits
with status 1.
"""

from __future__ import annotations

import logging
import signal
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console

import dlrun.builtins  # noqa: F401  (registers models, data sets, optimizers... and schemas)
from dlrun import sweep
from dlrun.config import register_configs
from dlrun.errors import EXIT_USER_ERROR, DlrunError, RunDiverged, RunInterrupted, report
from dlrun.naming import register_resolvers
from dlrun.run import run
from dlrun.runfolder import RunFolder

EXIT_DIVERGED = 3
EXIT_STOPPED_AT_ONCE = 130
EXIT_SWEEP_FAILED = 1

log = logging.getLogger("dlrun")


@hydra.main(version_base="1.3", config_path="pkg://dlrun.conf", config_name="config")
def _train(cfg: DictConfig) -> dict | None:
    hydra_cfg = HydraConfig.get()
    output_dir = hydra_cfg.runtime.output_dir
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        return run(cfg, output_dir)
    except RunInterrupted as err:  # a sweep stops too: the user or the scheduler asked
        report(err)
        raise SystemExit(128 + signal.Signals[err.signal_name].value) from None
    except RunDiverged as err:  # summary.json already says `diverged`
        report(err)
        if not in_sweep:
            raise SystemExit(EXIT_DIVERGED) from None
    except DlrunError as err:
        report(err)
        if not in_sweep:
            raise SystemExit(EXIT_USER_ERROR) from None
        RunFolder(output_dir).mark_failed(str(err))
    except Exception as err:
        if not in_sweep:
            raise
        log.exception("Job failed")  # the traceback goes to this job's train.log
        RunFolder(output_dir).mark_failed(f"{type(err).__name__}: {err}")
    return None


def main() -> None:
    register_resolvers()
    register_configs()
    try:
        _train()
    except KeyboardInterrupt:  # a second SIGINT/SIGTERM, or one outside training
        Console(stderr=True).print("Stopped at once; files written so far are whole.")
        sys.exit(EXIT_STOPPED_AT_ONCE)
    if sweep.last_failed_jobs:
        sys.exit(EXIT_SWEEP_FAILED)
