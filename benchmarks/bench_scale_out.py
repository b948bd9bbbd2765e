"""Time a 4-job sweep one job at a time against joblib, and a run in 1 process against 2.

    python benchmarks/bench_scale_out.py [--reps 1] [--quick]

sweep  `dlrun -m optimizer=sgd,momentum,adam,adagrad ...` with Hydra's basic launcher (one
       job after the other, each with torch's default threads) and with
       `hydra/launcher=joblib hydra.launcher.n_jobs=2` (two jobs side by side, each with its
       share of the cores): the whole command's wall time, for smoke jobs (digits, 2 epochs)
       and for longer ones (LeNet on digits, 20 epochs).
ddp    `dlrun experiment=lenet_fashion trainer.epochs=2` in one process against
       `torchrun --nproc_per_node=2` (gloo): train seconds per epoch (timings.csv), the final
       test accuracy, and the whole command's wall time. Real Fashion-MNIST when it is in
       data/ (or $DLRUN_DATA), else digits.

Each figure is the median of --reps runs. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPTIMIZERS = "optimizer=sgd,momentum,adam,adagrad"
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
SWEEPS = {
    "smoke jobs (mlp, digits, 2 epochs)": ["dataset=digits", "trainer=smoke", "model=mlp"],
    "longer jobs (lenet, digits, 20 epochs)": [
        "dataset=digits",
        "trainer=smoke",
        "trainer.epochs=20",
        "trainer.max_train_samples=null",
    ],
}


def wall(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds


def fashion_mnist_args() -> list[str]:
    root = Path(os.environ.get("DLRUN_DATA", REPO / "data"))
    if (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        return ["experiment=lenet_fashion", f"dataset.root={root}", "trainer.device=cpu"]
    print("Fashion-MNIST not found in data/: the data-parallel figures use digits.")
    return ["dataset=digits", "trainer.max_train_samples=null", "trainer.device=cpu"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def bench_sweeps(reps: int, env: dict[str, str]) -> None:
    dlrun = [sys.executable, "-m", "dlrun", "-m", OPTIMIZERS, "hydra.sweep.dir=sweep"]
    print("\n4-job sweep, whole command (s)      sequential   joblib x2   sequential/joblib")
    for title, args in SWEEPS.items():
        times: dict[str, list[float]] = {"basic": [], "joblib": []}
        for _ in range(reps):
            for launcher, extra in (("basic", []), ("joblib", JOBLIB)):
                with tempfile.TemporaryDirectory() as folder:
                    times[launcher].append(wall(dlrun + args + extra, Path(folder), env))
        basic, joblib = median(times["basic"]), median(times["joblib"])
        print(f"{title:38s} {basic:9.1f}   {joblib:9.1f}   {basic / joblib:9.2f}x")


def run_figures(folder: Path) -> tuple[float, float]:
    (run,) = [p.parent for p in folder.glob("outputs/*/*/summary.json")]
    with (run / "timings.csv").open() as handle:
        epochs = [float(row["train_seconds"]) for row in csv.DictReader(handle)]
    summary = json.loads((run / "summary.json").read_text())
    return median(epochs), summary["final"]["test_acc"]


def bench_ddp(reps: int, env: dict[str, str], epochs: int) -> None:
    args = [*fashion_mnist_args(), f"trainer.epochs={epochs}", "trainer.progress=false"]
    single = [sys.executable, "-m", "dlrun", *args]
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    ddp += ["-m", "dlrun", *args]
    print(f"\nData-parallel, {epochs} epochs    train s/epoch   test acc   whole command (s)")
    for title, command in (("1 process", single), ("2 processes (gloo)", ddp)):
        epoch_times, accs, walls = [], [], []
        for _ in range(reps):
            with tempfile.TemporaryDirectory() as folder:
                walls.append(wall(command, Path(folder), env))
                seconds, acc = run_figures(Path(folder))
                epoch_times.append(seconds)
                accs.append(acc)
        print(
            f"{title:28s} {median(epoch_times):10.2f}   {median(accs):8.4f}   {median(walls):10.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the sweeps and 1 DDP epoch")
    options = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DLRUN_DATA")}
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    bench_sweeps(options.reps, env)
    bench_ddp(options.reps, env, epochs=1 if options.quick else 2)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
