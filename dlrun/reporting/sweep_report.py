"""A sweep's report: one table and one figure comparing the jobs of a multirun.

After `dlrun -m ...`, the sweep folder gets

sweep_summary.csv  one row per job: the overrides that differ between jobs, status,
                   epochs run, final metrics, best monitored metric and its epoch, wall time
comparison.png     the `report.columns` of every job's metrics.csv (per epoch) or steps.csv
                   (per step) in one plot: one colour per job, one line style per column

and the same table is printed. When the jobs differ in seed, they are compared per
configuration (reporting/seed_report.py): sweep_stats.csv and sweep_compare.csv, a table and
one sentence per comparison, and comparison.png draws each configuration's mean over its
seeds in a 95% band. Everything is read from the job folders on disk, so the
report works whatever launcher ran the jobs (other processes, other machines), and a job
that failed, diverged or never wrote anything is a row with its status, not an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.config.options.report import ReportConfig
from dlrun.errors import DlrunError
from dlrun.outputs import run_folder
from dlrun.outputs.io import atomic_write, atomic_write_text
from dlrun.reporting import seeds
from dlrun.reporting.seed_report import (
    LINE_STYLES,
    SeedComparison,
    compare_folders,
    draw_bands,
    print_comparison,
)
from dlrun.reporting.table import RunTable, print_table, summary_cells

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.console import Console

log = logging.getLogger(__name__)

SUMMARY_CSV = "sweep_summary.csv"
COMPARISON_PNG = "comparison.png"
FILES = {"metrics": (run_folder.METRICS_CSV, "epoch"), "steps": (run_folder.STEPS_CSV, "step")}


@dataclass
class SweepReport:
    rows: list[dict[str, Any]]
    failed: int
    csv_path: Path
    png_path: Path | None  # None when no job had anything to plot
    seeds: SeedComparison | None = None  # when the jobs differ in seed


@dataclass
class _Job:
    path: Path
    overrides: dict[str, str]
    summary: dict[str, Any] | None
    summary_error: str | None = None


def as_report_config(report: Any = None) -> ReportConfig:
    """A ReportConfig from a ReportConfig, a DictConfig, a mapping or None (the defaults).

    Raises ValueError for an unknown key, an unknown file or a ylim that is not two numbers.
    """
    if isinstance(report, ReportConfig):
        values = asdict(report)
    elif report is None:
        values = {}
    else:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(report, DictConfig):
            report = OmegaConf.to_container(report, resolve=True)
        if not isinstance(report, Mapping):
            raise ValueError(f"report must be a mapping, not {type(report).__name__}")
        values = dict(report)
    known = {f.name for f in fields(ReportConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown report key(s) {unknown}; known: {sorted(known)}")
    cfg = ReportConfig(**values)
    if cfg.file not in FILES:
        raise ValueError(f"report.file must be one of {sorted(FILES)}, not {cfg.file!r}")
    if isinstance(cfg.columns, str):
        cfg.columns = [cfg.columns]
    cfg.columns = [str(c) for c in cfg.columns]
    if cfg.ylim is not None:
        ylim = list(cfg.ylim)
        if len(ylim) != 2 or not all(isinstance(v, int | float) for v in ylim):
            raise ValueError(f"report.ylim must be two numbers [low, high], not {cfg.ylim!r}")
        cfg.ylim = [float(v) for v in ylim]
    cfg.log_y = bool(cfg.log_y)
    cfg.title = str(cfg.title or "")
    cfg.baseline = str(cfg.baseline or "")
    return cfg


def find_jobs(sweep_dir: str | Path) -> list[Path]:
    """The job folders of a sweep (those with .hydra/overrides.yaml), by job number."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    jobs = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and run_folder.started_with(p, run_folder.OVERRIDES_YAML) is not None
    ]
    return sorted(jobs, key=_job_order)


def report_sweep(
    sweep_dir: str | Path, report: Any = None, console: Console | None = None
) -> SweepReport:
    """Write sweep_summary.csv and comparison.png in sweep_dir and print the table."""
    cfg = as_report_config(report)
    sweep_dir = Path(sweep_dir)
    jobs = [load_job(path) for path in find_jobs(sweep_dir)]
    keys = differing_keys([job.overrides for job in jobs])
    rows = [_row(job, keys) for job in jobs]
    failed = sum(row["status"] != "completed" for row in rows)
    table = RunTable(rows, "job", keys, "error", title=str(sweep_dir))

    csv_path = sweep_dir / SUMMARY_CSV
    atomic_write_text(csv_path, table.to_csv())
    comparison, problem = None, None
    if seeds.has_seeds([job.overrides for job in jobs]):
        try:
            comparison = _compare_seeds(jobs, keys, rows, cfg)
            comparison.write(sweep_dir)
        except DlrunError as err:  # a baseline that names no configuration
            problem = err

    if console is None:
        from rich.console import Console

        console = Console()
    notes: list[str] = []
    png_path: Path | None = sweep_dir / COMPARISON_PNG
    try:
        fig = _comparison_figure(sweep_dir, jobs, keys, cfg, notes, comparison)
        if fig is None:
            png_path = None
        else:
            atomic_write(png_path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    except Exception as err:  # the figure is a convenience: the table must still come out
        notes.append(f"comparison plot failed: {type(err).__name__}: {err}")
        png_path = None

    _print_table(console, table, failed, notes, csv_path, png_path)
    if comparison is not None:
        print_comparison(console, comparison)
        console.print(f"Over seeds: {sweep_dir / seeds.STATS_CSV}, {sweep_dir / seeds.COMPARE_CSV}")
    if problem is not None:
        raise problem
    return SweepReport(rows, failed, csv_path, png_path, comparison)


def _compare_seeds(
    jobs: list[_Job], keys: list[str], rows: list[dict[str, Any]], cfg: ReportConfig
) -> SeedComparison:
    runs = [(j.path, j.overrides, r["status"], j.summary) for j, r in zip(jobs, rows, strict=True)]
    return compare_folders(runs, keys, cfg.baseline)


def comparison_figure(sweep_dir: str | Path, report: Any = None) -> Figure | None:
    """The comparison figure of a sweep (not saved); None when no job has a line to draw."""
    cfg = as_report_config(report)
    jobs = [load_job(path) for path in find_jobs(sweep_dir)]
    keys = differing_keys([job.overrides for job in jobs])
    rows = [_row(job, keys) for job in jobs]
    comparison = None
    if seeds.has_seeds([job.overrides for job in jobs]):
        comparison = _compare_seeds(jobs, keys, rows, cfg)
    return _comparison_figure(Path(sweep_dir), jobs, keys, cfg, [], comparison)


def differing_keys(overrides: Sequence[Mapping[str, str]]) -> list[str]:
    """Override keys whose value is not the same in every job, in order of appearance."""
    keys: dict[str, None] = {}
    for job in overrides:
        keys.update(dict.fromkeys(job))
    return [k for k in keys if len({job.get(k) for job in overrides}) > 1]


def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """{key: value} of Hydra override strings: `+a.b=1` -> a.b: 1, `~a.b` -> a.b: ~."""
    out: dict[str, str] = {}
    for line in lines:
        text = str(line)
        if text.startswith("~"):
            key, _, value = text[1:].partition("=")
            out[key] = f"~{value}" if value else "~"
        else:
            key, _, value = text.lstrip("+").partition("=")
            out[key] = value
    return out


def _job_order(path: Path) -> tuple[int, int, str]:
    match = re.match(r"(\d+)(?:_|$)", path.name)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def job_label(path: Path) -> str:
    match = re.match(r"(\d+)(?:_|$)", path.name)
    return match.group(1) if match else path.name


def load_job(path: Path) -> _Job:
    """A job folder's overrides ({} when unreadable: the job is still reported) and summary."""
    job = _Job(path=path, overrides=parse_overrides(run_folder.read_overrides(path)), summary=None)
    try:
        job.summary = run_folder.read_summary(path)
    except FileNotFoundError:
        pass
    except Exception as err:
        job.summary_error = f"unreadable {run_folder.SUMMARY_JSON}: {err}"
    return job


def _row(job: _Job, keys: list[str]) -> dict[str, Any]:
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
    return row


def _short_keys(keys: list[str]) -> dict[str, str]:
    """`regularizer.l2.strength` -> `strength`, unless two differing keys end alike."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)}


def _legend_label(job: _Job, keys: list[str], short: dict[str, str]) -> str:
    parts = [f"{short[k]}={job.overrides[k]}" for k in keys if k in job.overrides]
    return ", ".join(parts) if parts else job.path.name


def _comparison_figure(
    sweep_dir: Path,
    jobs: list[_Job],
    keys: list[str],
    cfg: ReportConfig,
    notes: list[str],
    comparison: SeedComparison | None = None,
) -> Figure | None:
    from matplotlib.figure import Figure

    filename, x_name = FILES[cfg.file]
    curves, available = _read_curves(jobs, filename, notes)
    if not curves:
        notes.append(f"no job has {filename}: no comparison plot")
        return None
    columns = [c for c in cfg.columns if any(c in frame.columns for _, frame in curves)]
    missing = [c for c in cfg.columns if c not in columns]
    if missing:
        notes.append(
            f"{filename} has no column {', '.join(missing)}; its columns: {', '.join(available)}"
        )
    if not columns:
        return None

    fig = Figure(figsize=(8, 5))  # without pyplot: no backend is switched, in a notebook too
    ax = fig.subplots()
    markers = cfg.file == "metrics"
    if comparison is not None:
        groups = _frames_per_configuration(curves, keys, comparison)
        handles = draw_bands(ax, groups, columns, x_name, _colours(len(groups)), markers)
        _finish_axes(ax, handles, columns, x_name, cfg, sweep_dir)
        ax.set_ylabel(f"{', '.join(columns)}: mean over seeds, 95% band")
    else:
        handles = _job_lines(ax, jobs, curves, keys, columns, x_name, markers)
        _finish_axes(ax, handles, columns, x_name, cfg, sweep_dir)
    fig.tight_layout()
    return fig


def _job_lines(ax, jobs, curves, keys, columns, x_name, markers: bool) -> list[Any]:
    """One line per job and column, one colour per job; the legend's handle of each job."""
    import pandas as pd

    short = _short_keys(keys)
    colours = _colours(len(jobs))
    handles: list[Any] = []
    for job, frame in curves:
        x = frame[x_name] if x_name in frame.columns else pd.RangeIndex(1, len(frame) + 1)
        drawn = [c for c in columns if c in frame.columns]
        for i, column in enumerate(columns):
            if column not in frame.columns:
                continue
            (line,) = ax.plot(
                x,
                frame[column],
                color=colours[jobs.index(job)],
                linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                marker="o" if markers and len(frame) <= 50 else None,
                markersize=3,
                label=_legend_label(job, keys, short),
            )
            if column == drawn[0]:
                handles.append(line)
    return handles


def _frames_per_configuration(curves, keys: list[str], comparison: SeedComparison):
    """(configuration, its completed seeds' DataFrames), in the comparison's order."""
    frames: dict[str, list[Any]] = {group.name: [] for group in comparison.groups}
    for job, frame in curves:
        if job.summary is not None and job.summary.get("status") == "completed":
            frames[seeds.config_name(job.overrides, keys)].append(frame)
    return [(name, found) for name, found in frames.items() if found]


def _finish_axes(ax, handles: list, columns: list[str], x_name: str, cfg, sweep_dir: Path):
    """Labels, scales, title and a legend that names the jobs (and the columns' styles)."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if len(columns) > 1:
        handles += [
            Line2D([], [], color="0.3", linestyle=LINE_STYLES[i % len(LINE_STYLES)], label=c)
            for i, c in enumerate(columns)
        ]
    ax.set(xlabel=x_name, ylabel=", ".join(columns))
    if cfg.log_y:
        ax.set_yscale("log")
    if cfg.ylim is not None:
        ax.set_ylim(*cfg.ylim)
    ax.set_title(cfg.title or f"{sweep_dir.parent.name}/{sweep_dir.name}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if len(handles) > 10:  # many jobs: the legend goes beside the axes, not over the lines
        ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ax.legend(handles=handles, fontsize="small")


def _read_curves(jobs: list[_Job], filename: str, notes: list[str]):
    """(job, its file as a DataFrame) for every job that has the file, and all its columns."""
    import pandas as pd

    curves: list[tuple[_Job, Any]] = []
    available: dict[str, None] = {}
    for job in jobs:
        if not (job.path / filename).is_file():
            continue
        try:
            rows = run_folder.read_rows(job.path, filename)
        except Exception as err:  # an unreadable file: that job is left out of the plot
            notes.append(f"{job.path.name}/{filename} unreadable: {err}")
            continue
        if not rows:
            notes.append(f"{job.path.name}/{filename} unreadable: no rows")
            continue
        frame = pd.DataFrame(rows)
        available.update(dict.fromkeys(c for c in frame.columns if c not in ("epoch", "step")))
        curves.append((job, frame))
    return curves, available


def _colours(n: int) -> list[Any]:
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


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
