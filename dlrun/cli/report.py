"""The `dlrun-report` command: one table of every run under a folder (reporting/folders.py).

dlrun-report outputs/ [--csv FILE] [--html [FILE]] [--plots]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dlrun.cli.exit import end_quickly
from dlrun.errors import EXIT_USER_ERROR, DlrunError
from dlrun.outputs.run_folder import CURVES_PNG, METRICS_CSV
from dlrun.reporting.folders import REPORT_CSV, Report, build_report, print_report, redraw, table


def write_csv(report: Report, path: Path) -> None:
    from dlrun.outputs.io import atomic_write_text

    try:
        atomic_write_text(path, table(report).to_csv())
    except OSError as err:
        raise DlrunError(
            f"Cannot write {path} ({err.strerror or err}): give another file with --csv."
        ) from err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlrun-report",
        description=(
            "One table of every dlrun run under FOLDER (recursively): status, the config "
            "values that differ between runs, final test metrics, best monitored metric, "
            "wall time. Reads only files, so it works on folders from another machine."
        ),
    )
    parser.add_argument("folder", help="a folder of runs, e.g. outputs/ or a sweep folder")
    parser.add_argument(
        "--csv", metavar="FILE", help=f"where to write the table (default FOLDER/{REPORT_CSV})"
    )
    parser.add_argument(
        "--baseline",
        metavar="CONFIG",
        help="runs that differ in seed: the configuration the others are compared with, "
        "e.g. optimizer.name=sgd (default: the first)",
    )
    parser.add_argument(
        "--html",
        nargs="?",
        const="",
        metavar="FILE",
        help="write a self-contained page of the runs and the comparison, which opens "
        "offline in any browser (default FOLDER/report.html)",
    )
    parser.add_argument(
        "--plots",
        action="store_true",
        help=f"redraw each run's {CURVES_PNG} from {METRICS_CSV} and each sweep's "
        "sweep_summary.csv and comparison.png",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    end_quickly()
    args = _parser().parse_args(argv)  # argparse exits with status 2 on bad arguments
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    try:
        report = build_report(args.folder, args.baseline)
        csv_path = Path(args.csv).expanduser() if args.csv else report.folder / REPORT_CSV
        write_csv(report, csv_path)
        seed_files = report.seeds.write(csv_path.parent, csv_path.stem) if report.seeds else ()
        page = None
        if args.html is not None:  # a file it cannot write is a DlrunError (outputs/io.py)
            from dlrun.reporting.page import write_page

            page = write_page(report, args.html or None)
    except DlrunError as err:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[bold red]Error:[/] {escape(str(err))}"
        )
        sys.exit(EXIT_USER_ERROR)
    print_report(console, report)
    if args.plots:
        plots = redraw(report)
        console.print(f"Redrew {plots.curves} {CURVES_PNG} and {plots.sweeps} sweep reports")
        for note in plots.notes:
            console.print(f"[yellow]{escape(note)}[/]")
    if page is not None:
        console.print(f"Page: {escape(str(page))}", soft_wrap=True)
    console.print(f"Report: {escape(str(csv_path))}", soft_wrap=True)
    if seed_files:
        console.print(
            f"Over seeds: {', '.join(escape(str(p)) for p in seed_files)}", soft_wrap=True
        )


if __name__ == "__main__":
    main()
