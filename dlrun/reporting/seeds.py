"""Comparisons over seeds: each configuration's spread, and each against a baseline.

Runs that differ only in `seed` are one configuration. For every metrics.csv column that has
a better direction (train_/test_ loss, acc, ppl...), a configuration gets its final value's
and its best value's mean over the seeds that completed, with a 95% interval:

sweep_stats.csv    config, metric, n_seeds, n_failed, n_diverged, mean, std, ci_low, ci_high,
                   min, max, note   (metric: final_test_acc, best_test_acc, ...)
sweep_compare.csv  each configuration against the baseline: the difference of the means with
                   its 95% interval, and in how many seed pairs it is the better one

The intervals are Student's t intervals: with the 3 to 10 seeds a comparison
can afford, a bootstrap resamples too few values to cover its nominal 95%, while the t
interval is exact for normal spread and widens as it should when seeds are few. The
difference uses Welch's interval, which does not assume equal spreads or equal seed counts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from dlrun.config.options.trainer import MonitorMode
from dlrun.errors import DlrunError

CONFIDENCE = 0.95
SEED_KEY = "seed"
STATS_CSV = "sweep_stats.csv"
COMPARE_CSV = "sweep_compare.csv"
STATS_COLUMNS = [
    "config", "metric", "n_seeds", "n_failed", "n_diverged",
    "mean", "std", "ci_low", "ci_high", "min", "max", "note",
]  # fmt: skip
COMPARE_COLUMNS = [
    "config", "baseline", "metric", "n_seeds", "n_baseline_seeds",
    "difference", "ci_low", "ci_high", "better_pairs", "pairs", "p_better", "note",
]  # fmt: skip


@dataclass
class SeedRun:
    """One run as a comparison sees it: its configuration, seed, status and metrics rows."""

    config: str
    seed: str
    status: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # what config names

    @cached_property
    def outcomes(self) -> dict[str, float]:
        return outcomes(self.rows)


@dataclass
class Configuration:
    name: str
    runs: list[SeedRun]

    @property
    def completed(self) -> list[SeedRun]:
        return [run for run in self.runs if run.status == "completed" and run.rows]

    def values(self, metric: str) -> list[float]:
        """The metric's value in each completed seed that has it, NaN and inf left out."""
        found = (run.outcomes.get(metric) for run in self.completed)
        return [v for v in found if v is not None and math.isfinite(v)]


def has_seeds(overrides: Sequence[Mapping[str, str]]) -> bool:
    """Whether the runs differ in seed: then they are compared per configuration."""
    return len({job.get(SEED_KEY) for job in overrides}) > 1


def settings(overrides: Mapping[str, str], keys: Sequence[str]) -> dict[str, str]:
    """The settings that tell a configuration apart: the keys that differ, but the seed."""
    return {key: overrides[key] for key in keys if key != SEED_KEY and key in overrides}


def config_name(overrides: Mapping[str, str], keys: Sequence[str]) -> str:
    """A configuration's name: the value of the one setting that differs between runs
    (`adam`), or each differing setting (`optimizer=adam, optimizer.lr=0.01`)."""
    differing = settings(overrides, keys)
    if len([key for key in keys if key != SEED_KEY]) == 1 and differing:
        return next(iter(differing.values()))
    return ", ".join(f"{key}={value}" for key, value in differing.items()) or "all runs"


def configurations(runs: Sequence[SeedRun]) -> list[Configuration]:
    """The runs grouped by configuration, in the order their first run appears."""
    grouped: dict[str, list[SeedRun]] = {}
    for run in runs:
        grouped.setdefault(run.config, []).append(run)
    return [Configuration(name, members) for name, members in grouped.items()]


def outcomes(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """final_<column> and best_<column> of a run's metrics.csv rows, for every column that
    has a better direction."""
    from dlrun.config.metric_directions import direction

    found: dict[str, float] = {}
    for column in rows[0] if rows else ():
        mode = direction(column)
        values = [row[column] for row in rows if isinstance(row.get(column), int | float)]
        if mode is None or not values:
            continue
        found[f"final_{column}"] = float(rows[-1][column])
        finite = [v for v in values if math.isfinite(v)] or values
        found[f"best_{column}"] = float(mode.best(finite))
    return found


def metric_names(groups: Sequence[Configuration]) -> list[str]:
    """Every final_ and best_ metric of any run, finals first, in metrics.csv order."""
    names: dict[str, None] = {}
    for group in groups:
        for run in group.completed:
            names.update(dict.fromkeys(run.outcomes))
    finals = [name for name in names if name.startswith("final_")]
    return finals + [name for name in names if name not in finals]


def t_quantile(df: float) -> float:
    """The two-sided 95% quantile of Student's t with `df` degrees of freedom.

    scipy.special's inverse t distribution, the function scipy.stats' t.ppf calls: the
    same number, without importing scipy.stats (most of a second at a sweep's end)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + CONFIDENCE / 2))


def mean_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The 95% t interval of the mean: mean +- t(n - 1) s sqrt(1/n); None below two values."""
    if len(values) >= 2 and len(set(values)) == 1:
        return values[0], values[0]
    return _t_interval(values, 1)


def prediction_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """Where one more run lands, with 95% probability: mean +- t(n - 1) s sqrt(1 + 1/n)
    (the interval of the mean has sqrt(1/n) and narrows with every seed; one run does not).
    None below two values."""
    return _t_interval(values, len(values) + 1)


def _t_interval(values: Sequence[float], scale: int) -> tuple[float, float] | None:
    """mean +- t(n - 1) s sqrt(scale / n); None below two values."""
    if len(values) < 2:
        return None
    mean, n = statistics.fmean(values), len(values)
    half = t_quantile(n - 1) * statistics.stdev(values) * math.sqrt(scale) / math.sqrt(n)
    return mean - half, mean + half


# Seeds needed: the smallest count per side that resolves the observed difference with this
# probability (a two-sided Welch test at 5%), searched up to MOST_SEEDS.
POWER = 0.8
MOST_SEEDS = 10_000


def seeds_needed(values: Sequence[float], baseline: Sequence[float]) -> int | None:
    """Seeds per side for a two-sided Welch t-test at 5% to find a difference of the size
    observed with 80% power, the spreads taken as observed; None below two seeds a side,
    or where the difference is about zero (more than MOST_SEEDS would be needed).

    With n seeds a side, v = s1^2 + s2^2: the test statistic is noncentral t with
    df = (n - 1) v^2 / (s1^4 + s2^4) and noncentrality |d| sqrt(n / v); its power is
    P(|T| > t(df)), from scipy.special's noncentral t distribution. An effect measured on
    the same seeds is optimistic, so this is a lower bound in practice."""
    from scipy.special import nctdtr

    if len(values) < 2 or len(baseline) < 2:
        return None
    difference = abs(statistics.fmean(values) - statistics.fmean(baseline))
    spread1, spread2 = statistics.variance(values), statistics.variance(baseline)
    total = spread1 + spread2
    if total == 0:
        return None if difference == 0 else 2

    def resolves(n: int) -> bool:
        df = (n - 1) * total**2 / (spread1**2 + spread2**2)
        shift, critical = difference * math.sqrt(n / total), t_quantile(df)
        return 1 - nctdtr(df, shift, critical) + nctdtr(df, shift, -critical) >= POWER

    # The power grows with n: double until it is enough, then halve the gap.
    low, high = 1, 2
    while not resolves(high):
        if high >= MOST_SEEDS:
            return None
        low, high = high, min(2 * high, MOST_SEEDS)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if resolves(middle) else (middle, high)
    return high


def difference_interval(values: Sequence[float], baseline: Sequence[float]):
    """Welch's 95% interval of mean(values) - mean(baseline); None below two seeds each.

    With v = s^2 / n per side: the difference +- t(df) sqrt(v1 + v2), where
    df = (v1 + v2)^2 / (v1^2 / (n1 - 1) + v2^2 / (n2 - 1)) (Welch-Satterthwaite)."""
    if len(values) < 2 or len(baseline) < 2:
        return None
    difference = statistics.fmean(values) - statistics.fmean(baseline)
    if len(set(values)) == 1 and len(set(baseline)) == 1:
        return difference, difference
    v1 = statistics.variance(values) / len(values)
    v2 = statistics.variance(baseline) / len(baseline)
    df = (v1 + v2) ** 2 / (v1**2 / (len(values) - 1) + v2**2 / (len(baseline) - 1))
    half = t_quantile(df) * math.sqrt(v1 + v2)
    return difference - half, difference + half


def stats_rows(groups: Sequence[Configuration]) -> list[dict[str, Any]]:
    """sweep_stats.csv: one row per configuration and metric."""
    rows, metrics = [], metric_names(groups)
    for group in groups:
        failed = sum(run.status not in ("completed", "diverged") for run in group.runs)
        diverged = sum(run.status == "diverged" for run in group.runs)
        for metric in metrics:
            values = group.values(metric)
            row: dict[str, Any] = {"config": group.name, "metric": metric}
            row.update(n_seeds=len(values), n_failed=failed, n_diverged=diverged)
            row.update(_spread(values))
            rows.append(row)
    return rows


def _spread(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"note": "no completed seed has this metric"}
    interval = mean_interval(values)
    cells: dict[str, Any] = {"mean": statistics.fmean(values)}
    cells["std"] = statistics.stdev(values) if len(values) > 1 else None
    cells["ci_low"], cells["ci_high"] = interval or (None, None)
    cells["min"], cells["max"] = min(values), max(values)
    if interval is None:
        cells["note"] = "one seed: no interval (add seeds, e.g. 'seed=range(5)')"
    return cells


def pick_baseline(groups: Sequence[Configuration], baseline: str | None) -> Configuration:
    """The configuration the others are compared with: `report.baseline`, or the first."""
    if not baseline:
        return groups[0]
    for group in groups:
        named = group.runs[0].settings
        if baseline in (group.name, *named.values(), *(f"{k}={v}" for k, v in named.items())):
            return group
    names = "; ".join(group.name for group in groups)
    first = groups[0].runs[0].settings
    setting = next((f"{k}={v}" for k, v in first.items()), groups[0].name)
    raise DlrunError(
        f"report.baseline={baseline} names no configuration of this sweep. Its configurations: "
        f"{names}. Give one of them, or one of its settings such as {setting}; the runs are "
        f"kept, and `dlrun-report FOLDER --baseline ...` compares them again."
    )


def compare_rows(groups: Sequence[Configuration], base: Configuration) -> list[dict[str, Any]]:
    """sweep_compare.csv: every other configuration against the baseline, per metric."""
    metrics = metric_names(groups)
    return [
        _difference(group, base, metric)
        for group in groups
        if group is not base
        for metric in metrics
    ]


def _difference(group: Configuration, base: Configuration, metric: str) -> dict[str, Any]:
    values, baseline = group.values(metric), base.values(metric)
    row: dict[str, Any] = {"config": group.name, "baseline": base.name, "metric": metric}
    row.update(n_seeds=len(values), n_baseline_seeds=len(baseline))
    if not values or not baseline:
        row["note"] = "a side has no completed seed with this metric"
        return row
    row["difference"] = statistics.fmean(values) - statistics.fmean(baseline)
    interval = difference_interval(values, baseline)
    row["ci_low"], row["ci_high"] = interval or (None, None)
    from dlrun.config.metric_directions import direction

    mode = direction(metric.partition("_")[2])
    mode = mode or MonitorMode.min
    better = sum(mode.better(a, b) for a in values for b in baseline)
    row.update(better_pairs=better, pairs=len(values) * len(baseline))
    row["p_better"] = better / row["pairs"]
    if interval is None:
        row["note"] = "fewer than two seeds on a side: no interval"
    elif interval[0] <= 0 <= interval[1]:
        row["note"] = "not resolved: the interval includes 0"
    return row


def sentence(row: Mapping[str, Any]) -> str:
    """adam vs sgd: final test_acc +0.031 (95% CI 0.024 to 0.038), better in 24 of 25 seed
    pairs, 5 seeds each."""
    kind, _, column = row["metric"].partition("_")
    n, m = row["n_seeds"], row["n_baseline_seeds"]
    seeds = f"{n} seeds each" if n == m else f"{n} and {m} seeds"
    head = f"{row['config']} vs {row['baseline']}: {kind} {column}"
    if row.get("difference") is None:
        return f"{head}: no comparison ({row.get('note')})."
    text = f"{head} {row['difference']:+.3g}"
    if row.get("ci_low") is not None:
        text += f" (95% CI {row['ci_low']:.3g} to {row['ci_high']:.3g})"
    text += f", better in {row['better_pairs']} of {row['pairs']} seed pairs, {seeds}"
    if row.get("ci_low") is None:
        return f"{text}: one seed on a side gives no interval; add seeds to resolve it."
    if row["ci_low"] <= 0 <= row["ci_high"]:
        return f"{text}: the difference is not resolved with {seeds}."
    return f"{text}."
