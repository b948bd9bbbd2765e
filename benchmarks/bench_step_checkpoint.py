"""What a step checkpoint costs: LeNet and the character LSTM, against their own steps.

    .venv/bin/python benchmarks/bench_step_checkpoint.py

Each model trains twice in one process (after a one-epoch warm-up), set up by the recipe as
`dlrun ARGS` sets it up: without step checkpoints (trainer.checkpoint_every=0) and with one
every 10 steps. It prints, per model:
- the time a step checkpoint takes on the loop's thread (gathering the epoch's progress and
  serializing the state; the write and fsync run on a thread of their own), and the write;
- the mean training step of the run without step checkpoints, the baseline;
- the extra training time per checkpoint of the run with them (a difference of two noisy
  totals: read it beside the direct timing).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

MODELS = {
    "lenet": ["dataset=digits", "model=lenet", "trainer.batch_size=32", "trainer.epochs=4"],
    "char_lstm": ["experiment=char_lstm", "trainer.epochs=12"],
}
COMMON = ["trainer.device=cpu", "trainer.progress=false", "trainer.log_every_n_steps=0"]
EVERY = 10


def train(overrides: list[str]) -> dict[str, float]:
    """One run; the seconds its step checkpoints took, and its training time and steps."""
    from dlrun.config.composition import compose
    from dlrun.recipe.recipe import Recipe

    cfg = compose([*overrides, *COMMON])
    with tempfile.TemporaryDirectory() as scratch:
        recipe = Recipe(cfg, scratch)
        recipe.setup()
        checkpoints = recipe.checkpoints
        on_loop: list[float] = []
        written: list[float] = []
        save, run_write = checkpoints.save, checkpoints.writer._run

        def timed_save(state) -> None:
            start = time.perf_counter()
            save(state)
            on_loop.append(time.perf_counter() - start)

        def timed_write(*args) -> None:
            start = time.perf_counter()
            run_write(*args)
            written.append(time.perf_counter() - start)

        checkpoints.save = timed_save  # the loop calls the recipe's own Checkpoints
        checkpoints.writer._run = timed_write
        recipe.train()
        train_seconds = sum(row["train_seconds"] for row in recipe.folder.timings)
        steps = recipe.state.step
    return {
        "step_checkpoints": len(on_loop),
        "loop_ms": statistics.fmean(on_loop) * 1e3 if on_loop else 0.0,
        "write_ms": statistics.fmean(written) * 1e3 if written else 0.0,
        "train_seconds": train_seconds,
        "steps": steps,
    }


def main(names: list[str]) -> None:
    for name in names:
        base = MODELS[name]
        train([*base, "trainer.epochs=1"])  # warm-up: first steps, caches, allocator
        without = train([*base, "trainer.checkpoint_every=0"])
        with_them = train([*base, f"trainer.checkpoint_every={EVERY}"])
        step_ms = without["train_seconds"] / without["steps"] * 1e3
        extra = (with_them["train_seconds"] - without["train_seconds"]) * 1e3
        per_checkpoint = extra / max(with_them["step_checkpoints"], 1)
        print(f"{name}: {with_them['steps']} steps, {with_them['step_checkpoints']} checkpoints")
        print(f"  step checkpoint on the loop thread {with_them['loop_ms']:8.2f} ms")
        print(f"  its write and fsync (own thread)   {with_them['write_ms']:8.2f} ms")
        print(f"  training step (baseline)           {step_ms:8.2f} ms")
        print(f"  extra training time per checkpoint {per_checkpoint:8.2f} ms")
        print(f"  loop-thread cost / step: {with_them['loop_ms'] / step_ms:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODELS))
