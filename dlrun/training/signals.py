"""SIGINT and SIGTERM (what SLURM sends before preemption) stop a run between two steps.

The first signal asks the loop to stop after the step in progress, so the run can save a
checkpoint and say `interrupted` in summary.json; a second one stops at once. Under torchrun
a Ctrl-C reaches each process twice (from the terminal, then forwarded by torchrun), so a
repeat within `repeat_grace` seconds counts as the same request.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from dlrun.training.state import TrainState

log = logging.getLogger("dlrun")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def graceful_stop(*states: TrainState, repeat_grace: float = 0.0) -> Iterator[None]:
    """Every state in `states` hears of the stop (a fused sweep stops all its runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    first_at = 0.0

    def handle(signum: int, frame: object) -> None:
        nonlocal first_at
        name = signal.Signals(signum).name
        if states[0].stop_signal is None:
            for state in states:
                state.stop_signal = name
            first_at = time.monotonic()
            log.warning("%s: stopping after this step (send it again to stop at once)", name)
            return
        if time.monotonic() - first_at < repeat_grace:
            return
        for sig, previous_handler in previous.items():
            signal.signal(sig, previous_handler)
        raise KeyboardInterrupt(f"second {name}: stopped at once")

    previous = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, previous_handler in previous.items():
            signal.signal(sig, previous_handler)
