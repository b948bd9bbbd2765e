"""Sweeps on Hydra's launcher plugins: joblib, submitit (local for real, SLURM composed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import run_dlrun

from dlrun.cli import main as cli
from dlrun.config import hydra_plugins as extras
from dlrun.training.threads import available_cpus, thread_budget
from dlrun.training.world import World

SWEEP = ("dataset=digits", "trainer=smoke", "model=mlp", "optimizer=sgd,adam")


def job_summaries(sweep_dir: Path) -> dict[str, dict]:
    return {
        p.parent.name: json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/summary.json"))
    }


def test_joblib_runs_two_jobs_side_by_side_each_with_its_share_of_the_cores(workdir):
    result = run_dlrun(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.dir=sweep",
        *SWEEP, cwd=workdir, process=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2," in result.stdout
    # The sweep is watched from its folders, while the jobs run in joblib's workers.
    assert "job 0 completed: epoch 2/2" in result.stdout
    assert "job 1 completed: epoch 2/2" in result.stdout
    summaries = job_summaries(workdir / "sweep")
    assert list(summaries) == ["0_mlp_sgd_digits_smoke", "1_mlp_adam_digits_smoke"]
    for summary in summaries.values():
        assert summary["status"] == "completed"
        assert summary["torch_threads"] == max(1, available_cpus() // 2)
    assert (workdir / "sweep" / "sweep_summary.csv").is_file()


def test_submitit_local_runs_each_job_through_submitit(workdir):
    result = run_dlrun(
        "-m", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1",
        "hydra.sweep.dir=sweep", *SWEEP, cwd=workdir, process=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = job_summaries(workdir / "sweep")
    assert [s["status"] for s in summaries.values()] == ["completed", "completed"]
    assert all(s["torch_threads"] == 1 for s in summaries.values())
    # submitit's own records of the two jobs: their pickled result and logs.
    assert len(list((workdir / "sweep" / ".submitit").glob("*/*_result.pkl"))) == 2


def test_the_slurm_launcher_composes_with_cluster_settings():
    from hydra import compose, initialize_config_module

    from dlrun.config.schema import register_configs
    from dlrun.outputs.naming import register_resolvers

    register_configs()
    register_resolvers()
    overrides = [
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=240",
        "hydra.launcher.gpus_per_node=1",
        "hydra.launcher.cpus_per_task=8",
        "hydra.launcher.max_num_timeout=3",
    ]
    with initialize_config_module("dlrun.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node) == ("gpu", 240, 1)
    assert launcher.max_num_timeout == 3
    assert thread_budget(None, launcher, World()) == 8


def test_a_sweep_started_again_in_its_folder_continues_its_jobs(workdir):
    """What a requeued SLURM job does: the same job in the same folder, from its checkpoint."""
    args = ("-m", "hydra.sweep.dir=sweep", *SWEEP)
    first = run_dlrun(*args, cwd=workdir, process=True)
    assert first.returncode == 0, first.stderr[-3000:]
    job = workdir / "sweep" / "0_mlp_sgd_digits_smoke"
    before = (job / "metrics.csv").read_bytes()
    again = run_dlrun(*args, cwd=workdir, process=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("This job's folder has a checkpoint: continuing from it") == 2
    assert "epoch 1/2" not in again.stdout  # nothing trained twice
    assert (job / "metrics.csv").read_bytes() == before
    assert json.loads((job / "summary.json").read_text())["status"] == "completed"


@pytest.mark.parametrize(
    ("configured", "launcher", "world", "cpus", "expected"),
    [
        (None, None, World(), 8, None),  # alone: torch's own choice
        (3, {"_target_": "x.JoblibLauncher", "n_jobs": 2}, World(), 8, 3),  # explicit wins
        (None, {"_target_": "x.JoblibLauncher", "n_jobs": 2}, World(), 8, 4),
        (None, {"_target_": "x.JoblibLauncher", "n_jobs": -1}, World(), 8, 1),
        (None, {"_target_": "x.JoblibLauncher", "n_jobs": -2}, World(), 8, 1),
        (None, {"_target_": "x.JoblibLauncher", "n_jobs": 16}, World(), 8, 1),
        (None, None, World(local_size=2), 2, 1),  # two torchrun ranks on two cores
        (None, {"_target_": "x.submitit.LocalLauncher", "cpus_per_task": 6}, World(), 64, 6),
        (None, {"_target_": "x.submitit.SlurmLauncher", "cpus_per_task": 8}, World(0, 4, 0, 2),
         64, 4),
        (None, {"_target_": "hydra._internal.BasicLauncher"}, World(), 8, None),
    ],
)  # fmt: skip
def test_thread_budget(configured, launcher, world, cpus, expected):
    assert thread_budget(configured, launcher, world, cpus) == expected


@pytest.mark.parametrize(
    ("argument", "extra", "module"),
    [
        ("hydra/launcher=joblib", "sweep", extras.JOBLIB.module),
        ("hparams_search=optuna", "sweep", extras.OPTUNA.module),
        ("hydra/sweeper=optuna", "sweep", extras.OPTUNA.module),
        ("hydra/launcher=submitit_slurm", "slurm", extras.SUBMITIT.module),
    ],
)
def test_a_missing_plugin_names_the_extra_to_install(
    monkeypatch, capsys, tmp_path, argument, extra, module
):
    real_find_spec = extras.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == module else real_find_spec(name, *args)

    monkeypatch.setattr(extras.importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(sys, "argv", ["dlrun", "-m", argument, "dataset=digits"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert f"{argument} needs the Hydra plugin" in message
    assert f"pip install 'dlrun[{extra}]'" in message
    assert not (tmp_path / "outputs").exists()  # stopped before Hydra made anything
