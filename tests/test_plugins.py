"""A user's own model, outside the package, registered through `plugins:` and selected."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import torch
from conftest import SMOKE, run_dlrun, run_folders

PLUGIN = textwrap.dedent(
    """
    from dataclasses import dataclass
    from math import prod

    from torch import nn

    from dlrun.config.registry import MODELS


    @dataclass
    class TinyConfig:
        name: str = "tiny"
        width: int = 8


    @MODELS.register("tiny", schema=TinyConfig)
    def tiny(cfg, meta):
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(prod(meta.input_shape), cfg.width),
            nn.ReLU(),
            nn.Linear(cfg.width, meta.num_classes),
        )
    """
)


def write_plugin(workdir):
    (workdir / "my_models.py").write_text(PLUGIN)
    (workdir / "conf" / "model").mkdir(parents=True)
    (workdir / "conf" / "model" / "tiny.yaml").write_text("name: tiny\nwidth: 16\n")
    return ("plugins=[my_models]", f"hydra.searchpath=[file://{workdir / 'conf'}]", "model=tiny")


def test_plugin_model_is_registered_and_trained(workdir):
    plugin_args = write_plugin(workdir)
    result = run_dlrun(*SMOKE, *plugin_args, cwd=workdir, process=True)
    assert result.returncode == 0, result.stderr
    assert "tiny (12,730 params)" in result.stdout  # 784*16+16 + 16*10+10
    (folder,) = run_folders(workdir)
    assert json.loads((folder / "summary.json").read_text())["status"] == "completed"
    assert len(pd.read_csv(folder / "metrics.csv")) == 2
    weights = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert weights["1.weight"].shape == (16, 784)


def test_plugin_schema_catches_a_typo(workdir):
    plugin_args = write_plugin(workdir)
    result = run_dlrun(*SMOKE, *plugin_args, "+model.widht=3", cwd=workdir, process=True)
    assert result.returncode == 2
    assert "widht" in result.stderr and "TinyConfig" in result.stderr


def test_missing_plugin_module_is_a_clear_error(workdir):
    result = run_dlrun(*SMOKE, "plugins=[not_a_module]", cwd=workdir, process=True)
    assert result.returncode == 2
    assert "not_a_module" in result.stderr and "Traceback" not in result.stderr
