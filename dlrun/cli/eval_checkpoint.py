"""The `dlrun-eval` command: score a saved checkpoint again, as the run scored it.

    dlrun-eval ckpt=outputs/2026-11-23/00-44-46_lenet_sgd [which=best] [device=cpu]

Everything is rebuilt from the config stored in the checkpoint: the data set (the same
`trainer.max_test_samples` subset, drawn with the run's seed), the model (with what the
regularizers change in it, e.g. dropout rates) and the evaluation batch size. On the same
machine and device, the metrics of last.pt equal the last row of the run's metrics.csv and
those of best.pt the best epoch's row. The result is printed and written to eval.json in
the run folder.

Heavy modules (torch, the data sets) are imported only when a checkpoint is evaluated, so
`dlrun-eval --help` answers at once.
"""

from __future__ import annotations

import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun.errors import DlrunError
from dlrun.outputs.run_folder import (
    BEST,
    CHECKPOINTS,
    EVAL_JSON,
    LAST,
    METRICS_CSV,
    folder_of,
    read_rows,
)

if TYPE_CHECKING:
    from rich.console import Console

EXIT_USER_ERROR = 2
WHICH = {"last": LAST, "best": BEST}
SPLITS = ("test", "train")

USAGE = """\
usage: dlrun-eval ckpt=PATH [which=last|best] [split=test|train] [device=DEVICE]
                  [batch_size=N] [data_root=DIR] [out=FILE]

Evaluate a dlrun checkpoint again, exactly as its run evaluated it after each epoch.

  ckpt=PATH       a run folder, its checkpoints/ folder, or a .pt file (required; a bare
                  PATH without `ckpt=` works too)
  which=last      in a folder: last.pt (the last epoch, the default) or best.pt (the best
                  epoch of trainer.monitor)
  split=test      test (default) or train: the run's trainer.max_test_samples (or
                  max_train_samples) subset, drawn with the run's seed
  device=DEVICE   auto, cpu, cuda, cuda:N or mps; default: the run's trainer.device, or
                  auto where that device is not available here
  batch_size=N    evaluation batch size; default: the run's trainer.eval_batch_size
  data_root=DIR   where to look for the data files (dataset.root), when they are not
                  where the run found them
  out=FILE        where to write the result; default: eval.json in the run folder

The metrics and the checkpoint's epoch are printed, and written to eval.json with the
checkpoint's path and the device. Problems print one paragraph and exit with status 2.
"""

KEYS = ("ckpt", "which", "split", "device", "batch_size", "data_root", "out")


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


def parse_args(argv: Sequence[str]) -> EvalOptions:
    """`key=value` arguments (a bare first argument is the checkpoint) into EvalOptions."""
    values: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            if "ckpt" in values:
                raise DlrunError(
                    f"dlrun-eval: unexpected argument {arg!r}; options are key=value: "
                    f"{', '.join(KEYS)} (see dlrun-eval --help)."
                )
            key, value = "ckpt", arg
        key = key.strip().lstrip("-").replace("-", "_")
        if key not in KEYS:
            raise DlrunError(
                f"dlrun-eval: unknown option {key!r}; use {', '.join(KEYS)} "
                f"(see dlrun-eval --help)."
            )
        values[key] = value
    if not values.get("ckpt"):
        raise DlrunError(
            f"dlrun-eval needs a checkpoint: dlrun-eval ckpt=RUN_FOLDER (or its {CHECKPOINTS}/ "
            f"folder, or a .pt file). See dlrun-eval --help."
        )
    which = values.get("which")
    if which is not None and which not in WHICH:
        raise DlrunError(f"which={which} is not a checkpoint name: use which=last or which=best.")
    split = values.get("split", "test")
    if split not in SPLITS:
        raise DlrunError(f"split={split} is not a split: use split=test or split=train.")
    batch_size = None
    if values.get("batch_size"):
        try:
            batch_size = int(values["batch_size"])
        except ValueError:
            batch_size = 0
        if batch_size < 1:
            raise DlrunError(f"batch_size={values['batch_size']} must be a whole number >= 1.")
    return EvalOptions(
        ckpt=values["ckpt"],
        which=which,
        split=split,
        device=values.get("device") or None,
        batch_size=batch_size,
        data_root=values.get("data_root") or None,
        out=values.get("out") or None,
    )


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

    from dlrun.config.schema import Config, first_line

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


def print_result(result: EvalResult, console: Console) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    epoch = "?" if result.epoch is None else result.epoch
    console.print(f"Checkpoint {escape(str(result.checkpoint))} (epoch {epoch})")
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("metric")
    table.add_column("evaluated", justify="right")
    recorded = result.recorded
    if recorded is not None:
        table.add_column(METRICS_CSV, justify="right")
    for name, value in result.metrics.items():
        cells = [name, f"{value:.6g}"]
        if recorded is not None:
            text = recorded.get(name)
            cells.append(f"{float(text):.6g}" if text not in (None, "") else "")
        table.add_row(*cells)
    console.print(table)
    console.print(
        f"{result.samples:,} {result.split} samples, batch size {result.batch_size}, "
        f"device {result.device}"
    )
    for note in result.notes:
        console.print(f"[yellow]Note:[/] {escape(note)}")
    console.print(f"Written to {escape(str(result.out))}")


def report_error(err: DlrunError) -> None:
    """As the `dlrun` command prints one: a single paragraph on stderr, no traceback."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]Error:[/] {escape(str(err))}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, end="", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE, end="")
        return
    from rich.console import Console

    try:
        result = evaluate_checkpoint(parse_args(args))
        write_result(result)
    except DlrunError as err:
        report_error(err)
        sys.exit(EXIT_USER_ERROR)
    print_result(result, Console(highlight=False, soft_wrap=True))


if __name__ == "__main__":
    main()
