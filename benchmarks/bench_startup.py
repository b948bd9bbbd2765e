"""How fast the command answers, against `python -c "import torch"` timed in the same run.

    .venv/bin/python benchmarks/bench_startup.py            # median of 5 of each
    .venv/bin/python benchmarks/bench_startup.py --reps 3

Every figure is a whole process, started as a user would start it, one thread for torch:

- import torch          the floor any torch program pays
- dlrun --help          the help
- dlrun --cfg job       the composed config, printed
- config error          `dlrun trainer.epoch=3` (a misspelt key)
- smoke run             `dlrun dataset=digits model=mlp trainer=smoke`
- plain script          benchmarks/plain_smoke.py: the same work in plain PyTorch

It prints each median in seconds and its ratio to `import torch`, and smoke / plain.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMOKE = ["dataset=digits", "model=mlp", "trainer=smoke"]


def commands(scratch: Path) -> dict[str, list[str]]:
    dlrun = [sys.executable, "-m", "dlrun"]
    return {
        "import torch": [sys.executable, "-c", "import torch"],
        "dlrun --help": [*dlrun, "--help"],
        "dlrun --cfg job": [*dlrun, "--cfg", "job"],
        "config error": [*dlrun, "trainer.epoch=3"],
        "smoke run": [*dlrun, *SMOKE, f"hydra.run.dir={scratch}/smoke"],
        "plain script": [sys.executable, str(HERE / "plain_smoke.py"), str(scratch / "plain")],
    }


def seconds(command: list[str], cwd: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        runs = commands(scratch)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for command in runs.values():  # one warm-up of each: the file cache
            seconds(command, scratch)
        for _ in range(args.reps):  # interleaved, so that drift hits every figure alike
            for name, command in runs.items():
                times[name].append(seconds(command, scratch))
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["import torch"]
    print(f"median of {args.reps}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'':18} {'seconds':>8} {'x import torch':>15}")
    for name, value in medians.items():
        print(f"{name:18} {value:8.2f} {value / floor:15.2f}")
    print(f"smoke run / plain script: {medians['smoke run'] / medians['plain script']:.2f}")


if __name__ == "__main__":
    main()
