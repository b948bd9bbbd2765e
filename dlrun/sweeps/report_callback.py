"""The sweep report's Hydra callback: it checks `report` when a multirun starts, shows the
jobs as they run (sweeps/live.py), and reports the sweep at its end
(reporting/sweep_report.py).

Its outcome (the sweep's folder, the jobs that did not complete, the error the report
ended with) goes to the command up the call stack, in `SweepEnded`: Hydra turns an
Exception raised in a callback into a warning, and a multirun returns nothing to the
command. Hydra ends a multirun's callbacks in reverse order, so dlrun's, registered first
(conf/config.yaml), ends last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from dlrun.config.options.report import as_report_config
from dlrun.errors import DlrunError
from dlrun.outputs import drawing
from dlrun.reporting.sweep_report import prepare_helper, report_sweep


@dataclass
class SweepOutcome:
    sweep_dir: Path
    failed: int = 0  # jobs that did not complete: `dlrun -m` exits with status 1
    error: DlrunError | None = None  # what the report ended with, raised by the command


class SweepEnded(BaseException):
    """The sweep's outcome, on its way out of Hydra to `dlrun` (cli/main.py)."""

    def __init__(self, outcome: SweepOutcome) -> None:
        super().__init__(f"sweep ended: {outcome.sweep_dir}")
        self.outcome = outcome


class SweepReportCallback(Callback):
    """Hydra callback: checks `report` when a multirun starts, shows the jobs as they run
    (sweeps/live.py), reports the sweep at its end."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf
        from rich.console import Console

        from dlrun.sweeps import live

        as_report_config(_report_node(config))  # a bad report config fails before any job
        prepare_helper()  # the end's figure and page: their imports made while the jobs run
        overrides = [str(o) for o in OmegaConf.select(config, "hydra.overrides.task") or []]
        params = OmegaConf.select(config, "hydra.sweeper.params") or {}  # a preset's own sweep
        overrides += [f"{key}={value}" for key, value in params.items()]
        live.watch(Path(str(config.hydra.sweep.dir)), overrides, Console())

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        _poll_watcher()

    def on_job_end(self, config: Any, job_return: Any = None, **kwargs: Any) -> None:
        _poll_watcher()

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from dlrun.sweeps import live

        live.stop_active()
        outcome = SweepOutcome(Path(str(config.hydra.sweep.dir)))
        # The report's drawings go to the helper prepared for them (its imports made), not
        # to another one started for a fused group's PNGs.
        drawing.use_helpers(1)
        try:  # the sweep's report, and its report.html
            report = report_sweep(outcome.sweep_dir, _report_node(config), page=True)
            outcome.failed = report.failed
        except DlrunError as err:  # raised by the command once Hydra is done
            outcome.error = err
        raise SweepEnded(outcome)


def _poll_watcher() -> None:
    """A job of this process started or ended: show it now (a launcher's worker has none)."""
    from dlrun.sweeps import live

    if live.active is not None:
        live.active.poll_soon()


def _report_node(config: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(config, "report", default=None)
