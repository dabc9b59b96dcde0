"""polars, imported where it is first used rather than when sercap's store modules load.

``sercap extract`` never builds a DataFrame, yet importing the warehouse layer imported
polars: about a quarter of a second of every such command, and of every extraction
worker. ``pl`` here stands in for the module: each attribute is looked up on the real
``polars`` (imported on first access; later accesses find it in ``sys.modules``).

:func:`import_apart` imports a module (optuna) on a thread of its own, so that what it keeps
of its import does not keep the importing call's objects alive.
"""

from __future__ import annotations

import importlib
from typing import Any

from sercap._interrupt import import_whole


class _Polars:
    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(import_whole("polars"), name)  # a Ctrl-C waits for the whole import

    def __repr__(self) -> str:
        return "<polars, imported on first use>"


#: ``from sercap._lazy import pl`` in place of ``import polars as pl``.
pl: Any = _Polars()


def import_apart(name: str) -> None:
    """Import module ``name`` on a thread of its own, unless it is imported already.

    optuna keeps the ``ModuleNotFoundError`` of each optional import it tries (redis, for
    its journal storage) to raise it on use, traceback and all; the traceback's frames lead
    back, frame by frame, through whichever call imported optuna first. When that was a
    notebook's ``sercap.train(wh, ...)``, its ``wh`` stayed alive for the whole process: a
    ``del wh`` released no lock, and a ``:memory:`` warehouse's folder was never removed.
    On a thread of its own, those frames lead nowhere. Errors are raised here as usual.
    """
    import sys
    import threading

    if name in sys.modules:
        return
    failed: list[BaseException] = []

    def target() -> None:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # raised below, on the calling thread
            failed.append(exc)

    thread = threading.Thread(target=target, name=f"import {name}", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
