"""Features: per-frame descriptors (:mod:`~sercap.features.lld`), their SQL functionals,
spectrogram images, feature-set definitions and the extraction that stores them.

The package is also the public verb ``sercap.features(path)``: calling it runs
:func:`sercap.api.features` (one file's functionals, no warehouse), so the notebook spelling
and ``import sercap.features.lld`` live side by side.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _FeaturesPackage(types.ModuleType):
    """This package, callable: ``sercap.features("clip.wav")``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from sercap.api import features

        return features(*args, **kwargs)


sys.modules[__name__].__class__ = _FeaturesPackage
