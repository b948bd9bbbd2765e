"""The `dlrun-eval` command: score a saved checkpoint again, as the run scored it.

    dlrun-eval ckpt=outputs/2026-11-23/00-44-46_lenet_sgd [which=best] [device=cpu]

The evaluation itself is the recipe's (recipe/evaluation.py); this module reads the
`key=value` arguments and prints the result, which is also written to eval.json in the run
folder. torch is imported only when a checkpoint is evaluated, so `dlrun-eval --help`
answers at once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dlrun.cli.exit import end_quickly
from dlrun.errors import DlrunError
from dlrun.outputs.run_folder import CHECKPOINTS, METRICS_CSV
from dlrun.recipe.evaluation import (
    SPLITS,
    WHICH,
    EvalOptions,
    EvalResult,
    evaluate_checkpoint,
    write_result,
)

if TYPE_CHECKING:
    from rich.console import Console

EXIT_USER_ERROR = 2

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


def print_result(result: EvalResult, console: Console) -> None:
    from rich.markup import escape

    from dlrun.reporting.table import format_value, rich_table

    epoch = "?" if result.epoch is None else result.epoch
    console.print(f"Checkpoint {escape(str(result.checkpoint))} (epoch {epoch})")
    recorded = result.recorded
    numbers = ["evaluated", *([METRICS_CSV] if recorded is not None else [])]
    table = rich_table(["metric", *numbers], right=numbers)
    for name, value in result.metrics.items():
        # Six digits: enough to see the evaluation agree with what the run recorded.
        cells = [name, format_value(float(value), digits=6)]
        if recorded is not None:
            cells.append(format_value(recorded.get(name), digits=6))
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
    end_quickly()
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
