"""`debug=fast`: one training batch and one test batch, through everything a run does
around them: the epoch's rows, the checkpoint write, a resume from that checkpoint for a
second epoch, summary.json and the plots. Seconds, and a list of what it checked."""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlrun.errors import DlrunError
from dlrun.outputs import drawing
from dlrun.outputs.lock import FolderLock
from dlrun.outputs.run_folder import (
    CURVES_PNG,
    DEBUG,
    METRICS_CSV,
    SUMMARY_JSON,
    RunFolder,
    checkpoint_file,
    read_rows,
    read_summary,
)
from dlrun.recipe.recipe import Recipe
from dlrun.tools.debug import limit_batches, tool_entry
from dlrun.training.engine import number

log = logging.getLogger("dlrun")


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    samples = limit_batches(cfg, train=1, test=1)
    cfg.trainer.epochs = 1
    log.info("debug=fast: 1 training batch (%d samples) and 1 test batch per epoch", samples)
    with FolderLock(output_dir):
        _train(cfg, output_dir)
        resumed = copy.deepcopy(cfg)
        resumed.trainer.resume, resumed.trainer.epochs = str(output_dir), 2
        summary = _train(resumed, output_dir)
    drawing.wait()  # the plots are part of what is checked
    checks = _checks(Path(output_dir))
    summary[DEBUG]["checks"] = checks
    RunFolder(output_dir).write_summary(summary)
    log.info("debug=fast checked:")
    for check in checks:
        log.info("  %s %s: %s", "ok  " if check["ok"] else "FAIL", check["what"], check["detail"])
    if not all(check["ok"] for check in checks):
        failed = "; ".join(f"{c['what']}: {c['detail']}" for c in checks if not c["ok"])
        raise DlrunError(f"debug=fast found a problem in {output_dir}: {failed}.")
    return summary


def _train(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    recipe = Recipe(cfg, output_dir)
    recipe.tool.update(tool_entry("fast"))
    recipe.setup()
    return recipe.train()


def _shown(value: Any) -> str:
    return number(value) if isinstance(value, float) else str(value)


def _checks(folder: Path) -> list[dict[str, Any]]:
    """What the two epochs left in the folder, each with whether it is as it should be."""
    rows = read_rows(folder)
    summary = read_summary(folder)
    checkpoint = checkpoint_file(folder)
    resumes = summary.get("resumed_from") or []
    first = rows[0] if rows else {}
    found = [
        (
            "training step",
            bool(rows) and _finite(first.get("train_loss")),
            f"train_loss {_shown(first.get('train_loss'))}",
        ),
        (
            "test batch",
            bool(rows) and _finite(first.get("test_loss")),
            f"test_loss {_shown(first.get('test_loss'))}",
        ),
        (
            "checkpoint",
            checkpoint.is_file(),
            f"{checkpoint.relative_to(folder)}, {_size(checkpoint)}",
        ),
        (
            "resume",
            bool(resumes) and resumes[-1].get("epoch") == 1 and len(rows) == 2,
            f"continued after epoch {resumes[-1].get('epoch') if resumes else '?'}, "
            f"{METRICS_CSV} has {len(rows)} rows",
        ),
        (
            SUMMARY_JSON,
            summary.get("status") == "completed" and summary.get("epochs_run") == 2,
            f"status {summary.get('status')}, {summary.get('epochs_run')} epochs",
        ),
        ("plots", (folder / CURVES_PNG).is_file(), f"{CURVES_PNG}, {_size(folder / CURVES_PNG)}"),
    ]
    return [{"what": what, "ok": ok, "detail": detail} for what, ok, detail in found]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1024:.0f} KiB" if path.is_file() else "missing"
