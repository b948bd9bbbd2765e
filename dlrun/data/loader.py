"""The classic DataLoader path, for data that should not sit on the training device whole.

`trainer.data_path=dataloader` wraps a split held in CPU memory: batches come from a
torch DataLoader (worker processes, pinned memory) and move to the device one at a time.
The default tensor path indexes tensors already on the device and is faster for our data.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from dlrun.data.dataset import Split


class LoaderSplit:
    stateful = False

    def __init__(
        self, split: Split, device: torch.device, num_workers: int, pin_memory: bool
    ) -> None:
        self.split, self.device = split, device
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.dataset = TensorDataset(split.inputs, split.targets)

    def __len__(self) -> int:
        return len(self.split)

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return self.split.num_batches(batch_size, drop_last)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        order: torch.Tensor | None = None,
        skip: int = 0,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches in the DataLoader's shuffle, or of the samples in `order` (a rank's share).

        The samplers are the ones DataLoader(shuffle=...) builds, drawn from the generator in
        the same order; skipped batches are passed over as lists of indices, never loaded.
        """
        shuffled = shuffle and order is None
        if order is not None:
            sampler: Iterable[int] = order.tolist()
        elif shuffled:
            sampler = RandomSampler(self.dataset, generator=generator)
        else:
            sampler = SequentialSampler(self.dataset)
        loader = DataLoader(
            self.dataset,
            batch_sampler=_Skipping(BatchSampler(sampler, batch_size, drop_last), skip),
            generator=generator if shuffled else None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and self.device.type == "cuda",
        )
        for x, y in loader:
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            if self.split.scale is None:
                yield x.float(), y
            else:
                yield x.to(torch.float32).mul_(self.split.scale), y


class _Skipping:
    """A batch sampler that starts at batch `skip`."""

    def __init__(self, batch_sampler: BatchSampler, skip: int) -> None:
        self.batch_sampler, self.skip = batch_sampler, skip

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.skip, 0)
