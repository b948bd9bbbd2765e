"""A folder of runs as one table: what the `dlrun-report` command (cli/report.py) shows.

    dlrun-report outputs/ [--csv out.csv] [--plots]

A run folder is one with .hydra/config.yaml (written when the run starts) or summary.json
(written after each epoch); a sweep folder is one with multirun.yaml. The table has one
row per run: its path relative to the folder, its status, the config values that differ
between the listed runs (from each run's .hydra/config.yaml, flattened: model.name,
optimizer.lr...), the final test metrics, the best monitored metric and its epoch, and the
wall time. It is printed and written as CSV (default <folder>/report.csv).

Runs that differ only in seed are also compared per configuration, as a sweep's report
does (reporting/seed_report.py): report_stats.csv and report_compare.csv beside the
table's CSV, a table and one sentence per comparison (--baseline picks the baseline).

With --plots, each run's curves.png is redrawn from its metrics.csv and each sweep's
sweep_summary.csv and comparison.png from its job folders (with the sweep's own `report`
settings from multirun.yaml).

Only files are read, never checkpoints or data, so folders copied from another machine
report the same. A run that is broken (unreadable summary.json or config, no metrics.csv)
is a row with its status and a note, never an error.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.errors import DlrunError
from dlrun.outputs import run_folder
from dlrun.outputs.run_folder import (
    CONFIG_YAML,
    CURVES_PNG,
    DIAGNOSTICS_CSV,
    GRADIENTS_PNG,
    HYDRA,
    METRICS_CSV,
    MULTIRUN_YAML,
    SUMMARY_JSON,
)
from dlrun.reporting import seeds
from dlrun.reporting.reference_check import print_references, reference_checks
from dlrun.reporting.seed_report import SeedComparison, compare_folders, print_comparison
from dlrun.reporting.table import RunTable, print_table, summary_cells

if TYPE_CHECKING:
    from rich.console import Console

EXIT_USER_ERROR = 2
REPORT_CSV = "report.csv"
# Config nodes that describe the presentation, not the run: never compared.
IGNORED_KEYS = ("reference", "report", "hydra")


@dataclass
class Run:
    path: Path
    name: str  # relative to the reported folder, with / separators
    config: dict[str, str]  # flattened .hydra/config.yaml; {} when unreadable or absent
    summary: dict[str, Any] | None
    status: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    folder: Path
    runs: list[Run]
    sweeps: list[Path]
    keys: list[str]  # config keys whose values differ between the runs
    rows: list[dict[str, Any]]
    seeds: SeedComparison | None = None  # when the runs differ in seed

    @property
    def compared(self) -> list[Run]:
        """The training runs: folders a tool made (dlrun-lr-find, debug=...) are never
        compared."""
        return [run for run in self.runs if run_folder.made_by(run.summary) is None]


@dataclass
class PlotResult:
    curves: int = 0
    sweeps: int = 0
    notes: list[str] = field(default_factory=list)


# --- finding runs and sweeps -------------------------------------------------------------


def _natural(name: str) -> list[Any]:
    """Sort key: `2_adam` before `10_sgd`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def find_folders(folder: Path) -> tuple[list[Path], list[Path]]:
    """Run folders and sweep folders under `folder` (itself included), in natural order."""
    runs: list[Path] = []
    sweeps: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        path = Path(dirpath)
        if MULTIRUN_YAML in filenames:
            sweeps.append(path)
        if run_folder.is_run_folder(path):
            runs.append(path)
            dirnames[:] = []  # checkpoints/ and .hydra/ hold no runs
            continue
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=_natural)
    return runs, sweeps


# --- reading one run ---------------------------------------------------------------------


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """{dotted.key: text} of a config; lists stay one value, `regularizer` also lists its keys."""
    out: dict[str, str] = {}
    if not isinstance(node, Mapping):
        return {prefix: _text(node)} if prefix else {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if not prefix and name in IGNORED_KEYS:
            continue
        if name == "regularizer" and isinstance(value, Mapping):
            # regularizer=[l2,early_stopping] is a node keyed by option: name the options.
            out[name] = ",".join(str(k) for k in value) or "none"
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = _text(value)
    return out


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def load_run(path: Path, root: Path) -> Run:
    relative = path.relative_to(root).as_posix()
    run = Run(
        path=path,
        name=relative if relative != "." else path.name,
        config={},
        summary=None,
        status="missing",
    )
    config_file = run_folder.started_with(path, CONFIG_YAML)
    if config_file is None:
        run.notes.append(f"no {HYDRA}/{CONFIG_YAML}")
    else:
        try:
            run.config = flatten(run_folder.read_config(path))
        except Exception as err:
            run.notes.append(f"unreadable {config_file.relative_to(path)}: {_first_line(err)}")
    try:
        data = run_folder.read_summary(path)
        run.summary = data
        run.status = run_folder.status(path, data)
        if data.get("error"):
            run.notes.append(str(data["error"]))
        if run.status == "killed":
            run.notes.append(run_folder.killed_note(path))
    except FileNotFoundError:
        run.notes.append(f"no {SUMMARY_JSON}")
    except Exception as err:
        run.status = "unreadable"
        run.notes.append(f"unreadable {SUMMARY_JSON}: {_first_line(err)}")
    tool = run_folder.made_by(run.summary)
    if tool is not None:
        run.notes.append(f"made by {tool}: not compared")
    elif not (path / METRICS_CSV).is_file():
        run.notes.append(f"no {METRICS_CSV}")
    return run


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --- the table ---------------------------------------------------------------------------


def differing_keys(configs: Sequence[Mapping[str, str]]) -> list[str]:
    """Config keys with more than one value among the runs that have them, in config order.

    A key that only some runs have, with one value (model.hidden when only some runs are
    MLPs), is left out: the group's differing `name` already tells them apart.
    """
    order: dict[str, None] = {}
    for config in configs:
        order.update(dict.fromkeys(config))
    return [k for k in order if len({c[k] for c in configs if k in c}) > 1]


def _row(run: Run, keys: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"run": run.name}
    row.update({key: run.config.get(key, "") for key in keys})
    row.update(summary_cells(run.summary or {}, final=lambda key: key.startswith("test_")))
    row["status"] = run.status
    row["notes"] = "; ".join(run.notes)
    return row


def build_report(folder: str | Path, baseline: str | None = None) -> Report:
    """Every run and sweep under `folder`, and the table rows; an empty folder is an error.
    Runs that differ in seed are compared per configuration, against `baseline`."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise DlrunError(f"{folder} does not exist: give a folder of runs, e.g. outputs/.")
    if not root.is_dir():
        raise DlrunError(f"{folder} is a file: give a folder of runs, e.g. outputs/.")
    run_paths, sweeps = find_folders(root)
    if not run_paths and not sweeps:
        raise DlrunError(
            f"No runs under {folder}: a run folder has {SUMMARY_JSON} and {HYDRA}/{CONFIG_YAML} "
            f"(what `dlrun` leaves in outputs/<date>/), a sweep folder multirun.yaml. Give "
            f"outputs/ or one of the folders in it."
        )
    runs = [load_run(path, root) for path in run_paths]
    keys = differing_keys([run.config for run in runs if run.config])
    rows = [_row(run, keys) for run in runs]
    report = Report(folder=root, runs=runs, sweeps=sweeps, keys=keys, rows=rows)
    compared = report.compared
    if seeds.has_seeds([run.config for run in compared]):
        found = [(run.path, run.config, run.status, run.summary) for run in compared]
        report.seeds = compare_folders(found, keys, baseline)
    return report


def table(report: Report) -> RunTable:
    return RunTable(report.rows, "run", report.keys, "notes", title=str(report.folder))


def print_report(console: Console, report: Report) -> None:
    from rich.markup import escape

    rows = report.rows
    print_table(console, table(report))
    if not rows:
        console.print(f"No run folders under {escape(str(report.folder))}, only sweep folders.")
    else:
        done = sum(row["status"] == "completed" for row in rows)
        n = len(report.sweeps)
        sweeps = f" ({n} sweep{'s' if n != 1 else ''})" if n else ""
        console.print(f"{len(rows)} runs{sweeps}, {done} completed")
    if report.seeds is not None:
        print_comparison(console, report.seeds)
    named = ((seeds.config_name(run.config, report.keys), run.summary) for run in report.compared)
    print_references(console, *reference_checks(named))


# --- plots -------------------------------------------------------------------------------


def read_metrics(folder: Path, name: str = METRICS_CSV) -> list[dict[str, Any]]:
    """metrics.csv (or another CSV file of the run) as rows of numbers (text kept where a
    value is not one); ValueError when it has none."""
    rows = run_folder.read_rows(folder, name)
    if not rows:
        raise ValueError("no rows")
    return rows


def _title(config: Mapping[str, str]) -> str:
    """The title a run gives its curves.png: model on data set, optimizer and learning rate."""
    if "model.name" not in config:
        return ""
    lr = config.get("optimizer.lr")
    return (
        f"{config['model.name']} on {config.get('dataset.name', '?')}, "
        f"{config.get('optimizer.name', '?')}" + (f" lr {lr}" if lr not in (None, "null") else "")
    )


def _is_regression(run: Run, rows: Sequence[Mapping[str, Any]]) -> bool:
    task = (run.summary or {}).get("task")
    if task:
        return task == "regression"
    # No readable summary: the task whose metrics are the file's columns.
    from dlrun.config.metric_directions import task_of_columns

    return task_of_columns(rows[0]) == "regression"


def sweep_report_config(sweep: Path) -> Any:
    """The `report` node of a sweep's multirun.yaml, or None (the defaults)."""

    data = run_folder.read_multirun(sweep)
    return data.get("report") if isinstance(data, dict) else None


def redraw(report: Report) -> PlotResult:
    """curves.png (and gradients.png) of every run with a metrics.csv, every sweep's report."""
    from rich.console import Console

    from dlrun.config.options.report import as_report_config
    from dlrun.outputs.plots import plot_curves, plot_gradients
    from dlrun.reporting.sweep_report import report_sweep

    result = PlotResult()
    for run in report.runs:
        metrics_csv = run.path / METRICS_CSV
        if not metrics_csv.is_file():
            continue
        try:
            rows = read_metrics(run.path)
            plot_curves(rows, run.path / CURVES_PNG, _title(run.config), _is_regression(run, rows))
            result.curves += 1
            if (run.path / DIAGNOSTICS_CSV).is_file():
                norms = read_metrics(run.path, DIAGNOSTICS_CSV)
                plot_gradients(norms, run.path / GRADIENTS_PNG, _title(run.config))
        except Exception as err:  # one bad file must not stop the others
            result.notes.append(f"{run.name}/{CURVES_PNG} not drawn: {_first_line(err)}")
    for sweep in report.sweeps:
        name = sweep.relative_to(report.folder).as_posix()
        try:
            settings = sweep_report_config(sweep)
            try:
                as_report_config(settings)
            except ValueError as err:
                result.notes.append(f"{name}: report settings ignored ({err})")
                settings = None
            # Its table is the rows above again: printed into a buffer, not the terminal.
            report_sweep(sweep, settings, console=Console(file=io.StringIO(), width=200))
            result.sweeps += 1
        except Exception as err:
            result.notes.append(f"{name}: sweep report failed: {_first_line(err)}")
    return result
