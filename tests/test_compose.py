"""Every option of every group composes with trainer=smoke through the real command.

Each group is one multirun (one process, one job per option), which keeps this fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import run_dlrun

ROOT = Path(__file__).resolve().parents[1]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))


def sweep(workdir: Path, *args: str) -> list[dict]:
    result = run_dlrun("-m", *args, cwd=workdir, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summaries = sorted((workdir / "outputs" / "multirun").glob("*/*/*/summary.json"))
    return [json.loads(path.read_text()) for path in summaries]


SMOKE = ("trainer=smoke", "trainer.epochs=1")


@pytest.mark.parametrize(
    ("group", "context"),
    [
        ("optimizer", ("dataset=digits", "model=mlp")),
        ("init", ("dataset=digits", "model=mlp")),
        ("scheduler", ("dataset=digits", "model=mlp", "trainer.epochs=2")),
        ("model", None),
        ("dataset", None),
    ],
)
def test_every_option_of_a_group_runs(workdir, group, context):
    if group == "model":
        image = "lenet,mlp,phone_mlp,phone_mlp_deep,softmax_regression,deep_mlp"
        regression = "linear_regression,poly_regression,deep_mlp,mlp"
        jobs = [
            (f"model={image}", "dataset=digits"),
            (f"model={regression}", "dataset=polynomial"),
            ("model=char_rnn", "dataset=text", "model.cell=rnn,gru,lstm,lstm_scratch"),
        ]
        covered = {*image.split(","), *regression.split(","), "char_rnn"}
        assert covered == set(options("model")), "add new models here"
        expected = 6 + 4 + 4
    elif group == "dataset":
        csv = workdir / "table.csv"
        csv.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60)))
        jobs = [
            ("dataset=digits,wine", "model=mlp"),
            ("dataset=synthetic_linreg,cubic,polynomial", "model=linear_regression"),
            ("dataset=csv", f"dataset.path={csv}", "model=mlp"),
            ("dataset=text", "model=char_rnn", "model.hidden_size=16"),
        ]
        covered = {"digits", "wine", "synthetic_linreg", "cubic", "polynomial", "csv", "text"}
        assert covered | {"fashion_mnist", "mnist"} == set(options("dataset")), "add new ones"
        expected = 7
    else:
        jobs = [(f"{group}={','.join(options(group))}", *context)]
        expected = len(options(group))
    summaries = []
    for job in jobs:
        summaries = sweep(workdir, *job, *SMOKE)
    assert len(summaries) == expected
    assert all(s["status"] == "completed" for s in summaries)
    assert all(math.isfinite(s["final"]["train_loss"]) for s in summaries)


def test_all_regularizers_together(workdir):
    (summary,) = sweep(
        workdir,
        "regularizer=[l1,l2,dropout,grad_clip,early_stopping]",
        "model=mlp",
        "model.hidden=[32,16]",
        "dataset=digits",
        "trainer=smoke",
    )
    assert summary["status"] == "completed"


def test_hydra_mode_on_the_command_line_still_picks_a_sweep(workdir):
    """The command composes once: the mode comes from the command line, not a first compose."""
    from conftest import SMOKE, run_dlrun

    args = (*SMOKE, "trainer.epochs=1", "hydra.mode=MULTIRUN", "hydra.sweep.dir=sweep")
    result = run_dlrun(*args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "sweep" / "multirun.yaml").is_file()
    assert (workdir / "sweep" / "sweep_summary.csv").is_file()


def test_each_job_is_composed_once_and_a_bad_job_still_stops_the_sweep_first(workdir, monkeypatch):
    """The check of a sweep's batch composes each job; the launcher reuses that config."""
    from conftest import SMOKE, run_dlrun
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed = []
    compose = ConfigLoaderImpl.load_configuration

    def counting(self, *args, **kwargs):
        composed.append(kwargs.get("overrides"))
        return compose(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counting)
    args = (*SMOKE, "trainer.epochs=1", "optimizer=sgd,adam", "hydra.sweep.dir=sweep")
    result = run_dlrun("-m", *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert len(list((workdir / "sweep").glob("*/metrics.csv"))) == 2
    assert len(composed) == 3  # the command's config, then each job once

    bad = run_dlrun("-m", *SMOKE, "trainer.epochs=1", "trainer.batch_size=8,x", cwd=workdir)
    assert bad.returncode == 1
    assert "trainer.batch_size" in bad.stderr
    assert not list((workdir / "multirun").glob("*/*/*/metrics.csv"))  # no job ran
