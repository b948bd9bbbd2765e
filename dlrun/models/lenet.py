"""LeNet-5 as the d2l book runs it on Fashion-MNIST, sized from the data set's metadata."""

from __future__ import annotations

from torch import nn

from dlrun.config.options.models import LeNetConfig
from dlrun.config.registry import MODELS
from dlrun.data.dataset import CLASSIFICATION, REGRESSION, DatasetMeta
from dlrun.errors import DlrunError
from dlrun.models.layers import activation, pool, require_task


@MODELS.register("lenet")
def lenet(cfg: LeNetConfig, meta: DatasetMeta) -> nn.Sequential:
    require_task("lenet", meta.task, CLASSIFICATION, REGRESSION)
    if len(meta.input_shape) != 3:
        raise DlrunError(
            f"LeNet needs image input (channels, height, width); this data set gives "
            f"rows of shape {meta.input_shape}. Use model=mlp for tabular data."
        )
    channels, height, width = meta.input_shape
    # conv1 keeps the size (padding 2), pool halves, conv2 (k5) takes 4, pool halves again.
    out_h, out_w = (height // 2 - 4) // 2, (width // 2 - 4) // 2
    if out_h < 1 or out_w < 1:
        raise DlrunError(
            f"LeNet needs images of at least 12x12 pixels; this data set gives {height}x{width}."
        )

    def norm(layer: type[nn.Module], size: int) -> list[nn.Module]:
        return [layer(size)] if cfg.batch_norm else []

    return nn.Sequential(
        nn.Conv2d(channels, 6, kernel_size=5, padding=2),
        *norm(nn.BatchNorm2d, 6),
        activation(cfg.activation),
        pool(cfg.pool),
        nn.Conv2d(6, 16, kernel_size=5),
        *norm(nn.BatchNorm2d, 16),
        activation(cfg.activation),
        pool(cfg.pool),
        nn.Flatten(),
        nn.Linear(16 * out_h * out_w, 120),
        *norm(nn.BatchNorm1d, 120),
        activation(cfg.activation),
        nn.Linear(120, 84),
        *norm(nn.BatchNorm1d, 84),
        activation(cfg.activation),
        nn.Linear(84, meta.outputs),
    )
