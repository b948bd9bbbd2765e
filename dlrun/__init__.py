"""dlrun: run, vary and compare deep-learning fundamentals, from the command line or Python.

`dlrun.train`, `dlrun.sweep`, `dlrun.lr_find` and `dlrun.load` (api.py) are imported on
first use, so that `import dlrun` stays cheap.
"""

from __future__ import annotations

from typing import Any

from dlrun.version import __version__ as __version__

__all__ = ["load", "lr_find", "sweep", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from dlrun import api

        return getattr(api, name)
    raise AttributeError(f"module 'dlrun' has no attribute {name!r}")
