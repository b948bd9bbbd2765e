"""Runs that differ in seed, reported per configuration: the CSV files and the printed
comparison (comparison.png's mean lines and bands: reporting/figures.py).

Used by the sweep report (reporting/sweep_report.py) and by dlrun-report
(reporting/folders.py); the statistics themselves are in reporting/seeds.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.outputs.io import atomic_write_text, csv_text
from dlrun.outputs.run_folder import read_rows
from dlrun.reporting import seeds
from dlrun.reporting.table import format_value, print_wide, rich_table

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class SeedComparison:
    groups: list[seeds.Configuration]
    baseline: seeds.Configuration
    monitor: str | None  # the runs' trainer.monitor: the metric the sentences speak of
    stats: list[dict[str, Any]]
    compare: list[dict[str, Any]]

    def sentences(self) -> list[str]:
        metric = f"final_{self.monitor}"
        return [seeds.sentence(row) for row in self.compare if row["metric"] == metric]

    def write(self, folder: Path, prefix: str = "sweep") -> tuple[Path, Path]:
        """<prefix>_stats.csv and <prefix>_compare.csv in `folder`."""
        stats_path = folder / seeds.STATS_CSV.replace("sweep", prefix, 1)
        compare_path = folder / seeds.COMPARE_CSV.replace("sweep", prefix, 1)
        atomic_write_text(stats_path, csv_text(self.stats, seeds.STATS_COLUMNS))
        atomic_write_text(compare_path, csv_text(self.compare, seeds.COMPARE_COLUMNS))
        return stats_path, compare_path


def compare_folders(
    runs: Sequence[tuple[Path, Mapping[str, str], str, Mapping[str, Any] | None]],
    keys: Sequence[str],
    baseline: str | None,
    metrics: Mapping[Path, list[dict[str, Any]]] | None = None,
) -> SeedComparison:
    """Compare runs read from their folders, each given as (folder, its settings (overrides
    or flattened config), status, summary.json); `keys` are the settings that differ.
    `metrics`: each folder's metrics.csv rows, where they were read already."""
    seed_runs = [
        seeds.SeedRun(
            config=seeds.config_name(settings, keys),
            settings=seeds.settings(settings, keys),
            seed=settings.get(seeds.SEED_KEY, ""),
            status=status,
            rows=metrics[folder] if metrics is not None else read_rows(folder),
        )
        for folder, settings, status, _ in runs
    ]
    monitors = [(summary or {}).get("best", {}).get("monitor") for *_, summary in runs]
    return compare_seeds(seed_runs, baseline, monitors)


def compare_seeds(
    runs: Sequence[seeds.SeedRun], baseline: str | None, monitors: Sequence[str | None]
) -> SeedComparison:
    """Group the runs, compute both tables; a `baseline` that names no group raises."""
    groups = seeds.configurations(runs)
    base = seeds.pick_baseline(groups, baseline)
    known = [m for m in monitors if m]
    monitor = Counter(known).most_common(1)[0][0] if known else None
    return SeedComparison(
        groups=groups,
        baseline=base,
        monitor=monitor,
        stats=seeds.stats_rows(groups),
        compare=seeds.compare_rows(groups, base),
    )


def print_comparison(console: Console, comparison: SeedComparison) -> None:
    """Per configuration: seeds, the monitored metric's mean and interval, the difference
    from the baseline and the seed pairs it wins; then one sentence per comparison."""
    from rich.markup import escape

    metric = f"final_{comparison.monitor}"
    numbers = ["seeds", "left out", "mean", "95% CI", "vs baseline", "95% CI", "better pairs"]
    title = f"over seeds: {metric.replace('_', ' ')}"
    table = rich_table(["config", *numbers], right=numbers, title=title)
    stats = {(r["config"], r["metric"]): r for r in comparison.stats}
    compare = {r["config"]: r for r in comparison.compare if r["metric"] == metric}
    for group in comparison.groups:
        row = stats.get((group.name, metric), {})
        versus = compare.get(group.name, {})
        left_out = row.get("n_failed", 0) + row.get("n_diverged", 0)
        table.add_row(
            escape(group.name) + (" (baseline)" if group is comparison.baseline else ""),
            str(row.get("n_seeds", 0)),
            str(left_out) if left_out else "",
            format_value(row.get("mean")),
            interval_text(row),
            _signed(versus.get("difference")),
            interval_text(versus),
            f"{versus['better_pairs']}/{versus['pairs']}" if versus.get("pairs") else "",
        )
    print_wide(console, table)
    for text in comparison.sentences():
        console.print(escape(text))


def interval_text(row: Mapping[str, Any]) -> str:
    """A row's 95% interval as `low to high`, empty when it has none."""
    if row.get("ci_low") is None:
        return ""
    return f"{format_value(row['ci_low'])} to {format_value(row['ci_high'])}"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4g}"
