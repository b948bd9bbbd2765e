"""`dlrun-lr-find`: the learning-rate range test, and the rate it suggests.

    dlrun-lr-find model=lenet optimizer=sgd          # lr_find.csv, lr_find.png, summary.json
    dlrun-lr-find -m optimizer=sgd,adam              # one finder per job

The run is set up as a training run is (data, model, initialisation, optimizer, its
regularizers), then training/lr_range.py steps through the rates and
diagnostics/lr_suggestion.py reads the curve. A scheduler is set aside: the finder sets the
rate itself. The printed command trains with the suggestion.
"""

from __future__ import annotations

import logging
import math
import shlex
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlrun.diagnostics.lr_suggestion import Suggestion, suggest
from dlrun.errors import DlrunError
from dlrun.outputs.lock import FolderLock
from dlrun.outputs.run_folder import LR_FIND, LR_FIND_CSV, LR_FIND_PNG, RunFolder, read_overrides
from dlrun.recipe.recipe import Recipe
from dlrun.recipe.summary import Summary
from dlrun.training.lr_range import RangeTest, learning_rates, range_test
from dlrun.training.options import RunHooks
from dlrun.training.steps import ModelSteps

log = logging.getLogger("dlrun")

# Overrides that the printed training command leaves out besides the finder's own: the rate.
NOT_FOR_TRAINING = ("optimizer.lr", "trainer.resume")


def find(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """Run the range test in `output_dir`; its summary, with the suggestion under `lr_find`."""
    if cfg.trainer.resume:
        raise DlrunError(
            f"dlrun-lr-find starts from a fresh model, so trainer.resume={cfg.trainer.resume} "
            f"has no meaning here: leave it out."
        )
    with FolderLock(output_dir):
        recipe = Recipe(cfg, output_dir)
        recipe.setup_runtime()
        recipe.setup_data()
        recipe.setup_state()
        folder = RunFolder(output_dir)
        summary = Summary(cfg, recipe.task, recipe.monitor, recipe.device, recipe.started)
        summary.tool = {LR_FIND: {**dict(cfg.lr_find), "suggested_lr": None}}
        folder.write_summary(summary.build(folder, recipe.state, "running"))
        test = _test(recipe)
        baseline = recipe.task.baseline_loss(recipe.train_targets)
        found = beyond_baseline(suggest(test.lrs, test.losses), baseline, cfg.lr_find.steps)
        command = training_command(read_overrides(output_dir), found.lr)
        rows = _rows(test, found)
        title = f"{cfg.model.name} on {cfg.dataset.name}, {cfg.optimizer.name}: range test"
        folder.write_lr_find(rows, title, found.lr)
        summary.tool[LR_FIND].update(_outcome(test, found, command))
        result = summary.build(folder, recipe.state, "completed")
        folder.write_summary(result)
    _log_outcome(found, test, command, folder)
    return result


def _test(recipe: Recipe) -> RangeTest:
    cfg, state = recipe.cfg, recipe.state
    if state.scheduler is not None:
        log.info(
            "scheduler=%s set aside: the finder sets the learning rate itself", cfg.scheduler.name
        )
    lrs = learning_rates(cfg.lr_find.min_lr, cfg.lr_find.max_lr, cfg.lr_find.steps)
    log.info(
        "Range test: %d steps, lr %.2g to %.2g; it stops when the smoothed loss passes %gx "
        "its best",
        len(lrs),
        lrs[0],
        lrs[-1],
        cfg.lr_find.diverge,
    )
    options = recipe.loop_options(hooks=RunHooks())
    steps = ModelSteps(state, recipe.train_split, recipe.test_split, recipe.task, options)
    return range_test(steps, lrs, cfg.lr_find.diverge)


# A fall that ends above this share of the baseline loss (a model that ignores its inputs)
# only took the outputs to the targets' frequencies or mean: nothing was learnt from inputs.
LEARNT_SHARE = 0.97


def beyond_baseline(found: Suggestion, baseline: float | None, steps: int) -> Suggestion:
    """The suggestion, unless the loss never got below what ignoring the inputs gives: a
    model on a long plateau (sigmoid LeNet) first falls to that level, a fall that says
    nothing about the rate at which it learns."""
    finite = [value for value in found.smoothed if math.isfinite(value)]
    if found.lr is None or not baseline or not finite or min(finite) < LEARNT_SHARE * baseline:
        return found
    reason = (
        f"the loss fell only to {min(finite):.3g}, no lower than a model that ignores its "
        f"inputs ({baseline:.3g}): in {steps} steps it learnt nothing from them, so the fall "
        f"says nothing about a rate to train at; a longer test (lr_find.steps={10 * steps}) "
        f"gives the model time to leave its plateau"
    )
    return Suggestion(None, None, reason, found.smoothed)


def _rows(test: RangeTest, found: Suggestion) -> list[dict[str, Any]]:
    """lr_find.csv: each step's rate, loss, the smoothed loss the suggestion read."""
    steps = zip(test.lrs, test.losses, found.smoothed, strict=True)
    return [
        {"step": i + 1, "lr": lr, "loss": loss, "smoothed": value}
        for i, (lr, loss, value) in enumerate(steps)
    ]


def _outcome(test: RangeTest, found: Suggestion, command: str | None) -> dict[str, Any]:
    return {
        "suggested_lr": found.lr,
        "reason": found.reason,
        "command": command,
        "steps_run": len(test.lrs),
        "stopped": test.stopped,
    }


def training_command(overrides: list[str], lr: float | None) -> str | None:
    """`dlrun ...` with this job's overrides and the suggested rate; None without one."""
    if lr is None:
        return None
    keys = [o.lstrip("+~").split("=")[0] for o in overrides]
    kept = [
        o
        for o, key in zip(overrides, keys, strict=True)
        if key.split(".")[0] != LR_FIND and key not in NOT_FOR_TRAINING
    ]
    return shlex.join(["dlrun", *kept, f"optimizer.lr={lr:.2g}"])


def _log_outcome(
    found: Suggestion, test: RangeTest, command: str | None, folder: RunFolder
) -> None:
    log.info("The test stopped after %d steps: %s", len(test.lrs), test.stopped)
    if found.lr is None:
        log.info("No learning rate suggested: %s", found.reason)
    else:
        log.info("Suggested learning rate: %.2g (%s)", found.lr, found.reason)
        log.info("Train with it: %s", command)
    log.info("Curve: %s, %s in %s", LR_FIND_PNG, LR_FIND_CSV, folder.path)
