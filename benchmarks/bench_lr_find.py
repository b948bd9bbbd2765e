"""What the learning-rate finder suggests, and how 3 epochs at its rate compare with the
tutorial's rate, trained in the same run.

    .venv/bin/python benchmarks/bench_lr_find.py               # real Fashion-MNIST, minutes
    .venv/bin/python benchmarks/bench_lr_find.py --only cubic  # the five optimizers
    .venv/bin/python benchmarks/bench_lr_find.py --steps 1000  # a longer range test

Setups: LeNet (SGD, tutorial lr 0.9) and the dropout MLP (SGD, 0.5) on Fashion-MNIST, and the
cubic fit of experiment=optimizers with each of its five optimizers (tutorial lr 0.01 each;
Adam also at 0.001). For each it runs `dlrun.lr_find`, then trains the setup for 3 epochs at
the suggested rate and at the tutorial's, seed 0, and prints the final test metrics side by
side. Run folders go to a scratch folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
from pathlib import Path

import dlrun

EPOCHS = ("trainer.epochs=3",)
SETUPS: dict[str, tuple[list[str], list[float]]] = {
    "lenet": (["experiment=lenet_fashion"], [0.9]),
    "dropout_mlp": (["experiment=dropout_mlp"], [0.5]),
    **{
        f"cubic_{name}": (
            ["experiment=optimizers", f"+experiment/optimizers={name}"],
            [0.01, 0.001] if name == "adam" else [0.01],
        )
        for name in ("sgd", "momentum", "adagrad", "rmsprop", "adam")
    },
}


def final(run: dlrun.api.Run) -> str:
    last = run.summary.get("final") or {}
    shown = {k: v for k, v in last.items() if k in ("test_acc", "test_loss")}
    return ", ".join(f"{k} {v:.4f}" for k, v in shown.items()) or run.summary.get("status", "?")


def measure(
    name: str, overrides: list[str], rates: list[float], scratch: Path, steps: int
) -> list[str]:
    finder = [*overrides, f"lr_find.steps={steps}"]
    found = dlrun.lr_find(finder, output_dir=scratch / f"{name}_find").summary["lr_find"]
    lines = [f"{name}: suggested {_rate(found['suggested_lr'])} ({found['reason']})"]
    tried = ([found["suggested_lr"]] if found["suggested_lr"] else []) + rates
    for lr in tried:
        label = "suggested" if lr == found["suggested_lr"] else "tutorial"
        run = dlrun.train(
            [*overrides, *EPOCHS, f"optimizer.lr={lr:.2g}"], output_dir=scratch / f"{name}_{lr:.2g}"
        )
        lines.append(f"  3 epochs at {label} lr {lr:.2g}: {final(run)}")
    return lines


def _rate(lr: float | None) -> str:
    return "nothing" if lr is None or math.isnan(lr) else f"{lr:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="setups whose name starts with these")
    parser.add_argument("--steps", type=int, default=100, help="the range test's steps")
    args = parser.parse_args()
    logging.getLogger("dlrun").setLevel(logging.WARNING)
    chosen = {
        name: setup
        for name, setup in SETUPS.items()
        if not args.only or any(name.startswith(prefix) for prefix in args.only)
    }
    with tempfile.TemporaryDirectory(prefix="dlrun-lr-bench-") as scratch:
        for name, (overrides, rates) in chosen.items():
            for line in measure(name, overrides, rates, Path(scratch), args.steps):
                print(line, flush=True)


if __name__ == "__main__":
    main()
