"""Whether `debug=overfit` learns its batches for every model of conf/model/, each on its
natural data set (the tutorial preset that uses it), with the preset's own optimizer and
rate and the mode's defaults (3 batches, 100 epochs).

    .venv/bin/python benchmarks/bench_overfit.py            # needs Fashion-MNIST; minutes
    .venv/bin/python benchmarks/bench_overfit.py --only lenet mlp
    .venv/bin/python benchmarks/bench_overfit.py trainer.epochs=1000   # overrides for all

The phone-price presets read a Kaggle CSV that cannot ship: a CSV of the same shape is
written (20 random features, a price range made from them). Run folders go to a scratch
folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import dlrun

SETUPS = {
    "lenet": ["experiment=lenet_fashion"],
    "mlp": ["experiment=dropout_mlp"],
    "softmax_regression": ["model=softmax_regression", "optimizer.lr=0.1"],
    "deep_mlp": ["experiment=vanishing_gradients"],
    "char_rnn": ["experiment=char_lstm"],
    "linear_regression": ["experiment=weight_decay"],
    "poly_regression": ["experiment=under_overfit"],
    "phone_mlp": ["experiment=phone_price"],
    "phone_mlp_deep": ["experiment=phone_price_tuned"],
}


def phone_csv(path: Path, rows: int = 2000) -> Path:
    """A CSV shaped like the phone-price data: 20 numeric columns and price_range 0-3."""
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 1000, size=(rows, 20))
    price = np.digitize(features[:, 13] + rng.normal(0, 50, rows), [250, 500, 750])
    header = ",".join([f"f{i}" for i in range(20)] + ["price_range"])
    lines = [
        ",".join(f"{v:.3f}" for v in row) + f",{p}" for row, p in zip(features, price, strict=True)
    ]
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="models to try")
    parser.add_argument("overrides", nargs="*", help="overrides added to every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlrun-overfit-bench-") as scratch:
        csv = phone_csv(Path(scratch) / "phones.csv")
        for model, overrides in SETUPS.items():
            if args.only and model not in args.only:
                continue
            extra = [f"dataset.path={csv}"] if model.startswith("phone") else []
            started = time.perf_counter()
            run = dlrun.train(
                ["debug=overfit", *overrides, *extra, *args.overrides],
                output_dir=Path(scratch) / model,
            )
            found = run.summary["debug"]
            verdict = "learnt" if found["learnt"] else "NOT learnt"
            seconds = time.perf_counter() - started
            print(f"{model:<20} {verdict:<11} {found['because']} ({seconds:.0f} s)", flush=True)
            for item in found.get("check", []):
                print(f"{'':<20} check {item}", flush=True)


if __name__ == "__main__":
    main()
