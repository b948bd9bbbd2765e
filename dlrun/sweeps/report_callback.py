"""The sweep report's Hydra callback: it checks `report` when a multirun starts, shows the
jobs as they run (sweeps/live.py), and reports the sweep at its end
(reporting/sweep_report.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from dlrun.errors import DlrunError
from dlrun.reporting.sweep_report import as_report_config, report_sweep

# The number of jobs of the last sweep report that did not complete (None: no report yet),
# that sweep's folder, and the error its report ended with (Hydra would turn an error
# raised in a callback into a warning). `dlrun -m` reads the first and the last to exit
# with a non-zero status, the Python API the second to open the sweep.
last_failed_jobs: int | None = None
last_sweep_dir: Path | None = None
last_error: DlrunError | None = None


class SweepReportCallback(Callback):
    """Hydra callback: checks `report` when a multirun starts, shows the jobs as they run
    (sweeps/live.py), reports the sweep at its end."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf
        from rich.console import Console

        from dlrun.sweeps import live

        as_report_config(_report_node(config))  # a bad report config fails before any job
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

        global last_failed_jobs, last_sweep_dir, last_error
        live.stop_active()
        last_sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            last_failed_jobs = report_sweep(last_sweep_dir, _report_node(config)).failed
        except DlrunError as err:  # raised by the command once Hydra is done
            last_error = err


def _poll_watcher() -> None:
    """A job of this process started or ended: show it now (a launcher's worker has none)."""
    from dlrun.sweeps import live

    if live.active is not None:
        live.active.poll()


def _report_node(config: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(config, "report", default=None)
