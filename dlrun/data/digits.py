"""scikit-learn's bundled 8x8 handwritten digits, resized to MNIST's 28x28.

It ships inside scikit-learn, so it runs anywhere with no download: the smoke runs and the
tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import MISSING

from dlrun.data.base import Dataset, DatasetMeta, Split
from dlrun.errors import DlrunError
from dlrun.registry import DATASETS


@dataclass
class DigitsConfig:
    name: str = MISSING
    image_size: int = MISSING
    test_size: float = MISSING
    random_state: int = MISSING


@DATASETS.register("digits", schema=DigitsConfig)
def digits(cfg: DigitsConfig) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < cfg.test_size < 1:
        raise DlrunError(
            f"dataset.test_size={cfg.test_size} is out of range: give a fraction between 0 and 1."
        )
    if cfg.image_size < 8:
        raise DlrunError(f"dataset.image_size={cfg.image_size} is too small: use 8 or more.")
    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().unsqueeze(1) / 16.0  # values 0..16
    images = F.interpolate(images, size=(cfg.image_size,) * 2, mode="bilinear")
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    targets = torch.from_numpy(bunch.target).long()
    train_idx, test_idx = train_test_split(
        range(len(targets)),
        test_size=cfg.test_size,
        stratify=bunch.target,
        random_state=cfg.random_state,
    )
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    meta = DatasetMeta(
        task="classification",
        input_shape=tuple(images.shape[1:]),
        num_classes=10,
        class_names=tuple(str(d) for d in range(10)),
    )
    return Dataset(
        train=Split(images[train_idx], targets[train_idx], scale=1 / 255),
        test=Split(images[test_idx], targets[test_idx], scale=1 / 255),
        meta=meta,
    )
