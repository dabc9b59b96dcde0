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

``sercap.features`` is also the feature package (``import sercap.features.lld`` works);
calling the package runs :func:`sercap.api.features`. The services behind ``tune`` and
``predict`` are the modules ``sercap.tuning`` and ``sercap.prediction``.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name loads on first use
    from sercap.api import (  # noqa: F401
        INGEST_KINDS,
        Bench,
        CheckResult,
        Preview,
        RegressionRun,
        Run,
        Study,
        bench,
        bench_cross,
        bench_extract,
        bench_extract_commands,
        bench_scale,
        bench_sql,
        check_model,
        compare_runs,
        connect,
        damage,
        dataset,
        describe_feature_set,
        ensemble_runs,
        extract,
        fairness,
        feature_sets,
        get_feature_set,
        get_run,
        image,
        images,
        info,
        ingest,
        iter_sql,
        load_study,
        models_to_fit,
        plot_image,
        predict,
        prediction_table,
        repair,
        resolve_corpus,
        run_demo,
        runs,
        sql,
        sql_preview,
        sql_statements,
        sql_stream,
        stale_audio,
        synth,
        train,
        tune,
        use_numba_cache,
        verify,
        warehouse_exists,
        write_report,
    )  # fmt: skip
    from sercap.errors import (  # noqa: F401
        AudioError,
        BadParameterError,
        DivergedError,
        NotExtractedError,
        NotFoundError,
        QueryError,
        RefusedError,
        SercapError,
        WarehouseBusyError,
    )  # fmt: skip
    from sercap.store import Warehouse  # noqa: F401

__version__ = "0.1.0"

_API = (
    "connect",
    "warehouse_exists",
    "damage",
    "stale_audio",
    "use_numba_cache",
    "sql_statements",
    "sql",
    "iter_sql",
    "sql_preview",
    "sql_stream",
    "info",
    "verify",
    "repair",
    "synth",
    "ingest",
    "dataset",
    "INGEST_KINDS",
    "extract",
    "images",
    "image",
    "plot_image",
    "get_feature_set",
    "feature_sets",
    "describe_feature_set",
    "resolve_corpus",
    "check_model",
    "train",
    "runs",
    "get_run",
    "ensemble_runs",
    "tune",
    "load_study",
    "predict",
    "prediction_table",
    "models_to_fit",
    "compare_runs",
    "fairness",
    "write_report",
    "bench",
    "bench_cross",
    "bench_extract",
    "bench_extract_commands",
    "bench_scale",
    "bench_sql",
    "run_demo",
    "Bench",
    "CheckResult",
    "Preview",
    "Run",
    "RegressionRun",
    "Study",
)
_ERRORS = (
    "SercapError",
    "NotFoundError",
    "NotExtractedError",
    "BadParameterError",
    "DivergedError",
    "WarehouseBusyError",
    "RefusedError",
    "QueryError",
    "AudioError",
)
#: Types for a user's own annotations (``def f(wh: sercap.Warehouse)``), and where they live.
_TYPES = {"Warehouse": "sercap.store"}
__all__ = [*_API, *_ERRORS, *_TYPES, "features", "__version__"]


def __getattr__(name: str) -> _Any:
    if name in ("features", "api"):  # features: the package, callable (its __init__.py);
        return _importlib.import_module(f"{__name__}.{name}")  # api: `help(sercap.api.train)`
    if name in _API:
        return getattr(_importlib.import_module("sercap.api"), name)
    if name in _TYPES:
        return getattr(_importlib.import_module(_TYPES[name]), name)
    if name in _ERRORS:
        return getattr(_importlib.import_module("sercap.errors"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # the public names, and dunders; not `annotations` (the __future__ import) or helpers
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})
