"""One table of runs, for a sweep's report and for dlrun-report alike, and the one place
that builds a rich table and writes a number for one.

A row is one run: its name, the settings that differ between the runs, then what its
summary.json says (status, epochs, final and best metrics, best epoch, wall time) and a
note. The same rows become a CSV file (every metric) and a rich table (test metrics and the
best one), with one column order and one way of writing a number. The other tables dlrun
prints (statistics over seeds, reference figures, dlrun-eval's result, a sweep's live view)
are built by `rich_table` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

from dlrun.outputs.io import csv_text

if TYPE_CHECKING:
    from rich.console import Console

TAIL = ("best_epoch", "wall_seconds")


@dataclass
class RunTable:
    rows: list[dict[str, Any]]
    name: str  # the first column: "job" (a sweep) or "run" (a folder)
    keys: list[str]  # the settings that differ between the rows
    note: str  # the last column: "error" (a sweep) or "notes" (a folder)
    title: str = ""

    def columns(self) -> list[str]:
        """CSV column order: name, settings, status, epochs, finals, bests, the rest, tail."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        head = [self.name, *self.keys, "status", "epochs_run"]
        tail = [*TAIL, *([self.note] if self.note in seen else [])]
        finals = [c for c in seen if c.startswith("final_") and c not in self.keys]
        bests = [c for c in seen if c.startswith("best_") and c not in self.keys and c not in TAIL]
        middle = finals + bests
        rest = [
            c for c in seen if c not in head and c not in middle and c not in (*TAIL, self.note)
        ]
        return head + middle + rest + tail

    def to_csv(self) -> str:
        return csv_text(self.rows, self.columns())

    def shown_metrics(self) -> list[str]:
        """The table shows the final test metrics (all finals if none) and the best one."""
        columns = self.columns()
        finals = [c for c in columns if c.startswith("final_test_")]
        finals = finals or [c for c in columns if c.startswith("final_")]
        return finals + [c for c in columns if c.startswith("best_") and c != "best_epoch"]


def summary_cells(
    summary: Mapping[str, Any], final: Callable[[str], bool] = lambda key: True
) -> dict[str, Any]:
    """A row's cells from summary.json; `final` picks which final metrics it keeps."""
    cells: dict[str, Any] = {"status": str(summary.get("status") or "unknown")}
    cells["epochs_run"] = summary.get("epochs_run")
    finals = summary.get("final")
    if isinstance(finals, dict):
        cells.update({f"final_{k}": v for k, v in finals.items() if k != "epoch" and final(k)})
    best = summary.get("best")
    if isinstance(best, dict) and best.get("monitor"):
        cells[f"best_{best['monitor']}"] = best.get(best["monitor"])
        cells["best_epoch"] = best.get("epoch")
    found = summary.get("lr_find")
    if isinstance(found, dict):  # a range test (dlrun-lr-find): its suggestion
        cells["suggested_lr"] = found.get("suggested_lr")
    cells["wall_seconds"] = summary.get("wall_seconds")
    return cells


def format_value(value: Any, digits: int = 4) -> str:
    """A cell: a float to `digits` significant digits, None as empty."""
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


def rich_table(
    headings: Sequence[str],
    right: Sequence[str] = (),
    title: str | None = None,
    simple: bool = True,
) -> Table:
    """A rich table with these columns, numbers (`right`) aligned right. A narrow terminal
    wraps a value onto more lines (fold) instead of cutting it off. `simple`: a line under
    the headings only; else rich's full box. `title` is rich markup (escape what is not)."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD if simple else box.HEAVY_HEAD)
    for heading in headings:
        table.add_column(heading, justify="right" if heading in right else "left", overflow="fold")
    return table


def print_table(
    console: Console, table: RunTable, label: Callable[[str], str] = lambda name: name
) -> None:
    """The rich table, then one line per row that has a note; `label` shortens names."""
    from rich.markup import escape

    metrics = table.shown_metrics()
    has_best_epoch = any(row.get("best_epoch") is not None for row in table.rows)
    numbers = ["epochs", *metrics, *(["best epoch"] if has_best_epoch else []), "seconds"]
    numbers = [escape(n.removeprefix("final_").replace("_", " ")) for n in numbers]
    headings = [table.name, *(escape(key) for key in table.keys), "status", *numbers]
    shown = rich_table(headings, right=numbers, title=escape(table.title))
    for row in table.rows:
        shown.add_row(*_cells(row, table, metrics, has_best_epoch, label))
    print_wide(console, shown)
    for row in table.rows:
        if row.get(table.note):
            console.print(f"[red]{escape(str(row[table.name]))}[/]: {escape(str(row[table.note]))}")


def print_wide(console: Console, table: Any) -> None:
    """A rich table; in a file or a pipe as wide as it wants, without wrapping a cell."""
    if not console.is_terminal:
        from rich.measure import Measurement

        wide = console.options.update_width(10_000)
        console.width = max(console.width, Measurement.get(console, wide, table).maximum)
    console.print(table)


def _cells(
    row: Mapping[str, Any],
    table: RunTable,
    metrics: Sequence[str],
    has_best_epoch: bool,
    label: Callable[[str], str],
) -> list[str]:
    from rich.markup import escape

    status = row["status"]
    style = "green" if status == "completed" else "yellow" if status == "running" else "red"
    cells = [escape(label(str(row[table.name])))]
    cells += [escape(format_value(row.get(key))) for key in table.keys]
    cells += [f"[{style}]{escape(status)}[/]", format_value(row.get("epochs_run"))]
    cells += [format_value(row.get(c)) for c in metrics]
    if has_best_epoch:
        cells.append(format_value(row.get("best_epoch")))
    wall = row.get("wall_seconds")
    cells.append(f"{wall:.1f}" if isinstance(wall, int | float) else "")
    return cells
