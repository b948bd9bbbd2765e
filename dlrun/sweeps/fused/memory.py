"""How many members a cuda device holds, measured on a group's first member.

A member costs its parameters and their gradients, its optimizer's state (at most two
tensors per parameter, Adam's), the stacked copies of both in a fused step, and the peak of
a training step on one batch, which one forward and backward of the first member shows.
The data set is shared by the members, so it is not counted again. The CPU has no such
limit here: hydra.launcher.max_members bounds a group there.
"""

from __future__ import annotations

import torch

from dlrun.sweeps.fused.members import Member
from dlrun.training.seeding import rng_state, set_rng_state

SHARE = 0.8  # of the free memory: the rest is left for the allocator's fragments


def device_limit(member: Member) -> tuple[int, int] | None:
    """The members the device's free memory fits, and one member's bytes; None off cuda."""
    device = member.recipe.device
    if device.type != "cuda":
        return None
    per_member = member_bytes(member)
    free, _ = torch.cuda.mem_get_info(device)
    return members_that_fit(free, per_member), per_member


def member_bytes(member: Member) -> int:
    recipe, model = member.recipe, member.state.model
    device = recipe.device
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    x, y = next(iter(recipe.train_split.batches(member.options.batch_size)))
    saved = rng_state()  # the probe's dropout draws are not the run's
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    output, _ = recipe.task.forward(model, x, None)
    recipe.task.loss(output, y).backward()
    peak = torch.cuda.max_memory_allocated(device) - before
    model.zero_grad(set_to_none=True)
    set_rng_state(saved)
    return peak + 4 * parameters + x.numel() * x.element_size()


def members_that_fit(free_bytes: int, per_member_bytes: int) -> int:
    """How many members `free_bytes` hold, keeping a margin; at least one."""
    return max(1, int(free_bytes * SHARE) // max(per_member_bytes, 1))
