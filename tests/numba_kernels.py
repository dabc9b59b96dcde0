"""Tiny cached numba kernels for tests/test_numba_cache.py (compile in ~1 s, unlike librosa's).

Like librosa's ``_pi_wrapper`` they are a ``guvectorize(cache=True)`` with a float32 and a
float64 signature: a cache whose index points one signature at the other's data file makes
every process that loads it segfault.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.guvectorize(
    [
        "void(float32[:], float32[:], float32[:], float32[:])",
        "void(float64[:], float64[:], float64[:], float64[:])",
    ],
    "(n),(n),(n)->(n)",
    nopython=True,
    cache=True,
)
def _parabolic(a, b, c, out):  # pragma: no cover - compiled by numba
    for i in range(a.shape[0]):
        d = a[i] - 2 * b[i] + c[i]
        out[i] = 0.0 if d == 0 else 0.5 * (a[i] - c[i]) / d


def use() -> None:
    """Load (or compile) both signatures and call them."""
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(0).standard_normal((20, 50)).astype(dtype)
        _parabolic(x, x[::-1], x + 1)
