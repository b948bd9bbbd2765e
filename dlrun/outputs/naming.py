"""Run-folder names, as OmegaConf resolvers used by hydra.run.dir and hydra.sweep.subdir.

`outputs/2026-11-22/23-59-01_lenet_adam_lr0.01/`: the model and optimizer always, then the
values overridden on the command line, so a folder listing reads like a lab notebook. A
folder that the learning-rate finder or a debug mode made starts with what made it:
`..._lr-find_lenet_sgd`, `..._debug-overfit_lenet_sgd`.
"""

from __future__ import annotations

import re
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from dlrun.errors import EXIT_USER_ERROR, DlrunError, report
from dlrun.outputs import run_folder

MAX_NAME = 80
# Overrides that say where things are rather than what runs: left out of names.
UNNAMED_KEYS = {"trainer.resume", "dataset.root", "dataset.download", "trainer.progress"}
# Groups a name shows as its first part, or always, rather than as an override's value.
NAMED_GROUPS = ("model", "optimizer", "lr_find", "debug")


def run_name() -> str:
    hydra = HydraConfig.get()
    choices = hydra.runtime.choices
    parts = [made_by(choices), choices.get("model"), choices.get("optimizer")]
    for override in hydra.overrides.task:
        key, _, value = override.lstrip("+~").partition("=")
        value = _short(value.strip("[]").replace(",", "+"))  # [l2,dropout] -> l2+dropout
        if key in UNNAMED_KEYS or key in NAMED_GROUPS or key.startswith("report."):
            continue
        parts.append(value if "." not in key else f"{key.rsplit('.', 1)[-1]}{value}")
    name = "_".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", name)[:MAX_NAME].strip("-_") or "run"


def made_by(choices) -> str | None:
    """`lr-find` or `debug-<mode>`: the tool that made the folder, None for a training run."""
    if choices.get("lr_find"):
        return "lr-find"
    return f"debug-{choices['debug']}" if choices.get("debug") else None


def _short(value: str) -> str:
    """A search's long floats to 4 significant digits: lr0.0443 rather than lr0.0443037524..."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 and not value.isdigit() else value


def run_dir(fresh: str, resume: str | None) -> str:
    """The folder of the run being resumed, or a new folder that no other run has taken.

    The folder is created here (mkdir fails if it exists), so two runs that start in the
    same second get `_2`, `_3`... instead of writing into one folder.
    """
    if resume:
        existing = run_folder.folder_of(resume)  # the run continues there
        if existing is not None:
            return str(existing)
    base = Path(fresh)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            candidate = base if attempt == 1 else base.with_name(f"{base.name}_{attempt}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return str(candidate)
    except OSError as err:
        # Raised inside Hydra's config resolution, an exception would print a traceback:
        # say it plainly and stop here.
        report(folder_error(base, err))
        raise SystemExit(EXIT_USER_ERROR) from None
    raise RuntimeError(f"no free run folder name next to {base}")


def folder_error(folder: str | Path, err: OSError) -> DlrunError:
    return DlrunError(
        f"Cannot create the run folder {folder}: {err.strerror or err}. Run dlrun where it "
        f"can write outputs/, or set hydra.run.dir (hydra.sweep.dir with -m) to a writable "
        f"folder."
    )


def config_subdir(resume: str | None, stamp: str) -> str:
    """Where Hydra saves the config: a resumed run keeps the first run's .hydra/ intact."""
    return run_folder.resume_subdir(stamp) if resume else run_folder.HYDRA


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("dlrun.run_name"):
        OmegaConf.register_new_resolver("dlrun.run_name", run_name)
        OmegaConf.register_new_resolver("dlrun.run_dir", run_dir, use_cache=True)
        OmegaConf.register_new_resolver("dlrun.config_subdir", config_subdir)
