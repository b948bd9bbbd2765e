"""A command's end without Python's long goodbye.

When a process ends, Python clears its modules and runs the cycle collector over every
object still alive, several times over: with torch imported, about a second on this kind of
machine, after the command's work is done. Frozen (`gc.freeze`) as the last exit handler,
those objects are left for the process's end. Every other exit handler still runs first
(logging flushes and closes its files, the drawing helper finishes), and dlrun's files are
written whole and closed before then; Python makes no promise to finalize objects alive at
exit anyway.
"""

from __future__ import annotations

import atexit
import gc


def end_quickly() -> None:
    """Called first thing in a command's main(): exit handlers run last-registered first."""
    atexit.register(gc.freeze)
