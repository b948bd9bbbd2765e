"""`dlrun --help`, `--cfg job` and config errors import no torch: they answer at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "pandas", "matplotlib", "sklearn", "mlflow", "tensorboard")


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--cfg", "job"),
        ("trainer.epochs=abc",),
        ("trainer.epoch=3",),
        ("+trainer.epoch=3",),
        ("model.activation=relux",),
        ("experiment=lenet_fashon",),
    ],
)
def test_help_and_config_errors_import_no_heavy_library(tmp_path, args):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dlrun", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "dlrun.cli.main" in imported  # the import log was read
    assert not [name for name in imported if name.split(".")[0] in HEAVY]


def test_help_lists_the_groups_a_user_picks_from_one_line_each(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dlrun", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "schema" not in result.stdout
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    for group in ("model", "dataset", "optimizer", "regularizer", "experiment", "hparams_search"):
        assert group in lines, result.stdout
    assert "[lenet]" in lines["model"] and "mlp" in lines["model"]
    assert "[none]" in lines["regularizer"] and "dropout" in lines["regularizer"]
    assert "lenet_fashion" in lines["experiment"]
