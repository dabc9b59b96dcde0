"""sercap: speech emotion recognition on a feature warehouse.

The same verbs as the command line, as functions (documented in :mod:`sercap.api`)::

    import sercap
    wh = sercap.connect("warehouse")
    sercap.ingest(wh, "emodb", "data/emodb")
    sercap.extract(wh, feature_set="default", jobs=2)
    run = sercap.train(wh, "svm")              # run.ua, run.confusion, run.predictions
    study = sercap.tune(wh, "xgb", trials=30)  # study.best_params, study.trials
    table = sercap.predict(wh, ["clip.wav"], model="svm")
    feats = sercap.features("clip.wav")        # one file, no warehouse

Everything is imported on first use, so ``import sercap`` loads no DuckDB, torch or librosa.

Three verbs share their names with service modules: ``sercap.tune``, ``sercap.predict`` and
``sercap.features`` are those modules (``import sercap.tune`` keeps working) made callable:
calling one runs :func:`sercap.api.tune`, :func:`sercap.api.predict` or
:func:`sercap.api.features`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_API = ("connect", "synth", "ingest", "extract", "train", "get_run", "load_study", "Run", "Study")
_ERRORS = (
    "SercapError",
    "NotFoundError",
    "NotExtractedError",
    "BadParameterError",
    "WarehouseBusyError",
)
#: Verbs whose names are also submodules: the submodule itself becomes callable.
_CALLABLE_MODULES = ("tune", "predict", "features")

__all__ = [*_API, *_CALLABLE_MODULES, *_ERRORS, "__version__"]


class _CallableModule(types.ModuleType):
    """A service module that, called, runs the API verb of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        api = importlib.import_module("sercap.api")
        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
    """The ``sercap`` package: submodules ``tune``/``predict``/``features`` become callable
    whenever the import system binds them here, whoever imported them first."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in _CALLABLE_MODULES
            and isinstance(value, types.ModuleType)
            and value.__name__ == f"{__name__}.{name}"
            and type(value) is types.ModuleType
        ):
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _API:
        return getattr(importlib.import_module("sercap.api"), name)
    if name in _ERRORS:
        return getattr(importlib.import_module("sercap.errors"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


sys.modules[__name__].__class__ = _Package
