"""What a sweep job costs beyond its training, in a sequential sweep (Hydra's basic launcher).

    .venv/bin/python benchmarks/bench_sweep.py                       # experiment=optimizers
    .venv/bin/python benchmarks/bench_sweep.py --seeds 5             # ... 'seed=range(5)'
    .venv/bin/python benchmarks/bench_sweep.py -- experiment=init_methods trainer.epochs=1

The sweep runs as a whole `dlrun -m ARGS` process, one thread for torch. A job's cost is
the time from its start to the next job's start (each job folder's .hydra/overrides.yaml is
written as the job starts); its overhead is that cost less its own train and test seconds
(timings.csv): what Hydra, the recipe's setup and finish, the files and the figures add to
each job. The process's start, paid once, is not in it; the whole wall time is printed too.
The first job also pays what a process pays once (torch's compiler modules, imported by the
first optimizer step; the data set's cache), so it is shown apart from the later jobs.
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

DEFAULT = ["experiment=optimizers"]


def sweep(arguments: list[str], folder: Path) -> tuple[float, list[tuple[float, float]]]:
    """The command's wall seconds, and per job (its start time, its train + test seconds)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "dlrun", "-m", *arguments, f"hydra.sweep.dir={folder}"]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    jobs = []
    for overrides in folder.glob("*/.hydra/overrides.yaml"):
        with (overrides.parents[1] / "timings.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        trained = sum(float(r["train_seconds"]) + float(r["test_seconds"]) for r in rows)
        jobs.append((overrides.stat().st_mtime, trained))
    return wall, sorted(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds per configuration")
    parser.add_argument("overrides", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    overrides = list(args.overrides)
    if args.seeds > 1:
        overrides.append(f"seed=range({args.seeds})")
    with tempfile.TemporaryDirectory() as tmp:
        wall, jobs = sweep(overrides, Path(tmp))
    costs = [later[0] - job[0] for job, later in zip(jobs, jobs[1:], strict=False)]
    overheads = [cost - job[1] for cost, job in zip(costs, jobs, strict=False)]
    trained = [job[1] for job in jobs]
    print(f"dlrun -m {' '.join(overrides)}: {len(jobs)} jobs")
    print(f"  whole sweep          {wall:8.2f} s wall, process start included")
    print(f"  training, all jobs   {sum(trained):8.2f} s (mean {statistics.fmean(trained):.3f})")
    print(f"  per job, start to next start         {statistics.fmean(costs):7.3f} s")
    print(f"  overhead beyond training, first job  {overheads[0]:7.3f} s")
    later = overheads[1:] or overheads
    print(
        f"  overhead beyond training, later jobs {statistics.fmean(later):7.3f} s mean, "
        f"{statistics.median(later):.3f} s median"
    )


if __name__ == "__main__":
    main()
