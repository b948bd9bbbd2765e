"""Hydra plugins that come with dlrun's optional extras, and the error when one is missing.

Without this check, `hydra/launcher=joblib` on a lean install fails inside Hydra with
"Could not find 'hydra/launcher/joblib'", which says nothing about how to get it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dlrun.errors import DlrunError


@dataclass(frozen=True)
class Plugin:
    module: str
    extra: str
    package: str


JOBLIB = Plugin("hydra_plugins.hydra_joblib_launcher", "sweep", "hydra-joblib-launcher")
OPTUNA = Plugin("hydra_plugins.hydra_optuna_sweeper", "sweep", "hydra-optuna-sweeper")
SUBMITIT = Plugin("hydra_plugins.hydra_submitit_launcher", "slurm", "hydra-submitit-launcher")

# Command-line choices (group=option) and the plugin each one needs.
NEEDS = {
    ("hydra/launcher", "joblib"): JOBLIB,
    ("hydra/launcher", "submitit_local"): SUBMITIT,
    ("hydra/launcher", "submitit_slurm"): SUBMITIT,
    ("hydra/sweeper", "optuna"): OPTUNA,
    ("hparams_search", "optuna"): OPTUNA,
}


def installed(plugin: Plugin) -> bool:
    try:
        return importlib.util.find_spec(plugin.module) is not None
    except ModuleNotFoundError:  # the hydra_plugins namespace itself is absent
        return False


def check_plugins(arguments: Sequence[str]) -> None:
    """Raise a DlrunError naming the extra to install when a chosen option needs a plugin."""
    for argument in arguments:
        match = re.fullmatch(r"[+~]*([\w/]+)=(\w+)", argument.strip())
        if not match:
            continue
        plugin = NEEDS.get((match[1].lstrip("/"), match[2]))
        if plugin is not None and not installed(plugin):
            raise DlrunError(
                f"{argument} needs the Hydra plugin {plugin.package}, which is not installed. "
                f"Install dlrun's '{plugin.extra}' extra: pip install 'dlrun[{plugin.extra}]' "
                f"(in a clone: pip install -e '.[{plugin.extra}]')."
            )


def register_fused_launcher(arguments: Sequence[str]) -> None:
    """`hydra/launcher=fused` ships with dlrun. Hydra finds launchers by scanning the
    hydra_plugins package, which an editable install does not extend, so it is registered
    here as well (a second registration of the same class is a no-op). Only a sweep needs
    a launcher: a single run, `--cfg` or `--help` skips the scan this costs."""
    sweep = {"-m", "--multirun", "hydra.mode=MULTIRUN"} & set(arguments)
    if not sweep and not any("launcher=fused" in argument for argument in arguments):
        return
    from hydra.core.plugins import Plugins

    from hydra_plugins.dlrun_fused_launcher.fused_launcher import FusedLauncher

    Plugins.instance().register(FusedLauncher)
