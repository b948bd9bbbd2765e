"""The fused launcher's work: plan the sweep, set each group's runs up, train them as one.

Jobs that cannot be fused, and groups of one, run as Hydra's basic launcher runs them; the
log says why. Another Hydra app's jobs (the launcher is in the `hydra_plugins` namespace,
where any app may pick it) are handed to the basic launcher whole.

A group's runs are set up one after the other, each in its own job (folder, train.log,
lock), and trained by the epoch driver (training/engine.py) over stacked steps
(sweeps/fused/steps.py). Each run ends through its own recipe, so its folder is that of the same
job run alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from omegaconf import DictConfig, open_dict

from dlrun.config.schema import validate
from dlrun.errors import DlrunError
from dlrun.outputs import drawing
from dlrun.outputs.lock import FolderLock
from dlrun.outputs.run_folder import PLOT_EVERY_SECONDS
from dlrun.recipe.job import job_errors, job_value, prepare_job
from dlrun.recipe.recipe import Recipe
from dlrun.recipe.shared_data import SharedData
from dlrun.sweeps.fused import commit, plan
from dlrun.sweeps.fused.jobs import OpenJob
from dlrun.sweeps.fused.members import Member
from dlrun.sweeps.fused.memory import device_limit
from dlrun.sweeps.fused.steps import StackedSteps
from dlrun.training.engine import Diverged, Interrupted, train_group
from dlrun.training.signals import graceful_stop

log = logging.getLogger("dlrun")


@dataclass(eq=False)
class Job:
    index: int
    overrides: list[str]
    config: DictConfig

    @property
    def label(self) -> str:
        return " ".join(filter_overrides(self.overrides))


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
    if not isinstance(launcher.max_members, int) or launcher.max_members < 1:
        raise DlrunError(
            f"hydra.launcher.max_members={launcher.max_members} is not a number of runs: "
            f"use 1 or more (the default is 32; 1 trains every job alone)."
        )
    config = launcher.config
    if not plan.is_dlrun_config(config):  # another Hydra app picked this launcher
        return _basic(launcher).launch(job_overrides, initial_job_idx)
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    commit.recover(sweep_dir)
    jobs = [
        _compose(launcher, list(overrides), initial_job_idx + number)
        for number, overrides in enumerate(job_overrides)
    ]
    results: dict[int, JobReturn] = {}
    # A group's runs end together: their PNGs are drawn on every core, not one after another.
    drawing.use_helpers(os.cpu_count() or 1)
    for group, reason in _plan(jobs, launcher.max_members):
        if reason is not None:
            log.info("Job #%d runs alone: %s (%s)", group[0].index, reason, group[0].label)
            results[group[0].index] = _run_alone(launcher, group[0])
        else:
            numbers = ", ".join(f"#{job.index}" for job in group)
            log.info("Jobs %s train as one program (%d runs)", numbers, len(group))
            results.update(_run_group(launcher, group))
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [results[job.index] for job in jobs]


def _basic(launcher) -> BasicLauncher:
    basic = BasicLauncher()
    basic.setup(
        hydra_context=launcher.hydra_context,
        task_function=launcher.task_function,
        config=launcher.config,
    )
    return basic


def _compose(launcher, overrides: list[str], index: int) -> Job:
    config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, overrides)
    with open_dict(config):
        config.hydra.job.id = index
        config.hydra.job.num = index
    return Job(index, overrides, config)


def _plan(jobs: list[Job], max_members: int) -> list[tuple[list[Job], str | None]]:
    """Groups of jobs to fuse (reason None), and jobs alone with the reason, in job order."""
    units: list[tuple[list[Job], str | None]] = []
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        reason = plan.alone_reason(job.config)
        if reason is not None:
            units.append(([job], reason))
        else:
            groups.setdefault(plan.config_key(job.config), []).append(job)
    for group in groups.values():
        parts = plan.chunks(group, max_members)
        if len(parts) > 1:
            log.info(
                "%d jobs share their shapes: split into %d groups of at most "
                "hydra.launcher.max_members=%d",
                len(group),
                len(parts),
                max_members,
            )
        for part in parts:
            alone = "no other job of the sweep shares its shapes"
            if len(parts) > 1:
                alone = "the one job left over when its group was split"
            units.append((part, alone if len(part) == 1 else None))
    return sorted(units, key=lambda unit: unit[0][0].index)


def _run_alone(launcher, job: Job) -> JobReturn:
    return run_job(
        hydra_context=launcher.hydra_context,
        task_function=launcher.task_function,
        config=job.config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


class _Group:
    """A group's open jobs, their runs once set up, and what each job returns."""

    def __init__(self, launcher) -> None:
        self.launcher = launcher
        self.shared = SharedData()
        self.open: dict[Member, OpenJob] = {}
        self.results: dict[int, JobReturn] = {}
        self.stop: SystemExit | None = None

    def set_up(self, job: Job, locks: ExitStack) -> Member | None:
        """The job's run set up by its recipe; None when that failed (recorded, as alone)."""
        opened = OpenJob(self.launcher.hydra_context, self.launcher.task_function, job.config)
        cfg, output_dir = opened.task_cfg, opened.output_dir
        with opened.active(), job_errors(output_dir, in_sweep=True):
            validate(cfg)
            prepare_job(cfg, job.config.hydra, output_dir, in_sweep=True)
            locks.enter_context(FolderLock(output_dir))
            recipe = Recipe(cfg, output_dir, shared=self.shared)
            recipe.setup()
            member = Member(recipe, opened.active)
            self.open[member] = opened
            return member
        self.results[job.index] = opened.close(None)
        return None

    def leave(self, member: Member, stop: Exception | None) -> None:
        """A member's run ends, as it would alone: completed, diverged or stopped."""
        opened, value = self.open[member], None
        with opened.active():
            try:
                with job_errors(opened.output_dir, in_sweep=True):
                    value = self._end(member, stop)
            except SystemExit as exit_:  # a signal stops the sweep, once every run is saved
                self.stop = exit_
        self.results[opened.number] = opened.close(value)

    def alone(self, member: Member, reason: str) -> None:
        opened, value = self.open[member], None
        with opened.active(), member.random():
            log.info("This run trains alone: %s", reason)
            with job_errors(opened.output_dir, in_sweep=True):
                value = job_value(member.recipe.cfg, member.recipe.train())
        self.results[opened.number] = opened.close(value)

    @staticmethod
    def _end(member: Member, stop: Exception | None):
        """The run's summary, or its stop's error; a failure of the loop fails the run."""
        recipe = member.recipe
        if stop is None or isinstance(stop, (Interrupted, Diverged)):
            return job_value(recipe.cfg, recipe.end(stop))
        recipe.failed(stop)
        raise stop


def _run_group(launcher, jobs: list[Job]) -> dict[int, JobReturn]:
    """Set the jobs' runs up, train them, end them; on cuda, as many as its memory holds
    (measured on the first run), the others as the next group."""
    group, end, rest = _Group(launcher), len(jobs), []
    with ExitStack() as locks:
        members: list[Member] = []
        for number, job in enumerate(jobs):
            if number >= end:
                break
            if (member := group.set_up(job, locks)) is None:
                continue
            members.append(member)
            if len(members) == 1 and (limit := device_limit(member)) is not None:
                fits, per_member = limit
                if number + fits < len(jobs):
                    end, rest = number + fits, jobs[number + fits :]
                    log.info(
                        "The device's free memory holds %d of these runs (%.0f MiB each): "
                        "%d train in a later group",
                        fits,
                        per_member / 2**20,
                        len(rest),
                    )
        _train_members(group, members)
    if rest:
        group.results.update(_run_group(launcher, rest))
    return group.results


def _train_members(group: _Group, members: list[Member]) -> None:
    together: dict[tuple, list[Member]] = {}
    for member in members:
        reason = plan.model_reason(member.state.model)
        if reason is not None:
            group.alone(member, reason)
        else:
            together.setdefault(plan.signature(member.recipe), []).append(member)
    # A group of one trains stacked too: the last member of its group, before a stop.
    for same in together.values():
        _train(group, same)
        if group.stop is not None:
            raise group.stop


def _train(group: _Group, members: list[Member]) -> None:
    sweep_dir = Path(str(group.launcher.config.hydra.sweep.dir))
    # The group's curves are redrawn as often as one run's, not once per run as often.
    for member in members:
        member.recipe.folder.plot_every = PLOT_EVERY_SECONDS * len(members)
    try:
        with graceful_stop(*(member.state for member in members)):
            train_group(members, lambda trainees: StackedSteps(trainees, sweep_dir), group.leave)
    except Exception as err:  # the loop failed: every run still open fails with it
        for member in members:
            if group.open[member].number not in group.results:
                group.leave(member, err)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
