"""Helpers for running the real `dlrun` command (in this process or its own), in a folder."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

# One torch thread for the runs in this process: smoke-sized models gain nothing from more,
# and the suite runs its tests in parallel (pytest -n auto).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Decoded data sets are cached per test session, not in the user's ~/.cache.
os.environ.setdefault("DLRUN_CACHE", tempfile.mkdtemp(prefix="dlrun-test-cache-"))

SMOKE = ("dataset=digits", "trainer=smoke")


def run_dlrun(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: int = 180,
    process: bool = False,
) -> subprocess.CompletedProcess:
    """`dlrun ARGS` in `cwd`: its exit status, stdout and stderr (never raises on exit).

    In this process by default, through the command's own `main()`: the same composing,
    run folder, printed errors and exit statuses, without paying Python's and torch's start
    again. `process=True` starts `python -m dlrun` instead, for what only a process of its
    own shows: signals, torchrun, launchers that start workers, plugin imports.
    """
    overrides = {"HYDRA_FULL_ERROR": "0", **(env or {})}
    if process:
        full_env = {k: v for k, v in os.environ.items() if k != "DLRUN_DATA"}
        # One thread per run: smoke-sized models gain nothing from more, and the suite runs
        # its tests in parallel (pytest -n auto).
        full_env.update({"OMP_NUM_THREADS": "1", **overrides})
        return subprocess.run(
            [sys.executable, "-m", "dlrun", *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    return _in_process(["dlrun", *args], cwd, overrides)


def _in_process(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    import torch

    from dlrun.cli import main as cli

    saved = (dict(os.environ), sys.argv, torch.get_num_threads())
    os.environ.pop("DLRUN_DATA", None)
    os.environ.update(env)
    sys.argv = argv
    try:
        return call_main(cli.main, argv, cwd)
    finally:
        environ, sys.argv, threads = saved
        os.environ.clear()
        os.environ.update(environ)
        torch.set_num_threads(threads)
        _close_log_handlers()


def call_main(
    main: Callable[[], None], argv: Sequence[str], cwd: Path
) -> subprocess.CompletedProcess:
    """A command's `main()` called in this process, in `cwd`: its exit status, stdout and
    stderr, as its own process would give them."""
    import contextlib
    import io
    import traceback

    out, err, status, folder = io.StringIO(), io.StringIO(), 0, os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exit:
                status = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
            except Exception:  # what Python prints for an uncaught error, and its status
                traceback.print_exc()
                status = 1
    finally:
        os.chdir(folder)
    return subprocess.CompletedProcess(list(argv), status, out.getvalue(), err.getvalue())


def _close_log_handlers() -> None:
    """Hydra's job logging leaves a handler on train.log and one on the captured stdout."""
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        handler.close()
        root.removeHandler(handler)


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
    from dlrun.config.schema import register_configs
    from dlrun.outputs.naming import register_resolvers

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


# Modules whose tests start processes (torchrun, launchers, signals, a kernel, a wheel) or
# train many jobs. They are handed out first, so that the two workers of `pytest -n auto`
# end together instead of one finishing a long test alone.
LONG_FIRST = (
    "test_distributed.py", "test_signals.py", "test_launchers.py", "test_compose.py",
    "test_experiments.py", "test_notebook.py", "test_packaging.py", "test_plugins.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in LONG_FIRST)  # stable: order kept within
