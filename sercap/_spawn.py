"""Spawned workers that do not run the caller's script again.

A process started with multiprocessing's ``spawn`` method first re-imports the parent's main
module (as ``__mp_main__``) so that functions defined there can be unpickled. sercap's
workers run sercap's functions only, so for them that re-import is cost at best (``python
cli.py`` imports the CLI again in every worker, and again whenever a worker is replaced) and
a hang at worst: a script that calls ``sercap.extract(wh, jobs=2)`` at top level, without an
``if __name__ == "__main__":`` guard, runs again in every worker, where it waits for the
warehouse its parent holds open; the pool replaces each worker that gives up, and the
parent waits for results that never come.

:func:`main_not_rerun` hides the two attributes that ``multiprocessing.spawn`` reads to find
the main module (``__spec__`` and ``__file__``) while a pool starts and replaces workers, so
its workers start with an empty ``__mp_main__``, as for an interactive session or a
notebook, where nothing is re-run either.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

_MISSING = object()
_LOCK = threading.Lock()
_state: dict = {"depth": 0, "saved": {}}


@contextlib.contextmanager
def main_not_rerun() -> Iterator[None]:
    """Within this block, processes spawned by multiprocessing do not re-run ``__main__``.

    Only for pools whose tasks and initializers are importable sercap functions (a function
    defined in the caller's script could not be unpickled in the workers). Nested and
    concurrent uses are counted; the attributes come back when the last one ends.

    Examples
    --------
    >>> import sys
    >>> with main_not_rerun():
    ...     getattr(sys.modules["__main__"], "__spec__", None) is None
    True
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _LOCK:
        if _state["depth"] == 0:
            saved = {name: main.__dict__.get(name, _MISSING) for name in ("__spec__", "__file__")}
            _state["saved"] = saved
            main.__spec__ = None
            main.__dict__.pop("__file__", None)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                for name, value in _state["saved"].items():
                    if value is _MISSING:
                        main.__dict__.pop(name, None)
                    else:
                        main.__dict__[name] = value
                _state["saved"] = {}


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in this process while worker processes start (main thread only).

    A spawned process inherits the ignored disposition (Python then installs no
    KeyboardInterrupt handler), so a Ctrl-C reaches only this process, which stops the
    workers itself, instead of printing one traceback per worker.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, deaf to SIGHUP.

    The tracker (one helper process, started with the first pool) ignores SIGINT and
    SIGTERM but not SIGHUP: a closed terminal or ``kill -HUP`` to the process group killed
    it, the pool's clean-up relaunched it, and the new one printed a ``KeyError``
    traceback for every name it had never seen. Started with SIGHUP blocked, it keeps the
    signal blocked (a blocked signal survives exec and the tracker unblocks only SIGINT
    and SIGTERM); this process receives a SIGHUP that came meanwhile once it is unblocked.
    """
    import signal
    from multiprocessing import resource_tracker

    hup = getattr(signal, "SIGHUP", None)
    if hup is None:
        resource_tracker.ensure_running()
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {hup})
    try:
        resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)  # as the caller had it


def exit_with_parent(poll_s: float = 0.5) -> threading.Thread:
    """In a worker process: end it within ``poll_s`` seconds of its parent's death.

    A pool's workers wait on its task queue; when the parent is killed (``kill -9``, the
    OOM killer) nothing tells them, and they slept for ever, re-parented, ~300 MB each, deaf
    to Ctrl-C (they ignore SIGINT, see :func:`sigint_ignored`): every retry after an
    out-of-memory kill added more. A daemon thread watches the parent's pid and exits the
    process when it changes (the orphan is re-parented). Returns the thread.
    """
    import os
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)  # no clean-up to wait for: the task's parts are temporary files

    thread = threading.Thread(target=watch, name="sercap-exit-with-parent", daemon=True)
    thread.start()
    return thread
