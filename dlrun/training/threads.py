"""CPU threads per job, so that jobs running side by side do not oversubscribe the cores.

torch gives every process all the cores. Two joblib jobs on two cores, or two torchrun
ranks, would each start that many threads and slow each other down; each gets its share
instead. An explicit `trainer.num_threads` always wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dlrun.training.world import World


def available_cpus() -> int:
    """Cores this process may run on (a SLURM or taskset limit included)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def thread_budget(
    configured: int | None,
    launcher: Mapping[str, Any] | None,
    world: World,
    cpus: int | None = None,
) -> int | None:
    """Threads for this job; None leaves torch's own choice (nothing runs beside it)."""
    if configured is not None:
        return configured
    cpus = cpus or available_cpus()
    target = str((launcher or {}).get("_target_", ""))
    if "submitit" in target and (launcher or {}).get("cpus_per_task"):
        # The scheduler gives each job its cores; the job's ranks share them.
        return max(1, int(launcher["cpus_per_task"]) // world.local_size)
    side_by_side = world.local_size
    if target.endswith("JoblibLauncher"):
        n_jobs = int(launcher.get("n_jobs", -1))
        side_by_side *= n_jobs if n_jobs > 0 else max(1, cpus + 1 + n_jobs)  # joblib's rule
    if side_by_side == 1:
        return None
    return max(1, cpus // side_by_side)
