"""Errors meant for the person at the keyboard, not for a debugger."""

from __future__ import annotations

# The exit status of a problem the user can fix.
EXIT_USER_ERROR = 2


class DlrunError(Exception):
    """A problem the user can fix: the message says what was wrong and what to do.

    The command line prints it as one paragraph and exits non-zero, with no traceback.
    """


class ConfigError(DlrunError):
    """The config does not compose (an unknown option, a misspelt key, a wrong type).

    The command exits with status 1 for it, as Hydra does for its own config errors.
    """


class RunInterrupted(DlrunError):
    """SIGINT or SIGTERM stopped the run between two steps, after saving its state."""

    def __init__(self, message: str, signal_name: str) -> None:
        super().__init__(message)
        self.signal_name = signal_name


class FolderInUse(DlrunError):
    """Another process holds the run folder's lock: nothing was written to the folder."""


class RunDiverged(DlrunError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def report(err: DlrunError) -> None:
    """Print the error as one paragraph on stderr."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]Error:[/] {escape(str(err))}"
    )
