"""A tutorial's figure judged against where one dlrun run lands (reporting/reference_check.py)."""

from __future__ import annotations

import io
import math

import pytest
from rich.console import Console
from test_sweep import completed, make_job, metric_rows

from dlrun.reporting import seeds
from dlrun.reporting.reference_check import reference_checks
from dlrun.reporting.sweep_report import report_sweep


def summary(figures: dict, status: str = "completed") -> dict:
    rows = [
        {"figure": name, "reference": ref, "ours": ours} for name, (ref, ours) in figures.items()
    ]
    return {"status": status, "reference": {"source": "d2l.ai", "figures": rows}}


def sentences(runs) -> list[str]:
    return [check.sentence() for check in reference_checks(runs)[1]]


def test_the_prediction_interval_is_where_one_more_run_lands():
    from scipy import stats

    values = [0.77, 0.78, 0.79, 0.80]
    half = stats.t.ppf(0.975, 3) * stats.tstd(values) * math.sqrt(1 + 1 / 4)
    mean = sum(values) / 4
    assert seeds.prediction_interval(values) == pytest.approx((mean - half, mean + half))
    assert seeds.prediction_interval([0.7]) is None


@pytest.mark.parametrize(("reference", "verdict"), [(0.78, "within"), (0.9, "outside")])
def test_a_number_is_within_the_interval_or_outside_it(reference, verdict):
    runs = [("", summary({"test_acc": (reference, acc)})) for acc in (0.77, 0.78, 0.79)]
    (text,) = sentences(runs)
    low, high = seeds.prediction_interval([0.77, 0.78, 0.79])
    assert text == (
        f"test_acc: the tutorial printed {reference}; one dlrun run lands in {low:.3g} to "
        f"{high:.3g} (3 seeds), and {reference} is {verdict} it."
    )
    assert low < 0.78 < high < 0.9  # the interval of one run: wider than the mean's


@pytest.mark.parametrize(
    ("reference", "overlap"),
    [
        ("0.80-0.90", "overlap"),
        ("about 0.50-0.60", "do not overlap"),
        ("11.6-13.4 (x)", "do not overlap"),
    ],
)
def test_a_range_overlaps_the_interval_or_not(reference, overlap):
    runs = [("", summary({"test_acc": (reference, acc)})) for acc in (0.76, 0.78, 0.80)]
    (text,) = sentences(runs)
    assert text.startswith(f"test_acc: the tutorial printed {reference}; one dlrun run lands in")
    assert text.endswith(f"(3 seeds): the two ranges {overlap}.")


def test_a_per_epoch_list_is_judged_at_every_epoch_naming_the_last():
    reference = [0.70, 0.75, 0.99]
    runs = [
        ("", summary({"test_acc_per_epoch": (reference, [0.70 + d, 0.75 + d, 0.80 + d])}))
        for d in (-0.01, 0.0, 0.01)
    ]
    (text,) = sentences(runs)
    low, high = seeds.prediction_interval([0.79, 0.80, 0.81])
    assert text == (
        f"test_acc per epoch: at epoch 3 the tutorial printed 0.99; one dlrun run lands in "
        f"{low:.3g} to {high:.3g} there (3 seeds), and the tutorial's figure is within it at "
        f"2 of 3 epochs."
    )


def test_text_is_shown_not_judged_and_one_seed_asks_for_seeds():
    runs = [("", summary({"train_loss": ("tiny", 2e-6), "test_acc": (0.78, 0.8)}))]
    assert sentences(runs) == [
        "train_loss: the tutorial says tiny; ours 2e-06.",
        "test_acc: the tutorial printed 0.78; our one run gave 0.8: a spread needs seeds.",
    ]


def test_runs_that_did_not_complete_are_left_out_and_configurations_are_named():
    runs = [("sgd", summary({"test_acc": (0.78, acc)})) for acc in (0.77, 0.79)]
    runs += [("sgd", summary({"test_acc": (0.78, 0.1)}, status="diverged"))]
    runs += [("adam", summary({"test_acc": (0.78, 0.85)}))]
    sources, checks = reference_checks(runs)
    assert sources == ["d2l.ai"]
    assert [(c.config, c.ours) for c in checks] == [("sgd", [0.77, 0.79]), ("adam", [0.85])]
    assert checks[0].sentence().startswith("sgd: test_acc: the tutorial printed 0.78")


def test_a_sweep_prints_the_source_and_one_sentence_per_figure(tmp_path):
    for seed, acc in enumerate((0.77, 0.78, 0.79)):
        job_summary = {**completed(acc), **summary({"test_acc": (0.78, acc)})}
        make_job(tmp_path, seed, ["optimizer=sgd", f"seed={seed}"], job_summary, metric_rows(acc))
    console = Console(file=io.StringIO(), width=200)
    report_sweep(tmp_path, None, console=console)
    out = console.file.getvalue()
    assert "Reference: d2l.ai" in out
    assert "test_acc: the tutorial printed 0.78; one dlrun run lands in" in out
