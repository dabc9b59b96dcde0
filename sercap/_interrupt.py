"""Ctrl-C before a command has opened anything ends like every other interruption.

Importing Python, sercap and click and parsing the command line take a moment (over a second
on a busy machine); a Ctrl-C there used to print a ``KeyboardInterrupt`` traceback or click's
``Aborted!`` with exit status 1. Until a command's own handler takes over (see
:class:`sercap.cli._Group`), nothing has been opened or written, so the early handler writes
the one line and leaves at once with status 130.
"""

from __future__ import annotations

import os
import re
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


def is_interrupt(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what it was raised from or during, is a Ctrl-C.

    DuckDB turns one into ``RuntimeError('Query interrupted')`` or an ``InterruptException``,
    and one that lands inside a Python function DuckDB or numba was calling comes back
    wrapped (``InvalidInputException: … failed: KeyboardInterrupt``, numba's ``SystemError:
    … returned a result with an exception set``); each was recorded as the file's problem
    and the command went on.

    >>> is_interrupt(RuntimeError("Query interrupted")), is_interrupt(ValueError("bad"))
    (True, False)
    >>> try:
    ...     try:
    ...         raise KeyboardInterrupt
    ...     except KeyboardInterrupt as inner:
    ...         raise SystemError("returned a result with an exception set") from inner
    ... except SystemError as outer:
    ...     is_interrupt(outer)
    True
    """
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "InterruptException":
            return True
        first = (str(exc).strip().splitlines() or [""])[0]
        # exact shapes only: a user's query naming a table KeyboardInterrupt, or a file
        # whose path says "interrupted", is an ordinary error
        if type(exc) is RuntimeError and first.lower() == "query interrupted":
            return True
        if _DUCKDB_WRAPPED.search(first) and type(exc).__module__.startswith(("duckdb", "_duckdb")):
            return True  # raised inside a Python function DuckDB was calling
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


#: How DuckDB reports a KeyboardInterrupt raised inside a Python function it was calling.
_DUCKDB_WRAPPED = re.compile(r"failed: KeyboardInterrupt$")


def import_whole(name: str) -> Any:
    """``importlib.import_module(name)`` with Ctrl-C held back until the import is done,
    then raised (as the handler in place would have had it).

    A Ctrl-C inside ``import torch`` (seconds on a busy machine: a likely moment for a
    notebook's Stop) left torch half-initialised in ``sys.modules``, and every torch model
    failed for the rest of the session (``partially initialized module 'torch' has no
    attribute 'cuda'``). Only the main thread can hold signals; elsewhere, and for a module
    already imported, this is ``import_module``.

    >>> import_whole("json").__name__
    'json'
    """
    import importlib
    import sys

    if name in sys.modules or threading.current_thread() is not threading.main_thread():
        return importlib.import_module(name)
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        module = importlib.import_module(name)
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, None)  # sercap's own handler, or Python's: raises
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt
    return module


def skip_exit_collections() -> None:
    """At this process' exit, skip the interpreter's last garbage collections (``gc.freeze``
    registered with ``atexit``; again is fine). For a process that ends after its one job,
    the command line's or an extraction worker's: what it holds then is freed by the
    operating system, while those collections walked numba's and scipy's ~140,000 objects
    (0.15-0.2 s of every ``extract``, and of each worker the parent waits for). ``atexit``'s
    functions registered later run earlier, so they still run, and every object's reference
    count still drops when its module goes."""
    import atexit
    import gc

    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
