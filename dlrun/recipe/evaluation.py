"""A saved checkpoint scored again, as its run scored it after each epoch (`dlrun-eval`,
cli/eval_checkpoint.py).

Everything is rebuilt from the config stored in the checkpoint, through the recipe's own
setup: the data set (the same `trainer.max_test_samples` subset, drawn with the run's
seed), the model (with what the regularizers change in it, e.g. dropout rates) and the
evaluation batch size. On the same machine and device, the metrics of last.pt equal the last
row of the run's metrics.csv and those of best.pt the best epoch's row.

torch and the data sets are imported only when a checkpoint is evaluated.
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrun.errors import DlrunError
from dlrun.outputs.run_folder import BEST, CHECKPOINTS, EVAL_JSON, LAST, folder_of, read_rows

WHICH = {"last": LAST, "best": BEST}
SPLITS = ("test", "train")


@dataclass
class EvalOptions:
    ckpt: str
    which: str | None = None  # None: last.pt, and a .pt file may be given
    split: str = "test"
    device: str | None = None  # None: the run's trainer.device
    batch_size: int | None = None
    data_root: str | None = None
    out: str | None = None


@dataclass
class EvalResult:
    checkpoint: Path
    run_folder: Path
    epoch: int | None
    split: str
    metrics: dict[str, float]  # metrics.csv column names: test_loss, test_acc...
    samples: int
    device: str
    batch_size: int
    out: Path
    notes: list[str] = field(default_factory=list)
    recorded: dict[str, Any] | None = None  # the run's metrics.csv row of that epoch

    def as_json(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "epoch": self.epoch,
            "split": self.split,
            "samples": self.samples,
            "metrics": self.metrics,
            "device": self.device,
            "batch_size": self.batch_size,
            "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def find_eval_checkpoint(ckpt: str, which: str | None = None) -> Path:
    """The .pt file that `ckpt=` (a run folder, checkpoints/ folder or file) and `which=` name."""
    path = Path(ckpt).expanduser()
    if not path.exists():
        raise DlrunError(
            f"ckpt={ckpt} does not exist. Give a run folder (outputs/<date>/<time>_<name>), "
            f"its {CHECKPOINTS}/ folder or a .pt file."
        )
    if path.is_file():
        if which is not None:
            raise DlrunError(
                f"ckpt={ckpt} is a file, and which={which} picks a file in a folder: give the "
                f"run folder with which={which}, or the .pt file alone."
            )
        return path
    name = WHICH[which or "last"]
    candidates = [path / name, path / CHECKPOINTS / name]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise DlrunError(
            f"ckpt={ckpt} holds no checkpoint: looked for {candidates[0]} and {candidates[1]}. "
            f"Give a run folder that has {CHECKPOINTS}/{name}, or a .pt file."
        )
    return found


def evaluate_checkpoint(options: EvalOptions) -> EvalResult:
    """Set the run up again from the checkpoint's config (the recipe's own setup), evaluate."""
    path = find_eval_checkpoint(options.ckpt, options.which)
    if not zipfile.is_zipfile(path):  # what torch.save writes; checked first for a clear error
        raise DlrunError(
            f"{path} is not a dlrun checkpoint: it is not a complete file written by "
            f"torch.save (another kind of file, or a truncated copy). A run's checkpoints are "
            f"{CHECKPOINTS}/{LAST} and {CHECKPOINTS}/{BEST} in its folder."
        )
    from dlrun.recipe.recipe import Recipe
    from dlrun.training.checkpoint import load_checkpoint
    from dlrun.training.steps import evaluate
    from dlrun.training.world import World

    checkpoint = load_checkpoint(path)
    notes: list[str] = []
    folder = folder_of(path)
    assert folder is not None  # the checkpoint's own folder exists
    recipe = Recipe(_run_config(checkpoint, path, options, notes), folder, World())
    recipe.setup_runtime()
    recipe.setup_data()
    recipe.setup_state()
    split = recipe.test_split if options.split == "test" else recipe.train_split
    batch_size = options.batch_size or int(recipe.trainer.eval_batch_size)
    if split.num_batches(batch_size) == 0:
        raise DlrunError(
            f"The {options.split} split ({len(split)} samples) is too small to evaluate on."
        )
    model = recipe.state.model
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as err:
        raise DlrunError(
            f"The weights in {path} do not fit the model its config builds "
            f"({str(err).splitlines()[0]}). Was the model's code changed since the run?"
        ) from err
    scores = evaluate(model, split, recipe.task, batch_size)
    samples = int(scores.pop("count"))
    epoch = checkpoint.get("epoch")
    result = EvalResult(
        checkpoint=path,
        run_folder=folder,
        epoch=int(epoch) if epoch is not None else None,
        split=options.split,
        metrics={f"{options.split}_{k}": float(v) for k, v in scores.items()},
        samples=samples,
        device=str(recipe.device),
        batch_size=batch_size,
        out=Path(options.out).expanduser() if options.out else folder / EVAL_JSON,
        notes=notes,
    )
    if options.split == "test" and result.epoch is not None:
        result.recorded = _recorded_row(folder, result.epoch)
    return result


def _run_config(checkpoint: dict, path: Path, options: EvalOptions, notes: list[str]):
    """The run's config, typed, as this evaluation needs it: no resume, no loggers."""
    from omegaconf import OmegaConf

    from dlrun.config.schema import Config, first_line, validate

    config = checkpoint.get("config")
    if not isinstance(config, dict) or not all(
        isinstance(config.get(key), dict) for key in ("model", "dataset")
    ):
        raise DlrunError(f"{path} is a dlrun checkpoint without a usable config: cannot rebuild.")
    if not isinstance(checkpoint.get("model"), dict):
        raise DlrunError(f"{path} is a dlrun checkpoint without model weights.")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(Config), config)
    except Exception as err:  # omegaconf raises several types; all mean an unusable config
        raise DlrunError(
            f"The checkpoint's config does not fit this dlrun ({first_line(err)}): it was "
            f"written by another version."
        ) from err
    if options.data_root is not None:
        if "root" not in cfg.dataset:
            raise DlrunError(
                f"data_root={options.data_root}: data set {cfg.dataset.name} has no "
                f"`root` setting (it needs no files); leave data_root out."
            )
        cfg.dataset.root = options.data_root
    cfg.trainer.device = str(_device(options.device, str(cfg.trainer.device), notes))
    cfg.trainer.resume, cfg.logger = None, {}
    validate(cfg)
    return cfg


def _device(requested: str | None, trained_on: str, notes: list[str]):
    from dlrun.training.device import resolve_device

    if requested is not None:
        try:
            return resolve_device(requested)
        except DlrunError as err:
            raise DlrunError(str(err).replace("trainer.device", "device")) from err
    try:
        return resolve_device(trained_on)
    except DlrunError:
        device = resolve_device("auto")
        notes.append(f"the run used device {trained_on}, not available here: evaluated on {device}")
        return device


def _recorded_row(folder: Path, epoch: int) -> dict[str, Any] | None:
    """The run's own metrics.csv row for `epoch`, to print beside the new figures."""
    try:
        rows = read_rows(folder)
    except (OSError, ValueError):
        return None
    return next((row for row in rows if row.get("epoch") == epoch), None)


def write_result(result: EvalResult) -> None:
    from dlrun.outputs.io import atomic_write_json

    try:
        atomic_write_json(result.out, result.as_json())
    except OSError as err:
        raise DlrunError(
            f"Cannot write {result.out} ({err.strerror or err}). Give another file with out=FILE."
        ) from err
