"""A sweep's job configs, each exactly what Hydra composes, at one composition per distinct
choice of config groups.

Hydra composes a job in two stages: the defaults list (which file of each group, which
presets) is built and merged, and then the value overrides (`seed=3`, `optimizer.lr=0.1`)
are set on the result, one after another. Only the first stage depends on the group
choices (`optimizer=adam`, `+experiment/optimizers=sgd`), and it is where nearly all of a
composition's time goes. So jobs that choose the same groups share it: each takes a copy
and has its own value overrides set on it by Hydra's own function, and then its `hydra.*`
record of overrides (`hydra.overrides`, `hydra.job.override_dirname`) is written as Hydra
writes it. tests/test_composing.py holds every preset's sweep to Hydra's compose.

Which override chooses a group is decided as Hydra decides it, by the config repository
the sweep's search path gives. A job that changes the search path itself is composed whole.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

SEARCH_PATH = "hydra.searchpath"


class JobComposer:
    """Composes the jobs of one sweep (its master config) for one config loader;
    `compose_whole` is Hydra's `load_sweep_config`, which it calls once per group choice."""

    def __init__(
        self,
        loader: ConfigLoaderImpl,
        master: DictConfig,
        compose_whole: Callable[[ConfigLoaderImpl, DictConfig, list[str]], DictConfig],
    ) -> None:
        self.loader, self.master, self.compose_whole = loader, master, compose_whole
        self.master_overrides: list[str] = list(master.hydra.overrides.hydra)
        self.parser = OverridesParser.create()
        self.compositions: dict[tuple[str, ...], DictConfig] = {}
        self._repository = None
        self._groups: dict[str, bool] = {}

    def compose(self, overrides: list[str]) -> DictConfig:
        """The job's config, as `load_sweep_config(master, overrides)` returns it."""
        parsed = self.parser.parse_overrides(self.master_overrides + overrides)
        if any(override.get_key_element() == SEARCH_PATH for override in parsed):
            return self._whole(overrides)
        job = parsed[len(self.master_overrides) :]
        chooses = [self._chooses_group(override) for override in job]
        key = tuple(line for line, group in zip(overrides, chooses, strict=True) if group)
        if key not in self.compositions:
            self.compositions[key] = self._whole(list(key))
        config = copy.deepcopy(self.compositions[key])
        # The master's own overrides are set in the shared composition already.
        values = [override for override, group in zip(job, chooses, strict=True) if not group]
        ConfigLoaderImpl._apply_overrides_to_config(values, config)
        _record_overrides(config, parsed)
        OmegaConf.copy_cache(from_config=self.master, to_config=config)
        return config

    def _whole(self, overrides: list[str]) -> DictConfig:
        return self.compose_whole(self.loader, self.master, overrides)

    def _chooses_group(self, override: Override) -> bool:
        """Hydra's rule (hydra/_internal/defaults_list.py, Overrides): a group's name with a
        value that is not a dict chooses from the group; anything else sets values."""
        group = override.key_or_group
        if group in self._groups:
            return self._groups[group] and not isinstance(override.value(), dict)
        if self._repository is None:
            _, self._repository = self.loader._parse_overrides_and_create_caching_repo(
                self.master.hydra.job.config_name, self.master_overrides
            )
        self._groups[group] = self._repository.group_exists(group)
        return self._chooses_group(override)


def _record_overrides(config: DictConfig, parsed: list[Override]) -> None:
    """`hydra.overrides` and `hydra.job.override_dirname` for the job's whole command line."""
    task = [override for override in parsed if not override.is_hydra_override()]
    dirname = config.hydra.job.config.override_dirname
    with open_dict(config.hydra):
        config.hydra.overrides.hydra = [o.input_line for o in parsed if o.is_hydra_override()]
        config.hydra.overrides.task = [override.input_line for override in task]
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task,
            kv_sep=dirname.kv_sep,
            item_sep=dirname.item_sep,
            exclude_keys=dirname.exclude_keys,
        )
