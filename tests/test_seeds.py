"""Comparisons over seeds: grouping, intervals, the baseline, the sentences, the files."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import SMOKE, run_dlrun

from dlrun.errors import DlrunError
from dlrun.reporting import seeds
from dlrun.reporting.seed_report import compare_seeds

# Student's t quantiles for a two-sided 95% interval, from the tables.
T_975 = {2: 4.302652729911275, 3: 3.182446305284263, 4: 2.7764451051977987}


def run(config: str, seed: int, acc: float, status: str = "completed") -> seeds.SeedRun:
    rows = [
        {"epoch": 1, "train_loss": 1.0, "test_loss": 0.9, "test_acc": acc - 0.1, "lr": 0.1},
        {"epoch": 2, "train_loss": 0.5, "test_loss": 0.6, "test_acc": acc, "lr": 0.1},
    ]
    return seeds.SeedRun(config, str(seed), status, rows)


def row_of(rows, config: str, metric: str) -> dict:
    (found,) = [r for r in rows if r["config"] == config and r["metric"] == metric]
    return found


def test_a_configurations_mean_gets_the_t_interval_and_its_spread():
    groups = seeds.configurations([run("sgd", s, acc) for s, acc in enumerate((0.8, 0.82, 0.84))])
    row = row_of(seeds.stats_rows(groups), "sgd", "final_test_acc")
    half = T_975[2] * 0.02 / math.sqrt(3)
    assert row["n_seeds"] == 3 and row["mean"] == pytest.approx(0.82)
    assert row["std"] == pytest.approx(0.02)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.82 - half, 0.82 + half))
    assert (row["min"], row["max"]) == (0.8, 0.84)
    best_loss = row_of(seeds.stats_rows(groups), "sgd", "best_test_loss")
    assert best_loss["mean"] == pytest.approx(0.6)  # the lower loss is the better one
    assert not [r for r in seeds.stats_rows(groups) if "lr" in r["metric"]]  # no direction


def test_one_seed_has_no_interval_and_says_so():
    (row,) = [
        r for r in seeds.stats_rows(seeds.configurations([run("sgd", 0, 0.8)]))
        if r["metric"] == "final_test_acc"
    ]  # fmt: skip
    assert row["n_seeds"] == 1 and row["ci_low"] is None and row["std"] is None
    assert "one seed" in row["note"]


def test_failed_and_diverged_seeds_are_counted_apart_and_left_out():
    runs = [run("sgd", 0, 0.8), run("sgd", 1, 0.9), run("sgd", 2, 0.1, "failed")]
    runs.append(run("sgd", 3, float("nan"), "diverged"))
    row = row_of(seeds.stats_rows(seeds.configurations(runs)), "sgd", "final_test_acc")
    assert (row["n_seeds"], row["n_failed"], row["n_diverged"]) == (2, 1, 1)
    assert row["mean"] == pytest.approx(0.85)


def test_the_difference_from_the_baseline_has_welchs_interval_and_the_pairs_won():
    sgd, adam = (0.80, 0.81, 0.83), (0.85, 0.86, 0.90, 0.91)
    runs = [run("optimizer=sgd", s, a) for s, a in enumerate(sgd)]
    runs += [run("optimizer=adam", s, a) for s, a in enumerate(adam)]
    comparison = compare_seeds(runs, None, ["test_acc"] * len(runs))
    assert comparison.baseline.name == "optimizer=sgd"
    row = row_of(comparison.compare, "optimizer=adam", "final_test_acc")

    va, vb = pd.Series(adam).var(), pd.Series(sgd).var()
    se = math.sqrt(va / 4 + vb / 3)
    df = (va / 4 + vb / 3) ** 2 / ((va / 4) ** 2 / 3 + (vb / 3) ** 2 / 2)
    from scipy import stats  # the quantile at Welch's fractional degrees of freedom

    half = stats.t.ppf(0.975, df) * se
    difference = sum(adam) / 4 - sum(sgd) / 3
    assert row["difference"] == pytest.approx(difference)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((difference - half, difference + half))
    assert (row["better_pairs"], row["pairs"]) == (12, 12)
    (text,) = comparison.sentences()
    assert text == (
        f"optimizer=adam vs optimizer=sgd: final test_acc {difference:+.3g} (95% CI "
        f"{difference - half:.3g} to {difference + half:.3g}), better in 12 of 12 seed pairs, "
        f"4 and 3 seeds."
    )
    loss = row_of(comparison.compare, "optimizer=adam", "final_test_loss")
    assert loss["difference"] == 0 and loss["better_pairs"] == 0  # equal losses win no pair


@pytest.mark.parametrize(
    ("values", "baseline"),
    [((0.8, 0.82, 0.87, 0.79), (0.7, 0.74, 0.71)), ((1e-3, 3e-3), (5.0, 5.0, 5.0, 5.0, 5.0))],
)
def test_the_intervals_are_scipy_stats_ones(values, baseline):
    from scipy import stats

    one = stats.ttest_1samp(values, 0.0).confidence_interval(seeds.CONFIDENCE)
    assert seeds.mean_interval(values) == pytest.approx(tuple(one), rel=1e-12)
    welch = stats.ttest_ind(values, baseline, equal_var=False)
    assert seeds.difference_interval(values, baseline) == pytest.approx(
        tuple(welch.confidence_interval(seeds.CONFIDENCE)), rel=1e-12
    )


def test_an_interval_that_crosses_zero_is_not_resolved():
    runs = [run("a", s, x) for s, x in enumerate((0.80, 0.90, 0.85))]
    runs += [run("b", s, x) for s, x in enumerate((0.82, 0.88, 0.84))]
    comparison = compare_seeds(runs, "b", ["test_acc"] * 6)
    assert comparison.baseline.name == "b"
    (text,) = comparison.sentences()
    assert text.startswith("a vs b: final test_acc ")
    # a beats b in 0 + 3 + 2 of the 9 pairs (0.80, 0.90 and 0.85 against 0.82, 0.88, 0.84)
    assert text.endswith("better in 5 of 9 seed pairs, 3 seeds each: the difference is not "
                         "resolved with 3 seeds each.")  # fmt: skip
    assert row_of(comparison.compare, "a", "final_test_acc")["note"].startswith("not resolved")


def test_a_baseline_that_names_no_configuration_lists_the_configurations():
    runs = [run("optimizer=sgd", 0, 0.8), run("optimizer=adam", 0, 0.9)]
    with pytest.raises(DlrunError, match=r"report.baseline=rmsprop names no configuration.*"
                                         r"optimizer=sgd; optimizer=adam"):  # fmt: skip
        compare_seeds(runs, "rmsprop", [])
    assert compare_seeds(runs, "optimizer=adam", []).baseline.name == "optimizer=adam"


def test_a_metric_only_some_runs_have_is_compared_where_it_exists():
    with_ppl = run("a", 0, 0.8)
    with_ppl.rows = [{**r, "test_ppl": 3.0} for r in with_ppl.rows]
    comparison = compare_seeds([with_ppl, run("a", 1, 0.9), run("b", 0, 0.7)], None, [])
    stats = row_of(comparison.stats, "a", "final_test_ppl")
    assert stats["n_seeds"] == 1
    other = row_of(comparison.stats, "b", "final_test_ppl")
    assert other["n_seeds"] == 0 and other["note"] == "no completed seed has this metric"
    versus = row_of(comparison.compare, "b", "final_test_ppl")
    assert versus.get("difference") is None and "no completed seed" in versus["note"]


def test_runs_differ_in_seed_only_when_the_seed_changes():
    assert seeds.has_seeds([{"seed": "0", "a": "1"}, {"seed": "1", "a": "1"}])
    assert not seeds.has_seeds([{"a": "1"}, {"a": "2"}])
    overrides = {"seed": "3", "a": "1", "b": "2"}
    assert seeds.config_name(overrides, ["a", "seed"]) == "1"  # one setting: its value
    assert seeds.config_name(overrides, ["a", "b", "seed"]) == "a=1, b=2"
    assert seeds.config_name({"seed": "3"}, ["seed"]) == "all runs"


def test_the_baseline_may_be_a_name_a_value_or_a_setting():
    runs = [
        seeds.SeedRun(name, "0", "completed", run("x", 0, 0.8).rows, {"optimizer": name})
        for name in ("sgd", "adam")
    ]
    for baseline in ("adam", "optimizer=adam"):
        assert compare_seeds(runs, baseline, []).baseline.name == "adam"
    with pytest.raises(DlrunError, match="such as optimizer=sgd; the runs are kept"):
        compare_seeds(runs, "optimizer=rmsprop", [])


def test_a_seeded_sweep_writes_stats_compare_a_banded_plot_and_prints_the_sentence(workdir):
    import dlrun

    args = (*SMOKE, "trainer.epochs=2", "optimizer=sgd,adam", "seed=0,1", "hydra.sweep.dir=sw")
    result = run_dlrun("-m", *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    sweep = workdir / "sw"
    assert "adam vs sgd: final test_acc" in result.stdout  # one setting differs: its values
    assert "2 seeds each" in result.stdout
    stats = pd.read_csv(sweep / "sweep_stats.csv")
    assert list(stats.columns) == seeds.STATS_COLUMNS
    assert set(stats["config"]) == {"sgd", "adam"}
    assert (stats["n_seeds"] == 2).all()
    compare = pd.read_csv(sweep / "sweep_compare.csv")
    assert set(compare["config"]) == {"adam"}
    assert (sweep / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    loaded = dlrun.load(sweep)
    assert loaded.stats.equals(stats) and loaded.compare.equals(compare)

    from dlrun.cli import report

    report.main([str(sweep), "--baseline", "optimizer.name=adam"])
    compared = pd.read_csv(sweep / "report_compare.csv")  # adam and sgd differ in lr too
    assert set(compared["baseline"]) == {"optimizer.name=adam, optimizer.lr=0.001"}


def test_a_seeded_sweep_with_an_unknown_baseline_fails_after_its_table(workdir):
    args = (*SMOKE, "trainer.epochs=1", "optimizer=sgd,adam", "seed=0,1", "hydra.sweep.dir=sw")
    result = run_dlrun("-m", *args, "report.baseline=rmsprop", cwd=workdir)
    assert result.returncode == 2
    assert "report.baseline=rmsprop names no configuration" in result.stderr
    assert (workdir / "sw" / "sweep_summary.csv").is_file()  # the jobs' table is kept


def test_a_seed_that_is_not_an_integer_is_refused(workdir):
    result = run_dlrun(*SMOKE, "seed=abc", cwd=workdir)
    assert result.returncode == 1
    assert "seed" in result.stderr and "abc" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("effect", "needed"), [(1.0, 17), (0.8, 26), (0.5, 64), (0.2, 394)])
def test_seeds_needed_match_the_power_tables_of_the_t_test(effect, needed):
    """Cohen's tables: two-sided t-test at 5%, 80% power, equal spreads and seeds a side."""
    half = 1 / math.sqrt(2)  # two values a side with a standard deviation of 1
    values, baseline = [effect - half, effect + half], [-half, half]
    assert seeds.seeds_needed(values, baseline) == needed


def test_no_seeds_needed_for_a_difference_of_about_zero_or_too_few_seeds():
    assert seeds.seeds_needed([0.5, 0.7], [0.5, 0.7]) is None  # no difference at all
    assert seeds.seeds_needed([0.6000001, 0.4], [0.6, 0.4]) is None  # beyond MOST_SEEDS
    assert seeds.seeds_needed([0.6], [0.5, 0.7]) is None
    assert seeds.seeds_needed([0.6, 0.6], [0.5, 0.5]) == 2  # no spread: any two resolve it
