"""polars, imported where it is first used rather than when sercap's store modules load.

``sercap extract`` never builds a DataFrame, yet importing the warehouse layer imported
polars: about a quarter of a second of every such command, and of every extraction
worker. ``pl`` here stands in for the module: each attribute is looked up on the real
``polars`` (imported on first access; later accesses find it in ``sys.modules``).
"""

from __future__ import annotations

import importlib
from typing import Any


class _Polars:
    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("polars"), name)

    def __repr__(self) -> str:
        return "<polars, imported on first use>"


#: ``from sercap._lazy import pl`` in place of ``import polars as pl``.
pl: Any = _Polars()
