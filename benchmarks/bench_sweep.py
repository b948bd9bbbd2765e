"""Whole sweeps, one job after another (Hydra's basic launcher) and fused, in one run: what
a sweep costs beyond its training.

    .venv/bin/python benchmarks/bench_sweep.py                 # the three CPU sweeps
    .venv/bin/python benchmarks/bench_sweep.py optimizers      # one of them
    .venv/bin/python benchmarks/bench_sweep.py --gpu           # 16 LeNet seeds on cuda

Each sweep runs as a whole `dlrun -m ...` process, one torch thread, once per launcher, the
basic launcher first; `python -c "import torch"` is timed in the same run, as the baseline.
Printed per sweep and launcher:

  whole command   the process's wall seconds
  training        the train and test seconds of timings.csv: every job's one after
                  another; a fused group's once (every job here is in one group)
  fixed per job   (whole command - training - import torch) / jobs: what composing, job
                  folders, setup, files, figures and the report add to each job
  end of sweep    from the last job's summary.json to the command's end: its figures, the
                  sweep report, report.html, the process's exit
  report.html     how much later than the rest of the sweep report (its CSV files and
                  comparison.png) the page is on disk: what writing it adds; and its size

then the peak memory, and the largest difference between a fused member's metrics.csv and
its job's under the basic launcher (relative to the column's largest value in the job).
`--gpu` times 16 fused seeds of LeNet on cuda against one job alone, the goal being at most
2x.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
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


def import_torch() -> float:
    """The median wall seconds of `python -c "import torch"`, over three runs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], env=env, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    """Training and test seconds: the sum over jobs one after another; a fused group's
    once, the longest of its members' (each member times its own share of the group's
    epochs, all but equal). The sweeps here fuse every job into one group."""
    seconds = [
        sum(r["train_seconds"] + r["test_seconds"] for r in rows(job / "timings.csv"))
        for job in jobs
    ]
    return max(seconds) if fused else sum(seconds)


def last_job_end(jobs: list[Path]) -> float:
    """When the last job wrote its summary.json (time.time()'s clock)."""
    return max((job / "summary.json").stat().st_mtime for job in jobs)


def largest_difference(basic: list[Path], fused: list[Path]) -> tuple[float, str]:
    """The largest difference of a member's metrics.csv value from its job's, relative to
    the largest value of that column in the job: a loss that falls to 1e-6 from 100 has
    float noise far above 1e-6 of itself."""
    worst, where = 0.0, ""
    for alone, member in zip(basic, fused, strict=True):
        mine, theirs = rows(alone / "metrics.csv"), rows(member / "metrics.csv")
        for column in mine[0]:
            scale = max(abs(row[column]) for row in mine) or 1.0
            for a, b in zip(mine, theirs, strict=True):
                if abs(b[column] - a[column]) / scale > worst:
                    worst = abs(b[column] - a[column]) / scale
                    where = f"{alone.name} epoch {int(a['epoch'])} {column}"
    return worst, where


def page_delay(sweep: Path) -> tuple[float, int]:
    """Seconds from the sweep report's last file to report.html, and the page's bytes."""
    page = sweep / "report.html"
    report = [sweep / name for name in ("sweep_summary.csv", "sweep_compare.csv", "comparison.png")]
    done = max(path.stat().st_mtime for path in report if path.is_file())
    return page.stat().st_mtime - done, page.stat().st_size


def jobs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "metrics.csv").is_file())


def compare(name: str, arguments: list[str], tmp: Path, torch_seconds: float) -> None:
    results = {}
    for launcher, extra in (("basic", []), ("fused", FUSED)):
        sweep = tmp / f"{name}_{launcher}"
        wall, memory = command(["-m", *arguments, *extra, f"hydra.sweep.dir={sweep}"], tmp)
        ended = time.time()
        found = jobs(sweep)
        training = trained(found, launcher == "fused")
        fixed = (wall - training - torch_seconds) / len(found)
        page = page_delay(sweep)
        results[launcher] = (
            wall,
            training,
            fixed,
            ended - last_job_end(found),
            memory,
            found,
            page,
        )
    basic, fused = results["basic"], results["fused"]
    jobs_run = len(basic[5])
    print(f"dlrun -m {' '.join(arguments)}: {jobs_run} jobs; import torch {torch_seconds:.2f} s")
    print(f"  {'':16}{'basic':>10}{'fused':>10}  basic / fused")
    for i, row in enumerate(("whole command", "training", "fixed per job", "end of sweep")):
        print(f"  {row:16}{basic[i]:9.2f}s{fused[i]:9.2f}s  {basic[i] / fused[i]:.2f}x")
    print(f"  {'peak memory':16}{basic[4]:7.0f}MiB{fused[4]:7.0f}MiB")
    (delay, size), (fused_delay, _) = basic[6], fused[6]
    print(
        f"  {'report.html':16}{delay:+8.2f}s{fused_delay:+8.2f}s  after the sweep report; "
        f"{size / 2**20:.1f} MiB"
    )
    worst, where = largest_difference(basic[5], fused[5])
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
        torch_seconds = import_torch()
        for name in args.sweeps:
            compare(name, SWEEPS[name], Path(tmp), torch_seconds)


if __name__ == "__main__":
    main()
