"""The DataLoader path gives the same batches' contents as the tensor path, scaled alike."""

from __future__ import annotations

import torch

from dlrun.data.dataset import Split
from dlrun.data.loader import LoaderSplit


def split() -> Split:
    inputs = torch.arange(50 * 4, dtype=torch.uint8).reshape(50, 1, 2, 2)
    return Split(inputs, torch.arange(50), scale=1 / 255)


def collect(source, **kwargs):
    xs, ys = zip(*source.batches(8, **kwargs), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_loader_covers_each_sample_once_and_scales_like_the_tensor_path():
    tensor_x, tensor_y = collect(split())
    loader = LoaderSplit(split(), torch.device("cpu"), num_workers=0, pin_memory=False)
    loader_x, loader_y = collect(loader)
    assert torch.equal(loader_y, tensor_y) and torch.equal(loader_x, tensor_x)
    assert loader_x.dtype == torch.float32 and loader_x.max() <= 1.0
    shuffled_x, shuffled_y = collect(
        loader, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    assert sorted(shuffled_y.tolist()) == list(range(50)) and shuffled_y.tolist() != list(range(50))
    torch.testing.assert_close(shuffled_x, tensor_x[shuffled_y])


def test_loader_shuffle_is_seeded_and_independent_of_workers():
    orders = []
    for workers in (0, 2):
        loader = LoaderSplit(split(), torch.device("cpu"), num_workers=workers, pin_memory=False)
        _, y = collect(loader, shuffle=True, generator=torch.Generator().manual_seed(3))
        orders.append(y.tolist())
    assert orders[0] == orders[1]
    assert loader.num_batches(8, drop_last=True) == 6 and loader.num_batches(8) == 7
