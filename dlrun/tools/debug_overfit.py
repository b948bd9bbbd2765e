"""`debug=overfit`: train on the same k batches (debug.batches) again and again and score
the model on those very samples in eval mode. A model that cannot learn a few batches by
heart has a bug, or a learning rate, loss or label problem, before it has any data problem.

What works against memorising is said in the log: early stopping is set aside (it would
stop on a test split that is now the training samples); dropout, weight decay, L1/L2 and
clipping are kept and named; shuffling keeps the same samples, in a new order each epoch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

from dlrun.config.options.tools import DebugConfig
from dlrun.diagnostics.verdict import memorised
from dlrun.outputs.lock import FolderLock
from dlrun.outputs.run_folder import DEBUG
from dlrun.recipe.recipe import Recipe
from dlrun.tools.debug import limit_batches, tool_entry
from dlrun.training.state import TrainState

log = logging.getLogger("dlrun")


@dataclass
class OnceLearnt:
    """The stop rule of debug=overfit: training ends at the first epoch whose scores on
    the batches meet the task's criterion."""

    task: str
    criteria: DebugConfig
    baseline_loss: float | None

    def verdict(self, metrics: dict[str, float]) -> dict[str, Any]:
        return memorised(metrics, self.task, self.criteria, self.baseline_loss)

    def after_epoch(self, state: TrainState, metrics: dict[str, float]) -> str | None:
        verdict = self.verdict(metrics)
        return f"the batches are learnt ({verdict['because']})" if verdict["learnt"] else None


class OverfitRecipe(Recipe):
    def setup_data(self) -> None:
        super().setup_data()
        self.test_split = self.train_split  # scored on the very batches it trains on
        self.sizes = (self.sizes[0], self.sizes[0])

    def setup_state(self) -> None:
        super().setup_state()
        self.initial = {n: p.detach().clone() for n, p in self.state.model.named_parameters()}

    def setup_outputs(self) -> None:
        super().setup_outputs()
        baseline = self.task.baseline_loss(self.train_targets)
        self.learnt = OnceLearnt(self.task.name, self.cfg.debug, baseline)
        self.epoch_end.stopping = self.learnt

    def finish(self) -> dict[str, Any]:
        """The verdict, and what to check when the model did not learn the batches."""
        verdict = self.learnt.verdict(self.folder.metrics[-1])
        if not verdict["learnt"]:
            verdict["check"] = self._what_to_check()
        self.tool[DEBUG].update(verdict)
        return super().finish()

    def _what_to_check(self) -> list[str]:
        task = self.task
        frozen = [
            n for n, p in self.state.model.named_parameters() if _unchanged(p, self.initial[n])
        ]
        pace, rate = _pace([row["train_loss"] for row in self.folder.metrics])
        more = f", or trainer.epochs={self.trainer.epochs} too few" if rate == "low" else ""
        return [
            f"the learning rate: {pace}, so optimizer.lr={self.cfg.optimizer.lr} may be too "
            f"{rate}{more} (dlrun-lr-find suggests a rate)",
            f"the loss: trainer.loss={_value(self.trainer.loss)} gives {_value(task.loss_name)} "
            f"for {task.name}; it must suit the targets",
            f"the labels: {_labels(self.train_targets, task.name)}",
            "a frozen layer: "
            + (f"{', '.join(frozen)} never changed" if frozen else "every parameter changed"),
        ]


def _pace(losses: list[float]) -> tuple[str, str]:
    """How the training loss moved, and whether that points to a rate too low or too high:
    it rose, it fell and then climbed well back above its lowest, or it fell too little."""
    first, last = losses[0], losses[-1]
    lowest = min(losses)
    if last > first:
        return f"the training loss rose from {first:.4g} to {last:.4g}", "high"
    if last > 1.5 * lowest and first - lowest > 0.1 * first:
        at = losses.index(lowest) + 1
        climbed = f"fell to {lowest:.4g} (epoch {at}), then climbed back to {last:.4g}"
        return f"the training loss {climbed}", "high"
    if not last < 0.9 * first:
        return f"the training loss hardly fell ({first:.4g} to {last:.4g})", "low"
    return f"the training loss fell ({first:.4g} to {last:.4g}), not far enough", "low"


def _value(option: Any) -> str:
    return str(getattr(option, "value", option))


def _unchanged(parameter: torch.Tensor, initial: torch.Tensor) -> bool:
    return bool(torch.equal(parameter.detach(), initial))


def _labels(targets: torch.Tensor, task: str) -> str:
    if task != "classification":
        return "the targets must belong to their inputs (split and shuffled together)"
    classes = torch.unique(targets).tolist()
    return (
        f"{len(classes)} classes among the samples ({', '.join(map(str, classes[:12]))}); each "
        f"target must belong to its input"
    )


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    k = cfg.debug.batches
    samples = limit_batches(cfg, train=k, test=None)
    _say_what_changes(cfg, k, samples)
    with FolderLock(output_dir):
        recipe = OverfitRecipe(cfg, output_dir)
        recipe.tool.update(tool_entry("overfit", batches=k, samples=samples))
        recipe.setup()
        summary = recipe.train()
    found = summary[DEBUG]
    log.info(
        "debug=overfit: %s (%s)", "learnt" if found["learnt"] else "NOT learnt", found["because"]
    )
    for item in found.get("check", []):
        log.info("  check %s", item)
    return summary


def _say_what_changes(cfg: DictConfig, k: int, samples: int) -> None:
    if "early_stopping" in cfg.regularizer:
        with open_dict(cfg.regularizer):
            del cfg.regularizer["early_stopping"]
        log.info("debug=overfit: early stopping set aside (it would stop a run meant to memorise)")
    order = "in a new order each epoch" if cfg.trainer.shuffle else "in the same order"
    log.info(
        "debug=overfit: %d batches (%d samples) %d times, %s; scored on them in eval mode",
        k,
        samples,
        cfg.trainer.epochs,
        order,
    )
    kept = [str(name) for name in cfg.regularizer if name != "none"]
    if cfg.model.get("dropout"):
        kept.append(f"dropout {cfg.model.dropout}")
    if cfg.optimizer.get("weight_decay"):
        kept.append(f"weight_decay {cfg.optimizer.weight_decay}")
    if kept:
        they = "it" if len(kept) == 1 else "they"
        log.info("debug=overfit: kept %s; %s may slow the memorising", ", ".join(kept), they)
