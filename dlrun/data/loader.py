"""The classic DataLoader path, for data that should not sit on the training device whole.

`trainer.data_path=dataloader` wraps a split held in CPU memory: batches come from a
torch DataLoader (worker processes, pinned memory) and move to the device one at a time.
The default tensor path indexes tensors already on the device and is faster for our data.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, TensorDataset

from dlrun.data.base import Split


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
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches in the DataLoader's shuffle, or of the samples in `order` (a rank's share)."""
        loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=shuffle and order is None,
            sampler=None if order is None else order.tolist(),
            drop_last=drop_last,
            generator=generator if shuffle and order is None else None,
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
