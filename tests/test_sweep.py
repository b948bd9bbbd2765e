"""The sweep report: sweep_summary.csv, the printed table and comparison.png.

Fake sweep folders are written by hand (only the files the report reads), so these tests
take milliseconds; one real multirun checks the Hydra callback end to end.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import run_dlrun
from omegaconf import OmegaConf
from rich.console import Console

from dlrun.config.options.report import ReportConfig, as_report_config
from dlrun.reporting.sweep_jobs import differing_keys, find_jobs, parse_overrides
from dlrun.reporting.sweep_report import comparison_figure, report_sweep
from dlrun.sweeps.report_callback import SweepEnded, SweepReportCallback

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE = ["dataset=digits", "trainer=smoke", "model=mlp"]


def make_job(
    sweep_dir: Path,
    num: int,
    overrides: list[str],
    summary: dict | None = None,
    metrics: list[dict] | None = None,
    steps: list[dict] | None = None,
) -> Path:
    name = "_".join(o.partition("=")[2] for o in overrides if "=" in o)
    job = sweep_dir / f"{num}_{name}"
    (job / ".hydra").mkdir(parents=True)
    lines = "".join(f"- {o}\n" for o in overrides)
    (job / ".hydra" / "overrides.yaml").write_text(lines)
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary))
    for filename, rows in (("metrics.csv", metrics), ("steps.csv", steps)):
        if rows:
            with (job / filename).open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    return job


def completed(acc: float, epochs: int = 2, wall: float = 1.5) -> dict:
    final = {"epoch": epochs, "train_loss": 1 - acc, "test_loss": 1.1 - acc, "test_acc": acc}
    return {
        "status": "completed",
        "epochs_run": epochs,
        "final": {**final, "lr": 0.1},
        "best": {"monitor": "test_acc", **final, "lr": 0.1},
        "wall_seconds": wall,
    }


def metric_rows(acc: float, epochs: int = 2) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 2.0 / e,
            "train_acc": acc * e / epochs,
            "test_loss": 2.2 / e,
            "test_acc": acc * e / epochs,
            "lr": 0.1,
        }
        for e in range(1, epochs + 1)
    ]


def step_rows(n: int, start: float) -> list[dict]:
    return [
        {"step": s, "epoch": 1 + (s - 1) // 4, "train_loss": start / s} for s in range(1, n + 1)
    ]


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def test_only_overrides_that_differ_become_columns(tmp_path):
    for num, (opt, strength) in enumerate([("sgd", "0.1"), ("adam", "0.1"), ("sgd", "1")]):
        overrides = [
            f"optimizer={opt}",
            *BASE,
            "regularizer=[l2]",
            f"+regularizer.l2.strength={strength}",
        ]
        make_job(tmp_path, num, overrides, completed(0.5 + num / 10), metric_rows(0.5))

    result = report_sweep(tmp_path, None, console=quiet())

    rows = read_csv(tmp_path / "sweep_summary.csv")
    header = list(rows[0])
    assert header[:3] == ["job", "optimizer", "regularizer.l2.strength"]
    assert not {"dataset", "trainer", "model", "regularizer"} & set(header)
    assert [r["optimizer"] for r in rows] == ["sgd", "adam", "sgd"]
    assert [r["regularizer.l2.strength"] for r in rows] == ["0.1", "0.1", "1"]
    assert [r["status"] for r in rows] == ["completed"] * 3
    assert float(rows[2]["final_test_acc"]) == pytest.approx(0.7)
    assert rows[1]["best_test_acc"] == "0.6" and rows[1]["best_epoch"] == "2"
    assert rows[0]["epochs_run"] == "2" and rows[0]["wall_seconds"] == "1.5"
    assert "final_epoch" not in header  # epochs_run says it
    assert result.failed == 0 and len(result.rows) == 3
    assert result.csv_path == tmp_path / "sweep_summary.csv"
    assert result.png_path.read_bytes().startswith(PNG_MAGIC)


def test_jobs_are_ordered_by_number_not_by_name(tmp_path):
    for num in (10, 2, 1):
        make_job(tmp_path, num, [f"seed={num}"], completed(0.5))
    assert [p.name.split("_")[0] for p in find_jobs(tmp_path)] == ["1", "2", "10"]
    (tmp_path / "not_a_job").mkdir()  # no .hydra/overrides.yaml
    (tmp_path / "multirun.yaml").write_text("{}\n")
    assert len(find_jobs(tmp_path)) == 3


def test_failed_and_missing_jobs_are_reported_and_the_rest_still_is(tmp_path):
    make_job(tmp_path, 0, ["optimizer=sgd", *BASE], completed(0.7), metric_rows(0.7))
    failed = {**completed(0.2, epochs=1), "status": "failed", "error": "CUDA out of memory"}
    make_job(tmp_path, 1, ["optimizer=adam", *BASE], failed, metric_rows(0.2, epochs=1))
    make_job(tmp_path, 2, ["optimizer=rmsprop", *BASE])  # died before writing summary.json
    diverged = {**completed(0.1), "status": "diverged"}
    make_job(tmp_path, 3, ["optimizer=adagrad", *BASE], diverged)
    console = quiet()

    result = report_sweep(tmp_path, {"columns": ["test_acc"]}, console=console)

    assert result.failed == 3
    rows = read_csv(tmp_path / "sweep_summary.csv")
    assert [r["status"] for r in rows] == ["completed", "failed", "missing", "diverged"]
    assert rows[1]["error"] == "CUDA out of memory" and rows[0]["error"] == ""
    assert rows[0]["final_test_acc"] == "0.7"
    assert rows[2]["final_test_acc"] == "" and rows[2]["epochs_run"] == ""
    assert [r["optimizer"] for r in rows] == ["sgd", "adam", "rmsprop", "adagrad"]
    # Jobs 0 and 1 have metrics.csv: both are drawn; 2 and 3 are left out of the plot.
    assert result.png_path.read_bytes().startswith(PNG_MAGIC)
    fig = comparison_figure(tmp_path, {"columns": ["test_acc"]})
    assert len(fig.axes[0].get_lines()) == 2
    printed = console.file.getvalue()
    assert str(tmp_path) in printed
    assert "CUDA out of memory" in printed and "missing" in printed
    assert "3 of 4 jobs did not complete" in printed


def test_an_unreadable_summary_counts_as_failed(tmp_path):
    make_job(tmp_path, 0, ["seed=0"], completed(0.7), metric_rows(0.7))
    job = make_job(tmp_path, 1, ["seed=1"])
    (job / "summary.json").write_text('{"status": "compl')  # torn by hand
    result = report_sweep(tmp_path, None, console=quiet())
    assert [r["status"] for r in result.rows] == ["completed", "unreadable"]
    assert "summary.json" in result.rows[1]["error"]
    assert result.failed == 1


def test_steps_file_plots_every_step_of_the_jobs_that_have_it(tmp_path):
    make_job(tmp_path, 0, ["optimizer=sgd"], completed(0.5), metric_rows(0.5), step_rows(8, 2.0))
    make_job(tmp_path, 1, ["optimizer=adam"], completed(0.8), metric_rows(0.8), step_rows(8, 1.0))
    make_job(tmp_path, 2, ["optimizer=rmsprop"], completed(0.6), metric_rows(0.6))  # no steps
    report = ReportConfig(file="steps", columns=["train_loss"])

    fig = comparison_figure(tmp_path, report)

    ax = fig.axes[0]
    lines = ax.get_lines()
    assert ax.get_xlabel() == "step"
    assert len(lines) == 2
    assert list(lines[0].get_xdata()) == list(range(1, 9))
    assert list(lines[1].get_ydata()) == pytest.approx([1.0 / s for s in range(1, 9)])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["optimizer=sgd", "optimizer=adam"]
    # The job without steps.csv is still a row of the table.
    result = report_sweep(tmp_path, report, console=quiet())
    assert len(result.rows) == 3 and result.failed == 0
    assert result.png_path.is_file()


def test_ylim_log_y_and_title_are_applied(tmp_path):
    make_job(tmp_path, 0, ["optimizer=sgd"], completed(0.5), metric_rows(0.5))
    make_job(tmp_path, 1, ["optimizer=adam"], completed(0.8), metric_rows(0.8))
    report = OmegaConf.create(
        {"file": "metrics", "columns": ["test_loss"], "log_y": True, "ylim": [0.1, 5], "title": "T"}
    )
    ax = comparison_figure(tmp_path, report).axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_ylim() == pytest.approx((0.1, 5.0))
    assert ax.get_title() == "T"
    assert ax.get_xlabel() == "epoch"

    plain = comparison_figure(tmp_path, None).axes[0]
    assert plain.get_yscale() == "linear" and plain.get_ylabel() == "test_acc"
    assert plain.get_title() == f"{tmp_path.parent.name}/{tmp_path.name}"


def test_several_columns_keep_the_colour_per_job_and_the_style_per_column(tmp_path):
    make_job(tmp_path, 0, ["optimizer=sgd"], completed(0.5), metric_rows(0.5))
    make_job(tmp_path, 1, ["optimizer=adam"], completed(0.8), metric_rows(0.8))
    fig = comparison_figure(tmp_path, {"columns": ["train_loss", "test_loss"]})
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4  # (sgd, adam) x (train_loss, test_loss)
    sgd_train, sgd_test, adam_train, adam_test = lines
    assert sgd_train.get_color() == sgd_test.get_color() != adam_train.get_color()
    assert sgd_train.get_linestyle() == adam_train.get_linestyle()
    assert sgd_train.get_linestyle() != sgd_test.get_linestyle()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["optimizer=sgd", "optimizer=adam", "train_loss", "test_loss"]


def test_legend_shortens_dotted_keys(tmp_path):
    for num, (lr, strength) in enumerate([("0.1", "1"), ("0.01", "3")]):
        overrides = ["model=mlp", f"optimizer.lr={lr}", f"regularizer.l2.strength={strength}"]
        make_job(tmp_path, num, overrides, completed(0.5), metric_rows(0.5))
    fig = comparison_figure(tmp_path, None)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["lr=0.1, strength=1", "lr=0.01, strength=3"]


def test_no_plot_when_no_job_has_the_file_or_the_column(tmp_path):
    make_job(tmp_path, 0, ["optimizer=sgd"], completed(0.5), metric_rows(0.5))
    make_job(tmp_path, 1, ["optimizer=adam"], completed(0.8), metric_rows(0.8))
    console = quiet()
    result = report_sweep(tmp_path, {"file": "steps", "columns": ["train_loss"]}, console=console)
    assert result.png_path is None and not (tmp_path / "comparison.png").exists()
    assert "no job has steps.csv" in console.file.getvalue()
    assert len(read_csv(result.csv_path)) == 2  # the table is still there

    console = quiet()
    result = report_sweep(tmp_path, {"columns": ["test_ppl"]}, console=console)
    assert result.png_path is None
    assert "no column test_ppl" in console.file.getvalue()


def test_an_empty_sweep_writes_a_header_only(tmp_path):
    result = report_sweep(tmp_path, None, console=quiet())
    assert result.rows == [] and result.failed == 0 and result.png_path is None
    assert (tmp_path / "sweep_summary.csv").read_text().startswith("job,status,")


def test_report_config_from_anything_and_its_checks():
    assert as_report_config(None) == ReportConfig()
    assert as_report_config({"columns": "test_loss"}).columns == ["test_loss"]
    cfg = as_report_config(OmegaConf.structured(ReportConfig(ylim=[0, 1], log_y=True)))
    assert cfg.ylim == [0.0, 1.0] and cfg.log_y is True
    with pytest.raises(ValueError, match="report.file"):
        as_report_config({"file": "timings"})
    with pytest.raises(ValueError, match="ylim"):
        as_report_config({"ylim": [0, 1, 2]})
    with pytest.raises(ValueError, match="unknown report key"):
        as_report_config({"colums": ["test_acc"]})


def test_parse_overrides_and_differing_keys():
    parsed = parse_overrides(["+a.b=1", "++c=x=y", "~d", "model=mlp"])
    assert parsed == {"a.b": "1", "c": "x=y", "d": "~", "model": "mlp"}
    jobs = [{"model": "mlp", "lr": "1"}, {"model": "mlp", "lr": "2"}, {"model": "mlp", "x": "3"}]
    assert differing_keys(jobs) == ["lr", "x"]  # absent in a job counts as different
    assert differing_keys([{"model": "mlp"}]) == []


def test_callback_reads_the_sweep_folder_and_falls_back_to_default_report(tmp_path):
    make_job(tmp_path, 0, ["optimizer=sgd"], completed(0.5), metric_rows(0.5))
    make_job(tmp_path, 1, ["optimizer=adam"], {"status": "failed", "error": "boom"})
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})  # no `report`

    callback = SweepReportCallback()
    callback.on_multirun_start(config)
    with pytest.raises(SweepEnded) as ended:  # the outcome goes up to the command
        callback.on_multirun_end(config)

    assert ended.value.outcome.failed == 1 and ended.value.outcome.sweep_dir == tmp_path
    assert len(read_csv(tmp_path / "sweep_summary.csv")) == 2
    ax = comparison_figure(tmp_path, None).axes[0]
    assert ax.get_ylabel() == "test_acc"

    bad = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}, "report": {"file": "x"}})
    with pytest.raises(ValueError, match="report.file"):
        callback.on_multirun_start(bad)  # before any job runs


def test_multirun_writes_the_sweep_report(workdir):
    result = run_dlrun(
        "-m",
        "optimizer=sgd,adam",
        "dataset=digits",
        "trainer=smoke",
        "model=mlp",
        "trainer.log_every_n_steps=1",
        # ++: add the callback, or keep it where conf/config.yaml registers it already.
        "++hydra.callbacks.sweep_report._target_=dlrun.sweeps.report_callback.SweepReportCallback",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    (sweep_dir,) = (workdir / "outputs" / "multirun").glob("*/*")
    rows = read_csv(sweep_dir / "sweep_summary.csv")
    assert [r["optimizer"] for r in rows] == ["sgd", "adam"]
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert "dataset" not in rows[0] and float(rows[1]["final_test_acc"]) > 0
    assert (sweep_dir / "comparison.png").read_bytes().startswith(PNG_MAGIC)
    assert "sweep_summary.csv" in result.stdout
    page = (sweep_dir / "report.html").read_text()  # the page, read as dlrun-report reads
    assert page.count('<tr class="run"') == 2 and "dlrun -m optimizer=sgd,adam" in page


@pytest.mark.parametrize("launcher", ["basic", "fused"])
def test_a_sweep_with_no_jobs_stops_with_one_paragraph(workdir, launcher):
    result = run_dlrun(
        "-m", *BASE, "seed=range(0)", f"hydra/launcher={launcher}", "hydra.sweep.dir=s", cwd=workdir
    )
    assert result.returncode == 2, result.stdout
    assert "This sweep has no jobs: seed=range(0) gives no values" in result.stderr
    assert not (workdir / "s").exists()  # no empty sweep folder left behind


@pytest.mark.parametrize("launcher", ["basic", "fused"])
def test_sweep_jobs_draw_their_curves_on_request(workdir, launcher):
    result = run_dlrun(
        "-m", *BASE, "plots=auto,always", f"hydra/launcher={launcher}", "hydra.sweep.dir=s",
        cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    auto, always = sorted(p for p in (workdir / "s").iterdir() if p.is_dir())
    assert not list(auto.glob("*.png")) and (auto / "metrics.csv").is_file()
    assert {p.name for p in always.glob("*.png")} == {"curves.png", "gradients.png"}
    assert "Each job's curves: dlrun-report s --plots" in result.stdout


def test_plots_takes_one_of_its_three_values(workdir):
    result = run_dlrun(*BASE, "plots=sometimes", cwd=workdir)
    assert result.returncode == 1
    assert "sometimes" in result.stderr and "auto, always, never" in result.stderr


def test_the_helper_draws_the_comparison_a_sweep_prepared_as_this_process_would(tmp_path):
    from dlrun.outputs import drawing
    from dlrun.reporting.sweep_report import prepare_helper

    sweep = tmp_path / "sweep"
    for seed, acc in enumerate((0.5, 0.6)):
        make_job(sweep, seed, ["optimizer=sgd", f"seed={seed}"], completed(acc), metric_rows(acc))
        make_job(sweep, seed + 2, ["optimizer=adam", f"seed={seed}"], completed(acc + 0.2))
    here = report_sweep(sweep, {"columns": ["test_acc", "nope"]}, console=quiet())
    drawn_here = here.png_path.read_bytes()
    here.png_path.unlink()

    prepare_helper()
    assert drawing.running()
    console = quiet()
    helped = report_sweep(sweep, {"columns": ["test_acc", "nope"]}, console=console)
    drawing.wait()
    assert helped.png_path.read_bytes() == drawn_here
    assert "metrics.csv has no column nope" in console.file.getvalue()
