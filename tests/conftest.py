"""Helpers for running the real `dlrun` command in a subprocess, in a folder of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SMOKE = ("dataset=digits", "trainer=smoke")


def run_dlrun(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 180
) -> subprocess.CompletedProcess:
    """Run `python -m dlrun ARGS` in `cwd`; returns the finished process (never raises on exit)."""
    full_env = {k: v for k, v in os.environ.items() if k != "DLRUN_DATA"}
    full_env.update({"HYDRA_FULL_ERROR": "0", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "dlrun", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_folders(cwd: Path) -> list[Path]:
    """Single-run folders under cwd/outputs/<date>/, oldest first."""
    return sorted(p for p in (cwd / "outputs").glob("*/*") if p.parent.name != "multirun")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def compose(*overrides: str):
    """The config that `dlrun OVERRIDES` would run, composed in this process."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    import dlrun.builtins  # noqa: F401  (registers the built-in options and schemas)
    from dlrun.config import register_configs
    from dlrun.naming import register_resolvers

    register_configs()
    register_resolvers()
    with initialize_config_module("dlrun.conf", version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))
