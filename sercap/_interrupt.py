"""Ctrl-C before a command has opened anything ends like every other interruption.

Importing Python, sercap and click and parsing the command line take a moment (over a second
on a busy machine); a Ctrl-C there used to print a ``KeyboardInterrupt`` traceback or click's
``Aborted!`` with exit status 1. Until a command's own handler takes over (see
:class:`sercap.cli._Group`), nothing has been opened or written, so the early handler writes
the one line and leaves at once with status 130.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

MESSAGE = "\ninterrupted: everything already stored is kept; rerun to resume\n"


def _exit_130(signum: int, frame: Any) -> None:
    os.write(2, MESSAGE.encode())
    os._exit(130)


def install() -> Any:
    """Install the early SIGINT handler (main thread only); returns the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, _exit_130)
