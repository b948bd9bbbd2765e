"""Per-epoch work outside training: what each part of a run's epoch end costs, per epoch.

    .venv/bin/python benchmarks/bench_overhead.py                      # weight_decay preset
    .venv/bin/python benchmarks/bench_overhead.py experiment=optimizers +experiment/optimizers=sgd

The run is set up by the recipe as `dlrun ARGS` sets it up, in a scratch folder, and each
part of its epoch end (recipe/epoch_end.py) is timed (the wait for the last checkpoint spread
over the epochs). It prints milliseconds per epoch for every part, their total, and beside them
the epoch's own train and test seconds from timings.csv (the baseline this overhead is
measured against, in the same run).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import defaultdict

DEFAULT = ["experiment=weight_decay", "trainer.progress=false"]


def main(overrides: list[str]) -> None:
    from dlrun.config.composition import compose
    from dlrun.recipe.recipe import Recipe

    cfg = compose(overrides)
    with tempfile.TemporaryDirectory() as scratch:
        recipe = Recipe(cfg, scratch)
        recipe.setup()
        spent: dict[str, list[float]] = defaultdict(list)
        for name, owner, method in _parts(recipe.epoch_end):
            _time(name, owner, method, spent)
        recipe.train()
        timings = recipe.folder.timings
    epochs = len(timings)
    train = statistics.fmean(row["train_seconds"] for row in timings) * 1e3
    test = statistics.fmean(row["test_seconds"] for row in timings) * 1e3
    print(f"{' '.join(overrides)}: {epochs} epochs")
    print(f"{'part':22} {'ms per epoch':>12}")
    total = 0.0
    for name, seconds in spent.items():
        per_epoch = sum(seconds) / epochs * 1e3
        total += per_epoch
        print(f"{name:22} {per_epoch:12.2f}")
    print(f"{'all parts':22} {total:12.2f}")
    print(f"{'train (baseline)':22} {train:12.2f}")
    print(f"{'test (baseline)':22} {test:12.2f}")
    print(f"overhead / (train + test): {total / (train + test):.2f}")


def _parts(end) -> list[tuple[str, object, str]]:
    """(name, object, method) of each part the epoch end calls."""
    parts = [
        ("rows", end.folder, "add_epoch"),
        ("checkpoint", end.checkpoints, "save_epoch"),
        ("checkpoint wait", end.checkpoints, "wait"),
    ]
    if end.early_stopping is not None:
        parts.append(("early stopping", end.early_stopping, "after_epoch"))
    if end.norms is not None:
        parts.append(("layer norms", end.norms, "after_training"))
    shown = end.shown
    if shown is not None:
        parts += [
            ("trackers", shown.trackers, "log_epoch"),
            ("summary.json", shown, "write_summary"),
            ("plots", shown.curves, "update"),
            ("log line", shown.line, "log"),
        ]
        if shown.generation is not None:
            parts.append(("generated text", shown.generation, "after_epoch"))
    return parts


def _time(name: str, owner: object, method: str, spent: dict[str, list[float]]) -> None:
    """Wrap the part's method so that each call's seconds are recorded."""
    original = getattr(owner, method)

    def timed(*args):
        start = time.perf_counter()
        try:
            return original(*args)
        finally:
            spent[name].append(time.perf_counter() - start)

    setattr(owner, method, timed)


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
