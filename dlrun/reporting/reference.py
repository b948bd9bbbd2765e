"""A tutorial's reference figures printed beside ours, with no verdict: the numbers side by side.

A preset carries them as data:

    reference:
      source: d2l.ai 7.6, LeNet on Fashion-MNIST
      figures: {train_acc: 0.82, test_acc: 0.78}     # compared in every run
      cases:                                          # compared where `when` matches
        - when: {regularizer.l2.strength: 3}
          figures: {weight_norm: 0.035-0.052}

A figure names a metrics.csv column (its final value), `<column>_per_epoch` (every epoch's
value), or one of the run's extras (e.g. weight_norm). Reference values may be numbers,
lists or text such as a range.
"""

from __future__ import annotations

import io
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.console import Console

from dlrun.reporting.table import format_value, rich_table


def compare(
    reference: DictConfig | None,
    cfg: DictConfig,
    metrics: list[dict[str, Any]],
    extras: dict[str, Any],
) -> dict[str, Any] | None:
    """Reference and our figures for this run's config, ready for summary.json."""
    if not reference:
        return None
    figures = dict(reference.get("figures") or {})
    for case in reference.get("cases") or []:
        if all(_matches(OmegaConf.select(cfg, key), value) for key, value in case.when.items()):
            figures.update(case.figures)
    rows = [
        {"figure": name, "reference": _plain(value), "ours": ours(name, metrics, extras)}
        for name, value in figures.items()
    ]
    return {"source": reference.get("source", ""), "figures": rows}


def ours(name: str, metrics: list[dict[str, Any]], extras: dict[str, Any]) -> Any:
    if name in extras:
        return extras[name]
    if name.endswith("_per_epoch"):
        column = name.removesuffix("_per_epoch")
        values = [row[column] for row in metrics if column in row]
        return values or None
    return metrics[-1].get(name) if metrics else None


def render(comparison: dict[str, Any]) -> str:
    """The comparison as a text table, for the console and train.log alike."""
    console = Console(file=io.StringIO(), width=100, highlight=False)
    console.print(f"Reference: {comparison['source']}", soft_wrap=True)
    table = rich_table(["figure", "reference", "ours"], right=["reference", "ours"], simple=False)
    for row in comparison["figures"]:
        table.add_row(row["figure"], _show(row["reference"]), _show(row["ours"]))
    console.print(table)
    return console.file.getvalue().rstrip()


def _matches(actual: Any, expected: Any) -> bool:
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return float(actual) == float(expected)
    return str(actual) == str(expected)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, list | tuple):
        return ", ".join(_show(v) for v in value)
    return str(value)
