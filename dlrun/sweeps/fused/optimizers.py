"""The members' optimizers stepped as one per optimizer class.

torch.optim's optimizers update each parameter element by element with its group's
settings, so the members' groups that have the same settings can be stepped as one group:
the same arithmetic, in one call (on cuda, one foreach kernel for all members instead of
one per member). The merged optimizer's state looks each parameter up in its member's
optimizer, so a member's checkpoint holds its own state. The groups are merged again at
each epoch's start: a member's scheduler changes its own group's settings at epoch ends.

The merged groups take torch.optim's foreach implementation, which on the CPU too updates
a list of tensors in one call instead of a Python loop over them: a group of 25 small models
has a hundred parameters. Its arithmetic is the loop's, operation for operation, so every
member's parameters come out bit for bit the same (tests/test_fused.py holds them to it).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch

HOOKS = (
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks",
    "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)


class MemberStates(dict):
    """Each parameter's state, kept by the optimizer of the member that owns it."""

    def __init__(self, owners: dict[torch.Tensor, dict]) -> None:
        super().__init__()
        self.owners = owners

    def __getitem__(self, param: torch.Tensor) -> dict:
        return self.owners[param][param]  # created there, as alone, on a first step

    def get(self, param: torch.Tensor, default=None):
        owner = self.owners.get(param)
        return owner[param] if owner is not None and param in owner else default


def merged(optimizers: Sequence[torch.optim.Optimizer]) -> list[torch.optim.Optimizer]:
    """One optimizer per class over the members' parameter groups and state."""
    by_class: dict[type, list[torch.optim.Optimizer]] = {}
    for optimizer in optimizers:
        by_class.setdefault(type(optimizer), []).append(optimizer)
    result = []
    for same in by_class.values():
        one = copy.copy(same[0])
        one.param_groups = _merged_groups([g for optimizer in same for g in optimizer.param_groups])
        one.state = MemberStates(
            {
                param: optimizer.state
                for optimizer in same
                for group in optimizer.param_groups
                for param in group["params"]
            }
        )
        for hooks in HOOKS:  # the members' own hooks stay theirs
            setattr(one, hooks, OrderedDict())
        result.append(one)
    return result


def _merged_groups(groups: list[dict]) -> list[dict]:
    """Groups with the same settings as one group of all their parameters, stepped by the
    foreach implementation where the optimizer has one (a `foreach` setting left to torch)."""
    by_settings: dict[str, dict] = {}
    for group in groups:
        settings = {key: value for key, value in group.items() if key != "params"}
        key = repr(sorted(settings.items()))
        if key not in by_settings:
            by_settings[key] = {**settings, "params": []}
            if settings.get("foreach", False) is None:
                by_settings[key]["foreach"] = True
        by_settings[key]["params"].extend(group["params"])
    return list(by_settings.values())
