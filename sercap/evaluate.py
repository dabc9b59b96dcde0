"""Honest evaluation: speaker-independent folds, metrics, cross-validation, stored runs.

Every number sercap reports comes from here: out-of-fold predictions of a model trained on
the other folds (no speaker is ever on both sides), pooled over folds and scored as UA
(unweighted accuracy: mean per-class recall), WA (weighted accuracy: plain accuracy) and
macro-F1, plus per-fold mean ± std. A run and every prediction are stored in the warehouse.

With ``fold_params`` (nested tuning) each outer fold is fitted with parameters chosen without
its test speakers. :func:`paired_bootstrap_ua` compares two systems on the same utterances.
What stays outside this guarantee: anything chosen by looking at these outer scores (a model
family, a feature set, the best of several runs) is selection on the test set.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score
from tqdm.auto import tqdm

from sercap.data import Dataset
from sercap.errors import DivergedError, SercapError, option
from sercap.store import Warehouse, runs

#: Libraries whose versions can change results; recorded with every run.
VERSIONED_PACKAGES = (
    "sercap", "numpy", "scikit-learn", "xgboost", "lightgbm", "torch", "torchvision",
    "librosa", "duckdb", "polars", "optuna",
)  # fmt: skip


@dataclass(frozen=True)
class Metrics:
    """Scores of one set of predictions."""

    ua: float
    wa: float
    macro_f1: float
    confusion: list[list[int]]

    @property
    def as_dict(self) -> dict[str, float]:
        return {"ua": self.ua, "wa": self.wa, "macro_f1": self.macro_f1}


def score(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> Metrics:
    """UA (mean recall over the classes present in ``y_true``), WA and macro-F1.

    Classes absent from ``y_true`` (possible inside one fold) are left out of UA and F1
    rather than counted as zero recall; the pooled scores see every class.
    """
    labels = np.arange(n_classes)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    present = support > 0
    recall = np.divide(np.diag(cm), support, out=np.zeros(n_classes), where=present)
    ua = float(recall[present].mean()) if present.any() else 0.0
    wa = float(np.trace(cm) / cm.sum()) if cm.sum() else 0.0
    f1 = float(f1_score(y_true, y_pred, labels=labels[present], average="macro", zero_division=0))
    return Metrics(ua=ua, wa=wa, macro_f1=f1, confusion=cm.tolist())


def check_speaker_independent(speakers: np.ndarray, folds: np.ndarray) -> None:
    """Refuse a fold assignment that puts one speaker in two folds."""
    seen: dict[str, str] = {}
    for speaker, fold in zip(speakers.tolist(), folds.tolist(), strict=True):
        if seen.setdefault(speaker, fold) != fold:
            raise SercapError(
                f"speaker {speaker!r} is in folds {seen[speaker]!r} and {fold!r}: the protocol "
                "is not speaker-independent"
            )


def check_recordings_in_one_fold(data: Dataset) -> None:
    """Refuse a dataset where one recording (file bytes and segment) is two utterances in
    two folds: the fold that tests one trained on the other. A manifest that names its
    utterances can file a recording under two speakers (ingest notes it); a review measured
    svm on six EmoDB speakers at UA 0.78 instead of 0.71 with one speaker's 49 files filed
    again under a second one. Only cross-validation refuses: a final model has no folds.

    >>> d = Dataset(np.array(["a", "b", "c"]), None, np.zeros(3, int), ["x"],
    ...             np.array(["s1", "s2", "s2"]), np.array(["s1", "s2", "s2"]), "c", "m",
    ...             "leave-one-speaker-out", "tabular",
    ...             audio_sources={"a": "f00d:None-None", "b": "f00d:None-None", "c": None})
    >>> check_recordings_in_one_fold(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sercap.errors.SercapError: corpus 'c' holds 1 recording(s) in two folds (utterances a and b...
    """
    if not data.audio_sources:
        return
    fold_of: dict[str, dict[str, str]] = {}  # recording -> fold -> its first utterance there
    for utt, fold in zip(data.utt_ids.tolist(), np.asarray(data.folds).tolist(), strict=True):
        source = data.audio_sources.get(utt)
        if source is not None:
            fold_of.setdefault(source, {}).setdefault(fold, utt)
    split = [sorted(folds.values()) for folds in fold_of.values() if len(folds) > 1]
    if split:
        first, second = sorted(split)[0][:2]
        raise SercapError(
            f"corpus {data.corpus!r} holds {len(split)} recording(s) in two folds "
            f"(utterances {first} and {second} are the same audio, file bytes and segment); "
            "a fold would be tested on recordings it trained on: give each recording one "
            f"utterance, or ingest the corpus without the copies under a new name "
            f"({option('name')})"
        )


def outer_splits(data: Dataset) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(fold name, train index, test index) for every fold of the dataset's protocol."""
    check_speaker_independent(data.speakers, data.folds)
    check_recordings_in_one_fold(data)
    names = sorted(np.unique(data.folds))
    if len(names) < 2:
        raise SercapError(
            f"corpus {data.corpus!r} has a single fold ({names[0]!r}); speaker-independent "
            "evaluation needs at least two speakers or sessions"
        )
    for name in names:
        test = np.flatnonzero(data.folds == name)
        train = np.flatnonzero(data.folds != name)
        yield name, train, test


def inner_splits(
    data: Dataset, n_splits: int = 3, seed: int = 0
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Validation splits inside ``data`` (a training set), for tuning, grouped by speaker
    (by session under leave-one-session-out: :meth:`Dataset.validation_groups`).

    The groups are shuffled with ``seed`` and dealt into ``n_splits`` splits, so every
    validation speaker (session) is unseen by the model trained on the rest.
    """
    units = data.validation_groups()
    distinct = np.unique(units)
    n_splits = min(n_splits, len(distinct))
    if n_splits < 2:
        raise SercapError("inner validation needs at least two training speakers")
    order = np.random.default_rng(seed).permutation(distinct)
    groups = {s: i % n_splits for i, s in enumerate(order)}
    assignment = np.array([groups[s] for s in units])
    for k in range(n_splits):
        yield f"inner{k + 1}", np.flatnonzero(assignment != k), np.flatnonzero(assignment == k)


def check_inner_units(data: Dataset, only_folds: list[str] | None) -> None:
    """One line, before any study exists, when an outer fold's training part has a single
    speaker: its inner validation cannot keep one apart (it stopped there with studies left
    behind, and `train --tuned` then advised a tune that can never succeed)."""
    for fold, train, _ in outer_splits(data):
        if only_folds is not None and fold not in only_folds:
            continue
        units = np.unique(data.validation_groups(train))
        if len(units) < 2:
            who = units[0] if len(units) else "none"
            raise SercapError(
                f"outer fold {fold}'s training part has one speaker ({who}): nested tuning "
                "validates on speakers the trial did not train on, so it needs three speakers "
                "or more in the corpus; use the defaults (`train` without --tuned)"
            )


@dataclass
class CVResult:
    """Out-of-fold probabilities and scores of one cross-validation."""

    proba: np.ndarray  # (n, K), row-aligned with the dataset
    fold_names: list[str]
    fold_metrics: list[Metrics]
    pooled: Metrics
    fit_s: float
    duration_s: float
    evaluated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def fold_stats(self) -> dict[str, float]:
        """Mean and standard deviation over folds of each metric."""
        out: dict[str, float] = {}
        for key in ("ua", "wa", "macro_f1"):
            values = np.array([getattr(m, key) for m in self.fold_metrics])
            out[f"{key}_fold_mean"] = float(values.mean())
            out[f"{key}_fold_std"] = float(values.std())
        return out


def cross_validate(
    data: Dataset,
    model_name: str,
    params: dict | None = None,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    splits: list[tuple[str, np.ndarray, np.ndarray]] | None = None,
    on_fold: Callable[[int, Metrics], None] | None = None,
    progress: bool = True,
    fold_params: dict[str, dict] | None = None,
    say: Callable[[str], None] | None = None,
) -> CVResult:
    """Train on each split's training rows, predict its test rows, score.

    ``say`` hears a line as each fold ends (where no bar shows, a log's only sign of life:
    an SVM's folds on IEMOCAP take minutes each).

    ``splits`` defaults to the dataset's speaker-independent protocol. ``fold_params`` gives
    each split (by name) its own parameters instead of ``params``: nested tuning, where fold
    f's parameters were chosen without fold f's test speakers. ``on_fold`` is called
    after every fold with its index and scores (Optuna reports there and may prune by
    raising). Only rows in some test split get predictions; ``evaluated`` lists them.

    The same folds on a Dask cluster: :func:`sercap.distribute.cross_validate_many` (one
    task per fold; same seed, same predictions).
    """
    splits = check_splits(data, model_name, splits, fold_params)
    K = data.n_classes
    proba = np.full((len(data), K), np.nan)
    fold_metrics: list[Metrics] = []
    started = time.perf_counter()
    fit_s = 0.0
    bar = tqdm(splits, desc=f"{model_name} folds", unit="fold", disable=not progress, leave=False)
    for i, (name, train, test) in enumerate(bar):
        bar.set_postfix_str(name)
        chosen = params if fold_params is None else fold_params[name]
        p, seconds = fit_fold(
            data, model_name, chosen, train, test, seed=seed, n_jobs=n_jobs, device=device,
            verbose=progress,
        )  # fmt: skip
        fit_s += seconds
        proba[test] = p
        metrics = score(data.y[test], p.argmax(axis=1), K)
        fold_metrics.append(metrics)
        bar.set_postfix_str(f"{name} UA {metrics.ua:.3f}")
        if say is not None:
            say(
                f"  {model_name} fold {name} ({i + 1}/{len(splits)}): UA {metrics.ua:.3f}, "
                f"fit {seconds:.1f} s"
            )
        if on_fold is not None:
            on_fold(i, metrics)
    return finish_cv(data, splits, proba, fold_metrics, fit_s, time.perf_counter() - started)


def data_notes(data: Dataset) -> list[str]:
    """Notes on a dataset whose scores would mislead without them: utterances left out (no
    features or no words); a class whose every utterance lies in one fold, never trained on
    when that fold is tested (its recall there is 0 by construction); under speaker
    normalisation, utterances whose functionals all became 0 (a speaker with one extracted
    utterance is its own mean).

    >>> import numpy as np
    >>> d = Dataset(np.arange(4), None, np.array([0, 0, 1, 1]), ["a", "b"],
    ...             np.array(["s1", "s2", "s1", "s1"]), np.array(["s1", "s2", "s1", "s1"]),
    ...             "c", "m", "leave-one-speaker-out", "tabular")
    >>> data_notes(d)  # doctest: +NORMALIZE_WHITESPACE
    ["note: class 'b' occurs in fold s1 only: never trained on when that fold is tested, so
      its recall is 0 there whatever the model (a label map without it, or more speakers)"]
    """
    notes = []
    if getattr(data, "left_out", 0):
        failed = "their extraction failed (the extractions table keeps each one's error)"
        why = {
            "text": "they have no transcript",
            "multimodal": f"they have no transcript, or {failed}",
        }.get(data.input_kind, failed)
        notes.append(f"note: {data.left_out} labelled utterance(s) left out: {why}")
    if data.classes_left_out:  # (its runs have fewer classes than the label map's others)
        notes.append(
            f"note: class(es) {', '.join(map(repr, data.classes_left_out))} of label map "
            f"{data.label_map!r} left out: none of their utterances has a transcript, so "
            f"this run has {len(data.classes)} classes"
        )
    folds = np.asarray(data.folds)
    if data.classes and len(np.unique(folds)) > 1:
        remedy = (
            "its rows left out of the manifest, or more speakers"
            if data.label_map == "manifest"  # (its one label map)
            else "a label map without it, or more speakers"
        )
        for k, name in enumerate(data.classes):
            where = np.unique(folds[data.y == k])
            if len(where) == 1:
                notes.append(
                    f"note: class {name!r} occurs in fold {where[0]} only: never trained on "
                    f"when that fold is tested, so its recall is 0 there whatever the model "
                    f"({remedy})"
                )
    if data.speaker_norm and data.input_kind == "tabular" and isinstance(data.X, np.ndarray):
        # a speaker whose statistics come from one extracted utterance (labelled or not):
        # that utterance is its own mean, read from the inputs themselves
        X = data.X
        zero = np.all((X == 0) | ~np.isfinite(X), axis=1) if X.size else np.zeros(0, bool)
        if (alone := np.unique(np.asarray(data.speakers)[zero])).size:
            shown = ", ".join(map(str, alone[:5])) + (", …" if alone.size > 5 else "")
            notes.append(
                f"note: speaker normalisation made every functional 0 for {int(zero.sum())} "
                f"utterance(s) of {shown} (a speaker with one extracted utterance is its own "
                "mean)"
            )
    return notes


def check_splits(
    data: Dataset,
    model_name: str,
    splits: list[tuple[str, np.ndarray, np.ndarray]] | None,
    fold_params: dict[str, dict] | None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The splits a cross-validation runs (default: the protocol's), after checking that
    the model reads the dataset's inputs and that every split has tuned parameters."""
    from sercap.models.registry import get_model

    model_cls = get_model(model_name)
    if model_cls.input_kind != data.input_kind:
        raise SercapError(
            f"model {model_name!r} reads {model_cls.input_kind} inputs, the dataset holds "
            f"{data.input_kind} ones"
        )
    splits = list(splits) if splits is not None else list(outer_splits(data))
    if fold_params is not None and (missing := [n for n, _, _ in splits if n not in fold_params]):
        raise SercapError(f"no tuned parameters for fold(s) {', '.join(missing)}")
    for name, train, _ in splits:  # said per fold, before any fit
        present = np.unique(data.y[train])
        if len(present) < 2:
            only = data.classes[int(present[0])] if len(present) else "none"
            raise SercapError(
                f"fold {name}: its training part holds only class {only!r} ({len(train)} "
                "utterances of the other folds' speakers); every fold needs at least two "
                "classes to train on: add speakers, or leave out the classes only some "
                "speakers have ("
                + (
                    "a manifest corpus has one label map: drop their rows from the manifest "
                    "and ingest it again"
                    if data.label_map == "manifest"
                    else f"a label map without them, {option('labels')}"
                )
                + ")"
            )
    return splits


def fit_fold(
    data: Dataset,
    model_name: str,
    params: dict | None,
    train: np.ndarray,
    test: np.ndarray,
    *,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    verbose: bool = False,
) -> tuple[np.ndarray, float]:
    """Fit ``model_name`` on rows ``train``; return its class probabilities for rows
    ``test`` (float64, ``(len(test), K)``) and the seconds the fit took.

    One fold of :func:`cross_validate`, in this process or as a task on a Dask worker.
    ``verbose``: the torch models' bar over their epochs (a fold of lstm at IEMOCAP's size
    is minutes, in which the fold bar stands still).
    """
    from sercap.models.registry import get_model

    model = get_model(model_name)(params, seed=seed, n_jobs=n_jobs, device=device, verbose=verbose)
    t0 = time.perf_counter()
    model.fit(
        take_X(data, train),
        data.y[train],
        groups=data.validation_groups(train),
        n_classes=data.n_classes,
    )
    fit_s = time.perf_counter() - t0
    return np.asarray(model.predict_proba(take_X(data, test)), dtype=np.float64), fit_s


def finish_cv(
    data: Dataset,
    splits: list[tuple[str, np.ndarray, np.ndarray]],
    proba: np.ndarray,
    fold_metrics: list[Metrics],
    fit_s: float,
    duration_s: float,
) -> CVResult:
    """Pool the out-of-fold probabilities of a cross-validation into its :class:`CVResult`."""
    K = data.n_classes
    for name, _, test in splits:  # a NaN row was left out of the pooled scores silently
        bad = int(np.count_nonzero(~np.isfinite(proba[test]).all(axis=1)))
        if bad:
            raise DivergedError(
                f"fold {name}: {bad} of {len(test)} predictions hold NaN or infinite "
                "probabilities (the model diverged, or its inputs hold NaN); nothing was stored",
                hint="lower lr for a neural model, or check the features with sercap check",
            )
    evaluated = np.flatnonzero(~np.isnan(proba[:, 0]))
    pooled = score(data.y[evaluated], proba[evaluated].argmax(axis=1), K)
    return CVResult(
        proba=proba,
        fold_names=[s[0] for s in splits],
        fold_metrics=fold_metrics,
        pooled=pooled,
        fit_s=fit_s,
        duration_s=duration_s,
        evaluated=evaluated,
    )


def take_X(data: Dataset, index: np.ndarray):
    """The model inputs of rows ``index``."""
    from sercap.data import take

    return take(data.X, index)


# ----------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class PairedDifference:
    """UA(b) − UA(a) on the same utterances, with a paired bootstrap confidence interval."""

    ua_a: float
    ua_b: float
    diff: float
    low: float
    high: float
    n_boot: int
    confidence: float
    #: What was resampled: ``"utterance"`` or ``"speaker"`` (all of a speaker's utterances).
    unit: str = "utterance"

    @property
    def within_noise(self) -> bool:
        """True when the interval includes 0: no difference can be claimed."""
        return self.low <= 0.0 <= self.high


def paired_bootstrap_interval(
    score: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile interval of ``score(y, b) - score(y, a)`` over ``n_boot`` resamples of the
    rows with replacement, the same draw for both systems (any score: UA, CCC…).

    With ``groups`` (each row's speaker) whole speakers are resampled, each draw taking all
    of a speaker's rows (a cluster bootstrap, as :func:`sercap.analysis.paired_bootstrap`)."""
    # The draws of sercap.analysis.paired_bootstrap (one matrix of them), so that a score's
    # interval here is the one `compare` computes for UA from the same predictions and seed.
    rng = np.random.default_rng(seed)
    n = len(y_true)
    if groups is None:  # drawn a block at a time: the same numbers as one (n_boot, n) matrix
        from sercap.analysis import BOOT_BLOCK

        rows = (
            row
            for start in range(0, n_boot, BOOT_BLOCK)
            for row in rng.integers(0, n, size=(min(BOOT_BLOCK, n_boot - start), n))
        )
    else:
        _, codes = np.unique(np.asarray(groups), return_inverse=True)
        members = [np.flatnonzero(codes == g) for g in range(int(codes.max(initial=-1)) + 1)]
        if len(members) < 2:  # as sercap.analysis.paired_bootstrap: one draw, no interval
            raise ValueError("resampling speakers needs two or more of them")
        draws = rng.integers(0, len(members), size=(n_boot, len(members)))
        rows = (np.concatenate([members[g] for g in draw]) for draw in draws)
    diffs = np.empty(n_boot)
    for b, idx in enumerate(rows):
        yt = y_true[idx]
        diffs[b] = score(yt, pred_b[idx]) - score(yt, pred_a[idx])
    low, high = np.percentile(diffs, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return float(low), float(high)


def paired_bootstrap_ua(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_classes: int,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> PairedDifference:
    """Paired bootstrap of the UA difference between two sets of predictions.

    Each replicate draws ``len(y_true)`` utterances with replacement (the same draw for both
    systems) and computes UA(b) − UA(a); the interval is the percentile interval of the
    replicates. With ``groups`` (each utterance's speaker) the interval spans that one and
    the one whose replicates draw speakers with all their utterances
    (:func:`span_of_bootstraps`): a difference counts only when both exclude 0.

    Parameters
    ----------
    y_true, pred_a, pred_b : ndarray (n,)
        True class indices and two systems' predicted class indices, row-aligned.
    n_classes : int
        Number of classes.
    n_boot : int
        Bootstrap replicates.
    confidence : float
        Coverage of the interval (0.95: the 2.5 % and 97.5 % percentiles).
    seed : int
        Seed of the resampling (``numpy.random.default_rng``).
    groups : ndarray (n,), optional
        Each utterance's speaker: resample speakers, not utterances.
    """
    from sercap.analysis import paired_bootstrap, speakers_and_utterances

    y_true, pred_a, pred_b = (np.asarray(v, dtype=np.int64) for v in (y_true, pred_a, pred_b))
    if not len(y_true) == len(pred_a) == len(pred_b):
        raise SercapError("paired bootstrap: the two systems predict different utterances")
    # `compare`'s own bootstrap, B against A: one implementation, one interval per question
    kw = {"n_classes": n_classes, "n_boot": n_boot, "level": confidence, "seed": seed}
    if groups is None:
        ci = paired_bootstrap(y_true, pred_b, pred_a, **kw)
    else:
        ci, _, _ = speakers_and_utterances(y_true, pred_b, pred_a, groups, **kw)
    return PairedDifference(
        ua_a=ci.b, ua_b=ci.a, diff=ci.difference, low=ci.low, high=ci.high,
        n_boot=n_boot, confidence=confidence, unit=ci.unit,
    )  # fmt: skip


def span_of_bootstraps(
    score: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    **kwargs: Any,
) -> tuple[float, float, str]:
    """``(low, high, unit)``: the utterance-level :func:`paired_bootstrap_interval` or, with
    two speakers or more in ``groups``, the span of it and the speaker-level one (see
    :func:`sercap.analysis.speakers_and_utterances` for why neither alone)."""
    low, high = paired_bootstrap_interval(score, y_true, pred_a, pred_b, **kwargs)
    if groups is None or len(np.unique(np.asarray(groups))) < 2:
        return low, high, "utterance"
    s_low, s_high = paired_bootstrap_interval(
        score, y_true, pred_a, pred_b, groups=groups, **kwargs
    )
    return min(low, s_low), max(high, s_high), "speaker and utterance"


# ----------------------------------------------------------------------------- storage
def library_versions() -> dict[str, str]:
    """Versions of the libraries that can change a result, and of Python, and
    ``sercap_source``: a hash of sercap's own code (:func:`source_fingerprint`)."""
    out = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    out["sercap_source"] = source_fingerprint()
    return out


@cache
def source_fingerprint() -> str:
    """Short SHA-256 of sercap's Python files and its SQL, by relative path and content.

    A model recipe can change in the code between two releases, so the version number alone
    does not say that two runs ran the same code: ``bench --resume`` takes a stored run only
    when this matches too (hashing the ~100 files takes a few milliseconds, once a process).

    >>> len(source_fingerprint())
    12
    """
    from sercap.sqlfiles import sql_dir

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for root, pattern in ((package, "*.py"), (sql_dir(), "*.sql")):
        for path in sorted(root.rglob(pattern)):
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


def params_json(params: dict | None) -> str:
    """A run's parameters as the ``runs`` table stores them (what a resumed bench compares)."""
    return json.dumps(params or {}, sort_keys=True, default=str)


def versions_json(
    model: str | None = None,
    n_jobs: int = 1,
    device: str | None = None,
    *,
    cluster: bool = False,
) -> str:
    """The library versions as a run stores them (:func:`library_versions`); for a torch
    model also the threads and the device its folds were fitted with (``torch_threads``,
    ``torch_device``): torch's sums run in another order with another thread count, and on
    EmoDB a dnn scored UA 0.772 with two threads and 0.779 with one, so a run names what
    reproduces it, and ``bench --resume`` reuses only a run fitted the same way."""
    versions: dict[str, Any] = dict(library_versions())
    if model is not None and _uses_torch(model):
        from sercap.models.torch_common import resolve_device

        threads = max(1, int(n_jobs))
        versions["torch_threads"] = (
            f"at most {threads} per Dask worker" if cluster else str(threads)
        )
        versions["torch_device"] = resolve_device(device).type
    return json.dumps(versions)


def _uses_torch(model: str) -> bool:
    """Whether ``model``'s fits may run torch (:func:`sercap.models.registry.may_run_torch`);
    False for a name that is not a model of its own (an ensemble)."""
    from sercap.models.registry import get_model, may_run_torch

    try:
        return may_run_torch(get_model(model))
    except SercapError:
        return False


def stored_same_run(
    wh: Warehouse,
    model: str,
    data: Dataset,
    params: dict | None,
    seed: int,
    *,
    n_jobs: int = 1,
    device: str | None = None,
    cluster: bool = False,
) -> str | None:
    """The newest stored default run of ``model`` that fitting ``data`` with ``params`` and
    ``seed`` here would repeat: the same data (corpus, label map, feature-set hash, columns,
    speaker normalisation, every utterance with the same label and the same audio: the
    run's ``data_sha256``), parameters, seed and library versions, sercap's code included.
    What ``bench --resume`` reuses instead of fitting again."""
    from sercap.store.runs import same_run

    labels = [(str(u), data.classes[int(y)]) for u, y in zip(data.utt_ids, data.y, strict=True)]
    return same_run(
        wh,
        {
            "model": model,
            "corpus": data.corpus,
            "label_map": data.label_map,
            "feature_set_hash": data.feature_set_hash,
            "columns": data.column_pattern,
            "speaker_norm": bool(data.speaker_norm),
            "params_json": params_json(params),
            "seed": int(seed),
            "versions_json": versions_json(model, n_jobs, device, cluster=cluster),
            "data_sha256": data_sha256(wh, data),
        },  # fmt: skip
        sorted(labels),
    )


def data_sha256(wh: Warehouse, data: Dataset, rows: np.ndarray | None = None) -> str | None:
    """The fingerprint of ``data`` (its ``rows``, default all) as a run stores it
    (:func:`sercap.store.runs.data_fingerprint`): labels and audio, not features; the audio
    as it was when the data was loaded (:attr:`Dataset.audio_sources`), else as it is."""
    audio = data.audio_sources
    return fingerprint_of(
        data, runs.audio_sources(wh, data.corpus) if audio is None else audio, rows
    )


def fingerprint_of(
    data: Dataset, audio: Mapping[str, str | None], rows: np.ndarray | None = None
) -> str | None:
    """:func:`data_sha256` from the corpus' :func:`~sercap.store.runs.audio_sources`,
    read beforehand (a tuning computes one per study after closing the warehouse)."""
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    return runs.data_fingerprint(
        data.utt_ids[rows].tolist(), row_labels(data, rows), audio,
        every_recording=bool(data.speaker_norm), with_audio=data.input_kind != "text",
    )  # fmt: skip


def row_labels(data: Dataset, rows: np.ndarray) -> list[str]:
    """What ``data`` says of each of its ``rows``, as text: its class, or (a dataset of a
    dimensional target, no classes) its rating, exactly (``repr`` of the float)."""
    if data.target is not None:
        return [repr(float(v)) for v in data.y[rows]]
    return [data.classes[int(i)] for i in data.y[rows]]


def rows_as_scored(
    data: Dataset,
    stored: Any,
    audio: Mapping[str, str | None] | None = None,
    recorded: str | None = None,
) -> tuple[np.ndarray | None, str | None]:
    """Where in ``data`` are the utterances a stored run predicted, and are they as it
    scored them? ``stored`` is the run's predictions (``utt_id``, and ``label``, or
    ``value`` for a regression run's rating); ``audio``
    (:func:`~sercap.store.runs.audio_sources`) and ``recorded`` (the run's ``data_sha256``)
    compare the recordings too. Returns (rows, None), or (None, what changed:
    ``"utterances or labels"`` or ``"recordings"``): refitting the run today would not be it.
    """
    index = {u: i for i, u in enumerate(data.utt_ids)}
    rows = [index.get(u) for u in stored["utt_id"].to_list()]
    if None in rows:
        return None, "utterances or labels"
    chosen = np.asarray(rows, dtype=np.int64)
    said = (
        [repr(float(v)) for v in stored["value"].to_list()]
        if data.target is not None
        else stored["label"].to_list()
    )
    if row_labels(data, chosen) != said:
        return None, "utterances or labels"
    if audio is not None and recorded:
        now = fingerprint_of(data, audio, chosen)
        if now is not None and now != recorded:
            return None, "recordings"
    return chosen, None


def new_run_id(model: str) -> str:
    """Sortable, readable and unique: ``svm-20261125-101500-3fa2``."""
    return f"{model}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def store_run(
    wh: Warehouse,
    data: Dataset,
    model: str,
    result: CVResult,
    *,
    params: dict | None,
    seed: int,
    kind: str = "model",
    tuned_from: str | None = None,
    members: list[str] | None = None,
    weights: list[float] | None = None,
    fold_params: dict[str, dict] | None = None,
    overrides: dict | None = None,
    versions: str | None = None,
) -> str:
    """Store a run and its out-of-fold predictions in one transaction; return its id.

    ``versions`` is the run's :func:`versions_json` (by default the libraries' alone: a
    torch model's caller gives its threads and device too).

    ``fold_params`` (nested tuning) are the parameters each outer fold was scored with;
    ``params`` are then those of the final study, which `predict` fits on all the data,
    and ``overrides`` those set by hand over the tuned ones (in each of them).
    """
    run_id = new_run_id(model)
    rows = result.evaluated
    stats = result.fold_stats()
    fold_of = dict(zip(data.utt_ids, data.folds, strict=True))
    predicted = result.proba[rows].argmax(axis=1)
    run = {
        "run_id": run_id, "kind": kind, "model": model, "corpus": data.corpus,
        "label_map": data.label_map, "protocol": data.protocol, "feature_set": data.feature_set,
        "feature_set_hash": data.feature_set_hash, "columns": data.column_pattern,
        "speaker_norm": data.speaker_norm,
        "params_json": params_json(params), "seed": seed,
        "tuned_from": tuned_from, "members": members, "weights": weights,
        "overrides_json": params_json(overrides) if overrides else None,
        "classes": data.classes, "n_utterances": int(len(rows)),
        "n_folds": len(result.fold_names), "ua": result.pooled.ua, "wa": result.pooled.wa,
        "macro_f1": result.pooled.macro_f1, "ua_fold_mean": stats["ua_fold_mean"],
        "ua_fold_std": stats["ua_fold_std"], "wa_fold_mean": stats["wa_fold_mean"],
        "wa_fold_std": stats["wa_fold_std"], "f1_fold_mean": stats["macro_f1_fold_mean"],
        "f1_fold_std": stats["macro_f1_fold_std"],
        "confusion_json": json.dumps(result.pooled.confusion), "fit_s": result.fit_s,
        "duration_s": result.duration_s, "versions_json": versions or versions_json(),
        "fold_params_json": (
            json.dumps(fold_params, sort_keys=True, default=str)
            if fold_params is not None else None
        ),
        "data_sha256": data_sha256(wh, data, rows),
    }  # fmt: skip
    import pyarrow as pa

    table = pa.table(
        {
            "run_id": [run_id] * len(rows),
            "utt_id": data.utt_ids[rows].tolist(),
            "fold": [fold_of[u] for u in data.utt_ids[rows]],
            "label": [data.classes[i] for i in data.y[rows]],
            "predicted": [data.classes[i] for i in predicted],
            "proba": pa.array(
                result.proba[rows].astype(np.float32).tolist(), pa.list_(pa.float32())
            ),
        }
    )
    runs.insert_run(wh, run, table)
    return run_id
