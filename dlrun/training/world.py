"""Which process of a data-parallel run this is, as torchrun's environment says.

Torch-free, so that the command line can ask before it imports anything heavy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dlrun.errors import DlrunError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env(env: Mapping[str, str] = os.environ) -> World:
    """The ranks torchrun describes in the environment; one process when there is none."""
    try:
        return World(
            rank=int(env.get("RANK", 0)),
            size=int(env.get("WORLD_SIZE", 1)),
            local_rank=int(env.get("LOCAL_RANK", 0)),
            local_size=int(env.get("LOCAL_WORLD_SIZE", 1)),
        )
    except ValueError as err:
        raise DlrunError(
            f"RANK, WORLD_SIZE, LOCAL_RANK or LOCAL_WORLD_SIZE is not a number ({err}); "
            f"start data-parallel runs with torchrun, which sets them."
        ) from err
