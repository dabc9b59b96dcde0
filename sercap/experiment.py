"""One experiment = a model + a dataset + the corpus' protocol → a stored, scored run.

``train`` and ``bench`` go through :func:`run_model` so that every figure sercap prints is
produced, stored and described the same way.

What is nested: a ``--tuned`` run scores outer fold f with the parameters of study
``<base>/fold=f``, which only ever saw fold f's training speakers (an inner cross-validation
among them, grouped by speaker or session, chose the parameters). What is not: the model
family, the search space and the budget were designed by people who have seen results on the
whole corpus; and the final study's parameters (all speakers, for ``predict``) are never
scored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sercap.data import Dataset, load_dataset
from sercap.errors import BadParameterError, NotFoundError, SercapError, option
from sercap.evaluate import (
    CVResult,
    PairedDifference,
    cross_validate,
    paired_bootstrap_ua,
    store_run,
)
from sercap.store import Warehouse, runs


@dataclass(frozen=True)
class DataRequest:
    """What a model needs read from the warehouse (a key: equal requests share a dataset)."""

    input_kind: str
    corpus: str | None
    label_map: str | None
    feature_set: str | None
    columns: str | None
    speaker_norm: bool
    version: str | None = None  # a stored version (hash) of feature_set; None: the newest


def refuse_unused_inputs(
    model: str, *, feature_set: str | None, image_set: str | None, device: str | None
) -> None:
    """Refuse what ``model`` would not read (``train svm --image-set x --device y`` exited 0
    having used neither), as ``columns`` is refused for models that read no columns."""
    from sercap.models.registry import get_model, may_run_torch

    cls = get_model(model)
    kind = cls.input_kind
    reads = {"image": "spectrogram images", "text": "transcripts"}.get(kind, "a feature set")
    if image_set is not None and kind != "image":
        raise BadParameterError(
            f"{option('image_set')} does not apply to {model}: it reads {reads}",
            hint="image sets are for cnn, resnet18 and resnet34",
        )
    if feature_set is not None and kind in ("image", "text"):
        raise BadParameterError(
            f"{option('feature_set')} does not apply to {model}: it reads {reads}"
            + (f"; give {option('image_set')}" if kind == "image" else "")
        )
    if device is not None and not may_run_torch(cls):
        raise BadParameterError(
            f"{option('device')} does not apply to {model}: it does not run on torch",
            hint="devices are for dnn, lstm, cnn, resnet18, resnet34, text-cnn and the fused "
            "models",
        )


def data_request(
    model: str,
    *,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
) -> DataRequest:
    """The dataset ``model`` trains on; ``columns`` defaults to the model's own pattern."""
    from sercap.models.registry import get_model

    cls = get_model(model)
    kind = cls.input_kind
    if columns is not None and kind in ("image", "text"):  # it was dropped without a word
        reads = "spectrogram images" if kind == "image" else "transcripts"
        raise BadParameterError(
            f"{option('columns')} does not apply to {model}: it reads {reads}, not feature columns",
            hint=f"leave {option('columns')} out, or give it to a model on functionals or "
            "frames (svm, rf, xgb, lgbm, trees, dnn, lstm, fusion, early-fusion)",
        )
    return DataRequest(
        input_kind=kind,
        corpus=corpus,
        label_map=label_map,
        feature_set=image_set if kind == "image" else feature_set,
        columns=None if kind == "image" else (columns or cls.default_columns),
        speaker_norm=speaker_norm and kind != "text",
    )


def load_for(wh: Warehouse, request: DataRequest) -> Dataset:
    """Read the dataset a :class:`DataRequest` describes."""
    if request.input_kind == "text":  # transcripts, not features: their own loader
        from sercap.textdata import load_text_dataset

        return load_text_dataset(wh, corpus=request.corpus, label_map=request.label_map)
    if request.input_kind == "multimodal":  # functionals and transcripts of one utterance
        from dataclasses import replace

        from sercap.textdata import load_multimodal_dataset

        text = load_for(wh, replace(request, input_kind="text"))  # words first: a clear error
        audio = load_for(wh, replace(request, input_kind="tabular"))
        return load_multimodal_dataset(audio, text)
    return load_dataset(
        wh,
        request.input_kind,
        corpus=request.corpus,
        label_map=request.label_map,
        feature_set=request.feature_set,
        columns=request.columns,
        speaker_norm=request.speaker_norm,
        version=request.version,
    )


def stale_version_note(wh: Warehouse, data: Dataset) -> str | None:
    """A note when ``data`` reads a version of its feature set that this installation does
    not compute (another sercap or other library versions stored it): its runs score as
    well, but `predict` refuses them, since new files would get other features."""
    from sercap.features.featureset import computed_now, store_step
    from sercap.store import catalog

    record = catalog.feature_set_record(wh, data.feature_set_hash or "")
    if record is None:  # transcripts, a fused dataset: no set of its own
        return None
    now = computed_now(record)
    if now is None or now == record["hash"]:
        return None
    return (
        f"note: feature set {record['name']!r} is stored as {record['hash']}, which another "
        f"sercap or other library versions computed; this installation computes it as {now}: "
        f"{store_step(record['name'], record['kind'], data.corpus)} stores it as computed "
        "now, and predict refuses a run on the stored version (new files would get other "
        "features)"
    )


def dataset_notes(wh: Warehouse, data: Dataset) -> list[str]:
    """What train and bench say of a dataset before any fit: its
    :func:`sercap.evaluate.data_notes`, then the :func:`stale_version_note` of its set."""
    from sercap.evaluate import data_notes

    stale = stale_version_note(wh, data)
    return [*data_notes(data), *([stale] if stale else [])]


@dataclass
class TunedParams:
    """What nested tuning stored for one (model, dataset): per-fold and final parameters."""

    base: str
    fold_params: dict[str, dict]  # outer fold → that fold's best parameters
    final: dict | None  # the final study's (all speakers): for `predict`, never scored
    fixed: dict = field(default_factory=dict)  # what the tuning held fixed (`tune --params`)


def tuned_params(wh: Warehouse, model: str, data: Dataset, study: str | None = None) -> TunedParams:
    """The newest nested tuning of (model, corpus, label map, feature set, column pattern,
    speaker norm), or the one whose base study name is ``study``.

    Refuses when some outer fold of ``data`` has no study yet: a fold scored with
    parameters chosen on its own test speakers is what nested tuning exists to prevent.
    """
    pattern = getattr(data, "column_pattern", None)
    rows = runs.nested_tuned_params(
        wh, model, data.corpus, data.label_map, data.feature_set_hash, data.speaker_norm,
        columns=pattern,
    )  # fmt: skip
    cols = f" --columns '{pattern}'" if pattern else ""
    command = f"sercap tune {model} --corpus {data.corpus} --labels {data.label_map}{cols}" + (
        " --speaker-norm" if data.speaker_norm else ""
    )
    if data.target is not None:  # a regression: its label map is "target[.label map]"
        chosen = data.label_map.partition(".")[2]
        command = (
            f"sercap tune {model} --corpus {data.corpus} --target {data.target}"
            + (f" --labels {chosen}" if chosen else "")
            + (" --speaker-norm" if data.speaker_norm else "")
        )
    # a study named that exists for other settings: tuning it again as named is refused
    other_options = (
        f"{study!r} was tuned with other options (speaker normalisation, columns, feature "
        "set or labels): give this run the options of that tuning"
        if study is not None and runs.study_storage(wh, study) is not None
        else None
    )
    if rows.is_empty():
        from sercap.evaluate import check_inner_units

        check_inner_units(data, None)  # a tune that cannot run is not advised
        raise NotFoundError(
            f"no nested tuning for {model} on {data.corpus}/{data.label_map}"
            + (f" with this data; {other_options}" if other_options else f"; run `{command}` first")
        )
    bases = list(dict.fromkeys(rows["base_study"].to_list()))  # newest first
    if study is not None and study not in bases:
        stored = ", ".join(bases)
        raise NotFoundError(
            f"no nested tuning {study!r} of {model} on {data.corpus}/{data.label_map} "
            f"with this data (stored: {stored})",
            hint=other_options or f"name a stored one, or run `{command} --study {study}` first",
        )
    base = study or bases[0]
    mine = rows.filter(rows["base_study"] == base)
    folds = {
        r["outer_fold"]: json.loads(r["params_json"])
        for r in mine.iter_rows(named=True)
        if r["outer_fold"] is not None
    }
    final = [
        json.loads(r["params_json"]) for r in mine.iter_rows(named=True) if r["outer_fold"] is None
    ]
    missing = sorted(set(data.folds.tolist()) - set(folds))
    if missing:
        raise SercapError(
            f"study {base!r} has no tuned parameters for outer fold(s) {', '.join(missing)}; "
            f"run `{command}` to finish it"
        )
    _refuse_seen_test_speakers(data, mine, base, command)
    _refuse_other_data(wh, data, mine, base, command)
    fixed = next((json.loads(f) for f in mine["fixed_json"] if f), {})
    return TunedParams(base=base, fold_params=folds, final=final[0] if final else None, fixed=fixed)


def _refuse_seen_test_speakers(data: Dataset, rows: Any, base: str, command: str) -> None:
    """Refuse fold parameters whose study saw a speaker that the fold now tests.

    Parameters are found by fold name, and a fold name does not pin its speakers: under
    speaker-kfold-5 an ingest that adds or removes a speaker moves the others between folds,
    and a newer sercap may deal the folds otherwise (dyadic sessions kept whole). Rows
    stored before studies recorded their speakers (``speakers`` NULL, sercap before 28 Nov
    2026) cannot be checked, and are refused.
    """
    for r in rows.iter_rows(named=True):
        if r["outer_fold"] is None:
            continue
        if r["speakers"] is None:
            raise _unverifiable(base, r["outer_fold"], "the speakers", command)
        tests = set(data.speakers[data.folds == r["outer_fold"]].astype(str).tolist())
        seen = sorted(tests & set(json.loads(r["speakers"])))
        if seen:
            raise SercapError(
                f"study {base!r} tuned outer fold {r['outer_fold']} on speaker(s) "
                f"{', '.join(seen)}, which that fold now tests (the corpus' speakers or the "
                f"way sercap deals its folds changed since): scoring it would not be nested; "
                f"run `{command} --study NEW_NAME`"
            )


def _which_study(fold: str | None) -> str:
    """``the final study`` or ``outer fold F's study``, as the tuning refusals name it."""
    return "the final study" if fold is None else f"outer fold {fold}'s study"


def _unverifiable(base: str, fold: str | None, what: str, command: str) -> SercapError:
    """The error for a tuned study stored without a record of ``what`` its trials were
    fitted on: nothing shows that its parameters are nested for this run."""
    when = (
        "by an older sercap, before studies recorded the speakers they were tuned on"
        if what == "the speakers"
        else "without a fingerprint of the data it was tuned on (by an older sercap, or "
        "before ingest had hashed the corpus' audio)"
    )
    return SercapError(
        f"{_which_study(fold)} of {base!r} was stored {when}: nothing shows that scoring "
        "with it is nested (the corpus, or the way its folds are dealt, may have changed "
        "since); run "
        f"`{command} --study NEW_NAME` to tune again"
    )


def _refuse_other_data(wh: Warehouse, data: Dataset, rows: Any, base: str, command: str) -> None:
    """Refuse parameters whose study was tuned on other data than ``data`` holds for it
    (its fold's training utterances, their labels and audio; the final study: all), as
    `tune` refuses to resume such a study. Speaker names alone let a manifest ingested
    again, with recordings moved to another speaker, score a fold on recordings its own
    study had trained on. A row stored before studies recorded it (NULL) is refused where
    the data has a fingerprint now (nothing to compare it with); where it has none (audio
    ingested before sercap hashed it), the speakers alone are compared.
    """
    from sercap.evaluate import data_sha256  # (the audio as loaded with the data)

    for r in rows.iter_rows(named=True):
        fold = r["outer_fold"]
        mask = np.ones(len(data), bool) if fold is None else data.folds != fold
        now = data_sha256(wh, data, np.flatnonzero(mask))
        if r.get("data_sha256") is None:
            if now is not None:
                raise _unverifiable(base, fold, "the data", command)
            continue
        if now != r["data_sha256"]:
            raise SercapError(
                f"{_which_study(fold)} of {base!r} was tuned on other data than this run's "
                "(utterances, labels or audio changed since): scoring with it would not be "
                "nested; run "
                f"`{command} --study NEW_NAME`"
            )


@dataclass
class RunOutcome:
    run_id: str
    result: CVResult
    params: dict
    tuned_from: str | None
    fold_params: dict[str, dict] | None = None


def run_model(
    wh: Warehouse,
    model: str,
    data: Dataset,
    *,
    params: dict | None = None,
    tuned: bool = False,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
    say: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Cross-validate ``model`` on ``data`` under its protocol and store the run.

    With ``tuned``, each outer fold is fitted with the best parameters of *its own* study
    (tuned on that fold's training speakers only) and scored on its test speakers; the run
    stores those per-fold parameters, and as its ``params`` the final study's (all
    speakers), which `predict` uses and which no figure of this run scores.

    With ``cluster`` (a Dask Client or a spec such as ``"local:4"``) every outer fold is
    fitted as a task on the cluster; the stored run is the one computed here.
    """
    plan = plan_run(wh, model, data, params=params, tuned=tuned)
    return run_plans(
        wh, [(data, plan)], seed=seed, n_jobs=n_jobs, device=device, progress=progress,
        cluster=cluster, say=say,
    )[0]  # fmt: skip


@dataclass
class RunPlan:
    """What one run fits: its model, the parameters of every fold, what the run records."""

    model: str
    params: dict  # the fit's parameters (default runs) / the user's overrides (tuned runs)
    fold_params: dict[str, dict] | None = None  # tuned: outer fold → its study's parameters
    stored_params: dict | None = None  # tuned: the final study's (for predict)
    tuned_from: str | None = None

    @property
    def overrides(self) -> dict | None:
        """The parameters set by hand over a tuned run's (None for a default run: there
        ``params`` are all its parameters)."""
        return (self.params or None) if self.tuned_from else None


def plan_run(
    wh: Warehouse,
    model: str,
    data: Dataset,
    *,
    params: dict | None = None,
    tuned: bool | str = False,
) -> RunPlan:
    """The parameters a default or nested-tuned run of ``model`` fits each fold with
    (``tuned``: True for the newest nested tuning, or the base name of one)."""
    user = dict(params or {})
    if not tuned:
        return RunPlan(model, user)
    tuning = tuned_params(wh, model, data, study=tuned if isinstance(tuned, str) else None)
    per_fold = {fold: {**p, **user} for fold, p in tuning.fold_params.items()}
    final = {**(tuning.final or {}), **user}
    source = tuning.base if tuning.final is not None else f"{tuning.base} (no final study)"
    # what the tuning held fixed was set by hand too: the run's name says so (the fits'
    # parameters already hold it)
    shown = {**tuning.fixed, **user}
    return RunPlan(model, shown, fold_params=per_fold, stored_params=final, tuned_from=source)


def store_planned(
    wh: Warehouse,
    data: Dataset,
    plan: RunPlan,
    result: CVResult,
    seed: int,
    versions: str | None = None,
) -> RunOutcome:
    """Store the cross-validation of a :class:`RunPlan` as a run (``versions``: its
    :func:`sercap.evaluate.versions_json`, threads and device included)."""
    stored = plan.params if plan.stored_params is None else plan.stored_params
    run_id = store_run(
        wh, data, plan.model, result, params=stored, seed=seed, tuned_from=plan.tuned_from,
        fold_params=plan.fold_params, overrides=plan.overrides, versions=versions,
    )  # fmt: skip
    return RunOutcome(
        run_id=run_id, result=result, params=stored, tuned_from=plan.tuned_from,
        fold_params=plan.fold_params,
    )  # fmt: skip


def run_plans(
    wh: Warehouse,
    items: list[tuple[Dataset, RunPlan]],
    *,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
    say: Callable[[str], None] | None = None,
) -> list[RunOutcome]:
    """Cross-validate and store several planned runs; on a cluster, every fold of every run
    is submitted at once (one batch), in process one run after the other (``say`` hears a
    line per fold there)."""
    with wh.released():  # the fits read nothing from the warehouse: others may use it
        if cluster is None:
            results = [
                cross_validate(
                    data,
                    plan.model,
                    plan.params,
                    seed=seed,
                    n_jobs=n_jobs,
                    device=device,
                    progress=progress,
                    fold_params=plan.fold_params,
                    say=say,
                )  # fmt: skip
                for data, plan in items
            ]
        else:
            from sercap.distribute import CVRequest, cross_validate_many

            requests = [
                CVRequest(data, p.model, p.params, p.fold_params, seed, n_jobs, device)
                for data, p in items
            ]
            results = cross_validate_many(cluster, requests, progress=progress)
    from sercap.evaluate import versions_json

    return [
        store_planned(
            wh,
            data,
            plan,
            result,
            seed,
            versions_json(plan.model, n_jobs, device, cluster=cluster is not None),
        )  # fmt: skip
        for (data, plan), result in zip(items, results, strict=True)
    ]


@dataclass
class TuningComparison:
    """Default and nested-tuned runs of one model on the same utterances, and their gap."""

    model: str
    default: RunOutcome
    tuned: RunOutcome
    difference: PairedDifference

    def __repr__(self) -> str:  # the outcomes hold every probability vector
        d = self.difference
        return (
            f"TuningComparison(model={self.model!r}, default={self.default.run_id!r} "
            f"UA {d.ua_a:.4f}, tuned={self.tuned.run_id!r} UA {d.ua_b:.4f}, "
            f"difference {d.diff:+.4f} [{d.low:+.4f}, {d.high:+.4f}])"
        )


def compare_tuned(
    wh: Warehouse,
    model: str,
    data: Dataset,
    *,
    params: dict | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    n_boot: int = 2000,
    cluster: Any = None,
    study: str | None = None,
    say: Callable[[str], None] | None = None,
) -> TuningComparison:
    """Run ``model`` with default and with nested-tuned parameters (both stored) and a paired
    bootstrap 95 % CI of the UA difference (tuned − default), over speakers and utterances.

    With ``cluster`` the folds of both runs are fitted as one batch of tasks on it;
    ``study`` names the nested tuning (default: the newest of this model and data)."""
    tuned_plan = plan_run(wh, model, data, params=params, tuned=study or True)  # refuses first
    # the default run is stored first: the tuned run is the newer, the one predict uses
    plans = [(data, plan_run(wh, model, data, params=params)), (data, tuned_plan)]
    default, tuned = run_plans(
        wh,
        plans,
        seed=seed,
        n_jobs=n_jobs,
        device=device,
        progress=progress,
        cluster=cluster,
        say=say,
    )
    return TuningComparison(
        model, default, tuned, tuning_difference(data, default, tuned, seed, n_boot)
    )


def tuning_difference(
    data: Dataset, default: RunOutcome, tuned: RunOutcome, seed: int = 0, n_boot: int = 2000
) -> PairedDifference:
    """Paired bootstrap of tuned − default UA over the utterances both runs predicted: the
    span of the intervals over their speakers and over single utterances."""
    rows = np.intersect1d(default.result.evaluated, tuned.result.evaluated)
    return paired_bootstrap_ua(
        data.y[rows],
        default.result.proba[rows].argmax(axis=1),
        tuned.result.proba[rows].argmax(axis=1),
        data.n_classes,
        n_boot=n_boot,
        seed=seed,
        groups=np.asarray(data.speakers)[rows],
    )
