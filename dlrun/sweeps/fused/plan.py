"""Which of a sweep's jobs train as one program, and why the others run alone.

Jobs are grouped by their config less what members may differ in (FREE). Once set up,
members are grouped again by what decides the operations of a step (`signature`): the
parameters' shapes, the layers, the data's sizes, and where a resumed run stands.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

# What members of one group may differ in: the seed, the initialisation, the optimizer,
# the scheduler, the regularizers' strengths, what each run records, and the epochs (a
# member leaves the group after its last). Dropout rates may differ; its layers may not.
FREE = (
    "seed",
    "init",
    "optimizer",
    "scheduler",
    "regularizer",
    "logger",
    "diagnostics",
    "report",
    "reference",
    "optimized_metric",
    "trainer.epochs",
    "trainer.resume",
    "trainer.checkpoint_every",
    "trainer.monitor",
    "trainer.monitor_mode",
    "dataset.seed",
    "model.dropout",
)


# The config groups every dlrun run has; another Hydra app's config lacks them.
DLRUN_GROUPS = ("trainer", "model", "dataset", "optimizer")


def is_dlrun_config(cfg: DictConfig) -> bool:
    return all(group in cfg for group in DLRUN_GROUPS)


def alone_reason(cfg: DictConfig) -> str | None:
    """Why a job's config cannot be fused, or None."""
    trainer, model = cfg.trainer, cfg.model
    if cfg.get("lr_find") is not None:
        return "a learning-rate range test runs alone"
    if cfg.get("debug") is not None:
        return f"debug={cfg.debug.mode.value}: a debug run runs alone"
    if trainer.data_path != "tensor":
        return f"trainer.data_path={trainer.data_path}: its batches come from a DataLoader"
    if str(trainer.precision) != "32":
        return f"trainer.precision={trainer.precision}: mixed precision is not fused"
    if trainer.compile:
        return "trainer.compile=true: a compiled model runs alone"
    if trainer.channels_last:
        return "trainer.channels_last=true: the layout is not fused"
    if model.get("batch_norm"):
        return "batch norm's running statistics are updated in place, which vmap cannot do"
    if cfg.dataset.name == "text" or model.name == "char_rnn":
        return "a recurrent model carries its hidden state from batch to batch"
    return None


def config_key(cfg: DictConfig) -> str:
    config = {
        key: OmegaConf.to_container(cfg[key], resolve=True, enum_to_str=True)
        if isinstance(cfg[key], DictConfig | ListConfig)
        else cfg[key]
        for key in cfg
        if key != "hydra"
    }
    for dotted in FREE:
        *parents, leaf = dotted.split(".")
        node: Any = config
        for parent in parents:
            node = node.get(parent, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return json.dumps(config, sort_keys=True, default=str)


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def model_reason(model: nn.Module) -> str | None:
    """What a built model holds that the fused forward cannot carry, or None."""
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        return f"its model has buffers updated while training ({', '.join(buffers[:3])})"
    return None


def signature(recipe) -> tuple:
    """What decides the operations of a training step, and where the run stands."""
    state, model = recipe.state, recipe.state.model
    layers = tuple(
        "Dropout" if isinstance(module, nn.Dropout) else repr(module)
        for module in model.modules()
        if not list(module.children())
    )
    shapes = tuple((name, tuple(p.shape), str(p.dtype)) for name, p in model.named_parameters())
    batches = state.progress.batches if state.progress else 0
    return (
        layers,
        shapes,
        len(recipe.train_split),
        len(recipe.test_split),
        recipe.batch_size,
        str(recipe.device),
        state.epoch,
        batches,
        state.step,
    )
