"""The one exception type users see as a one-line message instead of a traceback."""


class SercapError(Exception):
    """A problem the user can fix (bad input, missing step); its message says what to do.

    The CLI prints ``error: <message>`` and exits with status 1. Messages name the file (and
    line) involved and, where there is one, the command to run first.
    """
