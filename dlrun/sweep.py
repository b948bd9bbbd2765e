"""A sweep's report: one table and one figure comparing the jobs of a multirun.

After `dlrun -m ...`, the sweep folder gets

sweep_summary.csv  one row per job: the overrides that differ between jobs, status,
                   epochs run, final metrics, best monitored metric and its epoch, wall time
comparison.png     the `report.columns` of every job's metrics.csv (per epoch) or steps.csv
                   (per step) in one plot: one colour per job, one line style per column

and the same table is printed. Everything is read from the job folders on disk, so the
report works whatever launcher ran the jobs (other processes, other machines), and a job
that failed, diverged or never wrote anything is a row with its status, not an error.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback

from dlrun.io import atomic_write, atomic_write_text, csv_text, read_json_object

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.console import Console

log = logging.getLogger(__name__)

SUMMARY_CSV = "sweep_summary.csv"
COMPARISON_PNG = "comparison.png"
FILES = {"metrics": ("metrics.csv", "epoch"), "steps": ("steps.csv", "step")}
LINE_STYLES = ("-", "--", ":", "-.")

# The number of jobs of the last sweep report that did not complete (None: no report yet).
# `dlrun -m` reads it after the sweep to exit with a non-zero status.
last_failed_jobs: int | None = None


@dataclass
class ReportConfig:
    # Which per-job file the comparison plots: metrics (metrics.csv, per epoch) or steps
    # (steps.csv, per step; needs trainer.log_every_n_steps > 0).
    file: str = "metrics"
    # Columns of that file, one line per job and column (same colour per job).
    columns: list[str] = field(default_factory=lambda: ["test_acc"])
    log_y: bool = False
    # [low, high] of the y axis; null: matplotlib's choice.
    ylim: list[float] | None = None
    # Figure title; empty: the sweep folder.
    title: str = ""


@dataclass
class SweepReport:
    rows: list[dict[str, Any]]
    failed: int
    csv_path: Path
    png_path: Path | None  # None when no job had anything to plot


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
    return cfg


def find_jobs(sweep_dir: str | Path) -> list[Path]:
    """The job folders of a sweep (those with .hydra/overrides.yaml), by job number."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and _overrides_file(p) is not None]
    return sorted(jobs, key=_job_order)


def report_sweep(
    sweep_dir: str | Path, report: Any = None, console: Console | None = None
) -> SweepReport:
    """Write sweep_summary.csv and comparison.png in sweep_dir and print the table."""
    cfg = as_report_config(report)
    sweep_dir = Path(sweep_dir)
    jobs = [_load_job(path) for path in find_jobs(sweep_dir)]
    keys = differing_keys([job.overrides for job in jobs])
    rows = [_row(job, keys) for job in jobs]
    failed = sum(row["status"] != "completed" for row in rows)

    csv_path = sweep_dir / SUMMARY_CSV
    atomic_write_text(csv_path, _to_csv(rows, keys))

    if console is None:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # a log file or a pipe: room for the whole table
            console.width = max(console.width, 160)
    notes: list[str] = []
    png_path: Path | None = sweep_dir / COMPARISON_PNG
    try:
        fig = _comparison_figure(sweep_dir, jobs, keys, cfg, notes)
        if fig is None:
            png_path = None
        else:
            import matplotlib.pyplot as plt

            atomic_write(png_path, lambda handle: fig.savefig(handle, format="png", dpi=100))
            plt.close(fig)
    except Exception as err:  # the figure is a convenience: the table must still come out
        notes.append(f"comparison plot failed: {type(err).__name__}: {err}")
        png_path = None

    _print_table(console, sweep_dir, rows, keys, failed, notes, csv_path, png_path)
    return SweepReport(rows=rows, failed=failed, csv_path=csv_path, png_path=png_path)


def comparison_figure(sweep_dir: str | Path, report: Any = None) -> Figure | None:
    """The comparison figure of a sweep (not saved); None when no job has a line to draw."""
    cfg = as_report_config(report)
    jobs = [_load_job(path) for path in find_jobs(sweep_dir)]
    keys = differing_keys([job.overrides for job in jobs])
    return _comparison_figure(Path(sweep_dir), jobs, keys, cfg, [])


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


class SweepReportCallback(Callback):
    """Hydra callback: checks `report` when a multirun starts, reports the sweep at its end."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        as_report_config(_report_node(config))  # a bad report config fails before any job

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        global last_failed_jobs
        result = report_sweep(Path(str(config.hydra.sweep.dir)), _report_node(config))
        last_failed_jobs = result.failed


def _report_node(config: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(config, "report", default=None)


def _overrides_file(job: Path) -> Path | None:
    first = job / ".hydra" / "overrides.yaml"
    if first.is_file():
        return first
    # A job that resumed a run keeps its config in .hydra/resume_<time>/: take the latest.
    resumed = sorted(job.glob(".hydra/resume_*/overrides.yaml"))
    return resumed[-1] if resumed else None


def _job_order(path: Path) -> tuple[int, int, str]:
    match = re.match(r"(\d+)(?:_|$)", path.name)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def _job_label(path: Path) -> str:
    match = re.match(r"(\d+)(?:_|$)", path.name)
    return match.group(1) if match else path.name


def _load_job(path: Path) -> _Job:
    import yaml

    try:
        lines = yaml.safe_load(_overrides_file(path).read_text(encoding="utf-8")) or []
        overrides = parse_overrides(lines if isinstance(lines, list) else [])
    except Exception:  # an unreadable overrides.yaml: the job is still reported
        overrides = {}
    job = _Job(path=path, overrides=overrides, summary=None)
    summary_json = path / "summary.json"
    if summary_json.is_file():
        try:
            job.summary = read_json_object(summary_json)
        except Exception as err:
            job.summary_error = f"unreadable summary.json: {err}"
    return job


def _row(job: _Job, keys: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"job": job.path.name}
    row.update({key: job.overrides.get(key, "") for key in keys})
    summary = job.summary
    if summary is None:
        row["status"] = "unreadable" if job.summary_error else "missing"
        row["error"] = job.summary_error
        return row
    row["status"] = str(summary.get("status") or "unknown")
    row["epochs_run"] = summary.get("epochs_run")
    final = summary.get("final")
    if isinstance(final, dict):
        row.update({f"final_{k}": v for k, v in final.items() if k != "epoch"})
    best = summary.get("best")
    if isinstance(best, dict) and best.get("monitor"):
        monitor = best["monitor"]
        row[f"best_{monitor}"] = best.get(monitor)
        row["best_epoch"] = best.get("epoch")
    row["wall_seconds"] = summary.get("wall_seconds")
    if summary.get("error"):
        row["error"] = str(summary["error"])
    return row


def _columns(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    head = ["job", *keys, "status", "epochs_run"]
    tail = ["best_epoch", "wall_seconds", "error"]
    finals = [c for c in seen if c.startswith("final_") and c not in keys]
    bests = [c for c in seen if c.startswith("best_") and c not in keys and c not in tail]
    middle = finals + bests
    rest = [c for c in seen if c not in head and c not in middle and c not in tail]
    return head + middle + rest + [c for c in tail if c in seen or c != "error"]


def _to_csv(rows: list[dict[str, Any]], keys: list[str]) -> str:
    return csv_text(rows, _columns(rows, keys))


def _short_keys(keys: list[str]) -> dict[str, str]:
    """`regularizer.l2.strength` -> `strength`, unless two differing keys end alike."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: s if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)}


def _legend_label(job: _Job, keys: list[str], short: dict[str, str]) -> str:
    parts = [f"{short[k]}={job.overrides[k]}" for k in keys if k in job.overrides]
    return ", ".join(parts) if parts else job.path.name


def _comparison_figure(
    sweep_dir: Path, jobs: list[_Job], keys: list[str], cfg: ReportConfig, notes: list[str]
) -> Figure | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    filename, x_name = FILES[cfg.file]
    short = _short_keys(keys)
    curves: list[tuple[_Job, Any]] = []
    available: dict[str, None] = {}
    for job in jobs:
        path = job.path / filename
        if not path.is_file():
            continue
        try:
            frame = pd.read_csv(path)
        except Exception as err:  # an empty or torn file: that job is left out of the plot
            notes.append(f"{job.path.name}/{filename} unreadable: {err}")
            continue
        available.update(dict.fromkeys(c for c in frame.columns if c not in ("epoch", "step")))
        curves.append((job, frame))
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

    fig, ax = plt.subplots(figsize=(8, 5))
    colours = _colours(len(jobs))
    handles: list[Any] = []
    for job, frame in curves:
        colour = colours[jobs.index(job)]
        x = frame[x_name] if x_name in frame.columns else pd.RangeIndex(1, len(frame) + 1)
        drawn = False
        for i, column in enumerate(columns):
            if column not in frame.columns:
                continue
            (line,) = ax.plot(
                x,
                frame[column],
                color=colour,
                linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                marker="o" if cfg.file == "metrics" and len(frame) <= 50 else None,
                markersize=3,
                label=_legend_label(job, keys, short),
            )
            if not drawn:
                handles.append(line)
                drawn = True
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
    fig.tight_layout()
    return fig


def _colours(n: int) -> list[Any]:
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


def _format(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _print_table(
    console: Console,
    sweep_dir: Path,
    rows: list[dict[str, Any]],
    keys: list[str],
    failed: int,
    notes: list[str],
    csv_path: Path,
    png_path: Path | None,
) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    # fold: a narrow terminal wraps a value onto two lines instead of cutting digits off.
    table = Table(title=str(sweep_dir), box=box.SIMPLE_HEAD)
    table.add_column("job", justify="right", overflow="fold")
    for key in keys:
        table.add_column(escape(key), overflow="fold")
    table.add_column("status", overflow="fold")
    table.add_column("epochs", justify="right", overflow="fold")
    # The table shows the test metrics and the best one; sweep_summary.csv has them all.
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    finals = [c for c in seen if c.startswith("final_test_") and c not in keys]
    if not finals:
        finals = [c for c in seen if c.startswith("final_") and c not in keys]
    bests = [c for c in seen if c.startswith("best_") and c != "best_epoch" and c not in keys]
    for column in finals + bests:
        heading = column.removeprefix("final_").replace("_", " ")
        table.add_column(escape(heading), justify="right", overflow="fold")
    if "best_epoch" in seen:
        table.add_column("best epoch", justify="right", overflow="fold")
    table.add_column("seconds", justify="right", overflow="fold")
    for row in rows:
        status = row["status"]
        style = "green" if status == "completed" else "red"
        cells = [escape(_job_label(Path(row["job"])))]
        cells += [escape(_format(row.get(key))) for key in keys]
        cells += [f"[{style}]{escape(status)}[/]", _format(row.get("epochs_run"))]
        cells += [_format(row.get(c)) for c in finals + bests]
        if "best_epoch" in seen:
            cells.append(_format(row.get("best_epoch")))
        wall = row.get("wall_seconds")
        cells.append(f"{wall:.1f}" if isinstance(wall, int | float) else "")
        table.add_row(*cells)
    console.print(table)
    for row in rows:
        if row.get("error"):
            console.print(f"[red]{escape(row['job'])}[/]: {escape(str(row['error']))}")
    for note in notes:
        console.print(f"[yellow]{escape(note)}[/]")
    if not rows:
        console.print(f"No job folders in {escape(str(sweep_dir))}")
    elif failed:
        console.print(f"[red]{failed} of {len(rows)} jobs did not complete[/]")
    console.print(f"Sweep summary: {escape(str(csv_path))}")
    if png_path is not None:
        console.print(f"Comparison: {escape(str(png_path))}")
