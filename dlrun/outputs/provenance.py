"""Where a run came from: library versions and, from a checkout, the git commit."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch

from dlrun import version


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dlrun": version.__version__,
    }


@functools.cache  # asked for at every epoch's summary; the checkout does not change meanwhile
def git_commit() -> dict[str, object] | None:
    """The commit of the dlrun checkout this code runs from; None for an installed wheel."""
    source = Path(version.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(status.strip())}
