"""The config groups a user picks from, their options, and the check of a chosen option.

Read from the YAML files of the `dlrun.conf` package, without composing a config: the help
lists them, and `model=lenett` or `experiment=lenet_fashon` fails with the list of options
and the closest one before Hydra starts. (Hydra itself would skip an unknown option of an
`optional` group such as `experiment` without a word.)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources

from dlrun.errors import ConfigError, DlrunError

# One line each, in the order the help lists them.
GROUPS = {
    "model": "the network",
    "dataset": "the data it learns from",
    "optimizer": "how the weights move",
    "regularizer": "a list: l1, l2, dropout, grad_clip, early_stopping",
    "init": "initial weights",
    "scheduler": "the learning rate per epoch",
    "trainer": "epochs, batch size, device, precision, resume",
    "logger": "a list of trackers besides the CSV files",
    "experiment": "a tutorial's preset (applied after the groups, so it wins)",
    "hparams_search": "a hyperparameter search, run with -m",
    "debug": "a debugging run (applied after the preset)",
    "lr_find": "the learning-rate finder's range (dlrun-lr-find picks it)",
}
# Groups that pick what the command does rather than what it trains: an option none of
# their files provides is a usage error (status 2), not a config that fails to compose.
MODE_GROUPS = ("debug", "lr_find")
# A subgroup that a preset's sweep picks from (+experiment/optimizers=adam).
SUBGROUPS = ("experiment/optimizers",)
# Arguments that add config folders of the user's own: their options are not ours to list.
OWN_CONFIGS = ("hydra.searchpath", "--config-dir", "-cd", "--config-path", "-cp")


@dataclass(frozen=True)
class Choice:
    group: str
    option: str
    argument: str


def options(group: str) -> list[str]:
    """The options of a group: the YAML files in conf/<group>/, without the suffix."""
    folder = resources.files("dlrun.conf").joinpath(group)
    if not folder.is_dir():
        return []
    names = (entry.name for entry in folder.iterdir() if entry.is_file())
    return sorted(name.removesuffix(".yaml") for name in names if name.endswith(".yaml"))


def defaults() -> dict[str, str]:
    """{group: default option} from the defaults list of conf/config.yaml."""
    import yaml

    text = resources.files("dlrun.conf").joinpath("config.yaml").read_text(encoding="utf-8")
    chosen: dict[str, str] = {}
    for entry in yaml.safe_load(text)["defaults"]:
        if isinstance(entry, dict):
            for group, option in entry.items():
                group = group.removeprefix("optional ")
                if group in GROUPS and option is not None:
                    chosen[group] = ",".join(option) if isinstance(option, list) else str(option)
    return chosen


def check_choices(arguments: Sequence[str]) -> None:
    """Raise a ConfigError for an option that no YAML file of its group provides."""
    if any(argument.startswith(OWN_CONFIGS) for argument in arguments):
        return
    for choice in choices(arguments):
        known = options(choice.group)
        if choice.option in known:
            continue
        close = difflib.get_close_matches(choice.option, known, n=1)
        hint = f" Did you mean {choice.group}={close[0]}?" if close else ""
        error = DlrunError if choice.group in MODE_GROUPS else ConfigError
        raise error(
            f"{choice.argument}: {choice.group} has no option '{choice.option}'.{hint} "
            f"Options of {choice.group}: {', '.join(known)} (the files in conf/{choice.group}/)."
        )


def check_modes(arguments: Sequence[str]) -> None:
    """One debug mode at a time, and a mode's keys only with the mode picked: raise a
    DlrunError for `debug=[fast,overfit]` or `debug.batches=3` alone."""
    if any(argument.startswith(OWN_CONFIGS) for argument in arguments):
        return
    picked = {choice.group for choice in choices(arguments)}
    for argument in arguments:
        key, _, value = argument.lstrip("+~").partition("=")
        group, dot, _ = key.partition(".")
        if group not in MODE_GROUPS:
            continue
        if not dot and value.startswith("["):
            raise DlrunError(
                f"{argument}: {group} takes one option at a time. Run the modes one after "
                f"another, or sweep over them with -m ({group}={value.strip('[]')})."
            )
        if dot and group not in picked:
            pick = (
                "use dlrun-lr-find"
                if group == "lr_find"
                else "add debug=" + "|".join(options(group))
            )
            raise DlrunError(
                f"{argument} sets a key of {group}, which this command does not run: {pick}."
            )


def choices(arguments: Sequence[str]) -> Iterator[Choice]:
    """Every group option the arguments pick, sweeps and lists included."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    overrides = [a for a in arguments if not a.startswith("-") and "=" in a]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # a malformed override: Hydra reports it with its own message
        return
    for override, argument in zip(parsed, overrides, strict=True):
        group = override.key_or_group.lstrip("/")
        if (group not in GROUPS and group not in SUBGROUPS) or override.is_delete():
            continue
        value = override.value()
        if isinstance(value, ChoiceSweep):
            values = list(value.list)
        elif override.is_sweep_override():  # glob(), range(): nothing to check one by one
            continue
        else:
            values = [value]
        for item in values:
            for option in item if isinstance(item, list) else [item]:
                if option is not None:
                    yield Choice(group, str(option), argument)
