"""report.html: a folder's runs (a sweep, or any folder of runs and sweeps) on one page.

The page is one file that opens anywhere, offline, from a copied folder or an attachment:
its style and its script are inside it, and it asks nothing of the network. It shows

- where the runs came from: the commands, dates, devices, dlrun versions and git commits
  (every distinct value, where a folder mixes them), and the tutorial a preset cites;
- over seeds, each configuration's mean and 95% interval of the final and best monitored
  metric; against the baseline the difference, Welch's interval, the seed pairs won and
  the sentence the terminal prints; and where a difference is not resolved, the seeds per
  side that would resolve one of the size observed (seeds.seeds_needed);
- the references judged as the terminal judges them (reporting/reference_check.py);
- every run in a table that sorts by any column.

The runs are read as `dlrun-report` reads them (reporting/folders.py). Text taken from runs
(config values, errors, notes) reaches the page through the template's autoescaping
(Jinja2), never into its markup as such.
"""

from __future__ import annotations

import functools
import shlex
import time
from pathlib import Path
from typing import Any

from dlrun.outputs.io import atomic_write_text
from dlrun.outputs.run_folder import (
    DIAGNOSTICS_CSV,
    METRICS_CSV,
    REPORT_HTML,
    STEPS_CSV,
    SUMMARY_JSON,
    read_multirun,
    read_overrides,
    read_rows,
)
from dlrun.reporting import seeds
from dlrun.reporting.folders import Report, build_report, table
from dlrun.reporting.page_charts import comparison_charts, run_charts
from dlrun.reporting.reference_check import reference_checks
from dlrun.reporting.seed_report import interval_text
from dlrun.reporting.table import format_value

TEMPLATE = "report.html"
# A folder of many single runs lists this many commands, then how many more.
MOST_COMMANDS = 8


def write_page(report: Report, path: str | Path | None = None) -> Path:
    """report.html of `report` at `path` (default: in the reported folder)."""
    target = Path(path).expanduser() if path else report.folder / REPORT_HTML
    atomic_write_text(target, page_html(report))
    return target


def draw_page(path: Path, folder: str, baseline: str) -> None:
    """report.html of a sweep at its end, as the drawing helper calls it (outputs/drawing.py):
    the folder read as dlrun-report reads it; a baseline that names no configuration (the
    sweep's report says so) gives way to the first."""
    from dlrun.errors import DlrunError

    try:
        report = build_report(folder, baseline or None)
    except DlrunError:
        report = build_report(folder)
    write_page(report, path)


@functools.cache
def _template() -> Any:
    """The page's template, autoescaping everything it is given, compiled once."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("dlrun.reporting", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    return environment.get_template(TEMPLATE)


def page_html(report: Report) -> str:
    """The page's HTML: plotly.js, the data and the markup, in one string."""
    from plotly.offline import get_plotlyjs

    sources, checks = reference_checks(
        (seeds.config_name(run.config, report.keys), run.summary) for run in report.compared
    )
    files = {run.path: _files(run.path) for run in report.runs}
    return _template().render(
        title=str(report.folder),
        header=_header(report),
        sources=sources,
        references=[check.sentence() for check in checks],
        comparison=_comparison(report),
        charts=_charts(report, files),
        runs=_runs(report, files),
        plotly_js=get_plotlyjs(),
    )


def _files(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The run's metrics.csv, steps.csv and diagnostics.csv rows, each read once."""
    names = {"metrics": METRICS_CSV, "steps": STEPS_CSV, "diagnostics": DIAGNOSTICS_CSV}
    return {key: read_rows(folder, name) for key, name in names.items()}


def _charts(report: Report, files: dict[Path, dict[str, list]]) -> list[dict[str, Any]]:
    """Per epoch (and per logged step) one line per configuration, in its band."""
    from dlrun.config.metric_directions import direction

    completed = [r for r in report.compared if r.status == "completed" and files[r.path]["metrics"]]
    by_epoch: dict[str, list[list[dict[str, Any]]]] = {}
    by_step: dict[str, list[list[dict[str, Any]]]] = {}
    for run in completed:
        name = seeds.config_name(run.config, report.keys)
        by_epoch.setdefault(name, []).append(files[run.path]["metrics"])
        if files[run.path]["steps"]:
            by_step.setdefault(name, []).append(files[run.path]["steps"])
    metrics = [found["metrics"] for found in files.values()]
    columns = list(dict.fromkeys(c for rows in metrics if rows for c in rows[0]))
    ranked = [column for column in columns if direction(column) is not None]
    charts = comparison_charts(by_epoch, ranked, "epoch", _common_references(completed))
    return charts + comparison_charts(by_step, ["train_loss"], "step", {})


def _common_references(runs) -> dict[str, Any]:
    """The tutorial's figures every run shares (a preset's cases may differ per run)."""
    found: dict[str, list[Any]] = {}
    for run in runs:
        for row in ((run.summary or {}).get("reference") or {}).get("figures") or []:
            found.setdefault(row["figure"], []).append(row["reference"])
    return {
        figure: values[0]
        for figure, values in found.items()
        if len(values) == len(runs) and all(v == values[0] for v in values)
    }


def _header(report: Report) -> list[tuple[str, list[str]]]:
    """(what, its distinct values) for the page's head."""
    summaries = [run.summary or {} for run in report.runs]
    dates = [
        time.strftime("%Y-%m-%d", time.localtime((run.path / SUMMARY_JSON).stat().st_mtime))
        for run in report.runs
        if (run.path / SUMMARY_JSON).is_file()
    ]
    found = {
        "command": _commands(report),
        "date": dates,
        "device": [str(s["device"]) for s in summaries if s.get("device")],
        "dlrun": [str((s.get("versions") or {}).get("dlrun") or "") for s in summaries],
        "git commit": [str((s.get("git") or {}).get("commit") or "") for s in summaries],
    }
    return [
        (what, sorted(set(filter(None, values)))) for what, values in found.items() if any(values)
    ]


def _commands(report: Report) -> list[str]:
    """Each sweep's `dlrun -m ...`; for runs outside sweeps, each run's `dlrun ...`."""
    commands = []
    for sweep in report.sweeps:
        data = read_multirun(sweep)
        overrides = (data.get("hydra") or {}).get("overrides") or {}
        hydra = [word for word in overrides.get("hydra") or [] if word != "hydra.mode=MULTIRUN"]
        words = [*(overrides.get("task") or []), *hydra]  # -m says MULTIRUN already
        commands.append(" ".join(["dlrun", "-m", *map(shlex.quote, words)]))
    alone = [run for run in report.runs if not any(s in run.path.parents for s in report.sweeps)]
    lines = (" ".join(["dlrun", *map(shlex.quote, read_overrides(run.path))]) for run in alone)
    distinct = list(dict.fromkeys(lines))
    if len(distinct) > MOST_COMMANDS:
        distinct = [*distinct[:MOST_COMMANDS], f"and {len(distinct) - MOST_COMMANDS} more"]
    return commands + distinct


def _comparison(report: Report) -> dict[str, Any] | None:
    """Per configuration its final and best monitored metric over seeds, and against the
    baseline the difference; None when the runs do not differ in seed."""
    comparison = report.seeds
    if comparison is None or comparison.monitor is None:
        return None
    final, best = f"final_{comparison.monitor}", f"best_{comparison.monitor}"
    stats = {(row["config"], row["metric"]): row for row in comparison.stats}
    versus = {row["config"]: row for row in comparison.compare if row["metric"] == final}
    rows = []
    for group in comparison.groups:
        row = {"config": group.name, "baseline": group is comparison.baseline}
        for metric in (final, best):
            found = stats.get((group.name, metric), {})
            row[metric] = (
                found.get("n_seeds"),
                format_value(found.get("mean")),
                interval_text(found),
            )
        against = versus.get(group.name)
        if against is not None:
            row["difference"] = format_value(against.get("difference"))
            row["difference_interval"] = interval_text(against)
            row["pairs"] = f"{against.get('better_pairs')}/{against.get('pairs')}"
            row["sentence"] = seeds.sentence(against)
            row["seeds_needed"] = _seeds_needed(group, comparison.baseline, final, against)
        rows.append(row)
    every = [
        {
            "config": row["config"],
            "metric": row["metric"],
            "n": row.get("n_seeds"),
            "mean": format_value(row.get("mean")),
            "interval": interval_text(row),
        }
        for row in comparison.stats
    ]
    return {"final": final, "best": best, "rows": rows, "every": every}


def _seeds_needed(group, baseline, metric: str, row: dict[str, Any]) -> str:
    """For a difference not resolved: the seeds per side that would resolve its size."""
    if row.get("ci_low") is None or not row["ci_low"] <= 0 <= row["ci_high"]:
        return ""
    needed = seeds.seeds_needed(group.values(metric), baseline.values(metric))
    if needed is None:
        return "none would: the difference is about zero"
    return f"{needed} a side"


def _runs(report: Report, files: dict[Path, dict[str, list]]) -> dict[str, Any]:
    """The table of runs: its columns, each row's cells as text, and what opening a row
    shows: the run's charts, warnings, fit verdict and resume history."""
    columns = table(report).columns()
    rows = []
    for run, row in zip(report.runs, report.rows, strict=True):
        summary = run.summary or {}
        rows.append(
            {
                "cells": [format_value(row.get(column)) for column in columns],
                "charts": run_charts(**files[run.path]),
                "warnings": [str(w) for w in summary.get("warnings") or []],
                "fit": summary.get("fit"),
                "resumed": summary.get("resumed_from") or [],
            }
        )
    return {"columns": columns, "rows": rows}
