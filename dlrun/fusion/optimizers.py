"""The members' optimizers stepped as one per optimizer class.

A merged optimizer's parameter groups are the members' own group dicts, and its state
looks each parameter up in its member's optimizer. A member's scheduler, a resume's new
learning rate and its checkpoint all see one state, and each group is updated by the
class's own step, as when the member steps alone: torch.optim's optimizers update each
group with that group's settings, element by element. Only the Python around each step
(one call instead of one per member) is saved.
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
        return self.owners[param][param]


def merged(optimizers: Sequence[torch.optim.Optimizer]) -> list[torch.optim.Optimizer]:
    """One optimizer per class over the members' parameter groups and state."""
    by_class: dict[type, list[torch.optim.Optimizer]] = {}
    for optimizer in optimizers:
        by_class.setdefault(type(optimizer), []).append(optimizer)
    result = []
    for same in by_class.values():
        one = copy.copy(same[0])
        one.param_groups = [group for optimizer in same for group in optimizer.param_groups]
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
