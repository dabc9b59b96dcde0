"""Ensembles from stored predictions: average the out-of-fold probabilities of runs.

Nothing is retrained. Each member's probability for an utterance was made by a model that
never saw that utterance's speaker, so their (weighted) average is an out-of-fold prediction
too, scored and stored like any run. It is honest only if the members and weights were fixed
before any of them was scored: choosing them by their outer-fold scores (the best run per
family, weights searched on the pooled predictions) is selection on the test set. sercap's
own ensembles (`bench --ensemble`) are declared in advance; `ensemble RUN…` says so when the
user picks.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from sercap.data import Dataset
from sercap.errors import BadParameterError, SercapError, option
from sercap.evaluate import CVResult, score, store_run
from sercap.run_labels import display_name
from sercap.store import Warehouse
from sercap.store import runs as store_runs
from sercap.store.runs import get_run


def average_probabilities(
    probas: list[np.ndarray], weights: list[float] | None = None
) -> np.ndarray:
    """Weighted mean of aligned (n, K) probability matrices; weights are normalised."""
    if not probas:
        raise SercapError("an ensemble needs at least one run")
    w = np.ones(len(probas)) if weights is None else np.asarray(weights, dtype=float)
    if len(w) != len(probas):
        raise SercapError(f"{len(w)} weights for {len(probas)} runs; give one weight per run")
    if not np.all(np.isfinite(w)):  # nan or inf: every probability would be nan
        raise BadParameterError(
            f"{option('weights')}: ensemble weights must be finite numbers, got "
            f"{', '.join(str(float(x)) for x in w)}"
        )
    if np.any(w < 0) or w.max() <= 0:
        raise BadParameterError("ensemble weights must be non-negative and not all zero")
    w = w / w.max()  # (first: 1e308 twice summed to inf, and every weight became 0)
    w = w / w.sum()
    return np.tensordot(w, np.stack(probas), axes=1)


def _check_compatible(runs: list[dict]) -> None:
    for run in runs:  # (stored and scored, then predict could not use it: name the members)
        if run.get("kind") == "ensemble":
            members = ", ".join((run.get("members") or [])[:4])
            raise SercapError(
                f"run {run['run_id']} is an ensemble already (of {members}): give its "
                f"members with the other runs instead, and {option('weights')} for their "
                "shares"
            )
    for run in runs:  # stored as a plain run, its UA read as a within-corpus figure
        if run.get("cross_matrix"):
            raise SercapError(
                f"run {run['run_id']} is a cell of cross-corpus matrix {run['cross_matrix']} "
                f"(trained on {run['train_corpus']}, scored on {run['corpus']}); an ensemble "
                "averages runs cross-validated on one corpus"
            )
    first = runs[0]
    for run in runs[1:]:
        for key in ("corpus", "label_map", "protocol"):
            if run[key] != first[key]:
                raise SercapError(
                    f"runs {first['run_id']} and {run['run_id']} differ in {key} "
                    f"({first[key]} vs {run[key]}); only runs on the same corpus, label map "
                    "and protocol can be averaged"
                )
        if list(run["classes"]) != list(first["classes"]):
            raise SercapError(
                f"runs {first['run_id']} and {run['run_id']} predict different classes"
            )


#: ``params_json["members_chosen_by"]`` of an ensemble whose members a fixed rule named
#: before any score was read (``bench --ensemble``); any other was chosen by hand.
FIXED_RULE = "fixed rule"


def members_chosen_by(run: dict) -> str | None:
    """Who named an ensemble run's members (and weights): ``"fixed rule"`` (``bench
    --ensemble``, before any score was read), ``"hand"`` (``sercap ensemble``: a person, who
    may have looked at the members' test scores first) or ``"unrecorded"`` (stored before
    sercap recorded it); None for a model run."""
    if run["kind"] != "ensemble":
        return None
    return json.loads(run["params_json"] or "{}").get("members_chosen_by", "unrecorded")


def ensemble_runs(
    wh: Warehouse,
    run_ids: list[str],
    weights: list[float] | None = None,
    *,
    fixed_rule: bool = False,
) -> tuple[str, CVResult]:
    """Average the stored predictions of ``run_ids`` and store the result as a run.

    ``fixed_rule`` records that a rule declared before any score was read named the members
    (``bench --ensemble``); otherwise the run says they were chosen by hand, and the report
    does not rank it (:func:`members_chosen_by`).

    An ensemble with any speaker-normalised member is recorded as speaker-normalised: like
    that member, it needs each speaker's statistics and cannot predict a single new file
    (`bench --speaker-norm --ensemble` averages text models, which have no such
    statistics, with normalised audio models).
    """
    if len(run_ids) < 2:
        raise SercapError("an ensemble needs at least two runs")
    runs = [get_run(wh, r) for r in run_ids]
    if rated := [r for r in runs if r.get("target")]:
        raise SercapError(
            f"run {rated[0]['run_id']} predicts {rated[0]['target']} ratings; an ensemble "
            "averages the class probabilities of classification runs"
        )
    ids = [r["run_id"] for r in runs]
    if len(set(ids)) != len(ids):
        raise SercapError("the same run is listed twice")
    _check_compatible(runs)
    frames = [store_runs.predictions(wh, r).select("utt_id", "fold", "label", "proba") for r in ids]
    common = set(frames[0]["utt_id"])
    for f in frames[1:]:
        common &= set(f["utt_id"])
    if not common:
        raise SercapError("these runs share no predicted utterance")
    frames = [f.filter(pl.col("utt_id").is_in(sorted(common))) for f in frames]
    probas = [np.array(f["proba"].to_list(), dtype=np.float64) for f in frames]
    proba = average_probabilities(probas, weights)
    base = frames[0]
    classes = list(runs[0]["classes"])
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for c in base["label"]])
    folds = base["fold"].to_numpy()
    fold_names = sorted(np.unique(folds))
    fold_metrics = [
        score(y[folds == f], proba[folds == f].argmax(axis=1), len(classes)) for f in fold_names
    ]
    result = CVResult(
        proba=proba,
        fold_names=fold_names,
        fold_metrics=fold_metrics,
        pooled=score(y, proba.argmax(axis=1), len(classes)),
        # what the members cost (nothing is refitted); the total is at least that
        fit_s=float(sum(r["fit_s"] or 0.0 for r in runs)),
        duration_s=float(sum(r["duration_s"] or r["fit_s"] or 0.0 for r in runs)),
        evaluated=np.arange(len(y)),
    )
    data = Dataset(
        utt_ids=base["utt_id"].to_numpy(),
        X=None,
        y=y,
        classes=classes,
        speakers=np.array([""] * len(y)),
        folds=folds,
        corpus=runs[0]["corpus"],
        label_map=runs[0]["label_map"],
        protocol=runs[0]["protocol"],
        input_kind="ensemble",
        speaker_norm=any(r["speaker_norm"] for r in runs),
    )
    normalised = None if weights is None else [float(w) for w in weights]
    run_id = store_run(
        wh,
        data,
        "ensemble",
        result,
        params={
            "members": [display_name(r) for r in runs],  # (what each is, tags and all)
            "members_chosen_by": FIXED_RULE if fixed_rule else "hand",
        },
        seed=int(runs[0]["seed"] or 0),
        kind="ensemble",
        members=ids,
        weights=normalised,
    )
    return run_id, result


def newest_run_per_model(
    wh: Warehouse, corpus: str, label_map: str, models: list[str] | None = None
) -> dict[str, str]:
    """The newest model run of each model on a corpus and label map (by time, never by UA:
    choosing members by their test scores would be selection on the test set)."""
    newest = store_runs.newest_per_model(wh, corpus, label_map)
    return newest if models is None else {m: newest[m] for m in models if m in newest}
