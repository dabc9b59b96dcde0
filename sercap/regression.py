"""Dimensional regression: predict a rating (valence, activation or dominance) speaker-
independently, score it with CCC (primary), Pearson's r and MAE, store the run.

The protocol is the classifiers': the corpus' speaker-independent folds, one fit per outer
fold on the other folds' speakers, scores on the pooled out-of-fold predictions (plus the
per-fold mean ± std of CCC). The utterances are every utterance of the corpus that has a
rating for the target (IEMOCAP: the evaluators' mean, whatever the majority label, "xxx"
included), or only those a label map keeps (``label_map``); those without a rating are left
out and counted. A run is stored in ``runs`` (``target`` set, ``ua``/``wa`` NULL) with its
predictions in ``regression_predictions``; its ``label_map`` column reads ``valence`` (or
``valence.iemocap4`` when a label map chose the utterances), so that nothing keyed by label
map (tuned parameters, studies, reports) mixes regression with classification.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from sercap.analysis import ccc, mae, pearson
from sercap.data import Dataset
from sercap.errors import BadParameterError, DivergedError, SercapError, option
from sercap.store import Warehouse
from sercap.store import regression as store_regression
from sercap.store.runs import audio_sources

#: The dimensional ratings sercap can predict (columns of the ``labels`` table).
TARGETS = ("valence", "activation", "dominance")


def check_target(target: str) -> str:
    """``target`` if it is one of :data:`TARGETS`, else a one-line error."""
    if target not in TARGETS:
        raise BadParameterError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    return target


def target_label(target: str, label_map: str | None = None) -> str:
    """What a regression run records as its label map: the target, plus the label map that
    chose the utterances (``valence.iemocap4``) when one did."""
    return target if label_map is None else f"{target}.{label_map}"


# ----------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class RegressionMetrics:
    """Scores of one set of rating predictions."""

    ccc: float
    pearson: float
    mae: float

    @property
    def as_dict(self) -> dict[str, float]:
        return {"ccc": self.ccc, "pearson": self.pearson, "mae": self.mae}


def score_regression(y_true: np.ndarray, y_pred: np.ndarray) -> RegressionMetrics:
    """Lin's CCC, Pearson's r (NaN when either side is constant) and the mean absolute error.

    Parameters
    ----------
    y_true, y_pred : ndarray (n,)
        Ratings and predictions, row-aligned.

    Returns
    -------
    RegressionMetrics

    Examples
    --------
    >>> m = score_regression(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    >>> round(m.ccc, 4), round(m.mae, 4)
    (0.8571, 0.3333)
    """
    return RegressionMetrics(
        ccc=float(ccc(y_true, y_pred)),
        pearson=float(pearson(y_true, y_pred)),
        mae=float(mae(y_true, y_pred)),
    )


# ----------------------------------------------------------------------------- data
def load_target_dataset(
    wh: Warehouse,
    model: str,
    target: str,
    *,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
    version: str | None = None,
) -> tuple[Dataset, int]:
    """The dataset a regressor of ``target`` trains on (features, frame sequences or images,
    as the model reads), and how many utterances were left out for lack of a rating.

    Parameters
    ----------
    wh : Warehouse
        A warehouse with extracted features.
    model : str
        A model with a regressor (checked first: a one-line error names those that have one).
    target : str
        ``"valence"``, ``"activation"`` or ``"dominance"``.
    corpus, label_map, feature_set, image_set, columns, speaker_norm
        As for :func:`sercap.api.train`; ``label_map`` (default: none) keeps only the
        utterances it keeps.
    version : str, optional
        The hash of the version of the set to read (default: its newest).

    Returns
    -------
    (Dataset, int)
        ``y`` holds the float ratings, ``classes`` is empty, ``target`` is set.
    """
    from sercap import data as d
    from sercap.models.registry import get_model
    from sercap.models.regressors import get_regressor

    check_target(target)
    kind = get_regressor(model).input_kind
    corpus = d.resolve_corpus(wh, corpus)
    meta = store_regression.target_values(wh, corpus, target)
    if meta.is_empty() or meta["value"].is_null().all():
        raise SercapError(
            f"corpus {corpus!r} has no {target} ratings; {option('target')} needs dimensional "
            "labels "
            "(IEMOCAP, the synthetic corpus, or a manifest with valence/activation/dominance)"
        )
    if label_map is not None:
        label_map = d.resolve_label_map(wh, corpus, label_map)
        kept = d.labelled_utterances(wh, corpus, label_map)["utt_id"]
        meta = meta.filter(pl.col("utt_id").is_in(kept.implode()))
    n_missing = int(meta["value"].is_null().sum())
    meta = meta.filter(pl.col("value").is_not_null())
    if meta.is_empty():
        raise SercapError(
            f"no utterance of corpus {corpus!r} kept by label map {label_map!r} has any "
            f"{target} rating"
        )
    ids = meta["utt_id"]
    if kind == "image":
        columns = None
        name = image_set or d.DEFAULT_IMAGE_SET
        digest = d.set_version(wh, name, "image", version)
        d._require_complete(wh, digest, name, "image", corpus, ids)
        X, keep, cols = d._read_images(wh, name, ids, digest)
    else:
        columns = columns or get_model(model).default_columns
        name = feature_set or d.DEFAULT_FEATURE_SET
        digest = d.set_version(wh, name, None, version)
        d._require_complete(wh, digest, name, None, corpus, ids)
        read = d._read_tabular if kind == "tabular" else d._read_sequences
        X, keep, cols = read(wh, name, corpus, ids, columns, digest)
    meta = meta.filter(pl.col("utt_id").is_in(pl.Series(keep, dtype=pl.String).implode()))
    if meta.is_empty():
        command = "images" if kind == "image" else "extract"
        raise SercapError(
            f"no {name!r} features for the utterances of corpus {corpus!r}; run "
            f"`sercap {command} --corpus {corpus}` first"
        )
    data = Dataset(
        utt_ids=meta["utt_id"].to_numpy(),
        X=X,
        y=meta["value"].to_numpy().astype(np.float64),
        classes=[],
        speakers=meta["speaker"].to_numpy(),
        folds=meta["fold"].to_numpy(),
        sessions=d.protocol_sessions(meta),
        audio_sources=audio_sources(wh, corpus),
        corpus=corpus,
        label_map=target_label(target, label_map),
        protocol=meta["protocol"][0],
        input_kind=kind,
        feature_set=name,
        feature_set_hash=digest,
        columns=cols,
        column_pattern=columns,
        target=target,
    )
    if speaker_norm:
        d.apply_speaker_norm(wh, data)
    return data, n_missing


# ----------------------------------------------------------------------------- evaluation
@dataclass
class RegressionCV:
    """Out-of-fold predictions and scores of one cross-validation of a regressor."""

    pred: np.ndarray  # (n,), NaN for rows no split tested
    fold_names: list[str]
    fold_metrics: list[RegressionMetrics]
    pooled: RegressionMetrics
    fit_s: float
    duration_s: float
    evaluated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def fold_stats(self) -> dict[str, float]:
        """Mean and standard deviation over folds of CCC."""
        values = np.array([m.ccc for m in self.fold_metrics])
        return {"ccc_fold_mean": float(values.mean()), "ccc_fold_std": float(values.std())}


def fit_fold_regression(
    data: Dataset,
    model: str,
    params: dict | None,
    train: np.ndarray,
    test: np.ndarray,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
) -> tuple[np.ndarray, float]:
    """Fit ``model``'s regressor on rows ``train``; its predictions for rows ``test`` and
    the seconds the fit took."""
    from sercap.data import take
    from sercap.models.regressors import get_regressor

    reg = get_regressor(model)(params, seed=seed, n_jobs=n_jobs, device=device)
    t0 = time.perf_counter()
    reg.fit(take(data.X, train), data.y[train], groups=data.validation_groups(train))
    fit_s = time.perf_counter() - t0
    return reg.predict(take(data.X, test)), fit_s


def _regression_fold_task(item: tuple[Dataset, tuple]) -> tuple[int, np.ndarray, float]:
    """On a Dask worker: one fold of :func:`cross_validate_regression`."""
    from sercap.cluster import worker_threads

    data, (i, model, params, train, test, seed, n_jobs, device) = item
    pred, fit_s = fit_fold_regression(
        data, model, params, train, test, seed=seed, n_jobs=worker_threads(n_jobs), device=device
    )
    return i, pred, fit_s


def cross_validate_regression(
    data: Dataset,
    model: str,
    params: dict | None = None,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    splits: list[tuple[str, np.ndarray, np.ndarray]] | None = None,
    on_fold: Callable[[int, RegressionMetrics], None] | None = None,
    progress: bool = True,
    fold_params: dict[str, dict] | None = None,
    cluster: Any = None,
) -> RegressionCV:
    """Train on each split's training rows, predict its test rows, score with CCC.

    The regression twin of :func:`sercap.evaluate.cross_validate` (same splits, same
    ``fold_params`` for nested tuning, same ``on_fold`` hook for pruning). With
    ``cluster`` (a Dask client or spec) the folds are fitted as one batch of tasks, each by
    :func:`fit_fold_regression` on a worker with the same seed: the same predictions.
    """
    from sercap.evaluate import outer_splits

    if data.target is None:
        raise SercapError("this dataset holds classes, not ratings; load it with a target")
    splits = list(splits) if splits is not None else list(outer_splits(data))
    if fold_params is not None and (missing := [n for n, _, _ in splits if n not in fold_params]):
        raise SercapError(f"no tuned parameters for fold(s) {', '.join(missing)}")
    for name, train, _ in splits:  # said per fold, before any fit (the model named none)
        values = np.unique(np.asarray(data.y, dtype=float)[train])
        if len(values) == 1:
            raise SercapError(
                f"fold {name}: every rating of its training part is {values[0]:g} "
                f"({len(train)} utterances of the other folds' speakers): nothing to learn"
            )
    pred = np.full(len(data), np.nan)
    fold_metrics: list[RegressionMetrics] = []
    started = time.perf_counter()
    fit_s = 0.0
    fitted: dict[int, tuple[np.ndarray, float]] = {}
    if cluster is not None:
        from sercap.distribute import run_on_cluster

        tasks = [
            (0, (i, model, params if fold_params is None else fold_params[name], train, test,
                 seed, n_jobs, device))
            for i, (name, train, test) in enumerate(splits)
        ]  # fmt: skip
        for i, p, seconds in run_on_cluster(
            cluster, _regression_fold_task, [data], tasks, progress=progress, unit="fold"
        ):
            fitted[i] = (p, seconds)
    bar = tqdm(
        splits, desc=f"{model} folds", unit="fold", leave=False,
        disable=not progress or cluster is not None,
    )  # fmt: skip
    for i, (name, train, test) in enumerate(bar):
        chosen = params if fold_params is None else fold_params[name]
        if i in fitted:
            p, seconds = fitted[i]
        else:
            p, seconds = fit_fold_regression(
                data, model, chosen, train, test, seed=seed, n_jobs=n_jobs, device=device
            )
        fit_s += seconds
        _require_finite(model, name, p)
        pred[test] = p
        metrics = score_regression(data.y[test], p)
        fold_metrics.append(metrics)
        bar.set_postfix_str(f"{name} CCC {metrics.ccc:.3f}")
        if on_fold is not None:
            on_fold(i, metrics)
    evaluated = np.flatnonzero(~np.isnan(pred))
    return RegressionCV(
        pred=pred,
        fold_names=[s[0] for s in splits],
        fold_metrics=fold_metrics,
        pooled=score_regression(data.y[evaluated], pred[evaluated]),
        fit_s=fit_s,
        duration_s=time.perf_counter() - started,
        evaluated=evaluated,
    )


def _require_finite(model: str, fold: str, predicted: np.ndarray) -> None:
    """Every rating a fold predicts is a number: a NaN was left out of the pooled scores
    (and of ``n_utterances``) without a word."""
    bad = int(np.count_nonzero(~np.isfinite(predicted)))
    if bad:
        raise DivergedError(
            f"{model}: fold {fold} predicted {bad} of {len(predicted)} ratings as NaN or "
            "infinite (the model diverged, or its inputs hold NaN); nothing was stored",
            hint="lower lr for a neural model, or check the features with sercap check",
        )


def store_regression_run(
    wh: Warehouse,
    data: Dataset,
    model: str,
    result: RegressionCV,
    *,
    params: dict | None,
    seed: int,
    tuned_from: str | None = None,
    fold_params: dict[str, dict] | None = None,
    overrides: dict | None = None,
    versions: str | None = None,
) -> str:
    """Store a regression run and its out-of-fold predictions in one transaction; its id.
    (``versions``: its :func:`~sercap.evaluate.versions_json`, a torch model's threads and
    device included.)
    ``overrides`` as for :func:`~sercap.evaluate.store_run`."""
    import pyarrow as pa

    from sercap.evaluate import data_sha256, new_run_id, params_json, versions_json

    run_id = new_run_id(model)
    rows = result.evaluated
    run = {
        "run_id": run_id, "kind": "model", "model": model, "corpus": data.corpus,
        "label_map": data.label_map, "protocol": data.protocol, "feature_set": data.feature_set,
        "feature_set_hash": data.feature_set_hash, "columns": data.column_pattern,
        "speaker_norm": data.speaker_norm,
        "params_json": params_json(params), "seed": seed,
        "tuned_from": tuned_from, "n_utterances": int(len(rows)),
        "overrides_json": params_json(overrides) if overrides else None,
        "n_folds": len(result.fold_names), "target": data.target,
        "ccc": result.pooled.ccc, "pearson": result.pooled.pearson, "mae": result.pooled.mae,
        **result.fold_stats(), "fit_s": result.fit_s, "duration_s": result.duration_s,
        "versions_json": versions or versions_json(),
        "data_sha256": data_sha256(wh, data, rows),
        "fold_params_json": (
            json.dumps(fold_params, sort_keys=True, default=str)
            if fold_params is not None else None
        ),
    }  # fmt: skip
    table = pa.table(
        {
            "run_id": [run_id] * len(rows),
            "utt_id": data.utt_ids[rows].tolist(),
            "fold": data.folds[rows].tolist(),
            "value": data.y[rows].astype(np.float64),
            "predicted": result.pred[rows].astype(np.float64),
        }
    )
    store_regression.insert_regression_run(wh, run, table)
    return run_id


def run_regression(
    wh: Warehouse,
    model: str,
    data: Dataset,
    *,
    params: dict | None = None,
    tuned: bool | str = False,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
) -> str:
    """Cross-validate ``model``'s regressor on ``data`` under its protocol and store the run.

    With ``tuned`` each outer fold is fitted with its own nested study's parameters (tuned
    on CCC over that fold's training speakers, see :func:`sercap.tuning.run_nested`; a
    string names the tuning); the run stores those and, as ``params``, the final study's.
    Returns the run id.
    """
    return _fit_and_store(
        wh, model, data, params=params, tuned=tuned, seed=seed, n_jobs=n_jobs, device=device,
        progress=progress, cluster=cluster,
    )[0]  # fmt: skip


def _fit_and_store(
    wh: Warehouse, model: str, data: Dataset, *, params, tuned, seed, n_jobs, device,
    progress, cluster, plan=None,
) -> tuple[str, RegressionCV]:  # fmt: skip
    from sercap.evaluate import versions_json
    from sercap.experiment import plan_run

    if plan is None:
        plan = plan_run(wh, model, data, params=params, tuned=tuned)
    with wh.released():  # the fits read nothing from the warehouse: others may use it
        result = cross_validate_regression(
            data, model, plan.params, seed=seed, n_jobs=n_jobs, device=device,
            progress=progress, fold_params=plan.fold_params, cluster=cluster,
        )  # fmt: skip
    stored = plan.params if plan.stored_params is None else plan.stored_params
    run_id = store_regression_run(
        wh, data, model, result, params=stored, seed=seed, tuned_from=plan.tuned_from,
        fold_params=plan.fold_params, overrides=plan.overrides,
        versions=versions_json(model, n_jobs, device, cluster=cluster is not None),
    )  # fmt: skip
    return run_id, result


@dataclass(frozen=True)
class TunedCCC:
    """Default and nested-tuned regression runs of one model on the same utterances:
    CCC(tuned) − CCC(default) with its paired bootstrap confidence interval."""

    model: str
    default_run: str
    tuned_run: str
    ccc_default: float
    ccc_tuned: float
    diff: float
    low: float
    high: float
    n_boot: int

    @property
    def within_noise(self) -> bool:
        """True when the interval includes 0: no difference can be claimed."""
        return self.low <= 0.0 <= self.high


def paired_bootstrap_ccc(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile interval of CCC(b) − CCC(a) over ``n_boot`` paired resamples of the
    utterances (the same draw for both systems); with ``groups`` (each one's speaker) the
    span of that interval and the one over speakers, as
    :func:`sercap.evaluate.paired_bootstrap_ua` does for UA.

    Examples
    --------
    >>> y = np.linspace(-1.0, 1.0, 50)
    >>> low, high = paired_bootstrap_ccc(y, 0.5 * y, y, n_boot=200)
    >>> 0.0 < low <= high  # b predicts the ratings exactly, a at half their scale
    True
    """
    from sercap.evaluate import span_of_bootstraps

    y_true, pred_a, pred_b = (np.asarray(v, dtype=np.float64) for v in (y_true, pred_a, pred_b))
    low, high, _ = span_of_bootstraps(
        ccc, y_true, pred_a, pred_b, n_boot=n_boot, confidence=confidence, seed=seed,
        groups=groups,
    )  # fmt: skip
    return low, high


def compare_tuned_regression(
    wh: Warehouse,
    model: str,
    data: Dataset,
    *,
    params: dict | None = None,
    study: str | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
    n_boot: int = 2000,
) -> TunedCCC:
    """Run ``model``'s regressor with nested-tuned parameters (``study``: which tuning,
    default the newest) and with its defaults on the same folds (both stored), and compare
    their pooled CCC with a paired bootstrap 95 % CI over the utterances both predicted (the
    span of the intervals over their speakers and over single utterances)."""
    common = dict(
        params=params, seed=seed, n_jobs=n_jobs, device=device, progress=progress,
        cluster=cluster,
    )  # fmt: skip
    from sercap.experiment import plan_run

    tuned_plan = plan_run(wh, model, data, params=params, tuned=study or True)  # refuses first
    # the default run is stored first: the tuned run is the newer, the one predict uses
    default_id, default = _fit_and_store(wh, model, data, tuned=False, **common)
    tuned_id, tuned = _fit_and_store(wh, model, data, tuned=True, plan=tuned_plan, **common)
    rows = np.intersect1d(tuned.evaluated, default.evaluated)
    y = data.y[rows]
    low, high = paired_bootstrap_ccc(
        y, default.pred[rows], tuned.pred[rows], n_boot=n_boot, seed=seed,
        groups=np.asarray(data.speakers)[rows],
    )  # fmt: skip
    a, b = float(ccc(y, default.pred[rows])), float(ccc(y, tuned.pred[rows]))
    return TunedCCC(model, default_id, tuned_id, a, b, b - a, low, high, n_boot)


def train_target(
    wh: Warehouse,
    model: str,
    target: str,
    *,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    params: dict | None = None,
    tuned: bool | str = False,
    speaker_norm: bool = False,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    cluster: Any = None,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
) -> tuple[str, int, TunedCCC | None]:
    """`train MODEL --target RATING`: load, say what was read, cross-validate, store.

    Returns the run id, how many utterances had no rating and, with ``tuned``, the
    :class:`TunedCCC` comparison with the defaults (else None); the run id is the tuned
    run's. With ``cluster`` the folds are fitted on Dask (the same run).
    """
    data, left_out = load_target_dataset(
        wh, model, target, corpus=corpus, label_map=label_map, feature_set=feature_set,
        image_set=image_set, columns=columns, speaker_norm=speaker_norm,
    )  # fmt: skip
    if say is not None:
        say(describe_dataset(model, data, left_out))
        _say_stale_version(wh, data, say)
    common = dict(
        params=params, seed=seed, n_jobs=n_jobs, device=device, progress=progress,
        cluster=cluster,
    )  # fmt: skip
    if tuned:
        study = tuned if isinstance(tuned, str) else None
        comparison = compare_tuned_regression(wh, model, data, study=study, **common)
        return comparison.tuned_run, left_out, comparison
    return run_regression(wh, model, data, **common), left_out, None


# ----------------------------------------------------------------------------- bench
def bench_target(
    wh: Warehouse,
    models: Sequence[str],
    target: str,
    *,
    all_models: bool = False,
    corpus: str,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    speaker_norm: bool = False,
    tuned: bool = False,
    refused: dict[str, bool] | None = None,
    out_dir: Path | str | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
    say: Callable[[str], None] | None = None,
    describe: Callable[[list[TunedCCC]], str] | None = None,
) -> tuple[pl.DataFrame, dict[str, Path], list[TunedCCC]]:
    """`bench [MODEL…] --target RATING`: the models' regressors (default svm rf xgb lgbm;
    ``all_models``: every model with one) compared, into ``out_dir`` (default
    ``WAREHOUSE/reports/bench-CORPUS-TARGET``). ``refused`` names bench options that a
    regression does not take, and whether each was given (one line if any was); ``say``
    hears what each dataset holds (and leaves out for lack of a rating), as `train` says;
    ``describe`` writes the ``tuned`` comparisons into bench.md, with the table."""
    from sercap.models.regressors import regressor_names
    from sercap.store import layout

    check_target(target)
    if unsupported := [what for what, given in (refused or {}).items() if given]:
        raise BadParameterError(
            f"a regression bench does not take {', '.join(map(option, unsupported))}",
            hint="leave it out, or compare classifiers without a target",
        )
    chosen = regressor_names() if all_models else list(models) or ["svm", "rf", "xgb", "lgbm"]
    out = (
        Path(out_dir)
        if out_dir is not None
        else layout.report_dir(wh.root, f"bench-{corpus}-{target}")
    )
    return bench_regression(
        wh, chosen, target, out, corpus=corpus, label_map=label_map, feature_set=feature_set,
        image_set=image_set, speaker_norm=speaker_norm, tuned=tuned, seed=seed, n_jobs=n_jobs,
        device=device, progress=progress, cluster=cluster, say=say, describe=describe,
    )  # fmt: skip


def bench_regression(
    wh: Warehouse,
    models: Sequence[str],
    target: str,
    out_dir: Path,
    *,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    speaker_norm: bool = False,
    tuned: bool = False,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    cluster: Any = None,
    describe: Callable[[list[TunedCCC]], str] | None = None,
) -> tuple[pl.DataFrame, dict[str, Path], list[TunedCCC]]:
    """Run each model's regressor of ``target`` (each a stored run) and compare them.

    Models reading the same columns share one read of the warehouse. With ``tuned`` each
    model runs with its defaults and with its nested-tuned parameters on the same folds
    (:func:`compare_tuned_regression`). Writes ``bench.md`` (with ``describe`` of the
    comparisons) and ``bench.csv`` into ``out_dir``; returns the table (one row per run),
    the files and the comparisons.
    """
    from sercap.models.registry import get_model
    from sercap.models.regressors import get_regressor
    from sercap.store.runs import get_run

    if not models:
        raise SercapError("name the models to compare (e.g. svm lgbm dnn)")
    for model in models:  # refuse before the first fit, not after some
        get_regressor(model)
    datasets: dict[Any, tuple[Dataset, int]] = {}
    rows: list[dict] = []
    comparisons: list[TunedCCC] = []
    for model in models:
        key = (get_regressor(model).input_kind, get_model(model).default_columns)
        if key not in datasets:
            datasets[key] = load_target_dataset(
                wh, model, target, corpus=corpus, label_map=label_map, feature_set=feature_set,
                image_set=image_set, speaker_norm=speaker_norm,
            )  # fmt: skip
            if say is not None:
                say(describe_dataset(model, *datasets[key]))
                _say_stale_version(wh, datasets[key][0], say)
        data, _ = datasets[key]
        if tuned:  # its defaults on the same folds beside it, and the CI of the difference
            comparison = compare_tuned_regression(
                wh, model, data, seed=seed, n_jobs=n_jobs, device=device, progress=progress,
                cluster=cluster,
            )  # fmt: skip
            comparisons.append(comparison)
            ran = [(model, comparison.default_run), (f"{model} nested-tuned", comparison.tuned_run)]
        else:
            run_id = run_regression(
                wh, model, data, seed=seed, n_jobs=n_jobs, device=device, progress=progress,
                cluster=cluster,
            )  # fmt: skip
            ran = [(model, run_id)]
        rows += [_bench_row(get_run(wh, run_id), name, target) for name, run_id in ran]
    table = pl.DataFrame(rows)
    first = datasets[next(iter(datasets))][0]

    def write(folder: Path) -> dict[str, Path]:
        written = {"markdown": folder / "bench.md", "csv": folder / "bench.csv"}
        written["csv"].write_text(table.write_csv())
        text = bench_markdown(table, first.corpus) + "\n"
        if comparisons and describe is not None:  # --tuned: default vs tuned CCC, its CI
            text += f"\n```\n{describe(comparisons)}\n```\n"
        written["markdown"].write_text(text)
        return written

    from sercap._newfiles import write_all_or_nothing

    written = write_all_or_nothing(Path(out_dir), write, "the tables (the runs are stored)")
    return table, written, comparisons


def _bench_row(record: dict, name: str, target: str) -> dict:
    """One row of a regression bench table from a stored run's record."""
    return {
        "name": name,
        "target": target,
        "ccc": record["ccc"],
        "pearson": record["pearson"],
        "mae": record["mae"],
        "ccc_fold_mean": record["ccc_fold_mean"],
        "ccc_fold_std": record["ccc_fold_std"],
        "fit_s": record["fit_s"],
        "n_utterances": record["n_utterances"],
        "speaker_norm": bool(record["speaker_norm"]),
        "protocol": record["protocol"],
        "label_map": record["label_map"],
        "run_id": record["run_id"],
    }


def _say_stale_version(wh: Warehouse, data: Dataset, say: Callable[[str], None]) -> None:
    """What train and bench say of a classification dataset's feature set stored by
    another sercap (:func:`sercap.experiment.stale_version_note`), for a rating's too."""
    from sercap.experiment import stale_version_note

    note = stale_version_note(wh, data)
    if note:
        say(note)


def describe_dataset(model: str, data: Dataset, left_out: int) -> str:
    """One line: what a regression run reads (and how many utterances lacked a rating)."""
    line = (
        f"{model} → {data.target}: {len(data)} utterances of {data.corpus}, "
        f"{len(set(data.folds))} folds ({data.protocol})"
    )
    if left_out:
        noun = "utterance" if left_out == 1 else "utterances"
        line += f"; {left_out} {noun} without a {data.target} rating left out"
    return line


def bench_markdown(table: pl.DataFrame, corpus: str) -> str:
    """The comparison as a Markdown table with the protocol stated under it."""
    lines = [
        "| model | CCC | Pearson r | MAE | CCC per fold (mean ± std) | fit time (s) | run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.iter_rows(named=True):
        name = r["name"] + (" (speaker-norm)" if r["speaker_norm"] else "")
        lines.append(
            f"| {name} | {r['ccc']:.4f} | {r['pearson']:.4f} | {r['mae']:.4f} | "
            f"{r['ccc_fold_mean']:.3f} ± {r['ccc_fold_std']:.3f} | {r['fit_s']:.1f} | "
            f"`{r['run_id']}` |"
        )
    lines += ["", regression_caption(table, corpus)]
    return "\n".join(lines)


def _which(row: dict) -> str:
    chosen = row["label_map"].partition(".")[2]
    return f"utterances of label map {chosen}" if chosen else "utterances with a rating"


def regression_caption(table: pl.DataFrame, corpus: str) -> str:
    """One line saying how a regression bench table's figures were obtained."""
    row = table.row(0, named=True)
    return (
        f"Corpus {corpus} · target {row['target']} ({row['n_utterances']} {_which(row)}) · "
        f"protocol {row['protocol']} (speaker-independent) · pooled "
        "out-of-fold scores · CCC = Lin's concordance correlation, MAE in rating units."
    )


def with_regression_scores(wh: Warehouse, runs: pl.DataFrame) -> pl.DataFrame:
    """A runs listing (``sercap runs``) with ``target``, ``ccc``, ``pearson`` and ``mae``
    columns added when some of its runs are regression runs (unchanged otherwise)."""
    if runs.is_empty() or "run_id" not in runs.columns:
        return runs
    scores = store_regression.regression_scores(wh, runs["run_id"].to_list())
    if scores.is_empty():
        return runs
    joined = runs.join(scores, on="run_id", how="left", maintain_order="left")
    order = list(runs.columns)
    after = {"label_map": ["target"], "macro_f1": ["ccc", "pearson", "mae"]}
    columns: list[str] = []
    for name in order:
        columns.append(name)
        columns += [c for c in after.get(name, []) if c in joined.columns]
    columns += [c for c in joined.columns if c not in columns]
    return joined.select(columns)
