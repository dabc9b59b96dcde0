"""The code versions that name a feature set's numbers, free of heavy imports.

A feature set's hash carries the version of the code that computes it. The process that
extracts with worker processes builds that hash before it starts them; read from the
descriptor module, the version cost it scipy.fft and numba's kernels (0.3 s of every
``extract --jobs 2``, spent before any worker started), which only the workers need.
"""

from __future__ import annotations

#: Bump when a change to the descriptors (sercap.features.lld and the kernels it calls)
#: changes numbers: it is part of every LLD feature-set hash.
LLD_VERSION = 4
