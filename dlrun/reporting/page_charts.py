"""The charts of report.html, as Plotly figures (JSON: traces and layout) the page draws.

Per metric, one line per configuration: the mean over its seeds at each epoch (or logged
step), in its 95% band, with n in the hover; clicking a configuration in the legend hides
its line and band together. The tutorial's reference figures go on the same axes: a
per-epoch list as its own line, a final figure as a marker at the last epoch, a range as
two. Each run also gets its own curves and its layer gradient norms, drawn when its row
is opened. A series is cut to at most MOST_POINTS points, so that the page stays small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dlrun.reporting.figures import mean_band
from dlrun.reporting.reference_check import PER_EPOCH, bounds

MOST_POINTS = 2000
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def axis_buttons(traces: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The buttons every chart has: its y axis linear or logarithmic. A band that reaches
    zero or below has no place on a log axis, so there its edges are hidden (the mean's
    line stays)."""
    crossing = {t["legendgroup"] for t in traces if t.get("fill") and min(t["y"]) <= 0}
    on_log = [
        not (t.get("legendgroup") in crossing and t.get("hoverinfo") == "skip") for t in traces
    ]
    linear, log = [{"yaxis.type": "linear"}], [{"yaxis.type": "log"}]
    if traces:
        linear, log = [{"visible": [True] * len(traces)}, *linear], [{"visible": on_log}, *log]
    method = "update" if traces else "relayout"
    return [
        {
            "type": "buttons",
            "direction": "right",
            "x": 0,
            "y": 1.18,
            "xanchor": "left",
            "buttons": [
                {"label": "linear", "method": method, "args": linear},
                {"label": "log", "method": method, "args": log},
            ],
        }
    ]


def comparison_charts(
    groups: Mapping[str, Sequence[list[dict[str, Any]]]],
    columns: Sequence[str],
    x_name: str,
    references: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """One chart per column: `groups` holds each configuration's runs' rows (metrics.csv or
    steps.csv), `references` the tutorial's figures by metrics.csv column."""
    charts = []
    for column in columns:
        traces = []
        for number, (name, runs) in enumerate(groups.items()):
            colour = COLOURS[number % len(COLOURS)]
            traces += _band(name, colour, _series(runs, x_name, column))
        if not traces:
            continue
        last = max(
            (row[x_name] for runs in groups.values() for rows in runs for row in rows), default=1
        )
        if x_name == "epoch":
            traces += _reference(column, references, last)
        chart = _chart(f"{column} per {x_name}", x_name, column, traces)
        chart["layout"]["updatemenus"] = axis_buttons(traces)
        charts.append(chart)
    return charts


def run_charts(
    metrics: list[dict[str, Any]], steps: list[dict[str, Any]], diagnostics: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A run's own curves (each metric, train and test; the logged steps' loss) and its
    layer gradient norms, from its metrics.csv, steps.csv and diagnostics.csv rows."""
    charts = []
    names = dict.fromkeys(c.split("_", 1)[1] for c in (metrics[0] if metrics else {}) if "_" in c)
    for metric in names:
        epochs = [row["epoch"] for row in metrics]
        traces = [
            _line(split, epochs, [row.get(f"{split}_{metric}") for row in metrics])
            for split in ("train", "test")
            if f"{split}_{metric}" in metrics[0]
        ]
        charts.append(_chart(metric, "epoch", metric, traces))
    if steps and "train_loss" in steps[0]:
        x, y = _thin([r["step"] for r in steps]), _thin([r["train_loss"] for r in steps])
        charts.append(_chart("train_loss per step", "step", "train_loss", [_line("train", x, y)]))
    if diagnostics and "grad_norm" in diagnostics[0]:
        charts.append(_norms(diagnostics))
    return [chart for chart in charts if chart["data"]]


def _norms(diagnostics: list[dict[str, Any]]) -> dict[str, Any]:
    """Each layer's gradient norm over the steps, on a log axis."""
    traces = []
    for layer in dict.fromkeys(str(row["layer"]) for row in diagnostics):
        mine = [row for row in diagnostics if str(row["layer"]) == layer]
        traces.append(
            _line(layer, _thin([r["step"] for r in mine]), _thin([r["grad_norm"] for r in mine]))
        )
    chart = _chart("gradient norm per layer", "step", "gradient norm", traces)
    chart["layout"]["yaxis"]["type"] = "log"
    return chart


def _chart(title: str, x_name: str, y_name: str, traces: list[dict[str, Any]]) -> dict[str, Any]:
    return {"title": title, "data": traces, "layout": _layout(title, x_name, y_name)}


def _series(runs: Sequence[list[dict[str, Any]]], x_name: str, column: str):
    """(x, mean, low, high, n) at each x where any run has a value of `column`."""
    import pandas as pd

    series = []
    for rows in runs:
        found = {row[x_name]: row[column] for row in rows if x_name in row and column in row}
        values = pd.to_numeric(pd.Series(found, dtype=object), errors="coerce")
        series.append(values[values.map(lambda v: math.isfinite(v))].astype(float))
    series = [s for s in series if len(s)]
    if not series:
        return []
    mean, low, high, count = mean_band(series)
    points = list(zip(mean.index, mean.to_numpy(), low, high, count, strict=True))
    step = max(1, math.ceil(len(points) / MOST_POINTS))
    return points[::step] + ([points[-1]] if (len(points) - 1) % step else [])


def _band(name: str, colour: str, points: list[tuple]) -> list[dict[str, Any]]:
    """The mean's line and its band (two edges, the lower filled up to the upper)."""
    if not points:
        return []
    x, mean, low, high, n = ([_plain(v) for v in column] for column in zip(*points, strict=True))
    edge = {
        "x": x,
        "mode": "lines",
        "line": {"width": 0},
        "legendgroup": name,
        "showlegend": False,
        "hoverinfo": "skip",
    }
    return [
        {**edge, "y": high, "name": f"{name} upper"},
        {**edge, "y": low, "name": f"{name} lower", "fill": "tonexty", "fillcolor": _faded(colour)},
        {
            "x": x,
            "y": mean,
            "name": name,
            "legendgroup": name,
            "mode": "lines+markers",
            "marker": {"size": 4},
            "line": {"color": colour},
            "customdata": n,
            "hovertemplate": "%{y:.4g} (mean of %{customdata})<extra>" + name + "</extra>",
        },
    ]


def _reference(column: str, references: Mapping[str, Any], last: float) -> list[dict]:
    """The tutorial's figures for `column`, on the same axes."""
    style = {
        "name": "tutorial",
        "legendgroup": "tutorial",
        "line": {"color": "black", "dash": "dot"},
        "marker": {"symbol": "star", "size": 10, "color": "black"},
    }
    per_epoch = references.get(column + PER_EPOCH)
    if isinstance(per_epoch, list) and all(isinstance(v, int | float) for v in per_epoch):
        return [
            {
                **style,
                "x": list(range(1, len(per_epoch) + 1)),
                "y": per_epoch,
                "mode": "lines+markers",
            }
        ]
    found = bounds(references.get(column))
    if found is None:
        return []
    if found[0] == found[1]:  # a number: a marker at the last epoch
        return [{**style, "x": [last], "y": [found[0]], "mode": "markers"}]
    return [{**style, "x": [last, last], "y": list(found), "mode": "lines+markers"}]


def _line(name: str, x: list, y: list) -> dict[str, Any]:
    return {"x": x, "y": y, "name": name, "mode": "lines+markers", "marker": {"size": 4}}


def _layout(title: str, x_name: str, y_name: str) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_name}},
        "yaxis": {"title": {"text": y_name}, "type": "linear"},
        "updatemenus": axis_buttons(),
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"t": 70, "r": 20},
        "height": 440,
    }


def _plain(value: Any) -> Any:
    """A number as JSON takes it (numpy's own types are not)."""
    return value.item() if hasattr(value, "item") else value


def _thin(values: list) -> list:
    step = max(1, math.ceil(len(values) / MOST_POINTS))
    return values[::step]


def _faded(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.2)"
