"""A sweep's job configs, composed once per group choice (dlrun/sweeps/composing.py), are
exactly what Hydra's own compose gives, for every preset's sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import create_config_search_path
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

from dlrun.config.hydra_plugins import register_fused_launcher
from dlrun.config.schema import register_configs
from dlrun.outputs.naming import register_resolvers
from dlrun.sweeps.composing import JobComposer

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
# Values and a group set on the command line, in the app's part and in Hydra's.
COMMAND = ["seed=0,1", "trainer.epochs=3", "hydra/launcher=fused", "hydra.job.chdir=false"]


@pytest.fixture(scope="module")
def loader() -> ConfigLoaderImpl:
    register_resolvers()
    register_configs()
    register_fused_launcher(["hydra/launcher=fused"])
    return ConfigLoaderImpl(config_search_path=create_config_search_path("pkg://dlrun.conf"))


def sweep_jobs(loader: ConfigLoaderImpl, arguments: list[str]):
    """The master config and each job's overrides, as Hydra's basic sweeper makes them."""
    master = loader.load_configuration("config", arguments, run_mode=RunMode.MULTIRUN)
    params = [f"{key}={value}" for key, value in (master.hydra.sweeper.params or {}).items()]
    task = [line for line in arguments if not line.startswith(("hydra.", "hydra/"))]
    parsed = OverridesParser.create().parse_overrides(params + task)
    (batch,) = BasicSweeper.split_arguments(parsed, None)
    return master, batch


def group_choices(loader: ConfigLoaderImpl, jobs: list[list[str]]) -> set[tuple[str, ...]]:
    def is_group(line: str) -> bool:
        return loader.repository.group_exists(line.partition("=")[0].lstrip("+~"))

    return {tuple(line for line in job if is_group(line)) for job in jobs}


class CountingCompose:
    """Hydra's compose, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, loader, master, overrides):
        self.calls += 1
        return ConfigLoaderImpl.load_sweep_config(loader, master, overrides)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_job_of_a_preset_sweep_is_what_hydra_composes(loader, preset):
    master, jobs = sweep_jobs(loader, [f"experiment={preset}", *COMMAND])
    compose = CountingCompose()
    composer = JobComposer(loader, master, compose)
    for overrides in jobs:
        ours = composer.compose(overrides)
        hydras = loader.load_sweep_config(master, overrides)
        assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras), overrides
        assert OmegaConf.is_struct(ours) and not OmegaConf.is_readonly(ours.hydra)
        assert ours._get_flag("readonly") == hydras._get_flag("readonly")
    assert compose.calls == len(group_choices(loader, jobs))


def test_jobs_share_one_composition_per_group_choice(loader):
    master, jobs = sweep_jobs(
        loader, ["experiment=optimizers", "seed=range(3)", "optimizer.lr=0.1,0.2"]
    )
    compose = CountingCompose()
    composer = JobComposer(loader, master, compose)
    configs = [composer.compose(overrides) for overrides in jobs]
    assert len(configs) == 30 and compose.calls == 5
    assert sorted({(c.seed, c.optimizer.lr) for c in configs}) == [
        (seed, lr) for seed in range(3) for lr in (0.1, 0.2)
    ]
    assert configs[0].hydra.job.override_dirname == (
        "+experiment/optimizers=sgd,experiment=optimizers,optimizer.lr=0.1,seed=0"
    )
    # A copy each: one job's config changed leaves the next one's as composed.
    configs[0].trainer.epochs = 99
    assert composer.compose(jobs[0]).trainer.epochs == 10


@pytest.mark.parametrize(
    "bad", ["trainer.epochs=abc", "trainer.epoch=3", "+seed=4", "optimizer=nope", "~seed=1"]
)
def test_a_bad_job_fails_as_hydra_fails_it(loader, bad):
    master, (overrides, *_) = sweep_jobs(loader, ["model=mlp", "seed=0,1"])
    with pytest.raises(Exception) as hydras:
        ConfigLoaderImpl.load_sweep_config(loader, master, [*overrides, bad])
    with pytest.raises(Exception) as ours:
        JobComposer(loader, master, CountingCompose()).compose([*overrides, bad])
    assert type(ours.value) is type(hydras.value)
    assert str(ours.value) == str(hydras.value)
    assert isinstance(ours.value, ConfigCompositionException)


def test_a_job_that_moves_the_search_path_is_composed_whole(loader, tmp_path):
    master, (overrides, *_) = sweep_jobs(loader, ["model=mlp", "seed=0,1"])
    compose = CountingCompose()
    composer = JobComposer(loader, master, compose)
    config = composer.compose([*overrides, f"hydra.searchpath=[file://{tmp_path}]"])
    assert compose.calls == 1
    assert f"file://{tmp_path}" in OmegaConf.to_yaml(config.hydra.searchpath)
