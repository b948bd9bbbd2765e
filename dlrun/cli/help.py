"""`dlrun --help`: the groups a user picks from, one line each, read from conf/ directly.

Hydra's own help composes the config and deep-copies the config repository once per
group, internal schema groups included; this one reads a few small files.
"""

from __future__ import annotations

from dlrun.config.groups import GROUPS, defaults, options

HEADER = """\
dlrun: run, vary and compare deep-learning fundamentals.

Pick one option per group and override any value:
  dlrun model=lenet optimizer=adam
  dlrun model=mlp model.hidden=[512] optimizer.lr=0.01 trainer.epochs=5
  dlrun -m optimizer=sgd,adam trainer=smoke dataset=digits     (a sweep)
  dlrun trainer.resume=outputs/<date>/<run>                    (continue a run)
  dlrun -m hydra/launcher=joblib optimizer=sgd,adam            (2+ jobs at a time)
  dlrun -m hydra/launcher=fused 'seed=range(5)'                (a sweep as one program)
  dlrun -m hparams_search=optuna                               (an Optuna search)
  torchrun --standalone --nproc_per_node=2 -m dlrun ...        (one run, 2 processes)
  dlrun debug=overfit model=lenet                              (can it learn 3 batches?)
  dlrun-lr-find model=lenet optimizer=sgd                      (a learning rate to start)
joblib and Optuna need pip install 'dlrun[sweep]' (SLURM: 'dlrun[slurm]')."""

FOOTER = """\
Show the composed config: dlrun --cfg job [overrides]; Hydra's own flags: dlrun --hydra-help
Each run leaves outputs/<date>/<time>_<name>/ with metrics.csv, summary.json,
curves.png, checkpoints/ and train.log."""


def help_text() -> str:
    chosen = defaults()
    width = max(map(len, GROUPS)) + 2
    lines = [HEADER, "", "Config groups (default in brackets):"]
    for group, purpose in GROUPS.items():
        names = [f"[{n}]" if n in chosen.get(group, "").split(",") else n for n in options(group)]
        lines.append(f"  {group:<{width}}{purpose}: {', '.join(names)}")
    return "\n".join([*lines, "", FOOTER])
