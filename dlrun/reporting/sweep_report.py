"""A sweep's report: one table and one figure comparing the jobs of a multirun.

After `dlrun -m ...`, the sweep folder gets

sweep_summary.csv  one row per job: the overrides that differ between jobs, status,
                   epochs run, final metrics, best monitored metric and its epoch, wall time
comparison.png     the `report.columns` of every job's metrics.csv (per epoch) or steps.csv
                   (per step) in one plot: one colour per job, one line style per column

and the same table is printed. When the jobs differ in seed, they are compared per
configuration (reporting/seed_report.py): sweep_stats.csv and sweep_compare.csv, a table and
one sentence per comparison, and comparison.png draws each configuration's mean over its
seeds in a 95% band. Everything is read from the job folders on disk (reporting/sweep_jobs.py),
so the report works whatever launcher ran the jobs (other processes, other machines), and a
job that failed, diverged or never wrote anything is a row with its status, not an error.
The figure is drawn by reporting/figures.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.config.options.report import ReportConfig, as_report_config
from dlrun.errors import DlrunError
from dlrun.outputs import drawing, run_folder
from dlrun.outputs.io import atomic_write_text
from dlrun.reporting import seeds
from dlrun.reporting.figures import COMPARISON, draw_comparison, sweep_figure
from dlrun.reporting.reference_check import print_references, reference_checks
from dlrun.reporting.seed_report import SeedComparison, compare_folders, print_comparison
from dlrun.reporting.sweep_jobs import (
    SweepJob,
    differing_keys,
    find_jobs,
    job_label,
    load_job,
)
from dlrun.reporting.table import RunTable, print_table, summary_cells

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.console import Console

log = logging.getLogger(__name__)

SUMMARY_CSV = "sweep_summary.csv"
COMPARISON_PNG = "comparison.png"
# The page's drawing, by name: the drawing helper imports reporting/page.py, not this module.
DRAW_PAGE = "dlrun.reporting.page:draw_page"
# What the sweep's last two drawings import (comparison.png, report.html): a second or two,
# spent by the helper while the jobs run.
HELPER_IMPORTS = (
    "dlrun.reporting.figures",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "pandas",
    "scipy.special",
    "dlrun.reporting.page",
    "jinja2",
    "plotly.offline",
)


def prepare_helper() -> None:
    """The drawing helper started, with what the sweep's report will draw imported."""
    drawing.prepare(list(HELPER_IMPORTS))


@dataclass
class SweepReport:
    rows: list[dict[str, Any]]
    failed: int
    csv_path: Path
    png_path: Path | None  # None when no job had anything to plot
    seeds: SeedComparison | None = None  # when the jobs differ in seed


def report_sweep(
    sweep_dir: str | Path, report: Any = None, console: Console | None = None, page: bool = False
) -> SweepReport:
    """Write sweep_summary.csv and comparison.png in sweep_dir and print the table; with
    `page`, report.html too (reporting/page.py).

    The figure and the page are drawn by the drawing helper where one is up (a sweep's,
    prepared while its jobs ran), one after the other, while the tables are made here."""
    cfg = as_report_config(report)
    sweep_dir = Path(sweep_dir)
    jobs = [load_job(path) for path in find_jobs(sweep_dir)]
    keys = differing_keys([job.overrides for job in jobs])
    rows = [_row(job, keys) for job in jobs]
    failed = sum(row["status"] != "completed" for row in rows)
    table = RunTable(rows, "job", keys, "error", title=str(sweep_dir))
    jobs, rows = _compared(jobs, rows)  # a tool's jobs are in the table only
    # Over seeds, each job's metrics.csv, read once here for the figure and the statistics.
    metrics = None
    if seeds.has_seeds([job.overrides for job in jobs]):
        metrics = {job.path: run_folder.read_rows(job.path) for job in jobs}
    png_path: Path | None = sweep_dir / COMPARISON_PNG
    figure = _draw_figure(png_path, sweep_dir, jobs, keys, cfg, metrics)
    if page:  # on disk once the command ends: it waits for every drawing
        folder = str(sweep_dir.absolute())
        path = sweep_dir / run_folder.REPORT_HTML
        drawing.draw(DRAW_PAGE, path, folder=folder, baseline=cfg.baseline)
    comparison, problem = None, None
    if metrics is not None:
        try:
            comparison = _compare_seeds(jobs, keys, rows, cfg, metrics)
        except DlrunError as err:  # a baseline that names no configuration
            problem = err

    csv_path = sweep_dir / SUMMARY_CSV
    atomic_write_text(csv_path, table.to_csv())
    if comparison is not None:
        comparison.write(sweep_dir)
    if console is None:
        from rich.console import Console

        console = Console()
    drawn = figure() or {"drawn": False, "notes": ["comparison plot failed"]}
    png_path = png_path if drawn["drawn"] else None
    _print_table(console, table, failed, drawn["notes"], csv_path, png_path)
    if any(_undrawn(job.path) for job in jobs):  # plots: auto leaves them to the user
        console.print(f"Each job's curves: dlrun-report {sweep_dir} --plots", soft_wrap=True)
    if comparison is not None:
        print_comparison(console, comparison)
        console.print(f"Over seeds: {sweep_dir / seeds.STATS_CSV}, {sweep_dir / seeds.COMPARE_CSV}")
    named = ((seeds.config_name(job.overrides, keys), job.summary) for job in jobs)
    print_references(console, *reference_checks(named))
    if problem is not None:
        raise problem
    return SweepReport(rows, failed, csv_path, png_path, comparison)


def _draw_figure(path, sweep_dir, jobs, keys, cfg, metrics) -> Callable[[], Any]:
    """comparison.png handed to the drawing helper if one is up, else drawn here; what
    comes back says whether it was drawn and what it left out. Over seeds (`metrics`, the
    rows read), one band per configuration, in the order its first job comes."""
    names = _configurations(jobs, keys) if metrics is not None else None
    known = {}
    if metrics is not None and cfg.file == "metrics":
        known = {str(folder.absolute()): rows for folder, rows in metrics.items()}
    arguments = {
        "sweep_dir": str(sweep_dir.absolute()),  # the helper's working folder may differ
        "jobs": [_as_json(job) for job in jobs],
        "keys": keys,
        "report": asdict(cfg),
        "configurations": names,
        "known_rows": known,
    }
    if not drawing.running():
        drawn = draw_comparison(path, **arguments)
        return lambda: drawn
    drawing.draw(COMPARISON, path, **arguments)
    return lambda: drawing.outcome(path)


def _compare_seeds(
    jobs: list[SweepJob],
    keys: list[str],
    rows: list[dict[str, Any]],
    cfg: ReportConfig,
    metrics: dict[Path, list[dict[str, Any]]] | None = None,
) -> SeedComparison:
    runs = [(j.path, j.overrides, r["status"], j.summary) for j, r in zip(jobs, rows, strict=True)]
    return compare_folders(runs, keys, cfg.baseline, metrics)


def comparison_figure(sweep_dir: str | Path, report: Any = None) -> Figure | None:
    """The comparison figure of a sweep (not saved); None when no job has a line to draw."""
    cfg = as_report_config(report)
    jobs = [load_job(path) for path in find_jobs(sweep_dir)]
    keys = differing_keys([job.overrides for job in jobs])
    jobs = [job for job in jobs if run_folder.made_by(job.summary) is None]
    names = None
    if seeds.has_seeds([job.overrides for job in jobs]):
        names = _configurations(jobs, keys)
    return sweep_figure(Path(sweep_dir), jobs, keys, cfg, [], names)


def _compared(jobs: list[SweepJob], rows: list[dict[str, Any]]) -> tuple[list, list]:
    """The training jobs and their rows: a folder a tool made (dlrun-lr-find, debug=...) is
    never compared."""
    kept = [
        (j, r) for j, r in zip(jobs, rows, strict=True) if run_folder.made_by(j.summary) is None
    ]
    return [job for job, _ in kept], [row for _, row in kept]


def _configurations(jobs: list[SweepJob], keys: list[str]) -> list[str]:
    """The configurations over seeds, in the order of their first job (as seeds groups them)."""
    return list(dict.fromkeys(seeds.config_name(job.overrides, keys) for job in jobs))


def _as_json(job: SweepJob) -> dict[str, Any]:
    return {"path": str(job.path.absolute()), "overrides": job.overrides, "summary": job.summary}


def _undrawn(job: Path) -> bool:
    return (job / run_folder.METRICS_CSV).is_file() and not (job / run_folder.CURVES_PNG).is_file()


def _row(job: SweepJob, keys: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"job": job.path.name}
    row.update({key: job.overrides.get(key, "") for key in keys})
    if job.summary is None:
        row["status"] = "unreadable" if job.summary_error else "missing"
        row["error"] = job.summary_error
        return row
    row.update(summary_cells(job.summary))
    row["status"] = run_folder.status(job.path, job.summary)
    if job.summary.get("error"):
        row["error"] = str(job.summary["error"])
    elif row["status"] == "killed":
        row["error"] = run_folder.killed_note(job.path)
    elif (tool := run_folder.made_by(job.summary)) is not None:
        row["error"] = f"made by {tool}: not compared"
    return row


def _print_table(
    console: Console,
    table: RunTable,
    failed: int,
    notes: list[str],
    csv_path: Path,
    png_path: Path | None,
) -> None:
    from rich.markup import escape

    print_table(console, table, label=lambda name: job_label(Path(name)))
    for note in notes:
        console.print(f"[yellow]{escape(note)}[/]")
    if not table.rows:
        console.print(f"No job folders in {escape(table.title)}")
    elif failed:
        console.print(f"[red]{failed} of {len(table.rows)} jobs did not complete[/]")
    console.print(f"Sweep summary: {escape(str(csv_path))}")
    if png_path is not None:
        console.print(f"Comparison: {escape(str(png_path))}")
