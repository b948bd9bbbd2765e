"""Whole sweeps with Hydra's basic launcher against hydra/launcher=fused, in one run.

    .venv/bin/python benchmarks/bench_fused.py                 # the three CPU sweeps
    .venv/bin/python benchmarks/bench_fused.py weight_decay    # one of them
    .venv/bin/python benchmarks/bench_fused.py --gpu           # 16 LeNet seeds on cuda

Each sweep runs as a whole `dlrun -m ...` process, one torch thread, once per launcher,
the basic launcher first. Printed per sweep: the wall times and their ratio, the training
seconds (timings.csv: every job's for the basic launcher; the group's, once, for fused),
the peak memory of the command's process, and the largest difference between a fused
member's metrics.csv and its job's under the basic launcher (relative, over values above
1e-6; a loss of 1e-13 is float noise). `--gpu` times 16 fused seeds of LeNet on cuda
against one job alone, the goal being at most 2x.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEPS = {
    "weight_decay": ["experiment=weight_decay", "seed=range(5)"],
    "optimizers": ["experiment=optimizers", "seed=range(5)"],
    "dropout_mlp": ["experiment=dropout_mlp", "seed=range(8)", "trainer.device=cpu"],
}
GPU = ["experiment=lenet_fashion", "trainer.device=cuda"]
FUSED = ["hydra/launcher=fused"]


def command(arguments: list[str], folder: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of `dlrun ARGUMENTS`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.setdefault("DLRUN_DATA", str(Path(__file__).resolve().parents[1] / "data"))
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "dlrun", *arguments],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"dlrun {' '.join(arguments)} failed:\n{process.stderr.read()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def rows(path: Path) -> list[dict[str, float]]:
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def trained(jobs: list[Path], fused: bool) -> float:
    """Training and test seconds: the sum over jobs, or one group's (every member's are
    the group's wall time)."""
    times = [
        sum(r["train_seconds"] + r["test_seconds"] for r in rows(j / "timings.csv")) for j in jobs
    ]
    return max(times) if fused else sum(times)


def largest_difference(basic: list[Path], fused: list[Path]) -> tuple[float, str]:
    worst, where = 0.0, ""
    for alone, member in zip(basic, fused, strict=True):
        for a, b in zip(rows(alone / "metrics.csv"), rows(member / "metrics.csv"), strict=True):
            for column, value in a.items():
                if abs(value) > 1e-6 and abs(b[column] - value) / abs(value) > worst:
                    worst = abs(b[column] - value) / abs(value)
                    where = f"{alone.name} epoch {int(a['epoch'])} {column}"
    return worst, where


def jobs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "metrics.csv").is_file())


def compare(name: str, arguments: list[str], tmp: Path) -> None:
    results = {}
    for launcher, extra in (("basic", []), ("fused", FUSED)):
        sweep = tmp / f"{name}_{launcher}"
        wall, memory = command(["-m", *arguments, *extra, f"hydra.sweep.dir={sweep}"], tmp)
        results[launcher] = (wall, memory, jobs(sweep))
    (b_wall, b_mem, b_jobs), (f_wall, f_mem, f_jobs) = results["basic"], results["fused"]
    worst, where = largest_difference(b_jobs, f_jobs)
    print(f"dlrun -m {' '.join(arguments)}: {len(b_jobs)} jobs")
    print(
        f"  whole command   basic {b_wall:7.2f} s   fused {f_wall:7.2f} s   {b_wall / f_wall:.2f}x"
    )
    b_train, f_train = trained(b_jobs, False), trained(f_jobs, True)
    print(f"  training        basic {b_train:7.2f} s   fused {f_train:7.2f} s   ", end="")
    print(f"{b_train / f_train:.2f}x")
    print(f"  peak memory     basic {b_mem:7.0f} MiB fused {f_mem:7.0f} MiB")
    print(f"  largest difference of a member from its job alone: {worst:.2e} ({where})")


def gpu(tmp: Path) -> None:
    one, one_mem = command([*GPU, f"hydra.run.dir={tmp / 'one'}"], tmp)
    sweep = tmp / "gpu_fused"
    fused, fused_mem = command(
        ["-m", *GPU, "seed=range(16)", *FUSED, f"hydra.sweep.dir={sweep}"], tmp
    )
    f_train = trained(jobs(sweep), True)
    o_train = trained([tmp / "one"], False)
    print(f"16 seeds of {' '.join(GPU)}, fused, against one job alone")
    print(f"  whole command   one {one:7.2f} s   16 fused {fused:7.2f} s   ", end="")
    print(f"{fused / one:.2f}x (goal <= 2)")
    print(f"  training        one {o_train:7.2f} s   16 fused {f_train:7.2f} s   ", end="")
    print(f"{f_train / o_train:.2f}x")
    print(f"  peak host memory one {one_mem:.0f} MiB, fused {fused_mem:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="*", choices=[*SWEEPS, []], default=list(SWEEPS))
    parser.add_argument("--gpu", action="store_true", help="16 LeNet seeds on cuda instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.gpu:
            gpu(Path(tmp))
            return
        for name in args.sweeps:
            compare(name, SWEEPS[name], Path(tmp))


if __name__ == "__main__":
    main()
