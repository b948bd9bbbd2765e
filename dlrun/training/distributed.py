"""Data-parallel training under torchrun: one process per device, rank 0 writes the run.

`torchrun --nproc_per_node=N -m dlrun ...` starts N copies of one run. Each copy (rank)
takes its share of every epoch's permutation (`Shard`), DistributedDataParallel averages the
gradients, the metric sums of all ranks are added up before anything is written, and only
rank 0 writes the run folder, the checkpoints and the log. `trainer.batch_size` stays the
global batch: each rank trains on batch_size / N samples per step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dlrun.data.batches import num_batches
from dlrun.data.sequences import SequenceSplit
from dlrun.errors import DlrunError
from dlrun.training.seeding import seed_everything
from dlrun.training.world import World

# Ranks agree on a stop signal every this many steps: often enough to stop within a fraction
# of a second, rarely enough that the extra collective costs nothing measurable.
STOP_CHECK_EVERY = 10


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group (nccl on GPUs, gloo on CPUs); the device this rank trains on."""
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise DlrunError(
                f"torchrun started {world.local_size} processes on this machine but it has "
                f"{torch.cuda.device_count()} CUDA device(s): use --nproc_per_node="
                f"{torch.cuda.device_count()} or fewer."
            )
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise DlrunError(
            f"Data-parallel training runs on cuda (nccl) or cpu (gloo), not {device.type}: "
            f"set trainer.device=cuda or trainer.device=cpu."
        )
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The module the loop runs forward: gradients are averaged across ranks in backward."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def per_rank_batch(batch_size: int, world: World) -> int:
    if batch_size % world.size:
        raise DlrunError(
            f"trainer.batch_size={batch_size} is the global batch of {world.size} processes and "
            f"must divide evenly among them: use a multiple of {world.size}."
        )
    return batch_size // world.size


def seed_epoch(seed: int, world: World, epoch: int) -> None:
    """Seed this rank for the epoch after `epoch`: each rank draws its own dropout masks,
    and a resumed run draws the same ones as a run never stopped (each rank's random state
    cannot come back from rank 0's checkpoint)."""
    seed_everything(seed + world.rank + world.size * epoch)


class Reducer:
    """Adds up per-rank tensors and agrees on stopping, over the process group."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._calls = 0

    def sum(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = sorted(values)
        packed = torch.stack([values[n].detach().to(self.device, torch.float64) for n in names])
        dist.all_reduce(packed)
        return dict(zip(names, packed, strict=True))

    def max(self, value: torch.Tensor) -> torch.Tensor:
        value = value.detach().to(self.device).clone()
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return value

    def agree(self, stop: str | None, due: bool) -> tuple[str | None, bool]:
        """A signal any rank received, and whether any rank's checkpoint is due: decided
        together every STOP_CHECK_EVERY calls.

        Every rank calls this at the same points (each step and each epoch start), so they
        all reach the same answer at the same step, and none waits for a rank that left.
        """
        self._calls += 1
        if self._calls % STOP_CHECK_EVERY:
            return None, False
        flags = torch.tensor([stop is not None, due], dtype=torch.long, device=self.device)
        stop_flag, due_flag = self.max(flags).tolist()
        return ((stop or "SIGTERM") if stop_flag else None), bool(due_flag)


def gather(value: Any, world: World) -> list[Any]:
    """Every rank's `value`, in rank order (one process: just its own)."""
    if not world.distributed:
        return [value]
    values: list[Any] = [None] * world.size
    dist.all_gather_object(values, value)
    return values


class Shard:
    """One rank's share of a split: every `size`-th sample of the epoch's order.

    All ranks draw the same permutation from the shared shuffle generator, so their shares
    are disjoint and together cover the epoch. Training shares are cut to equal length
    (each rank must take the same number of steps); evaluation shares keep every sample.
    """

    stateful = False

    def __init__(self, split, world: World, even: bool) -> None:
        if isinstance(split, SequenceSplit):
            raise DlrunError(
                "Data-parallel training shards data sets of independent samples; text is read "
                "as sequences: train language models in one process."
            )
        self.split, self.world, self.even = split, world, even

    def __len__(self) -> int:
        n = len(self.split)
        return (
            n // self.world.size if self.even else len(range(self.world.rank, n, self.world.size))
        )

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return num_batches(len(self), batch_size, drop_last)

    def batches(
        self, batch_size: int, *, shuffle=False, drop_last=False, generator=None, skip: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.split)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        end = n - n % self.world.size if self.even else n
        share = order[self.world.rank : end : self.world.size]
        return self.split.batches(batch_size, drop_last=drop_last, order=share, skip=skip)
