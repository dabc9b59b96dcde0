"""The Python front door: the CLI's verbs as functions returning things a notebook can show.

``import sercap`` gives every function here (imported lazily, so ``import sercap`` stays
fast). Verbs whose CLI name is also a service module's name carry a longer name here, since
``sercap.<module>`` is that module once imported: ``sercap check`` is :func:`verify`,
``report`` :func:`write_report`, ``ensemble`` :func:`ensemble_runs`, ``demo``
:func:`run_demo`. Each is a thin wrapper over a service module; nothing prints unless asked,
and ``progress=None`` everywhere means "progress bars on a terminal only".

The verbs live in private modules, one per group (``_warehouse``, ``_sql``, ``_corpora``,
``_features``, ``_runs``, ``_tuning``, ``_predict``, ``_bench``, ``_demo``; ``_common`` holds
the argument checks they share); every public one is shown, and documented, as
``sercap.api.<name>``.

>>> import sercap
>>> wh = sercap.connect(":memory:")
>>> wh.query("SELECT count(*) AS n FROM corpora")["n"][0]
0
>>> wh.close()
"""

from __future__ import annotations

from sercap.api._bench import (
    Bench,
    bench,
    bench_cross,
    bench_extract,
    bench_extract_commands,
    bench_scale,
    bench_sql,
)
from sercap.api._bench import ScaleResult as ScaleResult
from sercap.api._common import PathLike as PathLike
from sercap.api._common import Say as Say
from sercap.api._corpora import INGEST_KINDS, ingest, synth
from sercap.api._demo import run_demo
from sercap.api._features import (
    describe_feature_set,
    extract,
    feature_sets,
    features,
    get_feature_set,
    image,
    images,
    plot_image,
)
from sercap.api._predict import models_to_fit, predict, prediction_table
from sercap.api._predict import with_confidence as with_confidence
from sercap.api._runs import (
    RegressionRun,
    Run,
    check_model,
    compare_runs,
    dataset,
    ensemble_runs,
    fairness,
    get_run,
    runs,
    train,
    write_report,
)
from sercap.api._sql import Preview, iter_sql, sql, sql_preview, sql_statements, sql_stream
from sercap.api._tuning import Study, load_study, tune
from sercap.api._warehouse import (
    CheckResult,
    connect,
    damage,
    info,
    repair,
    resolve_corpus,
    stale_audio,
    use_numba_cache,
    verify,
    warehouse_exists,
)

__all__ = [
    "INGEST_KINDS",
    "check_model",
    "Bench",
    "CheckResult",
    "RegressionRun",
    "Run",
    "Study",
    "bench",
    "bench_cross",
    "bench_extract",
    "bench_extract_commands",
    "bench_scale",
    "bench_sql",
    "compare_runs",
    "dataset",
    "fairness",
    "verify",
    "connect",
    "damage",
    "run_demo",
    "describe_feature_set",
    "ensemble_runs",
    "extract",
    "feature_sets",
    "features",
    "get_feature_set",
    "get_run",
    "image",
    "images",
    "info",
    "ingest",
    "load_study",
    "models_to_fit",
    "stale_audio",
    "plot_image",
    "predict",
    "prediction_table",
    "repair",
    "write_report",
    "resolve_corpus",
    "runs",
    "sql",
    "iter_sql",
    "sql_preview",
    "sql_stream",
    "Preview",
    "sql_statements",
    "synth",
    "train",
    "tune",
    "use_numba_cache",
    "warehouse_exists",
]


def _present_as_api() -> None:
    """Show every public function as ``sercap.api.<name>`` (where ``help`` and doctests look
    for it; the code lives in private submodules, one per group of verbs), and wrap each
    public function so that its simple arguments are checked against its annotations, and
    paths have ``~`` expanded (:mod:`sercap._arguments`)."""
    import inspect

    from sercap._arguments import checked_arguments

    for name in (*__all__, "with_confidence", "ScaleResult"):
        obj = globals()[name]
        # (functions only: a class shown elsewhere than its module loses inspect.getsource
        # and typing.get_type_hints)
        if inspect.isfunction(obj) and obj.__module__.startswith(__name__ + "."):
            obj.__module__ = __name__
            if name in __all__:
                globals()[name] = checked_arguments(obj)


_present_as_api()
