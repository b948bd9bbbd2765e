"""Per-epoch work outside training: what each of a run's callbacks costs, per epoch.

    .venv/bin/python benchmarks/bench_overhead.py                      # weight_decay preset
    .venv/bin/python benchmarks/bench_overhead.py experiment=optimizers +experiment/optimizers=sgd

The run is set up by the recipe as `dlrun ARGS` sets it up, in a scratch folder, and each
callback's hooks are timed (on_fit_end, the wait for the last checkpoint, spread over the
epochs). It prints milliseconds per epoch for every callback, their total, and beside them
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
        for callback in recipe.callbacks:
            _time(callback, spent)
        recipe.train()
        timings = recipe.folder.timings
    epochs = len(timings)
    train = statistics.fmean(row["train_seconds"] for row in timings) * 1e3
    test = statistics.fmean(row["test_seconds"] for row in timings) * 1e3
    print(f"{' '.join(overrides)}: {epochs} epochs")
    print(f"{'callback':22} {'ms per epoch':>12}")
    total = 0.0
    for name, seconds in spent.items():
        per_epoch = sum(seconds) / epochs * 1e3
        total += per_epoch
        print(f"{name:22} {per_epoch:12.2f}")
    print(f"{'all callbacks':22} {total:12.2f}")
    print(f"{'train (baseline)':22} {train:12.2f}")
    print(f"{'test (baseline)':22} {test:12.2f}")
    print(f"overhead / (train + test): {total / (train + test):.2f}")


def _time(callback, spent: dict[str, list[float]]) -> None:
    """Wrap the callback's per-epoch hooks so that each call's seconds are recorded."""
    from dlrun.training.callbacks import Callback

    for hook in ("on_train_epoch_end", "on_epoch_end", "on_fit_end"):
        if getattr(type(callback), hook) is getattr(Callback, hook):
            continue
        original, name = getattr(callback, hook), type(callback).__name__

        def timed(*args, original=original, name=name) -> None:
            start = time.perf_counter()
            original(*args)
            spent[name].append(time.perf_counter() - start)

        setattr(callback, hook, timed)


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
