"""Data-parallel training: rank shards, the batch split, and real 2-process runs (gloo)."""

from __future__ import annotations

import contextlib
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
from conftest import run_dlrun, run_folders

from dlrun.data.dataset import Split
from dlrun.errors import DlrunError
from dlrun.training.distributed import Shard, per_rank_batch
from dlrun.training.world import World, world_from_env

DDP_RUN = ("dataset=digits", "trainer=smoke", "model=mlp", "trainer.epochs=3")


def split(n: int) -> Split:
    return Split(torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n))


def samples(shard: Shard, batch_size: int, generator=None) -> list[int]:
    batches = shard.batches(batch_size, shuffle=generator is not None, generator=generator)
    return [int(y) for _, targets in batches for y in targets]


def test_training_shares_are_disjoint_equal_and_follow_one_permutation():
    data = split(103)
    taken = []
    for rank in range(4):
        generator = torch.Generator().manual_seed(7)  # each rank draws the same order
        shard = Shard(data, World(rank=rank, size=4), even=True)
        taken.append(samples(shard, batch_size=5, generator=generator))
    assert all(len(t) == 103 // 4 == len(Shard(data, World(0, 4), True)) for t in taken)
    flat = [s for t in taken for s in t]
    assert len(set(flat)) == len(flat)  # no sample twice in an epoch
    order = torch.randperm(103, generator=torch.Generator().manual_seed(7)).tolist()
    assert taken[1] == order[1:100:4]


def test_evaluation_shares_cover_every_sample_once():
    data = split(10)
    shares = [samples(Shard(data, World(rank, 3), even=False), 2) for rank in range(3)]
    assert sorted(s for share in shares for s in share) == list(range(10))
    assert [len(Shard(data, World(rank, 3), even=False)) for rank in range(3)] == [4, 3, 3]


def test_text_cannot_be_sharded():
    from dlrun.data.sequences import Sampling, SequenceSplit

    text = SequenceSplit(torch.arange(100), num_steps=5, sampling=Sampling.random)
    with pytest.raises(DlrunError, match="in one process"):
        Shard(text, World(0, 2), even=True)


def test_the_global_batch_must_divide_among_the_processes():
    assert per_rank_batch(64, World(0, 2)) == 32
    with pytest.raises(DlrunError, match="trainer.batch_size=65.*multiple of 2"):
        per_rank_batch(65, World(0, 2))


def test_world_comes_from_torchruns_environment():
    env = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert world_from_env(env) == World(rank=1, size=4, local_rank=1, local_size=2)
    assert not world_from_env({}).distributed
    with pytest.raises(DlrunError, match="torchrun"):
        world_from_env({"WORLD_SIZE": "two"})


def test_a_sweep_under_torchrun_is_refused(workdir):
    env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}
    result = run_dlrun("-m", *DDP_RUN, "optimizer=sgd,adam", cwd=workdir, process=True, env=env)
    assert result.returncode == 2
    assert "torchrun starts one data-parallel run" in result.stderr
    assert not (workdir / "outputs").exists()


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DLRUN_DATA"}
    env.update({"HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "dlrun", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def metrics(folder: Path) -> list[dict[str, float]]:
    with (folder / "metrics.csv").open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def assert_close(rows: list[dict], expected: list[dict], tolerance: float) -> None:
    assert len(rows) == len(expected)
    for row, other in zip(rows, expected, strict=True):
        for key, value in other.items():
            assert row[key] == pytest.approx(value, rel=tolerance, abs=tolerance), key


def test_two_gloo_processes_train_like_one_process_with_the_same_global_batch(workdir):
    ddp = torchrun(*DDP_RUN, cwd=workdir)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = run_dlrun(*DDP_RUN, cwd=workdir, process=True)
    assert single.returncode == 0, single.stderr[-3000:]

    ddp_folder, single_folder = run_folders(workdir)  # one folder each: rank 1 wrote none
    summary = json.loads((ddp_folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["processes"] == 2
    assert (ddp_folder / "checkpoints" / "last.pt").is_file()
    assert (
        "Data-parallel: 2 processes (gloo), 32 samples per process per step"
        in (ddp_folder / "train.log").read_text()
    )
    # Each global batch is the same 64 samples, split in two; gradients are averaged, so
    # the runs differ only by float rounding (sums are reduced in float64).
    assert_close(metrics(ddp_folder), metrics(single_folder), tolerance=1e-4)
    assert summary["final"]["test_acc"] > 0.5


def descendants(pid: int) -> list[int]:
    """Every process started under `pid` (torchrun's ranks run in sessions of their own)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def mid_epoch_checkpoint(folder: Path) -> dict | None:
    """last.pt if it was taken inside an epoch after the first (None until there is one)."""
    try:
        checkpoint = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return None
    return checkpoint if checkpoint["progress"] and checkpoint["epoch"] >= 1 else None


def test_a_data_parallel_run_killed_mid_epoch_resumes_to_the_same_metrics_dropout_included(
    workdir,
):
    run = (*DDP_RUN[:-1], "model.dropout=[0.5]", "trainer.epochs=4", "trainer.checkpoint_every=1")
    whole = torchrun(*run, "hydra.run.dir=whole", cwd=workdir)
    assert whole.returncode == 0, whole.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "DLRUN_DATA"}
    env.update({"HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "dlrun", *run, "hydra.run.dir=cut"]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:  # frozen while last.pt is looked at: what it holds is what a resume finds
        assert process.poll() is None and time.monotonic() < deadline, "no mid-epoch checkpoint"
        time.sleep(0.02)
        processes = [process.pid, *descendants(process.pid)]
        signal_all(processes, signal.SIGSTOP)
        if (checkpoint := mid_epoch_checkpoint(workdir / "cut")) is not None:
            break
        signal_all(processes, signal.SIGCONT)
    signal_all(processes, signal.SIGKILL)  # torchrun and both ranks, as a node failure would
    process.wait(timeout=60)
    assert len(checkpoint["progress"]["ranks"]) == 2  # each rank's share of the epoch

    resumed = torchrun(*run, "trainer.resume=cut", cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (workdir / "cut" / "metrics.csv").read_bytes() == (
        workdir / "whole" / "metrics.csv"
    ).read_bytes()
    resumes = json.loads((workdir / "cut" / "summary.json").read_text())["resumed_from"]
    assert resumes == [
        {
            "epoch": checkpoint["epoch"],
            "step": checkpoint["step"],
            "batches_into_epoch": checkpoint["progress"]["batches"],
            "at": resumes[0]["at"],
            "changed": {},
        }
    ]


def test_sigterm_to_torchrun_stops_both_ranks_at_one_step_and_rank_0_saves(workdir):
    env = {k: v for k, v in os.environ.items() if k != "DLRUN_DATA"}
    env.update({"HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "dlrun", *DDP_RUN[:-1], "trainer.epochs=1000"]
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while not list(workdir.glob("outputs/*/*/checkpoints/last.pt")):
        assert process.poll() is None and time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)  # what a scheduler sends; torchrun passes it on
    output, _ = process.communicate(timeout=120)

    (folder,) = run_folders(workdir)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted", output[-3000:]
    assert summary["interrupted_at"]["signal"] == "SIGTERM"
    last = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == summary["interrupted_at"]["step"]  # saved at the stop
    assert output.count("Stopped by SIGTERM") == 1  # rank 0 speaks for both
    assert str(folder) in output and "dlrun-rank1" not in output


def test_a_malformed_torchrun_environment_is_one_paragraph(workdir):
    result = run_dlrun(*DDP_RUN, cwd=workdir, process=True, env={"WORLD_SIZE": "two"})
    assert result.returncode == 2
    assert "WORLD_SIZE" in result.stderr and "Traceback" not in result.stderr
