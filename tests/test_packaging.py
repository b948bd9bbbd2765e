"""The configs ship inside the wheel: an installed wheel runs from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installed_elsewhere_finds_its_configs(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("dlrun", "conf", "hydra_plugins"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("dlrun-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dlrun/conf/config.yaml" in names
    assert "dlrun/conf/model/lenet.yaml" in names
    assert "dlrun/reporting/templates/report.html" in names  # report.html's template
    assert "hydra_plugins/dlrun_fused_launcher/fused_launcher.py" in names

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def installed(*args: str) -> subprocess.CompletedProcess:
        """`python ARGS` in another folder, with the installed copy on the path."""
        return subprocess.run(
            [sys.executable, *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    where = installed("-c", "import dlrun; print(dlrun.__file__)")
    assert where.stdout.strip().startswith(str(site)), "the test must run the installed copy"

    result = installed("-m", "dlrun", "dataset=digits", "trainer=smoke")
    assert result.returncode == 0, result.stderr
    (summary,) = (elsewhere / "outputs").glob("*/*/summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"

    # The fused launcher comes with the wheel: Hydra finds it in the installed copy.
    launcher = installed("-m", "dlrun", "hydra/launcher=fused", "--cfg", "hydra")
    assert launcher.returncode == 0, launcher.stderr
    assert "hydra_plugins.dlrun_fused_launcher.fused_launcher.FusedLauncher" in launcher.stdout
