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

_PACKAGE_DOC = __doc__


def _doc(module: types.ModuleType) -> str:
    """The package's docstring, then the verb's: ``help(sercap.features)`` is read by
    notebook users for the parameters of ``sercap.features(path, …)``."""
    from sercap.api import features

    return f"{_PACKAGE_DOC}\nsercap.features(path, feature_set='default')\n\n{features.__doc__}"


class _FeaturesPackage(types.ModuleType):
    # This package, callable: ``sercap.features("clip.wav")``. A property, not a class
    # docstring, makes ``__doc__`` (and so ``help``) the package's and the verb's.
    __doc__ = property(_doc)  # type: ignore[assignment]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from sercap.api import features

        return features(*args, **kwargs)

    @property
    def __signature__(self) -> Any:
        """The verb's own parameters for ``inspect.signature`` (Jupyter's ``?``, an IDE's
        signature help), which read ``(*args, **kwargs)`` from ``__call__``."""
        import inspect

        from sercap.api import features

        return inspect.signature(features)


sys.modules[__name__].__class__ = _FeaturesPackage
