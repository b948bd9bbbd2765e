"""hydra/launcher=fused: a sweep's jobs that share their shapes train as one program, and
each member's run folder is that of the same job run alone."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SMOKE, call_main, run_dlrun

from dlrun.sweeps.fused.batched import batched_forward
from dlrun.sweeps.fused.memory import members_that_fit
from dlrun.sweeps.fused.optimizers import merged

MLP = (*SMOKE, "model=mlp", "model.hidden=[32]", "trainer.epochs=3", "trainer.checkpoint_every=7")
ROOT = Path(__file__).resolve().parents[1]
FUSED = ("hydra/launcher=fused",)


def sweep(workdir: Path, name: str, *args: str, process: bool = False):
    done = run_dlrun("-m", *args, f"hydra.sweep.dir={name}", cwd=workdir, process=process)
    return done, sorted(p for p in (workdir / name).iterdir() if p.is_dir())


def run_dlrun_report(*args: str, cwd: Path):
    from dlrun.cli import report

    return call_main(lambda: report.main(list(args)), ["dlrun-report", *args], cwd)


def rows(folder: Path, name: str = "metrics.csv") -> list[dict[str, float]]:
    with (folder / name).open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def assert_close(alone: Path, fused: Path, rtol: float, columns=None) -> None:
    a, b = rows(alone), rows(fused)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        for column in columns or x:
            assert y[column] == pytest.approx(x[column], rel=rtol, abs=1e-9), (column, x, y)


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if ".hydra" not in p.parts}


def test_a_fused_sweep_matches_the_sweep_run_job_by_job(workdir):
    """Members differ in the seed (data order, initialisation), the optimizer and its lr,
    and the dropout masks: each matches its job run alone."""
    args = (*MLP, "model.dropout=[0.3]", "seed=0,1", "optimizer=sgd,adam")
    basic, alone = sweep(workdir, "basic", *args)
    fused, members = sweep(workdir, "fused", *args, *FUSED)
    assert basic.returncode == 0 and fused.returncode == 0, fused.stderr
    assert "train as one program (4 runs)" in fused.stdout
    assert [p.name for p in alone] == [p.name for p in members]
    for job, member in zip(alone, members, strict=True):
        assert files(job) == files(member)
        assert json.loads((member / "summary.json").read_text())["status"] == "completed"
        assert_close(job, member, rtol=1e-4)
        assert rows(job, "timings.csv")[-1]["epoch"] == rows(member, "timings.csv")[-1]["epoch"]
    assert (workdir / "fused" / "sweep_summary.csv").is_file()

    # dlrun-eval scores a member's checkpoint as its run recorded it, up to the rounding of
    # the batched kernels; dlrun-report reads the fused sweep as any other.
    member = members[-1]
    scored = subprocess.run(
        [sys.executable, "-m", "dlrun.cli.eval_checkpoint", f"ckpt={member}", "device=cpu"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert scored.returncode == 0, scored.stderr
    metrics = json.loads((member / "eval.json").read_text())["metrics"]
    assert metrics["test_loss"] == pytest.approx(rows(member)[-1]["test_loss"], rel=1e-5)
    report = run_dlrun_report(str(workdir / "fused"), cwd=workdir)
    assert report.returncode == 0, report.stderr
    assert "optimizer" in report.stdout  # the swept key, in its table


def test_a_member_that_diverges_stops_and_the_others_go_on(workdir):
    linear = ("dataset=synthetic_linreg", "model=linear_regression", "trainer.epochs=30")
    done, members = sweep(workdir, "s", *SMOKE, *linear, "optimizer.lr=0.01,1e6", *FUSED)
    assert done.returncode == 1, done.stderr  # a sweep with a diverged job
    assert "train as one program (2 runs)" in done.stdout
    summaries = [json.loads((m / "summary.json").read_text()) for m in members]
    assert [s["status"] for s in summaries] == ["completed", "diverged"]
    assert len(rows(members[0])) == 30
    assert len(rows(members[1])) == summaries[1]["diverged_at"]["epoch"] - 1


def test_jobs_that_cannot_be_fused_run_alone_and_say_why(workdir):
    done, members = sweep(workdir, "s", *MLP, "model.batch_norm=true", "seed=0,1", *FUSED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("runs alone: batch norm's running statistics") == 2
    assert all(
        json.loads((m / "summary.json").read_text())["status"] == "completed" for m in members
    )


def test_a_group_larger_than_max_members_is_split(workdir):
    args = (*MLP, "seed=0,1,2", *FUSED, "hydra.launcher.max_members=2")
    done, members = sweep(workdir, "s", *args)
    assert done.returncode == 0, done.stderr
    assert "split into 2 groups of at most hydra.launcher.max_members=2" in done.stdout
    assert "train as one program (2 runs)" in done.stdout
    assert "Job #2 runs alone: the one job left over when its group was split" in done.stdout
    assert len(members) == 3


def test_a_signal_stops_the_group_saved_and_the_sweep_resumes_it(workdir):
    args = (*MLP, "trainer.epochs=12", "trainer.batch_size=8", "seed=0,1", "hydra.sweep.dir=s")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DLRUN_DATA", None)
    command = [sys.executable, "-m", "dlrun", "-m", *args, *FUSED]
    process = subprocess.Popen(
        command, cwd=workdir, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not list((workdir / "s").glob("*/checkpoints/last.pt")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr
    members = sorted(p for p in (workdir / "s").iterdir() if p.is_dir())
    stops = [json.loads((m / "summary.json").read_text()) for m in members]
    assert [s["status"] for s in stops] == ["interrupted", "interrupted"]
    steps = {torch.load(m / "checkpoints/last.pt", weights_only=True)["step"] for m in members}
    assert len(steps) == 1  # the members were saved at one step

    resumed = run_dlrun("-m", *args, *FUSED, cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert "train as one program (2 runs)" in resumed.stdout
    # As a run alone resumed mid-epoch, the group ends as if it had never stopped.
    _, whole = sweep(workdir, "whole", *args[:-1], *FUSED)
    for uninterrupted, member in zip(whole, members, strict=True):
        for name in ("metrics.csv", "diagnostics.csv"):
            assert (member / name).read_text() == (uninterrupted / name).read_text()
        assert json.loads((member / "summary.json").read_text())["resumed_from"]


def test_merged_optimizers_share_the_members_groups_and_state():
    models = [torch.nn.Linear(3, 1) for _ in range(3)]
    optimizers = [
        torch.optim.Adam(models[0].parameters(), lr=0.1),
        torch.optim.SGD(models[1].parameters(), lr=0.1, momentum=0.9),
        torch.optim.Adam(models[2].parameters(), lr=0.01),
    ]
    together = merged(optimizers)
    assert [type(o) for o in together] == [torch.optim.Adam, torch.optim.SGD]
    assert [len(g["params"]) for g in together[0].param_groups] == [2, 2]  # lr differs
    for model in models:
        model(torch.ones(2, 3)).sum().backward()
    for optimizer in together:
        optimizer.step()
    assert set(optimizers[2].state_dict()["state"]) == {0, 1}  # the member holds its state
    assert "momentum_buffer" in optimizers[1].state[models[1].weight]
    assert together[0].state.get(models[0].bias)["step"] == 1
    assert together[0].state.get(torch.zeros(1)) is None


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (ROOT / "conf" / "optimizer").glob("*.yaml"))
)
def test_merged_optimizers_step_every_member_bit_for_bit_as_alone(name):
    """The merged groups' foreach step is the members' own loop, to the last bit."""
    import yaml

    import dlrun.builtins  # noqa: F401  (the optimizer builders)
    from dlrun.config.registry import OPTIMIZERS

    options = yaml.safe_load((ROOT / "conf" / "optimizer" / f"{name}.yaml").read_text())
    options = {key: value for key, value in options.items() if key != "defaults"}
    options["weight_decay"] = 0.01  # a group with decay and one without (the biases)

    def members(count: int = 3) -> list[torch.nn.Module]:
        torch.manual_seed(0)
        return [
            torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 1)) for _ in range(count)
        ]

    alone, fused = members(), members()
    optimizers = [OPTIMIZERS.build(options, model) for model in alone + fused]
    together = merged(optimizers[3:])
    batches = torch.randn(20, 8, 4, generator=torch.Generator().manual_seed(1))
    for x in batches:
        for model, optimizer in zip(alone, optimizers[:3], strict=True):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
        for model in fused:
            model.zero_grad()
            model(x).pow(2).mean().backward()
        for optimizer in together:
            optimizer.step()
    assert all(group.get("foreach") for optimizer in together for group in optimizer.param_groups)
    for mine, theirs in zip(alone, fused, strict=True):
        for a, b in zip(mine.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(a, b)


def test_the_batched_forward_takes_the_tutorials_layers_and_refuses_others():
    lenet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1),
        torch.nn.Sigmoid(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(2 * 4 * 4, 3),
    )
    forward = batched_forward(lenet)
    x = torch.randn(5, 1, 8, 8)
    params = {name: torch.stack([p, p * 2]) for name, p in lenet.named_parameters()}
    out = forward(params, torch.stack([x, x]), None)
    assert torch.allclose(out[0], lenet(x), atol=1e-6)
    assert batched_forward(torch.nn.Sequential(torch.nn.LSTM(2, 2))) is None


def test_a_device_holds_the_members_its_free_memory_fits():
    assert members_that_fit(10 * 2**30, 2**30) == 8
    assert members_that_fit(2**20, 2**30) == 1


def test_a_group_larger_than_the_device_holds_trains_in_parts(workdir, monkeypatch):
    from dlrun.sweeps.fused import launch

    monkeypatch.setattr(launch, "device_limit", lambda member: (2, 2**20))
    done, members = sweep(workdir, "s", *MLP, "seed=0,1,2", *FUSED)
    assert done.returncode == 0, done.stderr
    assert "holds 2 of these runs (1 MiB each): 1 train in a later group" in done.stdout
    assert all(
        json.loads((m / "summary.json").read_text())["status"] == "completed" for m in members
    )


def test_a_group_size_below_one_is_refused_before_any_job_starts(workdir):
    done, _ = sweep(workdir, "s", *MLP, "seed=0,1", *FUSED, "hydra.launcher.max_members=0")
    assert done.returncode == 2
    assert "hydra.launcher.max_members=0 is not a number of runs: use 1 or more" in done.stderr
    assert not list((workdir / "s").glob("*/metrics.csv"))


def test_members_may_differ_in_epochs_and_leave_after_their_last(workdir):
    """LeNet: its convolutions run as one grouped convolution for all members."""
    lenet = (*SMOKE, "model=lenet", "trainer.checkpoint_every=7")
    done, members = sweep(workdir, "s", *lenet, "trainer.epochs=1,3", *FUSED)
    assert done.returncode == 0, done.stderr
    assert "train as one program (2 runs)" in done.stdout
    assert [len(rows(m)) for m in members] == [1, 3]
    _, alone = sweep(workdir, "alone", *lenet, "trainer.epochs=1,3")
    for job, member in zip(alone, members, strict=True):
        assert_close(job, member, rtol=1e-4)
