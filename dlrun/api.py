"""dlrun from Python: the same runs as the command line, in this process, many times over.

    import dlrun
    run = dlrun.train(["dataset=digits", "trainer=smoke", "optimizer=adam"])
    run.metrics            # metrics.csv as a DataFrame
    run.summary["final"]   # summary.json as a dict
    run.plot()             # the figure of curves.png (shown inline in Jupyter)
    found = dlrun.lr_find(["dataset=digits", "optimizer=sgd"])   # dlrun-lr-find
    found.summary["lr_find"]["suggested_lr"]
    table = dlrun.sweep(["dataset=digits", "trainer=smoke", "optimizer=sgd,adam"])
    sweep = dlrun.load(table.attrs["path"])   # a seeded sweep: sweep.stats, sweep.compare
    dlrun.load("outputs/2026-12-01/10-00-00_lenet_adam")

`overrides` are the strings the command takes. Each call goes through the command's own
path (Hydra composes, the recipe runs, the run folder is written as `dlrun ...` writes it),
and Hydra's global state is reset between calls. A problem raises the DlrunError whose
paragraph the command would print.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.errors import DlrunError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@dataclass
class Run:
    """A run folder: its metrics, its summary, its curves."""

    path: Path

    @property
    def summary(self) -> dict[str, Any]:
        from dlrun.outputs.run_folder import read_summary

        try:
            return read_summary(self.path)
        except FileNotFoundError:
            return {}

    @property
    def metrics(self) -> pd.DataFrame:
        import pandas as pd

        from dlrun.outputs.run_folder import read_rows

        return pd.DataFrame(read_rows(self.path))

    @property
    def status(self) -> str:
        """summary.json's status; `killed` for a run that says `running` but has stopped."""
        from dlrun.outputs.run_folder import status

        summary = self.summary
        return status(self.path, summary) if summary else "missing"

    @property
    def lr_curve(self) -> pd.DataFrame:
        """lr_find.csv of a range test (dlrun.lr_find): lr, loss, smoothed loss per step."""
        import pandas as pd

        from dlrun.outputs.run_folder import LR_FIND_CSV, read_rows

        return pd.DataFrame(read_rows(self.path, LR_FIND_CSV))

    def plot(self) -> Figure:
        from dlrun.outputs.plots import curves_figure
        from dlrun.outputs.run_folder import METRICS_CSV, read_rows

        rows = read_rows(self.path)
        if not rows:
            raise DlrunError(f"{self.path} has no finished epoch to plot (no {METRICS_CSV} rows).")
        regression = self.summary.get("task") == "regression"
        return _inline(curves_figure(rows, self.path.name, regression))

    def _repr_html_(self) -> str:
        return _report_frame(self.path)


@dataclass
class Sweep:
    """A sweep folder: one row per job in `table`, and each job as a Run."""

    path: Path
    runs: list[Run] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        import pandas as pd

        from dlrun.reporting.sweep_report import SUMMARY_CSV

        return pd.read_csv(self.path / SUMMARY_CSV)

    @property
    def stats(self) -> pd.DataFrame:
        """sweep_stats.csv: per configuration and metric, the mean over seeds and its 95%
        interval (empty when the jobs do not differ in seed)."""
        from dlrun.reporting.seeds import STATS_CSV

        return _frame(self.path / STATS_CSV)

    @property
    def compare(self) -> pd.DataFrame:
        """sweep_compare.csv: every configuration against the baseline, over seeds."""
        from dlrun.reporting.seeds import COMPARE_CSV

        return _frame(self.path / COMPARE_CSV)

    def plot(self) -> Figure | None:
        from dlrun.reporting.folders import sweep_report_config
        from dlrun.reporting.sweep_report import comparison_figure

        figure = comparison_figure(self.path, sweep_report_config(self.path))
        return None if figure is None else _inline(figure)

    def _repr_html_(self) -> str:
        return _report_frame(self.path)


def train(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> Run:
    """Train one run, as `dlrun OVERRIDES` would; `output_dir` instead of outputs/<date>/."""
    from dlrun.cli import main

    arguments = _arguments(overrides)
    if output_dir is not None:
        arguments.append(f"hydra.run.dir={Path(output_dir).expanduser().absolute()}")
    with _command(arguments):
        main.run_command(arguments)
    return Run(Path(main.Caller.output_dir))


def lr_find(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> Run:
    """The learning-rate range test, as `dlrun-lr-find OVERRIDES`: `run.summary["lr_find"]`
    holds the suggested rate, its reason and the command; `run.lr_curve` is lr_find.csv."""
    from dlrun.cli.lr_find import arguments

    return train(arguments(_arguments(overrides)), output_dir)


def sweep(overrides: Sequence[str] = (), sweep_dir: str | Path | None = None) -> pd.DataFrame:
    """Run a sweep's jobs one after another, as `dlrun -m OVERRIDES`; its table of jobs.

    `table.attrs["path"]` is the sweep folder, for `dlrun.load`.
    """
    from dlrun.cli import main

    arguments = ["-m", *_arguments(overrides)]
    if sweep_dir is not None:
        arguments.append(f"hydra.sweep.dir={Path(sweep_dir).expanduser().absolute()}")
    with _command(arguments):
        outcome = main.run_command(arguments)
    if outcome is None:
        raise DlrunError(
            "The sweep ended without its report (hydra.callbacks.sweep_report was removed): "
            "open its folder with dlrun.load(PATH)."
        )
    table = load(outcome.sweep_dir).table
    table.attrs["path"] = str(outcome.sweep_dir)
    return table


def load(path: str | Path) -> Run | Sweep:
    """Open a run folder or a sweep folder that dlrun left."""
    from dlrun.outputs.run_folder import (
        HYDRA,
        MULTIRUN_YAML,
        SUMMARY_JSON,
        is_run_folder,
        is_sweep_folder,
    )
    from dlrun.reporting.sweep_jobs import find_jobs

    folder = Path(path).expanduser()
    if is_sweep_folder(folder):
        return Sweep(folder, [Run(job) for job in find_jobs(folder)])
    if is_run_folder(folder):
        return Run(folder)
    raise DlrunError(
        f"{path} is neither a run folder ({SUMMARY_JSON}, {HYDRA}/) nor a sweep folder "
        f"({MULTIRUN_YAML}): give one of the folders dlrun leaves in outputs/."
    )


def _report_frame(path: Path) -> str:
    """The folder's report.html, inline in a notebook: in a frame of its own, so that its
    script and style stay inside it."""
    import html

    from dlrun.reporting.folders import build_report
    from dlrun.reporting.page import page_html

    page = html.escape(page_html(build_report(path)), quote=True)
    return f'<iframe srcdoc="{page}" style="width: 100%; height: 720px; border: 0"></iframe>'


def _frame(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def _inline(figure: Figure) -> Figure:
    """In a Jupyter kernel, a returned figure shows inline: where no PNG printer for figures
    is registered yet (matplotlib registers one once pyplot is in use), dlrun registers its
    own. dlrun draws without pyplot, so that no backend is switched."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None:
        from matplotlib.figure import Figure

        png = shell.display_formatter.formatters["image/png"]
        try:
            png.lookup_by_type(Figure)
        except KeyError:
            png.for_type(Figure, _png)
    return figure


def _png(figure: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _arguments(overrides: Sequence[str]) -> list[str]:
    if isinstance(overrides, str):
        raise DlrunError(
            f"overrides={overrides!r} is one string: give a list, e.g. [{overrides!r}], as the "
            f"command line splits them."
        )
    return [str(o) for o in overrides]


@contextmanager
def _command(arguments: list[str]):
    """Hydra reads sys.argv; the command raises instead of printing and exiting."""
    from dlrun.cli import main

    argv, raise_errors = sys.argv, main.Caller.raise_errors
    sys.argv, main.Caller.raise_errors = ["dlrun", *arguments], True
    main.Caller.output_dir = None
    try:
        yield
    finally:
        sys.argv, main.Caller.raise_errors = argv, raise_errors
