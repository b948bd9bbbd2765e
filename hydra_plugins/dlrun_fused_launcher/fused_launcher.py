"""`hydra/launcher=fused`: a sweep's jobs that share their shapes train as one program.

Hydra finds launchers in the `hydra_plugins` package only; the work is in dlrun/sweeps/fused/.
Hydra's scan runs this module before it is in sys.modules, so it has no
`from __future__ import annotations`: a dataclass would look its string annotations up there.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class FusedLauncherConf:
    _target_: str = "hydra_plugins.dlrun_fused_launcher.fused_launcher.FusedLauncher"
    # The most jobs trained as one program; a larger group is split.
    max_members: int = 32


ConfigStore.instance().store(group="hydra/launcher", name="fused", node=FusedLauncherConf)


class FusedLauncher(Launcher):
    def __init__(self, max_members: int = 32) -> None:
        self.max_members = max_members

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from dlrun.sweeps.fused.launch import launch

        return launch(self, job_overrides, initial_job_idx)
