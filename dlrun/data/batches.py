"""Mini-batches by indexing in-memory tensors: a seeded permutation per epoch, no workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from dlrun.data.dataset import Split


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    order: torch.Tensor | None = None,
    skip: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (inputs, targets) batches on the split's device, inputs as float32.

    `order` takes these samples in this order instead (a data-parallel rank's share);
    `skip` starts at batch `skip` of the epoch.
    """
    if order is not None:
        order = order.to(split.targets.device)
    elif shuffle:
        order = torch.randperm(len(split), generator=generator).to(split.targets.device)
    n = len(split) if order is None else len(order)
    stop = n - n % batch_size if drop_last else n
    for start in range(skip * batch_size, stop, batch_size):
        if order is None:
            x = split.inputs[start : start + batch_size]
            y = split.targets[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            x, y = split.inputs[index], split.targets[index]
        if split.scale is None:
            x = x.float()
        else:  # uint8 images: .to() copies, so scaling in place leaves the split untouched
            x = x.to(torch.float32).mul_(split.scale)
        yield x, y


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)
