"""Hydra's config errors, said as one paragraph that names the bad value and what is allowed.

Hydra answers `trainer.epoch=3` with "To append to your config use +trainer.epoch=3", which
is the wrong advice for a misspelt key: here it names the closest real key instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from dlrun.config.ranges import field_dataclass
from dlrun.config.schema import first_line, unknown_key
from dlrun.errors import ConfigError

CONFIG_MODULE = "dlrun.conf"
VERSION_BASE = "1.3"


def explain(err: Exception, overrides: Sequence[str]) -> ConfigError:
    """A ConfigError for a failed composition (Hydra's ConfigCompositionException and kin)."""
    message = str(err).strip()
    prefix = "Could not override '"
    if message.startswith(prefix):
        key = message[len(prefix) :].split("'", 1)[0]
        return misspelt_key(key, overrides)
    detail = first_line(err.__cause__) if err.__cause__ is not None else ""
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    return ConfigError(f"{text}{': ' + detail if detail else ''}".rstrip(".") + ".")


def misspelt_key(key: str, overrides: Sequence[str]) -> ConfigError:
    """The key does not exist: name the closest key of its parent node, and the others."""
    argument = next((o for o in overrides if o.split("=", 1)[0] == key), key)
    keys = sibling_keys(key.rpartition(".")[0], [o for o in overrides if o != argument])
    if keys is None:
        return ConfigError(f"{argument}: {key} is not a key of the config.")
    return ConfigError(f"{argument}: {unknown_key(key, keys)}")


def sibling_keys(parent: str, overrides: Sequence[str]) -> list[str] | None:
    """The keys of `parent`: from its schema when the arguments say which one it is, else
    from the config these overrides compose (None if that fails too)."""
    from omegaconf import DictConfig, OmegaConf

    schema = schema_of(parent, overrides)
    if schema is not None:
        return [spec.name for spec in dataclasses.fields(schema)]
    try:
        cfg = compose(overrides)
    except Exception:  # another bad override: try the group choices alone
        try:
            cfg = compose([o for o in overrides if "." not in o.split("=", 1)[0]])
        except Exception:
            return None
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return [str(k) for k in node] if isinstance(node, DictConfig) else None


def schema_of(parent: str, overrides: Sequence[str]) -> type | None:
    """The dataclass that holds `parent`'s keys, when known without composing.

    The top level and its typed nodes (trainer, diagnostics...) have one schema; a group's
    node has its option's, the option picked on the command line or the default one. A
    preset (experiment=...) may pick other options: then only composing tells.
    """
    from dlrun.config.groups import defaults
    from dlrun.config.options import SCHEMAS
    from dlrun.config.schema import Config

    schema: type | None = Config
    for part in parent.split(".") if parent else []:
        if schema is Config and part in SCHEMAS:
            if any(o.lstrip("+").startswith(("experiment", "hparams_search")) for o in overrides):
                return None
            chosen = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == part]
            option = chosen[-1] if chosen else defaults().get(part)
            schema = SCHEMAS[part].get(str(option))
        else:
            fields = {spec.name: spec.type for spec in dataclasses.fields(schema)}
            schema = field_dataclass(fields.get(part), schema)
        if schema is None:
            return None
    return schema


def compose(overrides: Sequence[str]):
    """The job config that `dlrun OVERRIDES` runs, composed in this process."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from dlrun.config.schema import register_configs

    register_configs()  # the job config only: the run folder's resolvers are Hydra's part
    GlobalHydra.instance().clear()
    with initialize_config_module(CONFIG_MODULE, version_base=VERSION_BASE):
        return hydra_compose("config", overrides=list(overrides))
