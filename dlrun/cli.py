"""The `dlrun` command: Hydra composes the config, `run` does the work.

User errors (DlrunError) print as one paragraph and exit with status 2; Hydra reports
config errors (unknown option, misspelt key, wrong type) itself, with status 1.
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape

import dlrun.builtins  # noqa: F401  (registers models, data sets, optimizers... and schemas)
from dlrun.config import register_configs
from dlrun.errors import DlrunError
from dlrun.naming import register_resolvers
from dlrun.run import run

EXIT_USER_ERROR = 2


@hydra.main(version_base="1.3", config_path="pkg://dlrun.conf", config_name="config")
def _train(cfg: DictConfig) -> dict:
    try:
        return run(cfg, HydraConfig.get().runtime.output_dir)
    except DlrunError as err:
        report(err)
        raise SystemExit(EXIT_USER_ERROR) from None


def main() -> None:
    register_resolvers()
    register_configs()
    _train()


def report(err: DlrunError) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]Error:[/] {escape(str(err))}"
    )
