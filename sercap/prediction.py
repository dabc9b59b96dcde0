"""Emotion of new audio: a final model per run, trained once on all its data, then reused.

A run's cross-validation says how well a model generalises to unseen speakers; for new audio
we train the same model, with the same parameters and seed, on every utterance the run saw,
and keep it as an artifact in the warehouse. Features of the new files are computed from
the run's stored feature-set definition (not from today's defaults), so a model always
sees inputs made the way its training inputs were.

A model that reads transcripts (input kind "text", or a fusion model reading both) gets the
words of each file from ``texts`` (path → transcript); :func:`model_input` is the one hook
that turns a file's audio and words into the model's input.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sercap.audio import AudioError, probe_audio
from sercap.errors import BadParameterError, NotFoundError, SercapError, option, step
from sercap.modality import AUDIO, FUSED, TEXT, input_modality
from sercap.predict_inputs import FinalModel
from sercap.store import Warehouse, catalog, runs
from sercap.store.runs import get_run

META = "inputs.json"
RANGE_FILE = "training_range.npy"


@dataclass
class Prediction:
    """One file's result: the predicted class and probabilities, or why there is none."""

    path: str
    label: str | None
    proba: dict[str, float]
    error: str | None = None
    value: float | None = None  # the predicted rating, for a regression run


def newest_run(
    wh: Warehouse,
    model: str,
    corpus: str | None = None,
    say: Callable[[str], None] | None = None,
) -> str:
    """The newest stored run of ``model`` (optionally on one corpus) that can predict new
    audio: runs with speaker normalisation need many utterances of each new speaker.

    Runs are chosen by time, never by score: the best UA of several runs is a number picked
    on their outer test folds. When a newer run used speaker normalisation, ``say`` is told
    which one was passed over, and why.
    """
    if corpus is not None:  # a mistyped corpus is said as such, not as "train it first"
        from sercap.data import resolve_corpus

        corpus = resolve_corpus(wh, corpus)
    if corpus is None:  # runs on several corpora: which one is meant is the user's call
        on = runs.prediction_corpora(wh, model)
        if len(on) > 1:
            raise SercapError(
                f"runs of {model!r} exist on several corpora ({', '.join(on)}); "
                f"name the corpus whose run should predict ({option('corpus')})"
            )
    found = runs.run_for_prediction(wh, model, corpus)
    if found is None:
        from sercap.models.registry import MODELS, get_model

        if model not in MODELS:
            get_model(model)  # a typo lists the known names, rather than "train it first"
        train = step(f"train {model}", f"train(wh, {model!r})")
        if rating := runs.newest_rating_run(wh, model, corpus):
            raise NotFoundError(
                f"the stored runs of {model!r} predict ratings ({rating[1]}), not emotion "
                f"classes; predict ratings with the run itself ({option('run')} {rating[0]}), "
                f"or train a classifier with {train}"
            )
        raise NotFoundError(f"no stored run of {model!r}; run {train} first")
    run_id, speaker_norm = found
    if speaker_norm:
        raise SercapError(
            f"every stored run of {model!r} used speaker normalisation, which cannot predict "
            f"single files; run {step(f'train {model}', f'train(wh, {model!r})')} (without "
            "speaker normalisation) first"
        )
    newer = runs.newer_speaker_normed(wh, model, corpus, run_id) if say else None
    if newer is not None:
        say(
            f"note: run {newer} of {model} is newer but used speaker normalisation, which "
            f"cannot predict single files; predicting with run {run_id}, the newest without it"
        )
    others = runs.prediction_variants(wh, model, corpus, run_id) if say else []
    if others:  # other classes or inputs: the newest is not necessarily the one meant
        run = runs.get_run(wh, run_id)

        def what(label_map: str, columns: str | None) -> str:
            return label_map + (f" on columns /{columns}/" if columns else "")

        say(
            f"note: predicting with run {run_id}, the newest of {model} "
            f"({what(run['label_map'], run['columns'])}); other runs of it use "
            + ", ".join(what(m, c) for m, c in others)
            + f": name one with {option('run')}"
        )
    return run_id


def _audio_feature_set(name: str | None) -> str | None:
    """The audio feature set in a run's feature-set name: a fused run's is
    ``"<audio set>+transcripts"``; any other name is returned as is."""
    from sercap.textdata import TEXT_FEATURE_SET

    suffix = f"+{TEXT_FEATURE_SET}"
    return name[: -len(suffix)] if name and name.endswith(suffix) else name


def _input_definition(wh: Warehouse, data: Any, request: Any) -> dict:
    """How a dataset's inputs are made: the stored feature-set definition (for a fused
    model, its audio part's), or for transcripts (no feature set makes them) name and kind."""

    from sercap.experiment import load_for

    if data.input_kind == TEXT:
        return {"name": data.feature_set, "kind": TEXT, "params": {}}
    if input_modality(data.input_kind) == FUSED:  # its hash names audio + words together
        audio = load_for(wh, replace(request, input_kind="tabular"))
        return _stored_feature_set(wh, audio.feature_set_hash)
    return _stored_feature_set(wh, data.feature_set_hash)


def _own_version(wh: Warehouse, run: dict, input_kind: str, request: Any) -> str | None:
    """The hash of the version of its audio set that ``run`` was trained on (None: a text
    run, or a fused one whose words changed since: the newest is read, and refused)."""
    modality = input_modality(input_kind)
    if modality == AUDIO:
        return run["feature_set_hash"]
    if modality != FUSED:
        return None
    import hashlib

    from sercap.textdata import load_text_dataset

    # a fused run's hash is sha256("<audio hash>+<words hash>"): find its audio version
    words = load_text_dataset(wh, corpus=request.corpus, label_map=request.label_map)
    for digest in catalog.feature_set_versions(wh, _audio_feature_set(run["feature_set"])):
        both = f"{digest}+{words.feature_set_hash}".encode()
        if (
            hashlib.sha256(both).hexdigest()[: len(run["feature_set_hash"])]
            == (run["feature_set_hash"])
        ):
            return digest
    return None


def _stored_feature_set(wh: Warehouse, digest: str) -> dict:
    record = catalog.feature_set_record(wh, digest)
    if record is None:
        raise SercapError(f"feature set {digest} is not in the warehouse any more")
    return record


def final_model(
    wh: Warehouse,
    run_id: str,
    *,
    n_jobs: int = 1,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
) -> FinalModel:
    """The run's model trained on all of its data: loaded if stored, else trained and stored.

    The stored model is a cache of what the run's data, parameters and seed determine, so one
    that cannot be read (a truncated file, an edited inputs.json) is fitted again and
    replaced, and ``say`` is told which and why. A run whose features this installation
    would compute differently (an upgrade changed the set's definition or a library that
    computes it) is refused: new files' features would not be the ones the model learned.
    """
    run = get_run(wh, run_id)
    record = catalog.feature_set_record(wh, run["feature_set_hash"] or "")
    if record is not None:  # (before any fitting)
        refuse_recomputed(run, record)
    fitted = _final_model(wh, run, n_jobs=n_jobs, progress=progress, say=say)
    if record is None:  # a fused run: its own hash names no set, its audio part's does
        refuse_recomputed(run, fitted.feature_set)
    return fitted


def refuse_recomputed(run: dict, definition: Mapping[str, Any]) -> None:
    """Refuse ``run`` when the feature set it read (``definition``: the stored record,
    with its hash) is not what this installation computes under that definition."""
    from sercap.features.featureset import computed_now, store_step

    name, kind = definition.get("name"), definition.get("kind")
    now = computed_now(definition)
    if now is not None and now != definition["hash"]:
        raise SercapError(
            f"run {run['run_id']} read feature set {name!r} as another sercap or other library "
            f"versions computed it ({definition['hash']}); this installation computes it as "
            f"{now}, so the features of new files would not be those the model learned",
            hint=f"store the set as computed now and train a new run on it "
            f"({store_step(name, kind)}, then {_train_step(run)})",
        )


def run_compute(
    run: dict, n_jobs: int, say: Callable[[str], None] | None = None
) -> tuple[int, str | None]:
    """(threads, device) to fit ``run``'s final model with: a torch run's own, as it
    recorded them (its folds' sums ran in that order), so the model predict stores does not
    depend on the ``--jobs`` of the first predict; ``n_jobs`` and the default device
    otherwise.

    >>> run_compute({"versions_json": '{"torch_threads": "1", "torch_device": "cpu"}'}, 2)
    (1, 'cpu')
    >>> run_compute({"versions_json": '{"numpy": "2.4"}'}, 2)
    (2, None)

    A run fitted on a GPU this machine lacks is fitted on the default device here, and
    ``say`` is told: its sums run otherwise, so that model differs a little from one fitted
    where the run was.
    """
    versions = json.loads(run.get("versions_json") or "{}")
    threads = str(versions.get("torch_threads", ""))
    if not threads.isdigit():  # no torch run, recorded before, or on a cluster's workers
        return n_jobs, None
    device = versions.get("torch_device")
    if device not in (None, "cpu") and not _device_here(device):
        if say is not None:
            say(
                f"note: run {run['run_id']} was fitted on {device}, which this machine does "
                "not have: its final model is fitted on the default device here, and differs "
                f"a little from one fitted on {device}"
            )
        device = None
    return int(threads), device


def _device_here(device: str) -> bool:
    """Whether this machine has torch device ``device`` (``cuda``, ``mps``)."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available())
    if device == "mps":
        return bool(torch.backends.mps.is_available())
    return False


def _train_step(run: dict) -> str:
    """The command (and call) that trains a run like ``run`` again, its rating included.

    >>> _train_step({"model": "svm", "target": "valence"})
    "`sercap train svm --target valence` / `sercap.train(wh, 'svm', target='valence')`"
    >>> _train_step({"model": "rf", "target": None})
    "`sercap train rf` / `sercap.train(wh, 'rf')`"
    """
    model, target = run["model"], run.get("target")
    if target:
        return step(f"train {model} --target {target}", f"train(wh, {model!r}, target={target!r})")
    return step(f"train {model}", f"train(wh, {model!r})")


def _final_model(
    wh: Warehouse,
    run: dict,
    *,
    n_jobs: int,
    progress: bool,
    say: Callable[[str], None] | None,
) -> FinalModel:
    """:func:`final_model` of a run already read."""
    from sercap.models.registry import get_model, load_model

    if run["kind"] != "model":
        raise SercapError(f"run {run['run_id']} is an ensemble; predict with it directly")
    if run.get("cross_matrix"):
        raise SercapError(
            f"run {run['run_id']} is a cell of cross-corpus matrix {run['cross_matrix']} "
            f"(trained on {run['train_corpus']}, scored on {run['corpus']}); predict with a run "
            f"of {step('train', 'train(wh, …)')}"
        )
    refuse_speaker_normalised(run)
    if run.get("target"):
        return _final_regressor(wh, run, n_jobs=n_jobs, progress=progress, say=say)
    folder = runs.artifact_dir(wh, run["run_id"])

    def load(meta: dict) -> FinalModel:
        model = load_model(folder / "model", n_jobs=n_jobs)
        return FinalModel(
            model, meta["classes"], meta["input_kind"], meta["feature_set"], meta["columns"],
            training_range=_stored_range(folder),
        )  # fmt: skip

    stored = _stored_final_model(wh, run["run_id"], folder, load, say)
    if stored is not None:
        return stored
    from sercap.experiment import data_request, load_for  # (scikit-learn's metrics: 1 s)

    cls = get_model(run["model"])
    request = data_request(
        run["model"],
        corpus=run["corpus"],
        label_map=run["label_map"],
        feature_set=_audio_feature_set(run["feature_set"]) if cls.input_kind != "image" else None,
        image_set=run["feature_set"] if cls.input_kind == "image" else None,
        columns=run["columns"],
    )
    # the run's own version of its set, not the newest
    request = replace(request, version=_own_version(wh, run, cls.input_kind, request))
    data = load_for(wh, request)
    _check_features(run, data.feature_set_hash)
    _check_same_data(wh, run, data, say)
    params = json.loads(run["params_json"] or "{}")
    fit_jobs, fit_device = run_compute(run, n_jobs, say)
    model = cls(
        params, seed=int(run["seed"] or 0), n_jobs=fit_jobs, device=fit_device, verbose=progress
    )
    _say_fitting(say, run, len(data))
    with _released_for_the_fit(wh):
        model.fit(data.X, data.y, groups=data.validation_groups(), n_classes=data.n_classes)
    feature_set = _input_definition(wh, data, request)
    meta = {
        "classes": data.classes,
        "input_kind": data.input_kind,
        "feature_set": feature_set,
        "columns": data.columns,
    }
    value_range = training_range(data.X) if data.input_kind == "tabular" else None

    def save(tmp: Path) -> None:
        model.save(tmp / "model")
        _save_range(tmp, value_range)

    _store_artifact(wh, run["run_id"], meta, save, say)
    return FinalModel(
        model, data.classes, data.input_kind, feature_set, data.columns,
        training_range=value_range,
    )  # fmt: skip


def _released_for_the_fit(wh: Warehouse) -> contextlib.AbstractContextManager[None]:
    """The warehouse given back to other processes while a final model fits (minutes on an
    IEMOCAP-sized corpus, in which `info`, `extract` and every other command gave up after
    their minute's wait), as ``train`` gives it back during its folds' fits."""
    return wh.released(
        done="the final model's fit",
        then="it is not stored: run predict again once the warehouse is free (it fits again)",
    )


def _say_fitting(say: Callable[[str], None] | None, run: dict, n: int) -> None:
    """The first prediction with a run fits its final model: minutes on a big corpus, in
    which nothing else is said (a review took it for a hang)."""
    if say is not None:
        say(
            f"fitting run {run['run_id']}'s final model on {n} utterances (the first "
            "prediction with a run does this; later ones load it)…"
        )


def _stored_range(folder: Path) -> np.ndarray | None:
    """The training range kept beside a final model (:data:`RANGE_FILE`); None for a model
    stored before ranges were kept, or not on functionals (the notes then load the data)."""
    path = folder / RANGE_FILE
    return np.load(path) if path.is_file() else None


def _save_range(folder: Path, value_range: np.ndarray | None) -> None:
    """Keep ``value_range`` beside a final model being stored in ``folder`` (if it has one)."""
    if value_range is not None:
        np.save(folder / RANGE_FILE, value_range)


def training_range(X: Any) -> np.ndarray:
    """(2, columns) float64: each column's min and max over the rows, NaN where a column has
    no value (NaN in ``X`` is a functional that is undefined for that utterance)."""
    import warnings

    values = np.asarray(X, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column
        return np.stack([np.nanmin(values, axis=0), np.nanmax(values, axis=0)])


REGRESSOR_FILE = "regressor.joblib"


def _final_regressor(
    wh: Warehouse, run: dict, *, n_jobs: int, progress: bool, say: Callable[[str], None] | None
) -> FinalModel:
    """A regression run's regressor trained on every rated utterance of its data (same
    parameters and seed), stored as the run's artifact like a classifier's final model."""
    import joblib

    from sercap.models.registry import get_model
    from sercap.regression import load_target_dataset

    folder = runs.artifact_dir(wh, run["run_id"])

    def load(meta: dict) -> FinalModel:
        model = joblib.load(folder / REGRESSOR_FILE)
        model.n_jobs = n_jobs
        return FinalModel(
            model, [], meta["input_kind"], meta["feature_set"], meta["columns"], meta["target"],
            training_range=_stored_range(folder),
        )  # fmt: skip

    stored = _stored_final_model(wh, run["run_id"], folder, load, say)
    if stored is not None:
        return stored
    image = get_model(run["model"]).input_kind == "image"
    # the run records "<target>" or "<target>.<label map that chose the utterances>"
    _target, _dot, label_map = str(run["label_map"] or "").partition(".")
    data, _ = load_target_dataset(
        wh, run["model"], run["target"], corpus=run["corpus"], label_map=label_map or None,
        feature_set=None if image else run["feature_set"],
        image_set=run["feature_set"] if image else None, columns=run["columns"],
        version=run["feature_set_hash"],  # the run's own version, not the newest
    )  # fmt: skip
    _check_features(run, data.feature_set_hash)
    _check_same_data(wh, run, data, say)
    from sercap.models.regressors import get_regressor

    params = json.loads(run["params_json"] or "{}")
    fit_jobs, fit_device = run_compute(run, n_jobs, say)  # a torch run's own threads, device
    model = get_regressor(run["model"])(
        params, seed=int(run["seed"] or 0), n_jobs=fit_jobs, device=fit_device, verbose=progress
    )
    _say_fitting(say, run, len(data))
    with _released_for_the_fit(wh):
        model.fit(data.X, data.y, groups=data.validation_groups())
    feature_set = _stored_feature_set(wh, data.feature_set_hash)
    meta = {
        "target": run["target"],
        "input_kind": data.input_kind,
        "feature_set": feature_set,
        "columns": data.columns,
    }
    value_range = training_range(data.X) if data.input_kind == "tabular" else None

    def save(tmp: Path) -> None:
        joblib.dump(model, tmp / REGRESSOR_FILE)
        _save_range(tmp, value_range)

    _store_artifact(wh, run["run_id"], meta, save, say)
    return FinalModel(
        model, [], data.input_kind, feature_set, data.columns, run["target"],
        training_range=value_range,
    )  # fmt: skip


def _stored_final_model(
    wh: Warehouse,
    run_id: str,
    folder: Path,
    load: Callable[[dict], FinalModel],
    say: Callable[[str], None] | None,
) -> FinalModel | None:
    """The stored final model read by ``load(meta)``, or None when there is none, when the
    catalog does not record it (a folder some interrupted or read-only run left), or when it
    cannot be read or its files fail their checksums (then ``say`` hears why, and the caller
    fits it again)."""
    from sercap._interrupt import is_interrupt

    if not _recorded(wh, run_id, folder):
        return None
    try:
        runs.verify_artifact(folder, runs.artifact_digest(wh, run_id))
        return load(json.loads((folder / META).read_text()))
    except Exception as exc:
        if is_interrupt(exc) or isinstance(exc, BadParameterError):
            raise  # a bad argument (n_jobs=-5) is the caller's, not a damaged model
        detail = (str(exc).strip().splitlines() or [""])[0][:120]
        if say is not None:
            say(
                f"note: the stored final model of run {run_id} ({folder}) cannot be read "
                f"({type(exc).__name__}{': ' + detail if detail else ''}); fitting it again"
            )
        return None


def final_model_stored(wh: Warehouse, run_id: str) -> bool:
    """Whether a model run's final model is stored whole: recorded in the catalog, with
    its inputs.json, and its files matching their checksums (what :func:`final_model`
    loads without fitting)."""
    from sercap._interrupt import is_interrupt

    folder = runs.artifact_dir(wh, run_id)
    if not _recorded(wh, run_id, folder):
        return False
    try:
        runs.verify_artifact(folder, runs.artifact_digest(wh, run_id))
    except Exception as exc:
        if is_interrupt(exc):
            raise
        return False
    return True


def _recorded(wh: Warehouse, run_id: str, folder: Path) -> bool:
    """Whether the catalog records the run's final model and its folder holds inputs.json
    (a folder some interrupted or read-only run left is not one)."""
    return (folder / META).is_file() and runs.artifact_path(wh, run_id) is not None


def _check_same_data(
    wh: Warehouse, run: dict, data: Any, say: Callable[[str], None] | None = None
) -> None:
    """Refuse to refit a run's final model when the utterances it was scored on changed
    since (a recording replaced and re-extracted, an utterance relabelled or re-rated, or
    lost): the
    model fitted now would not be the one its scores describe. Utterances added since are
    fitted too, as the run's recipe on today's data. A run stored before ``data_sha256``
    existed has its utterances and labels checked against its stored predictions, and
    ``say`` is told that its recordings cannot be."""
    from sercap.evaluate import rows_as_scored

    recorded = run.get("data_sha256")
    if run.get("target"):  # a regression run: its stored ratings
        from sercap.store.regression import regression_predictions

        stored = regression_predictions(wh, run["run_id"])
    else:
        stored = runs.predictions(wh, run["run_id"])
    audio = runs.audio_sources(wh, run["corpus"]) if recorded else None
    _rows, changed = rows_as_scored(data, stored, audio, recorded or None)
    if changed is None and not recorded and say is not None:
        say(
            f"note: run {run['run_id']} was stored without a fingerprint of its data (by an "
            "older sercap, or before ingest had hashed the corpus' audio): its utterances "
            "and labels are as it scored them, but a recording replaced since cannot be "
            "told; train it again if the audio may have changed"
        )
    if changed is not None:
        raise SercapError(
            f"run {run['run_id']} was scored on data that changed since (a recording "
            "replaced, an utterance relabelled, re-rated or lost): a final model fitted now "
            "would not "
            f"be the model its scores describe; {_train_step(run)} "
            "again and predict with the new run"
        )


def _check_features(run: dict, digest: str) -> None:
    """Refuse to refit a run's final model on features other than the run's."""
    if digest != run["feature_set_hash"]:
        raise SercapError(
            f"run {run['run_id']} was trained on feature set {run['feature_set']} "
            f"({run['feature_set_hash']}), the warehouse now has {digest}; train a new run"
        )


def refuse_speaker_normalised(run: dict) -> None:
    """One line when ``run`` used speaker normalisation: it needs many utterances of each new
    speaker, so it cannot predict single files."""
    if run.get("speaker_norm"):
        raise BadParameterError(
            f"run {run['run_id']} used speaker normalisation, which needs many utterances of "
            "each new speaker",
            hint="predict with a run trained without speaker normalisation",
        )


def _store_artifact(
    wh: Warehouse,
    run_id: str,
    meta: dict,
    save: Callable[[Path], object],
    say: Callable[[str], None] | None = None,
) -> None:
    """Write a run's final model (``save`` into a folder), its inputs.json and the files'
    checksums, in a temporary folder renamed into place: the artifact appears whole or not
    at all. A read-only warehouse stores nothing (the model was fitted in memory)."""
    if wh.read_only:
        if say is not None:
            say(
                f"note: run {run_id} has no stored final model; it was fitted for this call "
                "and not kept (the warehouse is open read-only: predict once on a writable "
                "one to store it)"
            )
        return
    from sercap.errors import DISK_ERRNOS

    folder = runs.artifact_dir(wh, run_id)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:  # a Ctrl-C while saving left the .tmp folder (hundreds of MB for a ResNet)
        tmp.mkdir(parents=True)
        save(tmp)
        (tmp / META).write_text(json.dumps(meta, indent=1))
        digest = runs.write_artifact_checksums(tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno not in DISK_ERRNOS:
            raise
        if say is not None:  # the model is fitted: predict with it, as on a read-only disk
            say(
                f"note: run {run_id}'s final model could not be stored in {folder} "
                f"({exc.strerror}); it was fitted for this call and not kept"
            )
        return
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    runs.record_artifact(wh, run_id, folder, digest)


def predict_files(
    wh: Warehouse,
    run_id: str,
    paths: list[Path],
    *,
    n_jobs: int = 1,
    progress: bool = True,
    texts: Mapping[str, str] | None = None,
    say: Callable[[str], None] | None = None,
) -> list[Prediction]:
    """Predict every file with a run (a model run, or an ensemble of model runs).

    A file that cannot be used gets a :class:`Prediction` with ``error`` (one line) and no
    label; the others are predicted. ``texts`` maps ``str(path)`` to the file's transcript,
    for the members that read text (audio members ignore it); a file such a member needs
    words for and that has none gets an ``error`` (see :mod:`sercap.predict_text` for the
    fallback to an audio run). ``say`` hears about a stored final model that could not be
    read and was fitted again (see :func:`final_model`).
    """

    run = get_run(wh, run_id)
    rows: dict[Path, np.ndarray] = {}  # each file's functionals row, as the model read it
    peaks: dict[Path, float] = {}  # each decoded file's largest sample
    results, members = _predict_files(wh, run, paths, n_jobs, progress, texts, say, rows, peaks)
    if say is not None:  # after: a file its checks refused (silent) gets its error alone
        predicted = [Path(r.path) for r in results if r.error is None]
        absent = [p for p in predicted if not p.exists()]
        if absent:  # a run of words alone never opens the file: a mistyped path was silent
            more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
            say(
                f"note: {absent[0]}{more} is not there; run {run['run_id']} reads only "
                "words, so it is predicted from its transcript alone"
            )
        watched = _range_member(members)
        stored_range = None if watched is None else members[watched].training_range
        if run["kind"] == "ensemble" and watched is not None:  # its member's range and data
            range_run = get_run(wh, run["members"][watched])
        else:
            range_run = run
        _note_unlike_training(wh, run, predicted, say, rows, stored_range, range_run, peaks)
    return results


def _range_member(members: list[FinalModel]) -> int | None:
    """Which member's functionals the note on features outside the training range reads:
    the model's, or an ensemble's first member on functionals (None: no member reads them)."""
    return next((i for i, m in enumerate(members) if m.input_kind == "tabular"), None)


def _predict_files(
    wh: Warehouse,
    run: dict,
    paths: list[Path],
    n_jobs: int,
    progress: bool,
    texts: Mapping[str, str] | None,
    say: Callable[[str], None] | None,
    rows: dict[Path, np.ndarray],
    peaks: dict[Path, float],
) -> tuple[list[Prediction], list[FinalModel]]:
    """Each file's prediction, and the final models that made them (``peaks`` gets each
    decoded file's largest sample)."""
    from sercap.predict_batch import chunks, predict_chunk

    if run.get("target"):  # a rating per file: Prediction.value, no label or probabilities
        members = [final_model(wh, run["run_id"], n_jobs=n_jobs, progress=progress, say=say)]
        weights = np.ones(1)
    elif run["kind"] == "ensemble":
        members = [
            final_model(wh, r, n_jobs=n_jobs, progress=progress, say=say) for r in run["members"]
        ]
        weights = np.asarray(run["weights"] or [1.0] * len(members), dtype=float)
    else:
        members = [final_model(wh, run["run_id"], n_jobs=n_jobs, progress=progress, say=say)]
        weights = np.ones(1)
    weights = weights / weights.sum()
    classes = list(run["classes"] or [])
    # an ensemble's members read different inputs: one member's rows are kept
    watched = _range_member(members)
    results = []
    for chunk in chunks(paths):
        words = [(texts or {}).get(str(path)) for path in chunk]
        shared: dict = {}  # the chunk's audio and features, computed once for all members
        outputs = [
            predict_chunk(m, chunk, words, shared, rows=rows if i == watched else None)
            for i, m in enumerate(members)
        ]
        for key, y in shared.items():  # ("audio", path, rate): a member's decoded file
            if key[0] == "audio" and isinstance(y, np.ndarray) and y.size:
                peaks[Path(key[1])] = max(peaks.get(Path(key[1]), 0.0), float(np.abs(y).max()))
        for i, path in enumerate(chunk):
            error = next((o[i] for o in outputs if isinstance(o[i], AudioError)), None)
            if error is not None:
                results.append(Prediction(str(path), None, {}, str(error)))
            elif run.get("target"):
                results.append(Prediction(str(path), None, {}, value=float(outputs[0][i][0])))
            else:
                proba = sum(w * o[i] for w, o in zip(weights, outputs, strict=True))
                proba = proba / proba.sum()
                results.append(
                    Prediction(
                        str(path),
                        classes[int(proba.argmax())],
                        {c: float(p) for c, p in zip(classes, proba, strict=True)},
                    )
                )
    return results, members


def _note_unlike_training(
    wh: Warehouse,
    run: dict,
    paths: list[Path],
    say: Callable[[str], None],
    rows: Mapping[Path, np.ndarray],
    stored_range: np.ndarray | None = None,
    range_run: dict | None = None,
    peaks: Mapping[Path, float] | None = None,
) -> None:
    """A note for each file the model can read but was not trained on anything like: audio
    recorded below the features' sample rate (its upper bands are empty), shorter or longer
    than every training utterance, with samples far beyond full scale (``peaks``: each
    decoded file's), or (a run on functionals) with many features outside their training
    range. Such a file gets a prediction that looks as confident as any.
    ``range_run`` is the run whose functionals ``rows`` holds (an ensemble's member).
    """
    from sercap.features.featureset import get_feature_set
    from sercap.store.corpora import duration_range

    audio_set = _audio_feature_set((range_run or run)["feature_set"]) or "mel"
    try:
        rate = int(get_feature_set(audio_set).params["sample_rate"])
    except Exception:  # a text run, or a set this sercap does not define: nothing to say
        return
    shortest, longest = duration_range(wh, run["corpus"])
    shortest, longest = shortest or 0.0, longest or float("inf")
    outside = outside_training_range(
        wh, range_run or run, {p: rows[p] for p in paths if p in rows}, stored_range=stored_range
    )
    for path in paths:
        try:
            info = probe_audio(path)
        except AudioError:
            continue  # its row says why
        why = []
        if info.sample_rate < rate:
            why.append(
                f"recorded at {info.sample_rate} Hz, so the bands of the model's {rate} Hz "
                f"features above {info.sample_rate // 2} Hz are empty"
            )
        if 0 < info.duration_s < shortest:
            why.append(
                f"{info.duration_s:.2f} s long, shorter than every utterance the model was "
                f"trained on (shortest {shortest:.2f} s)"
            )
        if info.duration_s > longest:  # (length is a feature: n_frames, segment counts)
            why.append(
                f"{info.duration_s:.2f} s long, longer than every utterance the model was "
                f"trained on (longest {longest:.2f} s; predict one utterance per file)"
            )
        peak = (peaks or {}).get(path, 0.0)
        if peak > FULL_SCALE_NOTE:
            why.append(
                f"its samples reach {peak:.3g} times full scale (a float file not "
                "normalised to ±1), so its level descriptors lie beyond every training "
                "utterance's"
            )
        share = outside.get(path)
        if share is not None and share > OUTSIDE_NOTE:
            why.append(
                f"{share:.0%} of its features lie outside the range of every training "
                "utterance's (noise, a tone, another kind of recording?)"
            )
        if why:
            say(f"note: {path}: {' and '.join(why)}: its prediction is less reliable")


#: Peak (in units of full scale) above which a decoded file gets a note: float files may
#: overshoot 1.0 a little (inter-sample peaks, resampling), not by 6 dB.
FULL_SCALE_NOTE = 2.0

#: Share of a file's functionals outside the training range above which predict notes it.
#: Measured on EmoDB (default set, each speaker against the other nine speakers' range):
#: held-out speech has a median of 0.3%, 99th percentile 4.0%, maximum 6.6%; white noise
#: 42%, a 220 Hz tone 64%, speech at 1/20 of its level under noise 41%.
OUTSIDE_NOTE = 0.2


def outside_training_range(
    wh: Warehouse,
    run: dict,
    rows: Mapping[Path, np.ndarray],
    stored_range: np.ndarray | None = None,
) -> dict[Path, float]:
    """For a run on functionals, the share of each file's features (``rows``: the row the
    model read, by file) that lie outside the range (min..max) of the run's training
    utterances; empty for other runs.

    ``stored_range`` is that range as kept with the run's final model
    (:attr:`FinalModel.training_range`); without it the run's data is loaded to find it.

    An RBF SVM gives every input far from its data the same saturated answer (white noise
    and a tone got identical probabilities): a share well above held-out speech's says so.
    """
    if not rows:
        return {}
    if stored_range is None:
        stored_range = _training_range_of(wh, run)
        if stored_range is None:
            return {}
    lo, hi = stored_range
    shares: dict[Path, float] = {}
    for path, row in rows.items():
        x = np.asarray(row, dtype=np.float64).reshape(-1)
        if x.size == lo.size:
            shares[path] = float(np.mean(np.isfinite(x) & ((x < lo) | (x > hi))))
    return shares


def _training_range_of(wh: Warehouse, run: dict) -> np.ndarray | None:
    """The range of a run's training functionals, from its data today (None for a run that
    does not read functionals, or whose feature set was redefined since)."""
    from sercap.data import load_dataset
    from sercap.models.registry import get_model

    try:
        if run["kind"] != "model" or get_model(run["model"]).input_kind != "tabular":
            return None
        data = load_dataset(
            wh, "tabular", corpus=run["corpus"], label_map=run["label_map"],
            feature_set=_audio_feature_set(run["feature_set"]), columns=run["columns"],
        )  # fmt: skip
    except SercapError:
        return None
    if data.feature_set_hash != run["feature_set_hash"]:
        return None  # the set was redefined since: not the features the model read
    return training_range(data.X)
