"""Thread limits for native libraries (OpenBLAS, OpenMP) around each fit and prediction.

``threadpoolctl.threadpool_limits`` scans every loaded shared library on each call (~7 ms);
a cross-validated tuning study calls it twice per fold and trial, so that scan alone took
seconds. One :class:`~threadpoolctl.ThreadpoolController` is kept instead and made again only
when new modules were imported (a new native library comes with an import).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from threadpoolctl import ThreadpoolController


@functools.lru_cache(maxsize=1)
def _controller(n_modules: int) -> ThreadpoolController:
    """The native thread pools loaded while ``n_modules`` modules are imported."""
    return ThreadpoolController()


def limit_threads(n: int | None) -> Any:
    """Context manager limiting every native thread pool to ``n`` threads (None: no limit).

    Examples
    --------
    >>> with limit_threads(1):
    ...     pass
    """
    return _controller(len(sys.modules)).limit(limits=n)
