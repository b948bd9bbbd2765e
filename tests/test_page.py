"""report.html (reporting/page.py): one self-contained page of a folder's runs."""

from __future__ import annotations

import csv
import json
import re

import pytest
from test_reference_check import summary as reference_summary
from test_report import run_report
from test_sweep import completed, metric_rows

from dlrun.reporting.folders import build_report
from dlrun.reporting.page import page_html


def seeded_runs(folder, tricky: str = "sgd", adam=(0.80, 0.83, 0.81)):
    """Two optimizers over three seeds, as run folders with their .hydra files."""
    for number, (optimizer, acc) in enumerate(
        [(tricky, a) for a in (0.70, 0.72, 0.71)] + [("adam", a) for a in adam]
    ):
        run = folder / f"run{number}"
        (run / ".hydra").mkdir(parents=True)
        seed = number % 3
        (run / ".hydra" / "config.yaml").write_text(
            f"seed: {seed}\noptimizer:\n  name: {optimizer}\n  lr: 0.1\n"
        )
        (run / ".hydra" / "overrides.yaml").write_text(f"- optimizer={optimizer}\n- seed={seed}\n")
        result = {**completed(acc), **reference_summary({"test_acc": (0.78, acc)})}
        result.update(device="cpu", versions={"dlrun": "0.1.0"}, git={"commit": "abc123"})
        (run / "summary.json").write_text(json.dumps(result))
        with (run / "metrics.csv").open("w", newline="") as handle:
            rows = metric_rows(acc)
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return build_report(folder)


def test_the_page_compares_the_configurations_and_lists_every_run(tmp_path):
    html = page_html(seeded_runs(tmp_path))
    assert "<h2>Comparison over seeds</h2>" in html
    assert re.search(r"<td>sgd \(baseline\)</td>\s*<td class=\"number\">3</td>", html)
    assert "adam vs sgd: final test_acc" in html  # the terminal's sentence
    every = html[html.index('<table class="every">') :]
    assert all(f"<td>{metric}</td>" in every for metric in ("final_test_loss", "best_test_acc"))
    assert "test_acc: the tutorial printed 0.78; one dlrun run lands in" in html
    assert html.count('<tr class="run"') == 6  # one row per run
    for header in ("cpu", "0.1.0", "abc123", "dlrun optimizer=adam seed=0"):
        assert header in html


def test_an_unresolved_difference_says_how_many_seeds_would_resolve_it(tmp_path):
    html = page_html(seeded_runs(tmp_path))
    # sgd 0.70-0.72 against adam 0.80-0.83: resolved; the page names no seeds for it.
    assert "a side" not in html
    html = page_html(seeded_runs(tmp_path / "close", adam=(0.70, 0.75, 0.72)))
    assert re.search(r"<td>\d+ a side</td>", html)
    assert "optimistic" in html


def test_text_from_runs_is_escaped_and_the_page_asks_nothing_of_the_network(tmp_path):
    html = page_html(seeded_runs(tmp_path, tricky="<script>alert(1)</script>"))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The page's markup and its own script, without plotly.js (the browser test checks
    # that the whole page asks for nothing): no file, style or script from elsewhere.
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    assert len(scripts) == 2 and "Plotly" in scripts[0]
    ours = html.replace(scripts[0], "")
    assert not re.search(r"(src|href)\s*=", ours)
    assert not re.search(r"https?://", ours)


def test_dlrun_report_writes_the_page_where_asked(tmp_path):
    seeded_runs(tmp_path / "runs")
    result = run_report(str(tmp_path / "runs"), "--html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runs" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "Page: " in result.stdout
    result = run_report(str(tmp_path / "runs"), "--html", str(tmp_path / "x.html"), cwd=tmp_path)
    assert (tmp_path / "x.html").is_file()
    folder = str(tmp_path)  # a folder where the file should go
    result = run_report(str(tmp_path / "runs"), "--html", folder, cwd=tmp_path, process=True)
    assert result.returncode == 2 and f"Cannot write {folder}" in result.stderr


def test_the_charts_band_each_configuration_and_draw_the_tutorial_on_the_same_axes():
    from dlrun.reporting.page_charts import MOST_POINTS, comparison_charts, run_charts

    runs = [[{"epoch": e, "test_acc": 0.5 + e / 10 + d} for e in (1, 2, 3)] for d in (-0.01, 0.01)]
    references = {"test_acc": 0.8, "train_acc_per_epoch": [0.1, 0.2]}
    (chart,) = comparison_charts({"sgd": runs}, ["test_acc"], "epoch", references)
    upper, lower, mean, tutorial = chart["data"]
    assert mean["name"] == "sgd" and mean["y"] == pytest.approx([0.6, 0.7, 0.8])
    assert mean["customdata"] == [2, 2, 2]  # n in the hover
    assert all(lo < m < hi for lo, m, hi in zip(lower["y"], mean["y"], upper["y"], strict=True))
    assert {upper["legendgroup"], lower["legendgroup"]} == {"sgd"}  # hidden with its line
    assert (tutorial["x"], tutorial["y"]) == ([3], [0.8])  # the final figure, at the last epoch

    steps = [{"step": s, "train_loss": 1 / s} for s in range(1, 5001)]
    norms = [{"step": s, "layer": layer, "grad_norm": 0.1} for s in (1, 2) for layer in ("0", "2")]
    charts = run_charts(runs[0], steps, norms)
    assert [c["title"] for c in charts] == ["acc", "train_loss per step", "gradient norm per layer"]
    assert len(charts[1]["data"][0]["x"]) <= MOST_POINTS  # a long log is cut for the page
    assert [t["name"] for t in charts[2]["data"]] == ["0", "2"]


def test_a_report_and_its_page_are_made_without_torch(tmp_path):
    """Which way a metric is better is a table (config/metric_directions.py): dlrun-report
    and report.html read runs without the second torch takes to import."""
    import subprocess
    import sys

    seeded_runs(tmp_path)
    code = (
        "import sys; from dlrun.reporting.folders import build_report; "
        "from dlrun.reporting.page import page_html; "
        f"page_html(build_report({str(tmp_path)!r})); print('torch' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "False"
