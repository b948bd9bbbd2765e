"""comparison.png: the jobs of a sweep in one figure, one colour per job (or per
configuration, its mean over seeds in a 95% band) and one line style per column.

A sweep's report hands the drawing to the helper process of outputs/drawing.py, which
imported matplotlib and pandas while the jobs ran (sweep_report.prepare_helper):
`draw_comparison` takes JSON and reads the jobs' curve files itself, each once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.config.options.report import ReportConfig, as_report_config
from dlrun.outputs import run_folder
from dlrun.outputs.io import atomic_write
from dlrun.reporting import seeds
from dlrun.reporting.sweep_jobs import SweepJob

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# What report.file plots: the file, and its x column.
FILES = {"metrics": (run_folder.METRICS_CSV, "epoch"), "steps": (run_folder.STEPS_CSV, "step")}
# One per column of the figure; the colours tell the jobs (or configurations) apart.
LINE_STYLES = ("-", "--", ":", "-.")

COMPARISON = f"{__name__}:draw_comparison"


def draw_comparison(
    path: Path,
    sweep_dir: str,
    jobs: list[dict[str, Any]],
    keys: list[str],
    report: dict[str, Any],
    configurations: list[str] | None,
    known_rows: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """comparison.png from JSON (each job's path, overrides and summary): whether it was
    drawn, and the notes on what it left out. `configurations`: over seeds, their names;
    `known_rows`: per job folder, the plotted file's rows where the report read them."""
    notes: list[str] = []
    sweep_jobs = [SweepJob(Path(job["path"]), job["overrides"], job["summary"]) for job in jobs]
    try:
        cfg = as_report_config(report)
        fig = sweep_figure(
            Path(sweep_dir), sweep_jobs, keys, cfg, notes, configurations, known_rows
        )
        if fig is not None:
            atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    except Exception as err:  # the figure is a convenience: the table must still come out
        notes.append(f"comparison plot failed: {type(err).__name__}: {err}")
        fig = None
    return {"drawn": fig is not None, "notes": notes}


def sweep_figure(
    sweep_dir: Path,
    jobs: list[SweepJob],
    keys: list[str],
    cfg: ReportConfig,
    notes: list[str],
    configurations: list[str] | None = None,
    known_rows: dict[str, list[dict[str, Any]]] | None = None,
) -> Figure | None:
    """The figure; `configurations` (their names, over seeds) draws each one's mean."""
    from matplotlib.figure import Figure

    filename, x_name = FILES[cfg.file]
    curves, available = _read_curves(jobs, filename, notes, known_rows or {})
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
    if configurations is not None:
        groups = _frames_per_configuration(curves, keys, configurations)
        handles = draw_bands(ax, groups, columns, x_name, _colours(len(groups)), markers)
        _finish_axes(ax, handles, columns, x_name, cfg, sweep_dir)
        ax.set_ylabel(f"{', '.join(columns)}: mean over seeds, 95% band")
    else:
        handles = _job_lines(ax, jobs, curves, keys, columns, x_name, markers)
        _finish_axes(ax, handles, columns, x_name, cfg, sweep_dir)
    fig.tight_layout()
    return fig


def _short_keys(keys: list[str]) -> dict[str, str]:
    """`regularizer.l2.strength` -> `strength`, unless two differing keys end alike."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)}


def _legend_label(job: SweepJob, keys: list[str], short: dict[str, str]) -> str:
    parts = [f"{short[k]}={job.overrides[k]}" for k in keys if k in job.overrides]
    return ", ".join(parts) if parts else job.path.name


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


def _frames_per_configuration(curves, keys: list[str], configurations: list[str]):
    """(configuration, its completed seeds' DataFrames), in the comparison's order."""
    frames: dict[str, list[Any]] = {name: [] for name in configurations}
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


def _read_curves(jobs: list[SweepJob], filename: str, notes: list[str], known_rows):
    """(job, its file as a DataFrame) for every job that has the file, and all its columns;
    a job's rows in `known_rows` (by its folder) are not read again."""
    import pandas as pd

    curves: list[tuple[SweepJob, Any]] = []
    available: dict[str, None] = {}
    for job in jobs:
        if not (job.path / filename).is_file():
            continue
        try:
            rows = known_rows.get(str(job.path.absolute()))
            if rows is None:
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


def draw_bands(ax, groups: Sequence[tuple[str, list[Any]]], columns, x_name, colours, markers):
    """One line per configuration and column, the mean over its seeds, in a 95% band.

    `groups` holds (configuration, its seeds' DataFrames); the legend handles come back.
    """

    handles = []
    for (name, frames), colour in zip(groups, colours, strict=True):
        first = None
        for i, column in enumerate(columns):
            series = [f.set_index(x_name)[column] for f in frames if column in f.columns]
            if not series:
                continue
            mean, low, high, _ = mean_band(series)
            (line,) = ax.plot(
                mean.index,
                mean.to_numpy(),
                color=colour,
                linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                marker="o" if markers and len(mean) <= 50 else None,
                markersize=3,
                label=f"{name} ({len(series)} seeds)",
            )
            ax.fill_between(mean.index, low, high, color=colour, alpha=0.2, linewidth=0)
            first = first or line
        if first is not None:
            handles.append(first)
    return handles


def mean_band(series: list[Any]):
    """The mean at each x of the runs' series (pandas, indexed by x), its 95% t interval
    (at an x with one seed, no width) and the seeds there: comparison.png's bands and
    report.html's alike."""
    import numpy as np
    import pandas as pd
    from scipy.special import stdtrit

    frame = pd.concat(series, axis=1)
    mean = frame.mean(axis=1)
    count = frame.count(axis=1).to_numpy()
    spread = frame.std(axis=1, ddof=1).fillna(0.0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        half = stdtrit(count - 1, 0.5 + seeds.CONFIDENCE / 2) * spread / np.sqrt(count)
    half = np.where(count > 1, half, 0.0)
    return mean, mean.to_numpy() - half, mean.to_numpy() + half, count
