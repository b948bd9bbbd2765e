"""scikit-learn's bundled 8x8 handwritten digits, resized to MNIST's 28x28.

It ships inside scikit-learn, so it runs anywhere with no download: the smoke runs and the
tests use it. The resized images and the split are cached as tensors (data/cache.py), so a
run after the first does not import scikit-learn at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlrun.config.options.data import DigitsConfig
from dlrun.config.registry import DATASETS
from dlrun.data.cache import cache_folder, cached
from dlrun.data.dataset import Dataset, DatasetMeta, Split


@DATASETS.register("digits")
def digits(cfg: DigitsConfig) -> Dataset:
    key = f"digits-{cfg.image_size}-{cfg.test_size}-{cfg.random_state}-{_sklearn_version()}.pt"
    tensors = cached(cache_folder() / key, lambda: _decode(cfg))
    meta = DatasetMeta(
        task="classification",
        input_shape=tuple(tensors["images"].shape[1:]),
        num_classes=10,
        class_names=tuple(str(d) for d in range(10)),
    )
    images, targets = tensors["images"], tensors["targets"]
    train_idx, test_idx = tensors["train_idx"], tensors["test_idx"]
    return Dataset(
        train=Split(images[train_idx], targets[train_idx], scale=1 / 255),
        test=Split(images[test_idx], targets[test_idx], scale=1 / 255),
        meta=meta,
    )


def _decode(cfg: DigitsConfig) -> dict:
    """The images resized and the stratified split drawn: what scikit-learn is needed for."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

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
    return {
        "images": images,
        "targets": targets,
        "train_idx": torch.tensor(train_idx),
        "test_idx": torch.tensor(test_idx),
    }


def _sklearn_version() -> str:
    """Read from the package metadata: importing scikit-learn takes seconds."""
    from importlib.metadata import version

    return version("scikit-learn")
