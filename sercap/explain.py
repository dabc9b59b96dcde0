"""Which feature families a tabular model relies on: permutation importance on outer test folds.

Unlike :mod:`sercap.analysis_store` this refits: one model per outer fold of the
speaker-independent protocol (as :func:`sercap.evaluate.cross_validate` does), then shuffles
each family of columns in that fold's held-out rows and measures the drop in UA
(:func:`sercap.analysis.permutation_importance`). Importance is thus measured on speakers the
model never saw.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from sercap import analysis
from sercap.data import Dataset
from sercap.errors import SercapError, step
from sercap.store import Warehouse


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
    frames = outer_fold_importances(
        data, model_name, params, by=(by,), n_repeats=n_repeats, seed=seed, n_jobs=n_jobs,
        max_folds=max_folds,
    )  # fmt: skip
    return frames[by]


def outer_fold_importances(
    data: Dataset,
    model_name: str,
    params: dict | None = None,
    *,
    by: tuple[str, ...] = ("descriptor", "functional"),
    n_repeats: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
    max_folds: int | None = None,
    fold_params: dict[str, dict] | None = None,
    max_rows: int | None = None,
    progress: bool = False,
) -> dict[str, pl.DataFrame]:
    """:func:`outer_fold_importance` for several groupings from one fit per outer fold
    (``progress``: a bar over the folds, each a refit: minutes apiece at IEMOCAP's size).

    ``fold_params`` (outer fold → parameters) overrides ``params`` per fold: a nested-tuned
    run's folds each have parameters tuned without their test speakers. ``max_rows``
    permutes at most that many of a test fold's utterances (a seeded sample): each family
    and repeat predicts the fold again, which at IEMOCAP's size with an SVM took hours.

    Returns
    -------
    dict of str to polars.DataFrame
        Grouping (``"descriptor"``, ``"functional"``) → its averaged importance table.
    """
    from sercap.evaluate import outer_splits, take_X
    from sercap.models.registry import get_model

    if data.input_kind != "tabular" or not data.columns:
        raise SercapError(
            f"importance needs a tabular run with named columns; {model_name!r} on "
            f"{data.feature_set or data.corpus} reads {data.input_kind} inputs"
        )
    cls = get_model(model_name)
    groupings = {key: analysis.column_families(data.columns, by=key) for key in by}
    splits = list(outer_splits(data))[:max_folds]
    frames: dict[str, list[pl.DataFrame]] = {key: [] for key in by}
    lacking = sorted({n for n, *_ in splits} - set(fold_params)) if fold_params else []
    if lacking:  # the final study's parameters saw the fold's test speakers
        raise SercapError(
            f"no tuned parameters for outer fold(s) {', '.join(lacking)}: refitting with "
            "parameters tuned on every speaker would not be an outer-fold importance"
        )
    from tqdm.auto import tqdm

    bar = tqdm(splits, desc="importance refits", unit="fold", disable=not progress, leave=False)
    for i, (name, train, test) in enumerate(bar):
        bar.set_postfix_str(name)
        chosen = fold_params[name] if fold_params else params
        model = cls(chosen, seed=seed, n_jobs=n_jobs, verbose=False)
        model.fit(take_X(data, train), data.y[train], groups=data.validation_groups(train),
                  n_classes=data.n_classes)  # fmt: skip
        if max_rows is not None and len(test) > max_rows:
            test = np.sort(np.random.default_rng(seed + i).choice(test, max_rows, replace=False))
        X_test = np.asarray(take_X(data, test))
        for key, groups in groupings.items():
            frame = analysis.permutation_importance(
                model.predict_proba, X_test, data.y[test], groups, columns=data.columns,
                n_classes=data.n_classes, n_repeats=n_repeats, seed=seed + i,
            )  # fmt: skip
            frames[key].append(frame.with_columns(pl.lit(name).alias("fold")))
    return {key: _average(pl.concat(parts)) for key, parts in frames.items()}


def _average(per_fold: pl.DataFrame) -> pl.DataFrame:
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


def as_in_run(
    data: Dataset, run: dict, stored: pl.DataFrame, audio: dict[str, str | None] | None = None
) -> Dataset:
    """``data`` cut to the utterances a stored run predicted, with that run's outer folds.

    Refitting a run's folds (its importance) must see what the run saw: under a k-fold
    protocol a speaker added since deals the speakers into other folds, and a nested-tuned
    run's per-fold parameters were tuned without *its* test speakers only. ``stored`` is the
    run's predictions (``utt_id``, ``fold``, ``label``). Features or labels changed since
    (another feature-set version, a relabelled or lost utterance, and with ``audio``,
    :func:`sercap.store.runs.audio_sources`, a replaced recording) are one error: refitting
    would not be that run.
    """
    if run.get("feature_set_hash") and data.feature_set_hash != run["feature_set_hash"]:
        raise SercapError(
            f"run {run['run_id']} was fitted on feature set {run['feature_set']} version "
            f"{run['feature_set_hash'][:8]}; the stored features are now version "
            f"{str(data.feature_set_hash)[:8]}: train {run['model']} again to explain it"
        )
    from sercap.evaluate import rows_as_scored

    chosen, changed = rows_as_scored(data, stored, audio, run.get("data_sha256"))
    if changed is not None:
        why = {
            "utterances or labels": "an utterance lost or relabelled",
            "recordings": "a file replaced and extracted again",
        }[changed]
        raise SercapError(
            f"run {run['run_id']}'s {changed} changed since it was stored ({why}): train "
            f"{run['model']} again to explain it"
        )
    return replace(data.subset(chosen), folds=stored["fold"].to_numpy())


def run_importances(
    wh: Warehouse,
    run_id: str,
    *,
    by: tuple[str, ...] = ("descriptor", "functional"),
    n_repeats: int = 2,
    max_folds: int | None = None,
    n_jobs: int = 1,
    max_rows: int | None = None,
    progress: bool = False,
) -> dict[str, pl.DataFrame]:
    """Grouped permutation importance of a stored tabular run, refitting its model per fold
    (``max_rows``: at most that many test utterances per fold, as
    :func:`outer_fold_importances`).

    The run's model, parameters, seed, feature set, columns and speaker normalisation are
    reused, on the run's own utterances and outer folds as it stored them (:func:`as_in_run`:
    the corpus' folds today may deal speakers otherwise, after an ingest). A nested-tuned run's
    folds are refitted with each fold's own parameters, tuned without its test speakers (the
    final study's parameters, which ``params`` holds for ``predict``, saw every speaker).

    Raises
    ------
    SercapError
        An ensemble or a run whose model does not read tabular functionals, or one whose
        features or labels changed since it was stored.
    """
    import json

    from sercap.experiment import data_request, load_for
    from sercap.models.registry import get_model
    from sercap.store import runs as store_runs
    from sercap.store.runs import get_run

    run = get_run(wh, run_id)
    if run["kind"] != "model" or get_model(run["model"]).input_kind != "tabular":
        raise SercapError(
            f"run {run['run_id']} ({run['kind']}: {run['model']}) is not a tabular model run; "
            "importance needs one (svm, rf, xgb, lgbm, dnn …)"
        )
    request = data_request(
        run["model"], corpus=run["corpus"], label_map=run["label_map"],
        feature_set=run["feature_set"], columns=run["columns"],
        speaker_norm=bool(run["speaker_norm"]),
    )  # fmt: skip
    data = as_in_run(
        load_for(wh, request), run, store_runs.predictions(wh, run["run_id"]),
        store_runs.audio_sources(wh, run["corpus"]),
    )  # fmt: skip
    params = json.loads(run["params_json"] or "{}")
    fold_params = json.loads(run["fold_params_json"]) if run.get("fold_params_json") else None
    if run.get("tuned_from") and not fold_params:
        raise SercapError(
            f"run {run['run_id']} is nested-tuned but stores no per-fold parameters (it "
            "predates them); its final study's parameters saw every speaker, so refitting "
            "with them would not be an outer-fold importance: run "
            + step(f"train {run['model']} --tuned", f"train(wh, {run['model']!r}, tuned=True)")
            + " again"
        )
    # the refits read nothing from the warehouse: other processes may use it, writers too
    # (minutes per fold at IEMOCAP's size, in which `train` or `extract` gave up)
    with wh.released(done="the importance refits", then="run it again once it is free"):
        return outer_fold_importances(
            data, run["model"], params, by=by, n_repeats=n_repeats,
            seed=int(run["seed"] or 0), n_jobs=n_jobs, max_folds=max_folds,
            fold_params=fold_params, max_rows=max_rows, progress=progress,
        )  # fmt: skip
