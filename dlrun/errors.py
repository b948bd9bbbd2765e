"""Errors meant for the person at the keyboard, not for a debugger."""


class DlrunError(Exception):
    """A problem the user can fix: the message says what was wrong and what to do.

    The command line prints it as one paragraph and exits non-zero, with no traceback.
    """


class RunDiverged(DlrunError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""
