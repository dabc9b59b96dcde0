"""What the numba cache's warm-up child runs (:func:`sercap.numba_cache.ensure_numba_cache`).

A module of its own: it imports the descriptor code, whose numba kernels import
:mod:`sercap.numba_cache` for the cache folder, so keeping it there would be an import cycle.
"""

from __future__ import annotations


def warm_kernels(spec: str = "") -> None:
    """Call, on a short float32 signal, the librosa paths of one feature or image set.

    ``spec`` is a :func:`warm_spec` (an ``lld`` set's descriptors or an ``image`` set's
    spectrogram); empty means the built-in ``default`` and ``mel`` sets. Only the kernels that
    extraction workers would otherwise compile concurrently are compiled, so the first run
    pays no more than it did before. Runs in a child of :func:`ensure_numba_cache`.
    """
    import json

    import numpy as np

    from sercap.features.featureset import get_feature_set
    from sercap.features.images import spectrogram_image
    from sercap.features.lld import compute_frames

    y = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    if spec:
        sets = [json.loads(spec)]
    else:
        sets = [
            {"kind": k, "params": get_feature_set(n, k).params}
            for n, k in (("default", "lld"), ("mel", "image"))
        ]
    for one in sets:
        if one["kind"] == "lld":
            compute_frames(y, one["params"])
        elif one["kind"] == "image":
            spectrogram_image(y, one["params"])
