"""The Python front door: the CLI's verbs as functions returning things a notebook can show.

``import sercap`` gives every function here (imported lazily, so ``import sercap`` stays
fast). Each is a thin wrapper over a service module; nothing prints unless asked, and
``progress=None`` everywhere means "progress bars on a terminal only".

>>> import sercap
>>> wh = sercap.connect(":memory:")
>>> wh.query("SELECT count(*) AS n FROM corpora")["n"][0]
0
>>> wh.close()
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap.errors import BadParameterError, SercapError

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    import optuna
    import polars as pl

    from sercap.corpora.ingest import IngestSummary
    from sercap.corpora.synthetic import SynthResult
    from sercap.features.extract import ExtractSummary
    from sercap.warehouse import Warehouse

PathLike = str | os.PathLike[str]
Say = Callable[[str], None]


def _bars(progress: bool | None) -> bool:
    """The one convention: ``None`` means bars only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


def _quiet(_: str) -> None:
    """The default ``say``: library calls print nothing unless asked."""


# --------------------------------------------------------------------------- warehouse
def connect(
    path: PathLike | None = None,
    *,
    memory: bool = False,
    read_only: bool = False,
    wait_s: float = 60.0,
) -> Warehouse:
    """Open (creating if needed) a feature warehouse.

    Parameters
    ----------
    path : str or path-like, optional
        The warehouse directory (default ``$SERCAP_WAREHOUSE`` or ``./warehouse``).
        ``":memory:"`` keeps the catalog in memory and the Parquet parts in a fresh
        temporary folder.
    memory : bool
        Keep the catalog in memory but the Parquet parts under ``path``.
    read_only : bool
        Open an existing warehouse without changing it (several processes may).
    wait_s : float
        How long to wait while another process holds the write lock.

    Returns
    -------
    sercap.warehouse.Warehouse
        ``wh.query(sql)`` returns a polars DataFrame; ``wh.close()`` releases the lock.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> wh.query("SELECT count(*) AS n FROM utterances")["n"][0]
    0
    >>> wh.close()
    """
    from sercap.warehouse import connect as _connect

    if path is not None and str(path) != ":memory:":
        path = Path(path).absolute()  # parts stay reachable after a notebook's os.chdir
    return _connect(path, memory=memory, read_only=read_only, wait_s=wait_s)


# --------------------------------------------------------------------------- corpora
def synth(
    directory: PathLike,
    *,
    sessions: int = 5,
    per_speaker: int = 36,
    seed: int = 0,
    progress: bool | None = None,
) -> SynthResult:
    """Write the synthetic demo corpus (IEMOCAP layout) to ``directory``.

    Parameters
    ----------
    directory : str or path-like
        Folder to write ``Session1..N`` into (a previous synthetic corpus there is replaced).
    sessions : int
        Sessions, two speakers each (1–9).
    per_speaker : int
        Utterances per speaker.
    seed : int
        The same seed writes the same bytes.
    progress : bool, optional
        Show a progress bar (``None``: on a terminal only).

    Returns
    -------
    sercap.corpora.synthetic.SynthResult
        ``root``, ``labels``, ``per_label`` and the minutes of audio written.

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=1, per_speaker=2)
    >>> len(corpus.labels)
    4
    """
    from sercap.corpora.synthetic import generate

    if not 1 <= sessions <= 9 or per_speaker < 1:
        raise BadParameterError(
            f"synthetic corpus of {sessions} sessions × {per_speaker} utterances per speaker",
            hint="use 1 to 9 sessions and at least one utterance per speaker",
        )
    return generate(directory, sessions, per_speaker, seed, progress=progress)


def ingest(
    wh: Warehouse,
    kind: str,
    directory: PathLike,
    *,
    name: str | None = None,
    progress: bool | None = None,
) -> IngestSummary:
    """Read the corpus in ``directory`` (of format ``kind``) into the warehouse.

    All or nothing, and idempotent: ingesting the same folder again changes nothing.

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse.
    kind : str
        ``"iemocap"``, ``"emodb"``, ``"ravdess"``, ``"cremad"``, ``"tess"`` or
        ``"manifest"`` (then ``directory`` is a .csv/.parquet file).
    directory : str or path-like
        The corpus root.
    name : str, optional
        Corpus name in the warehouse (default: ``kind``).
    progress : bool, optional
        Show a progress bar while reading headers (``None``: on a terminal only).

    Returns
    -------
    sercap.corpora.ingest.IngestSummary
        Counts (``added``, ``stored``…), ``per_label`` and ``per_speaker`` tables, problems.

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=1, per_speaker=2)
    >>> wh = sercap.connect(":memory:")
    >>> sercap.ingest(wh, "iemocap", corpus.root).stored
    4
    >>> wh.close()
    """
    from sercap.corpora.ingest import ingest as _ingest

    return _ingest(wh, kind, Path(directory), name=name, progress=progress)


# --------------------------------------------------------------------------- features
def extract(
    wh: Warehouse,
    feature_set: str = "default",
    *,
    corpus: str | None = None,
    jobs: int = 1,
    chunk_size: int | None = None,
    retry_errors: bool = False,
    limit: int | None = None,
    progress: bool | None = None,
) -> ExtractSummary:
    """Compute descriptors and functionals (or images) of every utterance not yet stored.

    Incremental and resumable: a second call does nothing, an interrupted one resumes.

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse.
    feature_set : str
        A built-in feature set (``"default"``, ``"pyin"``, ``"chroma"``, ``"compare2016"``,
        ``"egemaps02"``) or image set (``"mel"``).
    corpus : str, optional
        Only this corpus (default: every ingested corpus).
    jobs : int
        Worker processes (one thread each).
    chunk_size : int, optional
        Utterances per Parquet part (default 64).
    retry_errors : bool
        Try again the utterances that failed before.
    limit : int, optional
        At most this many utterances.
    progress : bool, optional
        Show a progress bar (``None``: on a terminal only).

    Returns
    -------
    sercap.features.extract.ExtractSummary
        ``done``, ``failed``, ``skipped`` and ``lines()`` for a printable summary.

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=1, per_speaker=2)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> sercap.extract(wh, "default").done
    4
    >>> wh.close()
    """
    from sercap.features.extract import CHUNK_SIZE
    from sercap.features.extract import extract as _extract

    if jobs < 1:
        raise BadParameterError(f"jobs={jobs}", hint="use at least one worker")
    return _extract(
        wh,
        feature_set,
        corpus=corpus,
        jobs=jobs,
        chunk_size=chunk_size or CHUNK_SIZE,
        retry_errors=retry_errors,
        limit=limit,
        progress=progress,
    )


def features(path: PathLike, feature_set: str = "default") -> pl.DataFrame:
    """Functionals of one audio file, without a warehouse: a one-row polars DataFrame.

    The columns are exactly those the warehouse's ``utterance_features`` view has for the
    same feature set (computed by the same SQL), after a ``path`` column.

    Parameters
    ----------
    path : str or path-like
        Any audio file soundfile can read (any rate, any channel count).
    feature_set : str
        A built-in tabular feature set (``"default"``, ``"pyin"``, ``"chroma"``; openSMILE
        sets need the ``opensmile`` package).

    Returns
    -------
    polars.DataFrame
        One row: ``path`` then one float column per functional.

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=1, per_speaker=1)
    >>> wav = next(corpus.root.rglob("*.wav"))
    >>> row = sercap.features(wav)
    >>> row.height, "mfcc_01_mean" in row.columns
    (1, True)
    """
    import numpy as np
    import polars as pl

    from sercap.audio import load_audio
    from sercap.features.featureset import get_feature_set

    fs = get_feature_set(feature_set)
    if fs.kind == "image":
        raise BadParameterError(
            f"{feature_set!r} is an image set, not functionals",
            hint="choose a tabular feature set such as 'default'",
        )
    if not Path(path).is_file():
        from sercap.errors import NotFoundError

        raise NotFoundError(f"{path}: no such audio file")
    y = load_audio(path, int(fs.params["sample_rate"]))
    if fs.kind == "opensmile":
        from sercap.features.opensmile import column_names, functionals

        values = np.asarray(functionals(y, fs.params), dtype=np.float32).ravel()
        row = pl.DataFrame([dict(zip(column_names(fs.params), values.tolist(), strict=True))])
        return row.select(pl.lit(str(path)).alias("path"), pl.all())
    from sercap.features.functionals import compute_functionals, frames_table
    from sercap.features.lld import compute_frames, n_frames

    if n_frames(len(y), fs.params) == 0:
        from sercap.audio import AudioError

        raise AudioError(f"{path}: shorter than one analysis window")
    frames = compute_frames(y, fs.params)
    table = compute_functionals(frames_table(["x"], [frames]), float(fs.params["hop_ms"]) / 1000)
    row = pl.from_arrow(table)
    assert isinstance(row, pl.DataFrame)
    return row.drop("utt_id").select(pl.lit(str(path)).alias("path"), pl.all())


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
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

    def __str__(self) -> str:
        from sercap.report import format_run, format_tuning_comparison

        text = format_run(self.record)
        if self.comparison is not None:
            text += "\n\n" + format_tuning_comparison([self.comparison])
        return text

    def _repr_markdown_(self) -> str:
        return f"```\n{self}\n```"


def get_run(wh: Warehouse, run_id: str) -> Run:
    """A stored run by id (a unique prefix is enough), with its predictions.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.get_run(wh, "nope")
    Traceback (most recent call last):
    ...
    sercap.errors.NotFoundError: no run 'nope'; list them with `sercap runs`
    >>> wh.close()
    """
    import json

    import polars as pl

    from sercap.errors import NotFoundError
    from sercap.evaluate import get_run as _get_run

    try:
        record = _get_run(wh, run_id)
    except NotFoundError:
        raise
    except SercapError as exc:
        if str(exc).startswith("no run "):
            raise NotFoundError(str(exc)) from None
        raise
    classes = list(record["classes"])
    matrix = json.loads(record["confusion_json"])
    confusion = pl.DataFrame(
        {"label": classes, **{c: [row[j] for row in matrix] for j, c in enumerate(classes)}}
    )
    predictions = wh.query(
        "SELECT utt_id, fold, label, predicted, proba FROM predictions WHERE run_id = ? "
        "ORDER BY utt_id",
        [record["run_id"]],
    )
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
    tuned: bool = False,
    speaker_norm: bool = False,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    progress: bool | None = None,
    say: Say | None = None,
) -> Run:
    """Cross-validate ``model`` speaker-independently under the corpus' protocol; store it.

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse with extracted features.
    model : str
        One of svm, rf, xgb, lgbm, trees, dnn, lstm, cnn, resnet18, resnet34.
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
    tuned : bool
        Fit each outer fold with its own study's parameters (see :func:`tune`), and also
        run the defaults on the same folds: the returned run is the tuned one, with
        ``run.comparison`` (UA difference and its paired bootstrap 95 % CI).
    speaker_norm : bool
        Standardise features per speaker.
    seed, jobs, device
        Random seed, threads for fitting, torch device.
    progress : bool, optional
        Progress bars (``None``: on a terminal only).
    say : callable, optional
        Receives one line describing the data before training (default: silent).

    Returns
    -------
    Run
        ``run.run_id``, ``run.ua``, ``run.confusion``, ``run.predictions``…; ``print(run)``
        shows what ``sercap train`` prints.

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
    >>> wh.close()
    """
    from sercap.experiment import compare_tuned, data_request, load_for, run_model

    say = say or _quiet
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
    kwargs = dict(
        params=dict(params or {}),
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(progress),
    )
    if tuned:
        comparison = compare_tuned(wh, model, data, **kwargs)
        run = get_run(wh, comparison.tuned.run_id)
        run.comparison = comparison
        return run
    return get_run(wh, run_model(wh, model, data, **kwargs).run_id)


# --------------------------------------------------------------------------- tune
@dataclass
class Study:
    """A nested tuning of one model on one dataset: a study per outer fold, and the final one.

    ``folds`` maps each outer fold to its Optuna study (tuned on that fold's training speakers
    only; ``train(..., tuned=True)`` scores the fold with it); ``final`` is the study over all
    speakers whose parameters ``predict`` uses (never scored), or None. ``best_params`` and
    ``best_value`` are the final study's (inner cross-validated UA); ``trials`` lists every
    study's trials as a polars DataFrame.
    """

    name: str
    model: str
    storage: str
    nested: Any = field(repr=False)

    @property
    def folds(self) -> dict[str, optuna.Study]:
        return dict(self.nested.folds)

    @property
    def final(self) -> optuna.Study | None:
        return self.nested.final

    @property
    def best_params(self) -> dict:
        """Parameters ``predict`` uses: the final study's choice (defaults kept unless beaten)."""
        from sercap.tuning import best_params

        if self.final is None:
            raise SercapError(f"study {self.name} has no final study; tune with final=True")
        return best_params(self.final)

    @property
    def best_value(self) -> float:
        from sercap.tuning import chosen_trial

        if self.final is None:
            raise SercapError(f"study {self.name} has no final study; tune with final=True")
        return float(chosen_trial(self.final).value)

    @property
    def trials(self) -> pl.DataFrame:
        import polars as pl

        rows = []
        studies = [(f"fold={f}", s) for f, s in sorted(self.folds.items())]
        studies += [("final", self.final)] if self.final is not None else []
        for which, study in studies:
            for t in study.get_trials(deepcopy=False):
                rows.append((which, t.number, t.state.name, t.value))
        return pl.DataFrame(
            rows,
            schema={
                "study": pl.String,
                "number": pl.Int64,
                "state": pl.String,
                "value": pl.Float64,
            },
            orient="row",
        )

    def plot(self, path: PathLike) -> Path:
        """Write the final study's history and parameter importances as one PNG."""
        from sercap.tuning import plot_study, summarise

        if self.final is None:
            raise SercapError(f"study {self.name} has no final study to plot")
        return plot_study(summarise(self.final), Path(path))

    def __str__(self) -> str:
        from sercap.report import format_nested

        return format_nested(self.nested)

    def _repr_markdown_(self) -> str:
        return f"```\n{self}\n```"


def _study_setup(
    wh: Warehouse,
    model: str,
    *,
    corpus: str | None,
    labels: str | None,
    feature_set: str | None,
    image_set: str | None,
    columns: str | None,
    speaker_norm: bool,
    storage: str | None,
    study: str | None,
) -> tuple[Any, str, Any, str]:
    """The dataset, base study name, Optuna storage and its printable label."""
    from sercap.experiment import data_request, load_for
    from sercap.tuning import open_storage, study_name

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
    name = study or study_name(model, data)
    backend = open_storage(storage, wh.root, name)
    label = storage or str(wh.root / "studies" / f"{name}.journal")
    return data, name, backend, label


def _database_file(wh: Warehouse) -> str | None:
    """The DuckDB file behind ``wh``, or None for an in-memory catalog."""
    return wh.scalar("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")


def load_study(
    wh: Warehouse,
    model: str,
    *,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
    storage: str | None = None,
    study: str | None = None,
) -> Study:
    """An existing nested tuning, without tuning (what ``sercap tune --show`` shows).

    Parameters are those of :func:`tune`; a study that does not exist yet raises
    :class:`~sercap.errors.SercapError`.
    """
    from sercap.tuning import nested_studies

    _, name, backend, label = _study_setup(
        wh,
        model,
        corpus=corpus,
        labels=labels,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        speaker_norm=speaker_norm,
        storage=storage,
        study=study,
    )
    return Study(name, model, label, nested_studies(backend, name))


def tune(
    wh: Warehouse,
    model: str,
    *,
    trials: int = 20,
    timeout: float | None = None,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
    storage: str | None = None,
    study: str | None = None,
    pruner: str = "median",
    inner_folds: int = 3,
    final: bool = True,
    folds: Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    progress: bool | None = None,
    say: Say | None = None,
) -> Study:
    """Nested tuning of ``model`` with Optuna: one study per outer fold, then a final one.

    The study of outer fold f scores trials by a speaker-grouped inner cross-validation over
    fold f's training speakers only; ``train(wh, model, tuned=True)`` then fits each outer
    fold with its own study's parameters and scores its test speakers (the only tuned
    figure sercap reports). The final study, over all speakers, gives the parameters
    ``predict`` uses and is never scored. Calling it again resumes every study. While trials
    run, the warehouse's write lock is released (other processes may use it) and ``wh`` is
    reopened afterwards, so the same ``wh`` object stays usable.

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse with extracted features.
    model : str
        Any model :func:`train` accepts.
    trials : int
        Trials to add to each study.
    timeout : float, optional
        Stop starting trials of a study after this many seconds.
    corpus, labels, feature_set, image_set, columns, speaker_norm
        The dataset, as for :func:`train`.
    storage : str, optional
        Optuna storage URL (``sqlite:///…``, ``postgresql+psycopg://…``) or a ``*.journal``
        file (default: a journal in the warehouse).
    study : str, optional
        Base study name (default: model, corpus, labels and feature set).
    pruner : str
        ``"median"`` (at inner folds), ``"hyperband"`` or ``"none"``.
    inner_folds : int
        Speaker-grouped inner folds of each trial.
    final : bool
        Also run the final all-speaker study (for ``predict``).
    folds : sequence of str, optional
        Tune only these outer folds (to share the work between processes).
    params : mapping, optional
        Parameters held fixed while tuning.
    seed, jobs, device, progress
        As for :func:`train`.
    say : callable, optional
        Receives one line naming the studies and their storage before tuning.

    Returns
    -------
    Study
        ``study.folds``, ``study.final``, ``study.best_params``, ``study.trials`` (polars).

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> study = sercap.tune(wh, "svm", trials=2)
    >>> sorted(study.folds), sorted(study.best_params)
    (['Ses01', 'Ses02'], ['C', 'gamma'])
    >>> run = sercap.train(wh, "svm", tuned=True)
    >>> sorted(run.fold_params), run.comparison is not None
    (['Ses01', 'Ses02'], True)
    >>> wh.close()
    """
    from sercap.tuning import PRUNERS, run_nested, store_nested
    from sercap.warehouse import connect as _connect

    if trials < 1:
        raise BadParameterError(f"trials={trials}", hint="ask for at least one trial")
    if inner_folds < 2:
        raise BadParameterError(f"inner_folds={inner_folds}", hint="use at least 2 inner folds")
    if pruner not in PRUNERS:
        raise BadParameterError(
            f"unknown pruner {pruner!r}", hint=f"choose one of: {', '.join(PRUNERS)}"
        )
    if wh.read_only:
        raise SercapError(
            f"{wh.root}: the warehouse is open read-only; tuning stores its parameters"
        )
    say = say or _quiet
    data, name, backend, label = _study_setup(
        wh,
        model,
        corpus=corpus,
        labels=labels,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        speaker_norm=speaker_norm,
        storage=storage,
        study=study,
    )
    database = _database_file(wh)
    if database:  # let other processes use the warehouse while trials run
        wh.close()
    n_folds = len(set(folds)) if folds else len(set(data.folds))
    say(
        f"study {name}: {len(data)} utterances, {n_folds} outer-fold studies"
        f"{' + final' if final else ''} × {trials} trials, {inner_folds} inner folds each, "
        f"storage {label}"
    )
    try:
        result = run_nested(
            model,
            data,
            backend,
            name,
            n_trials=trials,
            timeout=timeout,
            pruner=pruner,
            inner_folds=inner_folds,
            fixed=dict(params or {}),
            final=final,
            only_folds=list(folds) if folds else None,
            seed=seed,
            n_jobs=jobs,
            device=device,
            progress=_bars(progress),
        )
    finally:
        if database:  # the caller's wh works again, whatever happened
            wh.con = _connect(wh.root).con
    store_nested(wh, result, model, data, label)
    return Study(name, model, label, result)


# --------------------------------------------------------------------------- predict
def prediction_table(results: Sequence[Any], run_id: str) -> pl.DataFrame:
    """One row per file: run_id, path, emotion, a probability column per class, error."""
    import polars as pl

    classes = sorted({c for r in results for c in r.proba})
    rows = [
        {
            "run_id": run_id,
            "path": r.path,
            "emotion": r.label,
            **{c: r.proba.get(c) for c in classes},
            "error": r.error,
        }
        for r in results
    ]
    return pl.DataFrame(
        rows,
        schema={
            "run_id": pl.String,
            "path": pl.String,
            "emotion": pl.String,
            **{c: pl.Float64 for c in classes},
            "error": pl.String,
        },
    )


def predict(
    wh: Warehouse,
    paths: Sequence[PathLike] | PathLike,
    *,
    model: str | None = None,
    run: str | None = None,
    corpus: str | None = None,
    jobs: int = 1,
    progress: bool | None = None,
) -> pl.DataFrame:
    """Predict the emotion of audio files with a stored run's final model.

    The first prediction with a run trains its final model on all of the run's data and
    stores it in the warehouse; later ones load it. A file that cannot be read gets its
    reason in the ``error`` column and no probabilities; the others are still predicted.

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse (the final model is stored there).
    paths : path or sequence of paths
        Audio files (any sample rate or channel count).
    model : str, optional
        Use the best stored run of this model.
    run : str, optional
        Or this run (an id or unique prefix; an ensemble run works too).
    corpus : str, optional
        With ``model``: only runs on this corpus.
    jobs : int
        Threads for the final model's fitting.
    progress : bool, optional
        Progress bars (``None``: on a terminal only).

    Returns
    -------
    polars.DataFrame
        ``run_id``, ``path``, ``emotion``, one probability column per class, ``error``.

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> _ = sercap.train(wh, "svm")
    >>> wav = next(corpus.root.rglob("*.wav"))
    >>> table = sercap.predict(wh, [wav], model="svm")
    >>> table.height, table["error"][0] is None
    (1, True)
    >>> wh.close()
    """
    from sercap.prediction import best_run, predict_files

    if (run is None) == (model is None):
        raise BadParameterError(
            "give exactly one of run or model", hint="name a stored run id or a model"
        )
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    run_id = run or best_run(wh, model or "", corpus)
    run_id = get_run(wh, run_id).run_id
    results = predict_files(
        wh, run_id, [Path(p) for p in paths], n_jobs=jobs, progress=_bars(progress)
    )
    return prediction_table(results, run_id)


__all__ = [
    "Run",
    "Study",
    "connect",
    "extract",
    "features",
    "get_run",
    "ingest",
    "load_study",
    "predict",
    "prediction_table",
    "synth",
    "train",
    "tune",
]
