"""The `dlrun-lr-find` command: `dlrun` with the learning-rate finder picked (lr_find=default),
so it takes the same overrides, sweeps with -m (one finder per job) and answers errors the
same way. The finder itself is dlrun/tools/lr_find.py."""

from __future__ import annotations

import sys

from dlrun.cli import main as dlrun

# The option of conf/lr_find/ that makes a job a range test instead of a training run.
LR_FIND_CHOICE = "lr_find=default"

USAGE = """\
usage: dlrun-lr-find [OVERRIDES...] [lr_find.min_lr=1e-7] [lr_find.max_lr=10]
                     [lr_find.steps=100] [lr_find.diverge=4] [-m]

A learning-rate range test: from a fresh model, one optimizer step per learning rate, the
rates rising exponentially from min_lr to max_lr, until the smoothed loss passes diverge x
its best. It writes lr_find.csv and lr_find.png into a run folder named ..._lr-find_...,
prints the suggested rate (the steepest fall of the smoothed loss against log lr), why,
and the `dlrun ...` command that trains with it. A scheduler is set aside.

OVERRIDES are dlrun's (model=lenet optimizer=sgd ...); with -m, one finder per job:
  dlrun-lr-find model=lenet optimizer=sgd
  dlrun-lr-find -m dataset=cubic model=poly_regression optimizer=sgd,momentum,adam
Problems print one paragraph and exit with status 2 (1 for a config that does not compose).
"""


def arguments(given: list[str]) -> list[str]:
    """The `dlrun` arguments of a finder's command line: the choice last, after any flag
    (-m), as the command line's parser wants its overrides together."""
    if any(argument.startswith(("lr_find=", "+lr_find=")) for argument in given):
        return given
    return [*given, LR_FIND_CHOICE]


def main() -> None:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(USAGE, end="")
        return
    sys.argv = [sys.argv[0], *arguments(sys.argv[1:])]
    dlrun.main()
