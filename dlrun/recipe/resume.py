"""What a resume may change, key by key, and how the changes reach the restored run.

A resumed run continues the checkpoint's training, so the keys that decide what is trained
(model, data, optimizer kind, batch size, seed, regularizers, initialisation, scheduler...)
must stay as they were. The keys below say how long to train, how big a step to take, what
to record and where to run: a resume applies them, lists them in the log and records them in
summary.json. Any other difference is refused, with both values, before anything loads.
"""

from __future__ import annotations

from typing import Any

from dlrun.errors import DlrunError
from dlrun.outputs.run_folder import STEPS_CSV

# Key, or prefix ending in ".", and what a resume does with a new value.
CHANGEABLE = {
    "trainer.epochs": "trains on to the new number of epochs",
    "optimizer.lr": "written into the optimizer's parameter groups; a scheduler goes on from it",
    "optimizer.weight_decay": "written into the weights' parameter group",
    "regularizer.l2.strength": "written into the weights' parameter group (weight decay)",
    "trainer.checkpoint_every": "how often checkpoints are taken from now on",
    "trainer.device": "where training goes on",
    "trainer.num_threads": "CPU threads from now on",
    "trainer.num_workers": "DataLoader worker processes",
    "trainer.pin_memory": "pinned host memory for the DataLoader",
    "trainer.log_every_n_steps": f"{STEPS_CSV} rows from now on",
    "trainer.progress": "the progress bar",
    "trainer.resume": "the run continued",
    "logger.": "loggers from now on",
    "diagnostics.": "layer norms and the fit verdict from now on",
    "report.": "the sweep report",
    "reference": "the reference figures compared at the end",
    "optimized_metric": "what a search is told at the end",
}
ABSENT = "(not set)"


def changes(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Every key whose value differs: {key: (the checkpoint's value, this run's)}."""
    old, new = _flatten(saved), _flatten(current)
    # A key that is null (lr_find, debug) was not set: a checkpoint of an older dlrun lacks it.
    old = {k: v for k, v in old.items() if v is not None or k in new}
    new = {k: v for k, v in new.items() if v is not None or k in old}
    return {
        key: (old.get(key, ABSENT), new.get(key, ABSENT))
        for key in sorted(old.keys() | new.keys())
        if old.get(key, ABSENT) != new.get(key, ABSENT)
    }


def reason(key: str) -> str | None:
    """What a resume does with a new value of `key`; None if it may not change it."""
    for changeable, why in CHANGEABLE.items():
        if key == changeable or (changeable.endswith(".") and key.startswith(changeable)):
            return why
    return None


def check(differences: dict[str, tuple[Any, Any]], resume: str, overrides: list[str]) -> None:
    """Refuse, in one paragraph, every difference a resume cannot apply."""
    refused = {k: v for k, v in differences.items() if reason(k) is None}
    if not refused:
        return
    listed = "; ".join(f"{k}: {old} in the run, {new} now" for k, (old, new) in refused.items())
    keys = ", ".join(k + "*" if k.endswith(".") else k for k in CHANGEABLE)
    given = f" (the run's own overrides: {' '.join(overrides)})" if overrides else ""
    raise DlrunError(
        f"trainer.resume={resume} continues a run whose settings differ from this command's, "
        f"and a resume cannot change them: {listed}. A resume may change only {keys}. Give "
        f"the run's own values{given}, or start a new run without trainer.resume."
    )


def applied(differences: dict[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    """The changes a resume applies, as summary.json records them: {key: [old, new]}."""
    return {k: [old, new] for k, (old, new) in differences.items() if k != "trainer.resume"}


def apply_to_optimizer(optimizer, scheduler, lr: float | None, weight_decay: float | None):
    """Write a new lr or weight decay over the values the checkpoint's optimizer restored."""
    from dlrun.optim.optimizers import set_weight_decay

    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
            if "initial_lr" in group:  # set by a scheduler: where its schedule starts
                group["initial_lr"] = lr
        if scheduler is not None and hasattr(scheduler.scheduler, "base_lrs"):
            scheduler.scheduler.base_lrs = [lr] * len(optimizer.param_groups)
    if weight_decay is not None:
        set_weight_decay(optimizer, weight_decay)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
