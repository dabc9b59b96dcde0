"""Runs: cross-validate a model, list, read, average, compare and report stored runs."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from sercap.api._common import (
    PathLike,
    Say,
    _bars,
    _check_counts,
    _check_fraction,
    _check_params,
    _check_seed,
    _cluster,
    _listed,
    _output_dir,
    _quiet,
    _require_writable,
    _run_id,
    _takes_warehouse,
)
from sercap.api._warehouse import resolve_corpus
from sercap.errors import BadParameterError, option

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    import polars as pl
    from distributed import Client

    from sercap.store import Warehouse


class _StoredRun:
    """One stored run is one run, however often it is read: runs compare and hash by their
    id (their frames compare as arrays, which made ``==`` a TypeError)."""

    run_id: str

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.run_id == self.run_id  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.run_id)


@dataclass(eq=False)
class Run(_StoredRun):
    """A stored, scored cross-validation run.

    ``ua``/``wa``/``macro_f1`` are computed on the pooled out-of-fold predictions;
    ``confusion`` (true label per row, predicted per column) and ``predictions`` (one row
    per utterance: fold, label, predicted, probabilities) are polars DataFrames.
    ``record`` holds every column of the ``runs`` table. A nested-tuned run has
    ``fold_params`` (the parameters each outer fold was scored with) and, when
    :func:`train` made it, ``comparison``: default vs tuned UA on the same folds with a
    paired bootstrap 95 % CI of the difference.
    """

    run_id: str
    model: str
    corpus: str
    label_map: str
    classes: list[str]
    ua: float
    wa: float
    macro_f1: float
    params: dict
    confusion: pl.DataFrame = field(repr=False)
    predictions: pl.DataFrame = field(repr=False)
    record: dict = field(repr=False)
    fold_params: dict | None = None
    comparison: Any = field(default=None, repr=False)

    @property
    def speaker_norm(self) -> bool:
        """Whether the inputs were standardised per speaker (``record["speaker_norm"]``)."""
        return bool(self.record.get("speaker_norm"))

    def __str__(self) -> str:
        from sercap.format import format_run, format_tuning_comparison

        text = format_run(self.record)
        if self.comparison is not None:
            text += "\n\n" + format_tuning_comparison([self.comparison])
        return text

    def _repr_markdown_(self) -> str:
        return f"```\n{self}\n```"


@dataclass(eq=False)
class RegressionRun(_StoredRun):
    """A stored, scored regression run (``train(..., target=...)``).

    ``ccc`` (Lin's concordance correlation, the primary score), ``pearson`` and ``mae`` are
    computed on the pooled out-of-fold predictions; ``predictions`` has one row per
    utterance (utt_id, fold, value = the corpus' rating, predicted). ``record`` holds every
    column of the ``runs`` table; ``left_out`` counts the utterances without a rating (set by
    :func:`train`); after ``train(..., tuned=True)``, ``comparison`` holds the default
    run's CCC beside the tuned one's (:class:`sercap.regression.TunedCCC`).
    """

    run_id: str
    model: str
    corpus: str
    target: str
    ccc: float
    pearson: float
    mae: float
    params: dict
    predictions: pl.DataFrame = field(repr=False)
    record: dict = field(repr=False)
    fold_params: dict | None = None
    left_out: int = 0
    comparison: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        from sercap.format import format_regression_run, format_tuned_ccc

        text = format_regression_run(self.record)
        if self.comparison is not None:
            text += "\n\n" + format_tuned_ccc(self.comparison)
        return text

    def _repr_markdown_(self) -> str:
        return f"```\n{self}\n```"


def _regression_run(wh: Warehouse, record: dict) -> RegressionRun:
    """The :class:`RegressionRun` of a stored ``runs`` row whose ``target`` is set."""
    import json

    from sercap.store.regression import regression_predictions

    fold_params = record.get("fold_params_json")
    return RegressionRun(
        run_id=record["run_id"],
        model=record["model"],
        corpus=record["corpus"],
        target=record["target"],
        ccc=float(record["ccc"]),
        pearson=float("nan") if record["pearson"] is None else float(record["pearson"]),
        mae=float(record["mae"]),
        params=json.loads(record["params_json"] or "{}"),
        predictions=regression_predictions(wh, record["run_id"]),
        record=record,
        fold_params=json.loads(fold_params) if fold_params else None,
    )


@_takes_warehouse
def dataset(
    wh: Warehouse,
    kind: str = "tabular",
    *,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
) -> Any:
    """The data sercap's models train on, for a model of your own.

    The same rows and folds :func:`train` uses: every labelled utterance of the corpus under
    the label map, refused while the feature set is only partly extracted or a stored part
    is damaged.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough) with extracted features.
    kind : str
        ``"tabular"`` (functionals: ``X`` is a float32 matrix, NaN where a functional is
        undefined), ``"sequence"`` (per-frame descriptors: a list of (frames, descriptors)
        arrays) or ``"image"`` (log-mel images: a list of arrays).
    corpus, labels, feature_set, columns, speaker_norm
        As for :func:`train` (``feature_set`` names the image set for ``"image"``).

    Returns
    -------
    sercap.data.Dataset
        ``X``, ``y`` (class indices into ``classes``), ``classes``, ``utt_ids``,
        ``speakers`` and ``folds`` (the corpus protocol's speaker-independent outer folds:
        use them as the groups of a cross-validation), ``columns`` (feature names).

    Examples
    --------
    >>> import tempfile, sercap
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.impute import SimpleImputer
    >>> from sklearn.preprocessing import StandardScaler
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> data = sercap.dataset(wh, columns="^mfcc_")
    >>> data.X.shape[0] == len(data.y) == len(data.folds), sorted(set(data.folds))
    (True, ['Ses01', 'Ses02'])
    >>> model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression())
    >>> pred = cross_val_predict(model, data.X, data.y, groups=data.folds, cv=LeaveOneGroupOut())
    >>> pred.shape == data.y.shape
    True
    >>> wh.close()
    """
    from sercap.data import INPUT_KINDS, load_dataset

    kinds = [k for k in INPUT_KINDS if k != "text"]
    if kind not in kinds:
        raise BadParameterError(f"kind={kind!r}", hint=f"choose one of: {', '.join(kinds)}")
    return load_dataset(
        wh,
        kind,
        corpus=corpus,
        label_map=labels,
        feature_set=feature_set,
        columns=columns,
        speaker_norm=speaker_norm,
    )


@_takes_warehouse
def get_run(wh: Warehouse, run_id: str | Run | RegressionRun) -> Run | RegressionRun:
    """A stored run by id (a unique prefix is enough), with its predictions.

    A regression run (``train(..., target=...)``) comes back as a :class:`RegressionRun`
    (``ccc``, ``pearson``, ``mae``, ``predictions``).

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (``sercap.connect(path)``).
    run_id : str or Run
        The run's id, or a prefix that only it starts with (or a run, read again).

    Returns
    -------
    Run or RegressionRun

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.get_run(wh, "nope")
    Traceback (most recent call last):
    ...
    sercap.errors.NotFoundError: no run 'nope'; list them with `sercap runs` / `sercap.runs(wh)`
    >>> wh.close()
    """
    import json

    import polars as pl

    from sercap.store.runs import get_run as _get_run
    from sercap.store.runs import predictions as _predictions

    record = _get_run(wh, _run_id(run_id, "run_id", "get_run"))  # NotFoundError if none
    if record.get("target"):  # a regression run (sql/008_regression.sql)
        return _regression_run(wh, record)
    classes = list(record["classes"])
    matrix = json.loads(record["confusion_json"])
    confusion = pl.DataFrame(
        {"label": classes, **{c: [row[j] for row in matrix] for j, c in enumerate(classes)}}
    )
    predictions = _predictions(wh, record["run_id"])
    return Run(
        run_id=record["run_id"],
        model=record["model"],
        corpus=record["corpus"],
        label_map=record["label_map"],
        classes=classes,
        ua=float(record["ua"]),
        wa=float(record["wa"]),
        macro_f1=float(record["macro_f1"]),
        params=json.loads(record["params_json"] or "{}"),
        confusion=confusion,
        predictions=predictions,
        record=record,
        fold_params=json.loads(record["fold_params_json"])
        if record.get("fold_params_json")
        else None,
    )


@overload
def train(
    wh: Warehouse,
    model: str,
    *,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    params: Mapping[str, Any] | None = None,
    tuned: bool | str = False,
    speaker_norm: bool = False,
    target: None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    cluster: str | Client | None = None,
    progress: bool | None = None,
    say: Say | None = None,
) -> Run: ...
@overload
def train(
    wh: Warehouse,
    model: str,
    *,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    params: Mapping[str, Any] | None = None,
    tuned: bool | str = False,
    speaker_norm: bool = False,
    target: str,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    cluster: str | Client | None = None,
    progress: bool | None = None,
    say: Say | None = None,
) -> RegressionRun: ...
@_takes_warehouse  # (the overloads: a rating's regressor comes back as a RegressionRun)
def train(  # noqa: E302
    wh: Warehouse,
    model: str,
    *,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    params: Mapping[str, Any] | None = None,
    tuned: bool | str = False,
    speaker_norm: bool = False,
    target: str | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    cluster: str | Client | None = None,
    progress: bool | None = None,
    say: Say | None = None,
) -> Run | RegressionRun:
    """Cross-validate ``model`` speaker-independently under the corpus' protocol; store it.

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse with extracted features.
    model : str
        One of svm, rf, xgb, lgbm, trees, dnn, lstm, cnn, resnet18, resnet34 (audio);
        text-lr, text-svm, text-cnn (transcripts); fusion, early-fusion (both).
    corpus : str, optional
        Corpus name (default: the only one in the warehouse).
    labels : str, optional
        Label map such as ``"iemocap4"`` or ``"emodb7"`` (default: the corpus').
    feature_set, image_set : str, optional
        What tabular/sequence models (default ``"default"``) and CNNs (``"mel"``) read.
    columns : str, optional
        Regular expression choosing feature columns (default: the model's own).
    params : mapping, optional
        Model parameters (override tuned ones when ``tuned``).
    tuned : bool or str
        Fit each outer fold with its own study's parameters (see :func:`tune`), and also
        run the defaults on the same folds: the returned run is the tuned one, with
        ``run.comparison`` (UA difference and its paired bootstrap 95 % CI; with
        ``target``, the CCC difference). ``True`` takes the newest nested tuning of this
        model and data; a string names one by its base study name (``tune``'s ``study``).
    speaker_norm : bool
        Standardise the inputs per speaker with unlabelled statistics over all of that
        speaker's extracted utterances: each functional (tabular models), each frame
        descriptor (lstm) or each mel band (image models; see
        :func:`sercap.data.speaker_normalise_images`). Such a run cannot predict single
        new files.
    target : str, optional
        ``"valence"``, ``"activation"`` or ``"dominance"``: fit the model family's regressor
        to that rating instead (svm → SVR, rf/xgb/lgbm → their regressors, dnn, lstm, cnn,
        resnet18/34 → their network with a one-unit head on a CCC loss), on every utterance
        with a rating (only those of ``labels`` when given), scored by CCC, Pearson's r and
        MAE; see :mod:`sercap.regression`.
    seed, jobs, device
        Random seed, threads for fitting, torch device.
    cluster : str or dask.distributed.Client, optional
        A Dask cluster (``"local:N"``, ``"tcp://HOST:PORT"``; default ``$SERCAP_CLUSTER``):
        each (model, outer fold) fit is one task; the run is the in-process one.
    progress : bool, optional
        Progress bars (``None``: on a terminal only).
    say : callable, optional
        Receives one line describing the data before training (default: silent).

    Returns
    -------
    Run
        ``run.run_id``, ``run.ua``, ``run.confusion``, ``run.predictions``…; ``print(run)``
        shows what ``sercap train`` prints. With ``target``, a :class:`RegressionRun`
        (``run.ccc``, ``run.pearson``, ``run.mae``).

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> run = sercap.train(wh, "svm")
    >>> 0.0 <= run.ua <= 1.0, run.predictions.height == run.record["n_utterances"]
    (True, True)
    >>> reg = sercap.train(wh, "svm", target="valence")
    >>> -1.0 <= reg.ccc <= 1.0, reg.predictions.columns
    (True, ['utt_id', 'fold', 'value', 'predicted'])
    >>> wh.close()
    """
    _check_counts(jobs=jobs)
    _check_seed(seed)
    _require_writable(wh, "train stores the run")
    from sercap.experiment import compare_tuned, data_request, load_for, run_model

    spec = _cluster(cluster)
    say = say or _quiet
    params = _check_params(params)
    from sercap.experiment import refuse_unused_inputs

    refuse_unused_inputs(model, feature_set=feature_set, image_set=image_set, device=device)
    if target is not None:  # the model's regressor of a rating (sercap.regression)
        from sercap.models.regressors import get_regressor
        from sercap.regression import train_target

        get_regressor(model)(dict(params or {}))  # its parameters, before any data is read

        run_id, left_out, comparison = train_target(
            wh, model, target, corpus=corpus, label_map=labels, feature_set=feature_set,
            image_set=image_set, columns=columns, params=dict(params or {}), tuned=tuned,
            speaker_norm=speaker_norm, seed=seed, n_jobs=jobs, device=device,
            cluster=spec, progress=_bars(progress), say=say,
        )  # fmt: skip
        run = get_run(wh, run_id)
        run.left_out = left_out  # type: ignore[union-attr]
        run.comparison = comparison  # type: ignore[union-attr]
        return run
    from sercap.models.registry import get_model

    cls = get_model(model)
    if params:  # a wrong value is one line before any data is read
        cls(dict(params))
    if speaker_norm and cls.input_kind == "text":
        raise BadParameterError(
            f"{option('speaker_norm')} does not apply to {model}: it reads transcripts, which "
            "have "
            "no per-speaker statistics to standardise"
        )
    request = data_request(
        model,
        corpus=corpus,
        label_map=labels,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        speaker_norm=speaker_norm,
    )
    data = load_for(wh, request)
    say(
        f"{model}: {len(data)} utterances of {data.corpus} ({data.label_map}), "
        f"{len(set(data.folds))} folds ({data.protocol})"
    )
    from sercap.experiment import dataset_notes

    for note in dataset_notes(wh, data):
        say(note)
    kwargs = dict(
        params=dict(params or {}),
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(progress),
        cluster=spec,
        # a line per fold where no bar shows (a log file): minutes per fold at IEMOCAP's size
        say=None if _bars(progress) else say,
    )
    if tuned:
        study = tuned if isinstance(tuned, str) else None
        tuning = compare_tuned(wh, model, data, study=study, **kwargs)
        run = get_run(wh, tuning.tuned.run_id)
        run.comparison = tuning
        return run
    return get_run(wh, run_model(wh, model, data, **kwargs).run_id)


@_takes_warehouse
def runs(wh: Warehouse, *, corpus: str | None = None, model: str | None = None) -> pl.DataFrame:
    """Stored runs, newest first, with the facts needed to read their figures.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (``sercap.connect(path)``).
    corpus : str, optional
        Only the runs on this corpus (it must exist).
    model : str, optional
        Only the runs of this model (``"ensemble"`` for ensembles).

    Returns
    -------
    polars.DataFrame
        One row per run: id, model, corpus, label map, ``protocol`` (the folds it was
        scored on: runs under different folds are not comparable), feature set, column
        pattern, speaker normalisation (``spk_norm``: ``"yes"``, ``"no"``, or ``"mixed"``
        for an ensemble of both; ``get_run(wh, id).speaker_norm`` is the bool), UA, WA,
        macro-F1 (unrounded: ``get_run``'s figures), fit seconds (to 0.1 s), tuned, and
        ``started_at``, which holds when the run was *stored* (its end, the time in its id).

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.runs(wh).height
    0
    >>> wh.close()
    """
    from sercap.regression import with_regression_scores
    from sercap.report import runs_table

    if corpus is not None:  # a typo is "no corpus 'x'", not an empty list
        resolve_corpus(wh, corpus)
    if model is not None and model != "ensemble":
        from sercap.models.registry import get_model

        try:
            get_model(model)
        except BadParameterError as exc:  # runs also lists ensembles: name them as valid
            raise BadParameterError(f"{exc}, ensemble") from None
    return with_regression_scores(wh, runs_table(wh, corpus=corpus, model=model))


@_takes_warehouse
def ensemble_runs(
    wh: Warehouse,
    run_ids: Sequence[str | Run],
    *,
    weights: Sequence[float] | None = None,
) -> Run:
    """Average the out-of-fold probabilities of stored runs and store that as a run.

    The runs must share corpus, label map and protocol. Nothing is retrained: each member's
    predictions were made without the test speaker. But members (or weights) chosen by their
    scores were chosen on the test folds: the ensemble's UA is then optimistic. The run
    records that its members were chosen by hand, and :func:`write_report` lists it without
    ranking it or making it the best (``bench(..., ensemble=True)`` stores the fixed
    ensembles it declares before scoring).

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse.
    run_ids : sequence of str or Run
        At least two runs or run ids (unique prefixes are enough).
    weights : sequence of float, optional
        One weight per run (default: equal).

    Returns
    -------
    Run
        The ensemble run.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.ensemble_runs(wh, ["only-one"])
    Traceback (most recent call last):
    ...
    sercap.errors.SercapError: an ensemble needs at least two runs
    >>> wh.close()
    """
    _require_writable(wh, "an ensemble is stored as a run")
    import numpy as np

    from sercap.ensemble import ensemble_runs as _ensemble

    if weights is not None and (  # (a numpy vector of weights is one too)
        isinstance(weights, str)
        or np.ndim(weights) != 1
        or not all(
            isinstance(w, numbers.Real) and not isinstance(w, bool | np.bool_) for w in weights
        )  # fmt: skip
    ):
        raise BadParameterError(
            f"weights={weights!r}", hint="give one number per run, e.g. weights=[2, 1, 1]"
        )
    if isinstance(run_ids, str):
        ids = _listed(run_ids)
    elif isinstance(run_ids, Sequence):
        ids = [_run_id(run, "run_ids", "ensemble_runs") for run in run_ids]
    else:
        raise BadParameterError(
            f"run_ids={run_ids!r}", hint="give two or more runs or run ids, e.g. [a, b]"
        )
    run_id, _ = _ensemble(wh, ids, None if weights is None else [float(w) for w in weights])
    run = get_run(wh, run_id)
    assert isinstance(run, Run)  # (an ensemble averages class probabilities)
    return run


@_takes_warehouse
def write_report(
    wh: Warehouse,
    out_dir: PathLike | None = None,
    *,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    importance: bool = True,
    importance_folds: int | None = None,
    progress: bool | None = None,
) -> Path:
    """Write a Markdown report with pictures; returns the path of ``report.md``.

    Model comparison (with which runs are within noise of the best), confusion matrices,
    per-class recall, UA per gender and per speaker, UA against coverage, permutation
    importance by descriptor family and by functional, audio vs text runs (UA per modality
    and where they disagree, from stored predictions), the functionals that separate the
    emotions and the corpus at a glance.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse with runs.
    out_dir : path, optional
        Folder for report.md and its PNGs (default ``WAREHOUSE/reports/CORPUS``).
    corpus, labels, feature_set : str, optional
        As for :func:`train`.
    importance : bool
        Draw the permutation-importance charts of the newest tabular run (this refits its
        model once per outer fold; everything else is read from stored predictions).
    importance_folds : int, optional
        Only the first outer folds for the importance charts (quicker on many speakers).
    progress : bool, optional
        A bar over the importance refits (default: when stderr is a terminal).

    Returns
    -------
    pathlib.Path
        ``report.md``; its pictures are PNG files beside it.

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> _ = sercap.train(wh, "svm")
    >>> path = sercap.write_report(wh, tempfile.mkdtemp(), importance=False)
    >>> path.name, path.read_text().startswith("#")
    ('report.md', True)
    >>> wh.close()
    """
    _check_counts(importance_folds=importance_folds)
    from sercap.report import write_report as _write

    corpus = resolve_corpus(wh, corpus)
    out = _output_dir(wh, out_dir, corpus)  # made by the report, once its names are checked
    return _write(wh, out, corpus=corpus, label_map=labels, feature_set=feature_set,
                  importance=importance, importance_folds=importance_folds,
                  progress=_bars(progress))  # fmt: skip


@_takes_warehouse
def compare_runs(
    wh: Warehouse,
    run_a: str | Run,
    run_b: str | Run,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Any:
    """Is run A better than run B, or within noise? From their stored predictions only.

    (Named ``compare_runs``, not ``compare``: ``sercap.compare`` is the bench module.)

    A paired bootstrap on the utterances both runs predicted (the same draw for both runs)
    gives a confidence interval of the UA and macro-F1 differences A − B: the span of two
    intervals, one resampling speakers (each draw takes all of a speaker's utterances) and
    one resampling single utterances (:func:`sercap.analysis.speakers_and_utterances`
    says why neither alone). McNemar's test counts the utterances only one of them gets
    right. Nothing is refitted.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough).
    run_a, run_b : str or Run
        Runs or run ids (unique prefixes are enough), of one corpus and label map.
    n_boot : int
        Bootstrap resamples.
    level : float
        Coverage of the intervals.
    seed : int
        Seed of the resampling (the same runs and seed give the same interval).

    Returns
    -------
    sercap.analysis_store.RunComparison
        ``ua`` and ``macro_f1`` (difference, low, high, ``within_noise``), ``mcnemar``
        (counts, statistic, p), ``n_common``; ``str()`` of it is the CLI's text, ending in a
        one-line verdict.

    Raises
    ------
    NotFoundError
        An unknown run.
    SercapError
        Runs of different classes, of no common utterance, or labelling them differently.

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> a, b = sercap.train(wh, "svm"), sercap.train(wh, "rf")
    >>> c = sercap.compare_runs(wh, a.run_id, b.run_id, n_boot=200)
    >>> c.ua.low <= c.ua.difference <= c.ua.high
    True
    >>> str(c).splitlines()[-1].startswith("verdict: ")
    True
    >>> wh.close()
    """
    _check_counts(n_boot=n_boot)
    _check_seed(seed)
    _check_fraction("level", level)
    from sercap.analysis_store import compare_runs as _compare

    if n_boot < 100:
        raise BadParameterError(f"n_boot={n_boot}", hint="use at least 100 resamples")
    if not 0.5 <= level < 1.0:
        raise BadParameterError(f"level={level}", hint="give a confidence level such as 0.95")
    named = [_run_id(run_a, "run_a", "compare_runs"), _run_id(run_b, "run_b", "compare_runs")]
    ids = [get_run(wh, run_id).run_id for run_id in named]  # NotFoundError if unknown
    if ids[0] == ids[1]:  # printed a table of zeros and the verdict "within noise"
        raise BadParameterError(
            f"{named[0]!r} and {named[1]!r} are the same run, {ids[0]}",
            hint="compare two different runs (`sercap runs` lists them)",
        )
    return _compare(wh, ids[0], ids[1], n_boot=n_boot, level=level, seed=seed)


@_takes_warehouse
def fairness(wh: Warehouse, run: str | Run, *, summary: bool = False) -> pl.DataFrame:
    """UA per gender and per speaker of a stored run, from its stored predictions only.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough).
    run : str or Run
        A run or run id (a unique prefix is enough).
    summary : bool
        One row per grouping (best and worst group, the gap) instead of one per group.

    Returns
    -------
    polars.DataFrame
        ``group_by`` ("gender" | "speaker"), ``group_name, n, accuracy, ua, gap`` (best
        group's UA minus this one's), ``worst_gap``, worst group first; with ``summary``:
        ``group_by, n_groups, best_group, best_ua, worst_group, worst_ua, worst_gap`` (the
        ``run_groups`` and ``run_fairness`` views, for SQL users).

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.fairness(wh, "nope")
    Traceback (most recent call last):
    ...
    sercap.errors.NotFoundError: no run 'nope'; list them with `sercap runs` / `sercap.runs(wh)`
    >>> wh.close()
    """
    from sercap.analysis_store import fairness_summary, fairness_table

    run_id = get_run(wh, run).run_id
    return fairness_summary(wh, run_id) if summary else fairness_table(wh, run_id)


def check_model(name: str) -> str:
    """``name`` if it is a registered model, else one line listing them (what ``train``,
    ``tune`` and ``bench`` say; the CLI asks before it opens the warehouse, so that a typo
    does not wait for another process' lock first).

    Parameters
    ----------
    name : str
        A model name (``sercap train --help`` lists them).

    Returns
    -------
    str
        ``name``, checked.

    Examples
    --------
    >>> import sercap
    >>> sercap.check_model("svm")
    'svm'
    >>> sercap.check_model("svn")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sercap.errors.BadParameterError: unknown model 'svn'; choose one of: svm, rf, xgb, ...
    """
    from sercap.models.registry import get_model

    get_model(name)
    return name
