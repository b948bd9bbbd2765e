"""What every data set hands to the rest of dlrun: tensors in memory plus metadata.

All of our data sets fit in memory, so they are decoded once into tensors and batched by
indexing (see batches.py), which is several times faster than a per-sample Dataset with
PIL transforms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from dlrun.data.batches import batches, num_batches

CLASSIFICATION, REGRESSION, LANGUAGE_MODEL = "classification", "regression", "language_model"
TASKS = (CLASSIFICATION, REGRESSION, LANGUAGE_MODEL)


@dataclass(frozen=True)
class DatasetMeta:
    """What a model needs to size itself: the task and the shape of one input.

    classification: integer targets in [0, num_classes)
    regression: float targets of shape (num_outputs,)
    language_model: token ids in [0, len(vocab)), inputs and targets (batch, num_steps)
    """

    task: str
    input_shape: tuple[int, ...]  # (channels, height, width), (features,) or (num_steps,)
    num_classes: int = 0
    class_names: tuple[str, ...] = field(default=())
    num_outputs: int = 1
    feature_names: tuple[str, ...] = field(default=())
    vocab: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {TASKS}")

    @property
    def outputs(self) -> int:
        """Values a model predicts per sample (or per step): classes, targets or characters."""
        if self.task == CLASSIFICATION:
            return self.num_classes
        if self.task == REGRESSION:
            return self.num_outputs
        return len(self.vocab)


@dataclass
class Split:
    """One split held as tensors; uint8 images are scaled to [0, 1] as each batch is taken."""

    inputs: torch.Tensor
    targets: torch.Tensor
    scale: float | None = None

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.targets):
            raise ValueError(f"{len(self.inputs)} inputs but {len(self.targets)} targets")
        if self.scale is not None and self.inputs.dtype != torch.uint8:
            raise ValueError("scale applies to uint8 inputs only")

    def __len__(self) -> int:
        return len(self.targets)

    def head(self, n: int | None, seed: int = 0) -> Split:
        """The first n samples of a fixed shuffle: a smaller split with every class in it."""
        if n is None or n >= len(self):
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.inputs[order], self.targets[order], self.scale)

    def to(self, device: torch.device) -> Split:
        return Split(self.inputs.to(device), self.targets.to(device), self.scale)

    # Independent samples: no recurrent state is carried from one batch to the next.
    stateful = False

    def batches(
        self,
        batch_size: int,
        *,
        shuffle=False,
        drop_last=False,
        generator=None,
        order=None,
        skip: int = 0,
    ):
        return batches(
            self,
            batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            generator=generator,
            order=order,
            skip=skip,
        )

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return num_batches(len(self), batch_size, drop_last)


@dataclass
class Dataset:
    train: Split  # or a SequenceSplit (data/sequences.py): both batch themselves
    test: Split
    meta: DatasetMeta
    # Language models: what to generate after some epochs (a data/text.py Generation).
    generation: Any = None
