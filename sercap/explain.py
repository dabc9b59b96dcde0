"""Which feature families a tabular model relies on: permutation importance on outer test folds.

Unlike :mod:`sercap.analysis_store` this refits: one model per outer fold of the
speaker-independent protocol (as :func:`sercap.evaluate.cross_validate` does), then shuffles
each family of columns in that fold's held-out rows and measures the drop in UA
(:func:`sercap.analysis.permutation_importance`). Importance is thus measured on speakers the
model never saw.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sercap import analysis
from sercap.data import Dataset
from sercap.errors import SercapError


def outer_fold_importance(
    data: Dataset,
    model_name: str,
    params: dict | None = None,
    *,
    by: str = "descriptor",
    n_repeats: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
    max_folds: int | None = None,
) -> pl.DataFrame:
    """Grouped permutation importance of a model on each outer test fold, then averaged.

    Parameters
    ----------
    data : Dataset
        A tabular dataset (``input_kind == "tabular"``) with its column names.
    model_name : str
        A tabular model of the registry (``svm``, ``rf``, ``xgb`` …).
    params : dict, optional
        The model's parameters (e.g. a stored run's ``params_json``).
    by : {"descriptor", "functional"}
        How columns are grouped (:func:`sercap.analysis.column_families`).
    n_repeats, seed : int
        Permutations per family per fold, and their seed (also the model's seed).
    max_folds : int, optional
        Use only the first folds (a quicker estimate on many-speaker corpora).

    Returns
    -------
    polars.DataFrame
        ``group, n_columns, importance`` (mean over folds of the mean UA drop), ``std`` (over
        folds), ``n_folds``; largest importance first.
    """
    from sercap.evaluate import outer_splits, take_X
    from sercap.models.registry import get_model

    if data.input_kind != "tabular" or not data.columns:
        raise SercapError(
            f"importance needs a tabular run with named columns; {model_name!r} on "
            f"{data.feature_set or data.corpus} reads {data.input_kind} inputs"
        )
    cls = get_model(model_name)
    groups = analysis.column_families(data.columns, by=by)
    splits = list(outer_splits(data))[:max_folds]
    frames = []
    for i, (name, train, test) in enumerate(splits):
        model = cls(params, seed=seed, n_jobs=n_jobs, verbose=False)
        model.fit(take_X(data, train), data.y[train], groups=data.speakers[train],
                  n_classes=data.n_classes)  # fmt: skip
        frame = analysis.permutation_importance(
            model.predict_proba, np.asarray(take_X(data, test)), data.y[test], groups,
            columns=data.columns, n_classes=data.n_classes, n_repeats=n_repeats, seed=seed + i,
        )  # fmt: skip
        frames.append(frame.with_columns(pl.lit(name).alias("fold")))
    per_fold = pl.concat(frames)
    return (
        per_fold.group_by("group", maintain_order=True)
        .agg(
            pl.col("n_columns").first(),
            pl.col("importance").mean(),
            pl.col("importance").std(ddof=0).alias("std"),
            pl.len().alias("n_folds"),
        )
        .sort("importance", descending=True, maintain_order=True)
    )
