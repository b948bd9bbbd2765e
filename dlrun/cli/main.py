"""The `dlrun` command: Hydra composes the config, the recipe (recipe/recipe.py) runs it.

Nothing heavy is imported before the config has composed, so `--help`, `--cfg job` and every
config error answer at once. A config that does not compose (an unknown option of any
group, a misspelt key with the closest real one, a wrong type) prints one paragraph and
exits with status 1, as Hydra's own errors did; other user errors (DlrunError) exit with 2.
A run whose loss turns NaN or infinite stops with status 3, its last good checkpoint kept. SIGINT or
SIGTERM stops a run after the step in progress, saved, with status 128 + the signal. In a sweep
a failed job is recorded in its summary.json and the sweep goes on; the command then exits
with status 1. A sweep job whose folder already holds a checkpoint (a SLURM job requeued, or
a sweep started again with the same hydra.sweep.dir) continues from it.

Under torchrun every process runs this command; rank 0 writes the run folder, the others
get a scratch folder that is removed when they finish (training/distributed.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from dlrun.cli.exit import end_quickly
from dlrun.config.composition import explain
from dlrun.config.groups import check_choices, check_modes
from dlrun.config.hydra_plugins import check_plugins, register_fused_launcher
from dlrun.config.schema import register_configs, validate
from dlrun.errors import EXIT_USER_ERROR, ConfigError, DlrunError, report
from dlrun.outputs import drawing
from dlrun.outputs.naming import folder_error, register_resolvers
from dlrun.recipe.job import Caller, job_errors, job_value, prepare_job
from dlrun.sweeps import live
from dlrun.sweeps.report_callback import SweepEnded, SweepOutcome
from dlrun.training.world import World, world_from_env

# A config that does not compose (unknown option, misspelt key, wrong type): Hydra's status.
EXIT_CONFIG_ERROR = 1
EXIT_STOPPED_AT_ONCE = 130
EXIT_SWEEP_FAILED = 1

log = logging.getLogger("dlrun")


@hydra.main(version_base="1.3", config_path="pkg://dlrun.conf", config_name="config")
def _train(cfg: DictConfig) -> dict | float | None:
    """One run; returns its summary, or the optimized_metric's value to a search."""
    hydra_cfg = HydraConfig.get()
    output_dir = hydra_cfg.runtime.output_dir
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    Caller.output_dir, Caller.job_started = output_dir, True
    with job_errors(output_dir, in_sweep):
        validate(cfg)  # before torch is imported: a bad config answers at once
        from dlrun.tools import run

        prepare_job(cfg, hydra_cfg, output_dir, in_sweep)
        summary = run(cfg, output_dir)
        if os.getpid() != Caller.pid:  # a launcher's worker: the job's PNGs before it returns
            drawing.wait()
        return job_value(cfg, summary)
    return None


def main() -> None:
    end_quickly()
    arguments = sys.argv[1:]
    if {"-h", "--help"} & set(arguments):
        from dlrun.cli.help import help_text

        print(help_text())
        return
    try:
        outcome = run_command(arguments)
    except ConfigError as err:  # an option no group has, a config Hydra cannot compose
        report(err)
        sys.exit(EXIT_CONFIG_ERROR)
    except DlrunError as err:  # a missing plugin, a sweep under torchrun
        report(err)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:  # a second SIGINT/SIGTERM, or one outside training
        from rich.console import Console

        Console(stderr=True).print("Stopped at once; files written so far are whole.")
        sys.exit(EXIT_STOPPED_AT_ONCE)
    if outcome is not None and outcome.failed:
        sys.exit(EXIT_SWEEP_FAILED)


def run_command(arguments: list[str]) -> SweepOutcome | None:
    """The checks that need no config, then Hydra: what `dlrun ARGUMENTS` does. A sweep's
    outcome comes back (None for one run)."""
    register_resolvers()
    register_configs()
    register_fused_launcher(arguments)
    check_plugins(arguments)
    scratch = None
    world = world_from_env()
    if world.distributed:
        scratch = _rank_arguments(arguments, world)
    Caller.pid = os.getpid()
    try:
        check_choices(arguments)
        check_modes(arguments)
        outcome = _compose_and_run(arguments)
    except BaseException:
        with contextlib.suppress(DlrunError):  # the first error is the one to report
            drawing.wait()
        raise
    finally:
        live.stop_active()  # a sweep that stopped half-way leaves no live table behind
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    drawing.wait()  # the command ends with every PNG of its runs on disk
    if outcome is not None and outcome.error is not None:
        raise outcome.error
    return outcome


def _compose_and_run(arguments: list[str]) -> SweepOutcome | None:
    """Hydra composes and runs; a config it cannot compose comes back here to be explained.

    HYDRA_FULL_ERROR makes Hydra raise instead of printing its own advice; a user who set it
    gets Hydra's full traceback as before.
    """
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    _compose_once()
    Caller.job_started = False
    try:
        _train()
    except SweepEnded as ended:
        return ended.outcome
    except CompactHydraException as err:
        if full_error == "1":
            raise
        raise explain(err, arguments) from None
    except OSError as err:  # Hydra could not create the folder it was given
        if Caller.job_started or err.filename is None:
            raise
        raise folder_error(err.filename, err) from None
    finally:
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error


def _compose_once() -> None:
    """Hydra 1.3 composes the whole config once only to read `hydra.mode`, then again to run.

    dlrun's config never sets hydra.mode, so it is what the command line says (None: -m
    decides). That read is cut short here; a test checks that the mode still follows
    `hydra.mode=MULTIRUN`.
    """
    from hydra._internal.hydra import Hydra

    def mode_from_overrides(self, config_name, overrides):
        for override in overrides:
            if override.startswith("hydra.mode="):
                return RunMode[override.partition("=")[2]]
        return None

    Hydra.get_mode = mode_from_overrides
    _compose_each_job_once()


# A sweep keeps at most this many jobs' configs from checking its batch to launching it.
KEPT_JOB_CONFIGS = 64


def _compose_each_job_once() -> None:
    """Hydra's sweepers compose every job of a batch to catch a bad one before the first
    starts, and the launcher then composes each job again. Here the check composes them
    with one composition per distinct group choice (sweeps/composing.py), and the launcher
    is handed the config the check composed (each at most once; the batch's first
    KEPT_JOB_CONFIGS jobs; later ones are composed again the same way)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.plugins.sweeper import Sweeper

    from dlrun.sweeps.composing import JobComposer

    if getattr(ConfigLoaderImpl.load_sweep_config, "composes_once", False):
        return
    compose_job = ConfigLoaderImpl.load_sweep_config
    kept: dict[tuple, DictConfig] = {}
    composers: dict[int, JobComposer] = {}

    def load_sweep_config(self, master_config, sweep_overrides):
        key = (id(master_config), tuple(sweep_overrides))
        if key in kept:
            return kept.pop(key)
        composer = composers.get(id(master_config))
        if composer is not None and composer.master is master_config:
            return composer.compose(list(sweep_overrides))
        return compose_job(self, master_config, sweep_overrides)

    def validate_batch_is_legal(self, batch):
        if not batch:
            _remove_empty_sweep(Path(str(self.config.hydra.sweep.dir)))
            raise DlrunError(no_jobs(self.config))
        kept.clear()
        context = getattr(self, "hydra_context", None)
        loader = context.config_loader if context is not None else self.config_loader
        composer = composers.get(id(self.config))
        if composer is None or composer.master is not self.config:
            composers.clear()
            composer = composers[id(self.config)] = JobComposer(loader, self.config, compose_job)
        for number, overrides in enumerate(batch):
            config = composer.compose(list(overrides))
            if number < KEPT_JOB_CONFIGS:
                kept[(id(self.config), tuple(overrides))] = config

    load_sweep_config.composes_once = True
    ConfigLoaderImpl.load_sweep_config = load_sweep_config
    Sweeper.validate_batch_is_legal = validate_batch_is_legal


def _remove_empty_sweep(folder: Path) -> None:
    """The folder Hydra made for a sweep with no jobs, when it holds only its multirun.yaml."""
    from dlrun.outputs.run_folder import MULTIRUN_YAML

    if [p.name for p in folder.iterdir()] == [MULTIRUN_YAML]:
        (folder / MULTIRUN_YAML).unlink()
        folder.rmdir()


def no_jobs(config: DictConfig) -> str:
    """Why a sweep has no jobs: the sweep overrides that give no values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [str(o) for o in config.hydra.overrides.task]
    parsed = OverridesParser.create().parse_overrides(overrides)
    empty = [
        text
        for text, override in zip(overrides, parsed, strict=True)
        if override.is_discrete_sweep() and not list(override.sweep_string_iterator())
    ]
    named = f"{', '.join(empty)} gives no values, so " if empty else ""
    return (
        f"This sweep has no jobs: {named}there is nothing to run. Give each swept key at "
        f"least one value (seed=0,1,2 or 'seed=range(3)'), or leave out -m for one run."
    )


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
