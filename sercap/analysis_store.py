"""Fairness, significance and uncertainty of stored runs, from their stored predictions only.

Every function here reads ``runs`` and ``predictions`` (and the speakers and genders in
``utterances``) and hands them to the pure functions of :mod:`sercap.analysis`; none loads
an artifact or refits a model, so they work on any run, ensembles included, and on a
read-only warehouse. The views in ``sql/006_analysis.sql`` give the same fairness and
confidence numbers to SQL users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from sercap import analysis
from sercap._text import ShownAsText
from sercap.errors import BadParameterError, SercapError
from sercap.store import Warehouse


@dataclass(frozen=True)
class StoredPredictions:
    """The out-of-fold predictions of one run, sorted by ``utt_id``.

    ``y`` and ``predicted`` are indices into ``classes`` (the run's class order, which is also
    the order of ``proba``'s columns); speakers and genders of utterances missing from the
    catalog are ``"?"``.
    """

    run_id: str
    classes: list[str]
    utt_ids: np.ndarray
    folds: np.ndarray
    y: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray
    speakers: np.ndarray
    genders: np.ndarray

    def __len__(self) -> int:
        return len(self.utt_ids)


def load_predictions(wh: Warehouse, run_id: str) -> StoredPredictions:
    """Read a run's stored predictions (a unique prefix of its id is enough).

    Raises
    ------
    SercapError
        No such run, or a run with no stored predictions.
    """
    from sercap.store.runs import get_run, predictions_with_groups

    run = get_run(wh, run_id)
    if run.get("target"):
        raise BadParameterError(
            f"run {run['run_id']} predicts a rating ({run['target']}), not classes",
            hint="compare or break down classification runs; a rating run's scores are CCC, "
            "Pearson's r and MAE (sercap.get_run)",
        )
    classes = list(run["classes"] or [])
    frame = predictions_with_groups(wh, run["run_id"])
    if frame.is_empty():
        raise SercapError(f"run {run['run_id']} has no stored predictions; re-run it")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted((set(frame["label"]) | set(frame["predicted"])) - set(index))
    if unknown:
        raise SercapError(
            f"run {run['run_id']}: class {unknown[0]!r} in its predictions is not in its "
            "classes; the run is damaged, re-run it"
        )
    return StoredPredictions(
        run_id=run["run_id"],
        classes=classes,
        utt_ids=frame["utt_id"].to_numpy(),
        folds=frame["fold"].to_numpy(),
        y=np.array([index[c] for c in frame["label"]], dtype=np.int64),
        predicted=np.array([index[c] for c in frame["predicted"]], dtype=np.int64),
        proba=np.array(frame["proba"].to_list(), dtype=np.float64).reshape(frame.height, -1),
        speakers=frame["speaker"].to_numpy(),
        genders=frame["gender"].to_numpy(),
    )


# ---------------------------------------------------------------------------------------------
# Fairness


def fairness_table(
    wh: Warehouse, run_id: str, *, by: Sequence[str] = ("gender", "speaker")
) -> pl.DataFrame:
    """UA per gender and per speaker of a run (the ``run_groups`` view, computed in Python).

    Returns
    -------
    polars.DataFrame
        ``group_by`` ("gender" | "speaker"), ``group_name, n, accuracy, ua, gap`` (best group's
        UA minus this one's), ``worst_gap`` (best minus worst in the grouping); worst first.
    """
    p = load_predictions(wh, run_id)
    values = {"gender": p.genders, "speaker": p.speakers}
    frames = []
    for key in by:
        if key not in values:
            raise SercapError(f"cannot group by {key!r}; use gender or speaker")
        f = analysis.group_scores(p.y, p.predicted, values[key], n_classes=len(p.classes))
        frames.append(
            f.rename({"group": "group_name"}).with_columns(
                pl.lit(key).alias("group_by"), worst_gap=pl.col("gap").max()
            )
        )
    cols = ["group_by", "group_name", "n", "accuracy", "ua", "gap", "worst_gap"]
    return pl.concat(frames).select(cols)


def fairness_summary(wh: Warehouse, run_id: str) -> pl.DataFrame:
    """One row per grouping: best and worst group and the gap (the ``run_fairness`` view).

    Returns
    -------
    polars.DataFrame
        ``group_by, n_groups, best_group, best_ua, worst_group, worst_ua, worst_gap``.
    """
    table = fairness_table(wh, run_id)
    rows = []
    for key in table["group_by"].unique(maintain_order=True).to_list():
        t = table.filter(pl.col("group_by") == key)  # sorted worst first
        rows.append(
            {
                "group_by": key, "n_groups": t.height,
                "best_group": t["group_name"][-1], "best_ua": t["ua"][-1],
                "worst_group": t["group_name"][0], "worst_ua": t["ua"][0],
                "worst_gap": t["ua"][-1] - t["ua"][0],
            }
        )  # fmt: skip
    return pl.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Significance


@dataclass(frozen=True)
class RunComparison(ShownAsText):
    """Run A against run B on the utterances both predicted."""

    run_a: str
    run_b: str
    n_common: int
    ua: analysis.DifferenceCI
    macro_f1: analysis.DifferenceCI
    mcnemar: analysis.McNemarResult
    #: What each run is: model, feature set, speaker normalisation (shown beside its id).
    about_a: str = ""
    about_b: str = ""
    #: The two UA intervals ``ua`` spans (:func:`sercap.analysis.speakers_and_utterances`):
    #: speakers resampled (None with fewer than two), and utterances one by one.
    ua_by_speaker: analysis.DifferenceCI | None = None
    ua_by_utterance: analysis.DifferenceCI | None = None
    #: The two runs' protocols when they differ (scored on other folds: the difference
    #: holds the change of folds too), else None.
    protocols: tuple[str, str] | None = None

    def __str__(self) -> str:
        from sercap.format import format_comparison

        return format_comparison(self)

    def as_dict(self) -> dict:
        """Flat JSON-ready dict (``ua_difference``, ``ua_low`` … ``mcnemar_p``)."""
        out: dict = {"run_a": self.run_a, "run_b": self.run_b, "n_common": self.n_common}
        for name, ci in (("ua", self.ua), ("macro_f1", self.macro_f1)):
            out |= {
                f"{name}_a": ci.a, f"{name}_b": ci.b, f"{name}_difference": ci.difference,
                f"{name}_low": ci.low, f"{name}_high": ci.high,
                f"{name}_within_noise": ci.within_noise,
            }  # fmt: skip
        for name, ci in (("speaker", self.ua_by_speaker), ("utterance", self.ua_by_utterance)):
            if ci is not None:
                out |= {f"ua_{name}_low": ci.low, f"ua_{name}_high": ci.high}
        m = self.mcnemar
        out |= {
            "mcnemar_only_a_right": m.only_a_right, "mcnemar_only_b_right": m.only_b_right,
            "mcnemar_statistic": m.statistic, "mcnemar_p": m.p_value, "mcnemar_method": m.method,
            "level": self.ua.level, "n_boot": self.ua.n_boot, "seed": self.ua.seed,
            "resampled": self.ua.unit, "n_resampled": self.ua.n_units,
        }  # fmt: skip
        if self.protocols:  # scored on other folds
            out |= {"protocol_a": self.protocols[0], "protocol_b": self.protocols[1]}
        return out


def compare_runs(
    wh: Warehouse,
    run_a: str,
    run_b: str,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> RunComparison:
    """Paired bootstrap CI of the UA and macro-F1 difference (A - B) and McNemar's test.

    Both runs must share their classes; only the utterances both predicted are compared (all of
    them, for two runs of one corpus under one protocol). Each interval spans two paired
    bootstraps, one resampling speakers (all of a speaker's utterances at once) and one
    resampling utterances (:func:`sercap.analysis.speakers_and_utterances`), so a difference
    counts only when both exclude 0; the two are kept (``ua_by_speaker``,
    ``ua_by_utterance``). McNemar's test counts utterances as independent.

    Raises
    ------
    SercapError
        Different classes, no common utterance, or a label that differs between the two runs.
    """
    a, b = load_predictions(wh, run_a), load_predictions(wh, run_b)
    if a.classes != b.classes:
        raise SercapError(
            f"runs {a.run_id} and {b.run_id} predict different classes ({a.classes} vs "
            f"{b.classes}); compare runs of one label map"
        )
    common, ia, ib = np.intersect1d(a.utt_ids, b.utt_ids, assume_unique=True,
                                    return_indices=True)  # fmt: skip
    if len(common) == 0:
        raise SercapError(f"runs {a.run_id} and {b.run_id} share no utterance; nothing to compare")
    if not np.array_equal(a.y[ia], b.y[ib]):
        raise SercapError(
            f"runs {a.run_id} and {b.run_id} label some utterances differently; "
            "compare runs of one corpus and label map"
        )
    y, pa, pb = a.y[ia], a.predicted[ia], b.predicted[ib]
    speakers = a.speakers[ia]
    k = len(a.classes)
    kw = {"n_classes": k, "n_boot": n_boot, "level": level, "seed": seed}
    ua, by_speaker, by_utterance = analysis.speakers_and_utterances(
        y, pa, pb, speakers, metric="ua", **kw
    )
    macro_f1, _, _ = analysis.speakers_and_utterances(y, pa, pb, speakers, metric="macro_f1", **kw)
    from sercap.store.runs import get_run

    record_a, record_b = get_run(wh, a.run_id), get_run(wh, b.run_id)
    protocols = (str(record_a["protocol"]), str(record_b["protocol"]))
    if record_a.get("cross_matrix") or record_b.get("cross_matrix"):  # other folds by design,
        protocols = (protocols[0], protocols[0])  # and describe_run says "cross-corpus"
    return RunComparison(
        run_a=a.run_id,
        run_b=b.run_id,
        n_common=len(common),
        ua=ua,
        macro_f1=macro_f1,
        mcnemar=analysis.mcnemar(y, pa, pb),
        about_a=_describe(record_a),
        about_b=_describe(record_b),
        ua_by_speaker=by_speaker,
        ua_by_utterance=by_utterance,
        protocols=protocols if protocols[0] != protocols[1] else None,
    )


def describe_run(wh: Warehouse, run_id: str) -> str:
    """``svm on default (764a63bc), speaker-norm``: what a comparison must not leave out,
    the run's name as tables show it first (``svm nested-tuned``, ``svm columns /^mfcc_/``,
    ``svm (C=0.1)``: a tuned run read exactly as its default run)."""
    from sercap.store.runs import get_run

    return _describe(get_run(wh, run_id))


def _describe(run: dict) -> str:
    """:func:`describe_run` of a run's stored record."""
    from sercap.run_labels import display_name

    what = display_name(run) if run["model"] else str(run["kind"])
    if run["feature_set"]:
        what += f" on {run['feature_set']} ({str(run['feature_set_hash'] or '')[:8]})"
    what += ", speaker-norm" if run["speaker_norm"] else ", no speaker-norm"
    trained_on = run.get("train_corpus")
    if trained_on and trained_on != run["corpus"]:
        what += f", trained on {trained_on} (cross-corpus)"
    return what


#: Resamples a Bonferroni-adjusted interval of :func:`significance_to_best` takes at most
#: (unless more are asked for): 20 beyond each bound up to 1,000 comparisons at 95%.
BONFERRONI_BOOT = 20_000


def bonferroni_resamples(k: int, n_boot: int = 1000, level: float = 0.95) -> int:
    """Resamples each interval of :func:`significance_to_best` takes for ``k`` runs: at least
    ``n_boot``, and enough to leave 20 beyond each bound of a Bonferroni-adjusted interval
    (at most :data:`BONFERRONI_BOOT` unless ``n_boot`` asks for more).

    With 18 runs, 1,000 draws left 1.5 in each tail, and the bound moved by ±0.025 with the
    seed (a verdict near it, with it); a level near 1 over many runs would ask for millions.

    >>> bonferroni_resamples(2), bonferroni_resamples(3), bonferroni_resamples(18)
    (1000, 1600, 13600)
    """
    each = 1 - (1 - level) / max(k - 1, 1)
    return max(n_boot, min(math.ceil(round(20 / ((1 - each) / 2), 6)), BONFERRONI_BOOT))


def significance_to_best(
    wh: Warehouse, run_ids: Sequence[str], *, n_boot: int = 1000, level: float = 0.95,
    seed: int = 0, skip_unpairable: bool = False,
) -> pl.DataFrame:  # fmt: skip
    """Each run against the best of them by stored pooled UA: is the difference within noise?

    The best is picked on the same test folds, and each of the other k − 1 runs is tested
    against it: the intervals are Bonferroni-adjusted (each at level
    ``1 - (1 - level) / (k - 1)``), so that "below best" holds for all of them at once at
    ``level``, each from at least ``n_boot`` resamples and enough to leave 20 beyond each
    of its bounds. The best run's own UA stays optimistic (it is the maximum of k).

    Returns
    -------
    polars.DataFrame
        ``run_id, is_best, ua, ua_difference`` (run − best), ``ua_low, ua_high,
        within_noise`` (the CI of the difference contains 0; True for the best itself),
        ``mcnemar_p`` (unadjusted), ``level`` and ``n_boot`` (each interval's); in the
        given order. With ``skip_unpairable``, a run whose predictions cannot be paired with
        the best one's (other classes or utterances) has no row, where it is an error
        otherwise; it still counts among the k runs of the adjustment.
    """
    from sercap.store.runs import get_run

    runs = [get_run(wh, r) for r in run_ids]
    if not runs:
        return pl.DataFrame()
    best = max(runs, key=lambda r: r["ua"])
    each = 1 - (1 - level) / max(len(runs) - 1, 1)
    n_boot = bonferroni_resamples(len(runs), n_boot, level)  # the frame's n_boot column
    rows = []
    for run in runs:
        if run["run_id"] == best["run_id"]:
            rows.append(
                {
                    "run_id": run["run_id"], "is_best": True, "ua": run["ua"],
                    "ua_difference": 0.0, "ua_low": 0.0, "ua_high": 0.0, "within_noise": True,
                    "mcnemar_p": 1.0, "level": each, "n_boot": n_boot,
                }
            )  # fmt: skip
            continue
        try:
            c = compare_runs(
                wh, run["run_id"], best["run_id"], n_boot=n_boot, level=each, seed=seed
            )
        except SercapError:
            if skip_unpairable:
                continue
            raise
        rows.append(
            {
                "run_id": run["run_id"], "is_best": False, "ua": run["ua"],
                "ua_difference": c.ua.difference, "ua_low": c.ua.low, "ua_high": c.ua.high,
                "within_noise": c.ua.within_noise, "mcnemar_p": c.mcnemar.p_value,
                "level": each, "n_boot": n_boot,
            }
        )  # fmt: skip
    return pl.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Uncertainty


def prediction_confidence(wh: Warehouse, run_id: str) -> pl.DataFrame:
    """Entropy, margin and top probability of each stored prediction of a run.

    Returns
    -------
    polars.DataFrame
        ``utt_id, fold, label, predicted, correct, max_proba, margin, entropy, entropy_norm``.
    """
    p = load_predictions(wh, run_id)
    cls = np.array(p.classes, dtype=object)
    return pl.DataFrame(
        {
            "utt_id": p.utt_ids, "fold": p.folds, "label": cls[p.y].tolist(),
            "predicted": cls[p.predicted].tolist(), "correct": p.y == p.predicted,
            "max_proba": analysis.confidence(p.proba, "max"),
            "margin": analysis.margin(p.proba), "entropy": analysis.entropy(p.proba),
            "entropy_norm": analysis.entropy(p.proba, normalise=True),
        }
    )  # fmt: skip


def coverage_curve(
    wh: Warehouse,
    run_id: str,
    *,
    measure: str = "max",
    coverages: Sequence[float] | None = None,
) -> pl.DataFrame:
    """UA and accuracy of a run as its least confident predictions are set aside.

    See :func:`sercap.analysis.coverage_curve` for the columns.
    """
    p = load_predictions(wh, run_id)
    return analysis.coverage_curve(p.y, p.proba, measure=measure, coverages=coverages)


def abstain_threshold(
    wh: Warehouse, run_id: str, coverage: float, *, measure: str = "max"
) -> float:
    """The confidence threshold that would have kept ``coverage`` of the run's out-of-fold
    predictions: what ``predict --abstain`` can apply to new utterances of that run's model."""
    p = load_predictions(wh, run_id)
    try:
        return analysis.threshold_for_coverage(p.proba, coverage, measure=measure)
    except ValueError as exc:
        raise BadParameterError(f"coverage: {exc}") from exc
