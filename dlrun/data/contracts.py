"""The contract of a batch source: what the loop, evaluation and sharding read batches from.

`Split` (independent samples), `SequenceSplit` (text, read as sequences), `LoaderSplit`
(batches through a torch DataLoader) and `Shard` (one rank's share of any of them) all
fulfil it; so does a plugin's own source.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class BatchSource(Protocol):
    # True when consecutive batches continue each other's sequences, so that a recurrent
    # model carries its hidden state from one batch to the next (text, consecutive sampling).
    stateful: bool

    def __len__(self) -> int:
        """The number of samples (sequences, for text)."""
        ...

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int: ...

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        skip: int = 0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs, targets) on the device the source was placed on; one epoch's worth.

        With `shuffle`, the order is drawn from `generator`, so a seeded run sees the same
        batches every time and a resumed run continues the same sequence of epochs. `skip`
        passes over the epoch's first batches without reading them, after drawing the order
        as usual: a run resumed mid-epoch goes on with the batch after its checkpoint.
        """
        ...
