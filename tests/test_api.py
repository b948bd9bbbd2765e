"""The Python API: the command's runs, in this process, called many times over."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import dlrun
from dlrun.errors import ConfigError, DlrunError

SMOKE = ["dataset=digits", "trainer=smoke", "model=mlp", "model.hidden=[32]"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_leaves_the_run_folder_the_command_leaves(tmp_path):
    run = dlrun.train([*SMOKE, "optimizer=adam"], output_dir=tmp_path / "run")
    assert run.path == tmp_path / "run"
    assert run.status == "completed"
    assert list(run.metrics["epoch"]) == [1, 2]
    assert run.summary["final"]["test_acc"] == run.metrics["test_acc"].iloc[-1]
    for name in ("metrics.csv", "summary.json", "curves.png", "train.log", ".hydra/config.yaml"):
        assert (run.path / name).is_file(), name
    assert (run.path / "checkpoints" / "last.pt").is_file()
    figure = run.plot()
    assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy"]


def test_calls_in_one_process_are_independent_and_reproducible(tmp_path):
    first = dlrun.train([*SMOKE, "seed=3"], output_dir=tmp_path / "a")
    other = dlrun.train([*SMOKE, "seed=4"], output_dir=tmp_path / "b")
    again = dlrun.train([*SMOKE, "seed=3"], output_dir=tmp_path / "c")
    same = (first.path / "metrics.csv").read_bytes() == (again.path / "metrics.csv").read_bytes()
    assert same
    assert not first.metrics.equals(other.metrics)
    config = json.loads(json.dumps(dlrun.load(again.path).summary))
    assert config["status"] == "completed"


def test_errors_raise_the_paragraph_the_command_prints(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean trainer.epochs"):
        dlrun.train([*SMOKE, "trainer.epoch=3"], output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="Did you mean experiment=lenet_fashion"):
        dlrun.train(["experiment=lenet_fashon"], output_dir=tmp_path / "b")
    with pytest.raises(DlrunError, match=r"optimizer.lr=-1.0 is out of range: use > 0"):
        dlrun.train([*SMOKE, "optimizer.lr=-1"], output_dir=tmp_path / "c")
    with pytest.raises(DlrunError, match="one string"):
        dlrun.train("optimizer=adam")
    # After errors, a good call still works.
    assert dlrun.train(SMOKE, output_dir=tmp_path / "d").status == "completed"


def test_sweep_returns_the_table_and_load_opens_the_sweep(tmp_path):
    table = dlrun.sweep([*SMOKE, "optimizer=sgd,adam"], sweep_dir=tmp_path / "sweep")
    assert isinstance(table, pd.DataFrame)
    assert list(table["optimizer"]) == ["sgd", "adam"]
    assert list(table["status"]) == ["completed", "completed"]
    sweep = dlrun.load(tmp_path / "sweep")
    assert [run.status for run in sweep.runs] == ["completed", "completed"]
    assert sweep.plot() is not None


def test_a_failed_job_is_a_row_not_an_exception(tmp_path):
    table = dlrun.sweep([*SMOKE, "optimizer.lr=0.1,-1"], sweep_dir=tmp_path / "sweep")
    assert list(table["status"]) == ["completed", "failed"]
    assert "optimizer.lr=-1.0" in table["error"].iloc[1]


def test_load_refuses_a_folder_that_dlrun_did_not_leave(tmp_path):
    with pytest.raises(DlrunError, match="neither a run folder"):
        dlrun.load(tmp_path)
