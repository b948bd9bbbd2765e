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
    # One thread per run: smoke-sized models gain nothing from more, and the suite runs
    # its tests in parallel (pytest -n auto).
    full_env.update({"HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1", **(env or {})})
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


def write_fake_fashion_mnist(root: Path, n_train: int = 600, n_test: int = 200) -> Path:
    """Small random IDX files in torchvision's layout, for runs that need no download."""
    import struct

    import numpy as np

    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(">I", 0x800 | array.ndim)
            header += b"".join(struct.pack(">I", size) for size in array.shape)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(header + array.tobytes())
    return root


PHONE_COLUMNS = [
    *("battery_power", "blue", "clock_speed", "dual_sim", "fc", "four_g", "int_memory"),
    *("m_dep", "mobile_wt", "n_cores", "pc", "px_height", "px_width", "ram", "sc_h", "sc_w"),
    *("talk_time", "three_g", "touch_screen", "wifi"),
]


def write_fake_phone_csv(path: Path, rows: int = 200) -> Path:
    """A CSV with the Kaggle phone data's columns; price_range follows ram, as in the real one."""
    import numpy as np

    rng = np.random.default_rng(0)
    table = {name: rng.integers(0, 2000, size=rows) for name in PHONE_COLUMNS}
    table["price_range"] = np.digitize(table["ram"], [500, 1000, 1500])
    lines = [",".join([*PHONE_COLUMNS, "price_range"])]
    for i in range(rows):
        lines.append(",".join(str(table[c][i]) for c in [*PHONE_COLUMNS, "price_range"]))
    path.write_text("\n".join(lines) + "\n")
    return path
