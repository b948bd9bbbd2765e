"""`dlrun --help` and config errors do not pay for the heavy libraries a run imports later."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torchvision", "pandas", "matplotlib", "sklearn", "mlflow", "tensorboard")


@pytest.mark.parametrize("args", [("--help",), ("trainer.epochs=abc",)])
def test_help_and_config_errors_import_no_heavy_library(tmp_path, args):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dlrun", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "dlrun.cli" in imported  # the import log was read
    assert not [name for name in imported if name.split(".")[0] in HEAVY]
