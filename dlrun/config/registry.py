"""Name -> builder registries: how a config's `name` becomes a model, data set, optimizer...

Each builder has a dataclass schema: a built-in option's is in config/options/ (which
imports no torch, so composing needs no builder), a plugin's is given to `register`. It is
stored in Hydra's ConfigStore as `schema/<group>/<name>` so that the option's YAML can
extend it and a misspelt key or a wrong type fails while the config is composed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from dlrun.config import ranges
from dlrun.config.options import SCHEMAS
from dlrun.errors import DlrunError


@dataclass(frozen=True)
class Entry:
    builder: Callable[..., Any]
    schema: type | None


class Registry:
    """A named table of builders, one per config group (e.g. MODELS for `model=`)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, schema: type | None = None) -> Callable[[Any], Any]:
        """Decorator: `@MODELS.register("my_net", schema=MyNetConfig)` over a class or function.

        A built-in option leaves out `schema`: its own is in config/options/.
        """
        schema = schema or SCHEMAS.get(self.group, {}).get(name)

        def decorator(builder: Any) -> Any:
            if name in self._entries:
                existing = self._entries[name].builder
                raise DlrunError(
                    f"{self.group} '{name}' is registered twice: first by "
                    f"{existing.__module__}.{existing.__qualname__}, again by "
                    f"{builder.__module__}.{builder.__qualname__}. Give one of them another name."
                )
            self._entries[name] = Entry(builder, schema)
            if schema is not None:
                ConfigStore.instance().store(group=f"schema/{self.group}", name=name, node=schema)
            return builder

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry:
        if name not in self._entries:
            known = ", ".join(self.names()) or "(none)"
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise DlrunError(
                f"Unknown {self.group} '{name}'.{hint} Known {self.group} names: {known}. "
                f"A {self.group} of your own is registered with "
                f"@{self.group.upper()}S.register('my_name') in a module listed under `plugins:`."
            )
        return self._entries[name]

    def build(
        self, cfg: DictConfig | dict, *args: Any, prefix: str | None = None, **kwargs: Any
    ) -> Any:
        """Build from a config whose `name` selects the builder; the rest are its arguments.

        The config is checked against the builder's schema here too (keys, types and value
        ranges), which covers options composed without one (a plugin's own YAML) as well as
        configs read from checkpoints. `prefix` is the key errors name, e.g. regularizer.l2.
        """
        cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        name = cfg.get("name")
        if name is None:
            raise DlrunError(f"The {self.group} config has no `name` key; set {self.group}.name.")
        entry = self.get(str(name))
        if entry.schema is not None:
            try:
                # As a plain dict: a typed source would carry force-added keys through the merge.
                plain = OmegaConf.to_container(cfg, resolve=True)
                cfg = OmegaConf.merge(OmegaConf.structured(entry.schema), plain)
            except Exception as err:  # omegaconf raises several types; all mean a bad config
                raise DlrunError(f"Invalid {self.group} config for '{name}': {err}") from err
            missing = sorted(OmegaConf.missing_keys(cfg))
            if missing:
                keys = ", ".join(f"{self.group}.{key}" for key in missing)
                raise DlrunError(
                    f"The {self.group} config for '{name}' leaves out {keys}: give a value "
                    f"in its YAML file or on the command line, e.g. {self.group}.{missing[0]}=..."
                )
            ranges.check(cfg, entry.schema, prefix or self.group)
        return entry.builder(cfg, *args, **kwargs)


MODELS = Registry("model")
DATASETS = Registry("dataset")
OPTIMIZERS = Registry("optimizer")
INITS = Registry("init")
REGULARIZERS = Registry("regularizer")
SCHEDULERS = Registry("scheduler")
