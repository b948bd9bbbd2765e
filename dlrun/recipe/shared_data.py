"""Data sets built once for several runs in one process (the members of a fused sweep).

A run builds its data set after seeding, so a build that drew from the global random state
would leave a later run's initialisation different if it were skipped. A data set is reused
only when the build drew nothing, or when it starts from the same random state as the one
that built it, whose state after the build is then taken up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from dlrun.training.seeding import rng_state, set_rng_state


class SharedData:
    def __init__(self) -> None:
        self._built: dict[str, tuple[Any, dict, dict]] = {}
        self._placed: dict[tuple[int, str], Any] = {}

    def dataset(self, config: dict, build: Callable[[], Any]) -> Any:
        """The data set `config` describes, built by `build` once."""
        key = json.dumps(config, sort_keys=True, default=str)
        before = rng_state()
        if key in self._built:
            data, built_from, after = self._built[key]
            if _same(after, built_from):
                return data
            if _same(before, built_from):
                set_rng_state(after)
                return data
        data = build()
        self._built[key] = (data, before, rng_state())
        return data

    def placed(self, split: Any, device: torch.device, place: Callable[[], Any]) -> Any:
        """`split` on `device`: one copy on the device for every run that uses it."""
        key = (id(split), str(device))
        if key not in self._placed:
            self._placed[key] = (split, place())  # the split is kept, so its id stays its own
        return self._placed[key][1]


def _same(a: dict, b: dict) -> bool:
    return (
        a["python"][0] == b["python"][0]
        and torch.equal(a["python"][1], b["python"][1])
        and a["python"][2] == b["python"][2]
        and torch.equal(a["torch"], b["torch"])
        and all(map(torch.equal, a.get("cuda", []), b.get("cuda", [])))
    )
