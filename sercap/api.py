"""The Python front door: the CLI's verbs as functions returning things a notebook can show.

``import sercap`` gives every function here (imported lazily, so ``import sercap`` stays
fast). Verbs whose CLI name is also a service module's name carry a longer name here, since
``sercap.<module>`` is that module once imported: ``sercap check`` is :func:`verify`,
``report`` :func:`write_report`, ``ensemble`` :func:`ensemble_runs`, ``demo``
:func:`run_demo`. Each is a thin wrapper over a service module; nothing prints unless asked,
and ``progress=None`` everywhere means "progress bars on a terminal only".

>>> import sercap
>>> wh = sercap.connect(":memory:")
>>> wh.query("SELECT count(*) AS n FROM corpora")["n"][0]
0
>>> wh.close()
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap._text import ShownAsText, Text
from sercap.errors import (
    BadParameterError,
    NotExtractedError,
    NotFoundError,
    QueryError,
    RefusedError,
    SercapError,
    option,
    printable,
)

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    import optuna
    import polars as pl
    from distributed import Client

    from sercap.corpora.ingest import IngestSummary
    from sercap.corpora.synthetic import SynthResult
    from sercap.features.extract import ExtractSummary
    from sercap.features.featureset import FeatureSet
    from sercap.store import Warehouse

PathLike = str | os.PathLike[str]
Say = Callable[[str], None]


def _bars(progress: bool | None) -> bool:
    """The one convention: ``None`` means bars only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


def _quiet(_: str) -> None:
    """The default ``say``: library calls print nothing unless asked."""


def _cluster(cluster: Any) -> Any:
    """The Dask cluster spec of ``cluster`` or ``$SERCAP_CLUSTER`` (None: in process); a
    ``dask.distributed.Client`` of the caller's is used as it is."""
    if hasattr(cluster, "submit"):
        return cluster
    from sercap.cluster import resolve_spec

    return resolve_spec(cluster)


#: Corpus formats :func:`ingest` reads.
INGEST_KINDS = ("iemocap", "emodb", "ravdess", "cremad", "tess", "manifest")


# --------------------------------------------------------------------------- warehouse
def _takes_warehouse(func: Callable[..., Any]) -> Callable[..., Any]:
    """A verb's first argument is an open warehouse: anything else (a path, a string) is one
    line naming the call, not an ``AttributeError`` from deep inside it. ``None`` passes
    where the verb takes it (``wh: Warehouse | None``)."""
    import functools

    optional = "None" in str(func.__annotations__.get("wh", ""))

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        from sercap.store import Warehouse

        wh = args[0] if args else kwargs.get("wh")
        if not isinstance(wh, Warehouse) and not (optional and wh is None):
            shown = repr(wh) if len(repr(wh)) <= 60 else repr(wh)[:57] + "..."
            raise BadParameterError(
                f"sercap.{func.__name__}: the first argument is an open warehouse "
                f"(wh = sercap.connect(PATH)), not {type(wh).__name__} {shown}"
            )
        return func(*args, **kwargs)

    return checked


def _listed(value: str | Sequence[str]) -> list[str]:
    """A name given where names are expected is one name, not a list of its letters; a
    comma-separated string is its names, as on the command line (``"emodb,iemocap"``).

    >>> _listed("svm"), _listed("emodb, iemocap"), _listed(("a", "b"))
    (['svm'], ['emodb', 'iemocap'], ['a', 'b'])
    """
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return list(value)


def _check_seed(seed: Any) -> None:
    """A seed is a whole number from 0 to 2**32 - 1 (numpy's integers too), as ``--seed``
    takes it; anything else is one line."""
    if not _is_whole(seed) or not 0 <= seed < 2**32:
        raise BadParameterError(
            f"seed={seed!r}", hint="give a whole number from 0 to 4294967295, e.g. seed=0"
        )


def _output_dir(wh: Warehouse, out_dir: PathLike | None, name: str) -> Path:
    """Where a report goes: ``out_dir``, or ``WAREHOUSE/reports/<name>``; a folder among the
    warehouse's own files (its parts, models, journals) is one line, never written into."""
    from sercap.format import refuse_inside

    if out_dir is None:
        return wh.root / "reports" / name
    if not str(out_dir).strip():  # Path("") is the current folder: two dozen files there
        raise BadParameterError("the output folder is empty", hint="name a folder, e.g. report/")
    refuse_inside(Path(out_dir), wh.root)
    return Path(out_dir)


def _is_whole(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_counts(minimum: int = 1, **values: Any) -> None:
    """Each of ``values`` (name → value) is None or a whole number of at least ``minimum``,
    as the command line's ``IntRange`` options are: ``jobs="2"`` or ``limit=2.5`` is one
    line naming the argument, not a ``TypeError`` from deep inside (or silently rounded)."""
    for name, value in values.items():
        if value is not None and (not _is_whole(value) or value < minimum):
            raise BadParameterError(
                f"{name}={value!r}", hint=f"give a whole number of at least {minimum}"
            )


def _check_params(params: Any) -> None:
    """``params`` is None or a mapping of parameter values (train and tune alike)."""
    if params is not None and not isinstance(params, Mapping):
        raise BadParameterError(
            f"params must be a dict of parameter values, got {type(params).__name__}",
            hint='e.g. params={"C": 10} (the CLI\'s --params takes JSON)',
        )


def _check_fraction(name: str, value: Any) -> None:
    """``value`` is None or a real number (a string is one line naming ``name``, not a
    ``TypeError`` at the first comparison); its range is checked where it is used."""
    import numbers

    if value is not None and (not isinstance(value, numbers.Real) or isinstance(value, bool)):
        raise BadParameterError(f"{name}={value!r}", hint="give a number, e.g. 0.5")


def _check_text(name: str, value: Any, example: str) -> None:
    """``value`` is None or a string."""
    if value is not None and not isinstance(value, str):
        raise BadParameterError(
            f"{name}={value!r}", hint=f"give {name} as a string, e.g. {name}={example!r}"
        )


def _require_writable(wh: Warehouse, why: str) -> None:
    """One line, before any work, when ``wh`` was opened read-only and ``why`` writes."""
    if wh.read_only:
        raise SercapError(
            f"{wh.root}: the warehouse is open read-only; {why}",
            hint="open it writable (sercap.connect without read_only=True)",
        )


def connect(
    path: PathLike | None = None,
    *,
    memory: bool = False,
    read_only: bool = False,
    wait_s: float = 60.0,
    absolute: bool = True,
    create: bool = True,
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
        Open an existing warehouse without changing its catalog or parts (several
        processes may). Verbs that write a report or a plot write it to the folder given,
        by default ``WAREHOUSE/reports/``, the warehouse's output folder.
    wait_s : float
        How long to wait while another process holds the write lock.
    absolute : bool
        Resolve a relative ``path`` now, so that the parts stay reachable after a notebook's
        ``os.chdir`` (the command line passes False: its messages show the path as typed).
    create : bool
        Create the warehouse where none exists yet. ``False`` raises
        :class:`~sercap.errors.NotFoundError` instead, so that a mistyped path does not
        leave a new, empty warehouse behind.

    Returns
    -------
    sercap.store.Warehouse
        ``wh.close()`` releases the lock. ``wh.query(sql)`` returns a polars DataFrame; it
        is the raw DuckDB connection, unchecked (a read-only one can still ``COPY`` to a
        file outside the catalog): :func:`sql` is the checked way to query, which reads
        only, and on a read-only warehouse reads no file but its parts.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> wh.query("SELECT count(*) AS n FROM utterances")["n"][0]
    0
    >>> wh.close()
    """
    from sercap.store import connect as _connect
    from sercap.store.warehouse import default_path

    if read_only and (memory or (path is not None and str(path) == ":memory:")):
        raise BadParameterError(  # DuckDB's CatalogException from deep inside
            "read_only=True with an in-memory catalog: it starts empty, there is nothing to read",
            hint="open a warehouse folder read-only, or leave read_only out",
        )
    if path is not None and str(path) != ":memory:":
        path = Path(path).expanduser()
    if absolute and path is None:
        path = default_path()
    if absolute and path is not None and str(path) != ":memory:":
        path = Path(path).absolute()  # parts stay reachable after a notebook's os.chdir
    if not create and not memory and str(path) != ":memory:":
        where = Path(path) if path is not None else default_path()
        if not warehouse_exists(where):
            raise NotFoundError(
                f"no warehouse at {where}",
                hint="check the path, or create one: sercap.connect(path) then sercap.ingest",
            )
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
    _check_counts(sessions=sessions, per_speaker=per_speaker)
    _check_seed(seed)
    from sercap.corpora.synthetic import generate

    if not 1 <= sessions <= 9 or per_speaker < 1:
        raise BadParameterError(
            f"synthetic corpus of {sessions} sessions × {per_speaker} utterances per speaker",
            hint="use 1 to 9 sessions and at least one utterance per speaker",
        )
    try:
        return generate(directory, sessions, per_speaker, seed, progress=progress)
    except OSError as exc:  # a file where a folder must go, a read-only or full disk
        where = f"{exc.filename}: " if exc.filename else ""
        raise SercapError(
            f"{where}{exc.strerror or exc}", hint="choose another directory for the corpus"
        ) from exc


@_takes_warehouse
def ingest(
    wh: Warehouse,
    kind: str,
    directory: PathLike,
    *,
    name: str | None = None,
    rehash: bool = False,
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
    rehash : bool
        Hash every audio file again, even those whose size and times are unchanged.
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
    _require_writable(wh, "ingest stores the corpus' tables")
    from sercap.check import damage_line
    from sercap.corpora.ingest import ingest as _ingest

    if line := damage_line(wh):  # ingest rewrites parts of changed audio: not damaged ones
        raise SercapError(f"{line} first")

    if kind not in INGEST_KINDS:
        raise BadParameterError(
            f"unknown corpus kind {kind!r}", hint=f"choose one of: {', '.join(INGEST_KINDS)}"
        )
    return _ingest(wh, kind, Path(directory), name=name, progress=progress, rehash=rehash)


# --------------------------------------------------------------------------- features
@_takes_warehouse
def extract(
    wh: Warehouse,
    feature_set: str | FeatureSet = "default",
    *,
    corpus: str | None = None,
    jobs: int = 1,
    chunk_size: int | None = None,
    retry_errors: bool = False,
    limit: int | None = None,
    cluster: str | Client | None = None,
    kind: str | None = None,
    progress: bool | None = None,
) -> ExtractSummary:
    """Compute descriptors and functionals (or images) of every utterance not yet stored.

    Incremental and resumable: a second call does nothing, an interrupted one resumes.

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse.
    feature_set : str or FeatureSet
        A built-in feature set (``"default"``, ``"pyin"``, ``"chroma"``, ``"compare2016"``,
        ``"egemaps02"``) or image set (``"mel"``), or one defined in code
        (``sercap.get_feature_set("default").with_params(name="hop20", hop_ms=20.0)``).
    corpus : str, optional
        Only this corpus (default: every ingested corpus).
    jobs : int
        Worker processes (one thread each).
    chunk_size : int, optional
        Utterances per Parquet part (default: at least 4 chunks per worker, at most 128).
    retry_errors : bool
        Try again the utterances that failed before.
    limit : int, optional
        At most this many utterances.
    cluster : str or dask.distributed.Client, optional
        Run the chunks on Dask instead of ``jobs`` processes: ``"local:N"`` or
        ``"tcp://HOST:PORT"`` (workers must see the audio and warehouse at the same paths).
    kind : str, optional
        Which kind of set ``feature_set`` must be (``"image"`` for :func:`images`).
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
    from sercap.features.extract import extract as _extract

    _check_counts(jobs=jobs, limit=limit, chunk_size=chunk_size)
    return _extract(
        wh,
        feature_set,
        corpus=corpus,
        jobs=jobs,
        chunk_size=chunk_size,
        retry_errors=retry_errors,
        limit=limit,
        progress=progress,
        kind=kind,
        cluster=_cluster(cluster),
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

    Raises
    ------
    sercap.errors.NotFoundError
        No such file.
    sercap.errors.AudioError
        Audio that extraction would refuse too (unreadable, empty, silent, too short,
        absurd amplitude, NaN samples), with the path and the reason.

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
    if not Path(path).exists():
        from sercap.errors import NotFoundError

        raise NotFoundError(f"{path}: no such audio file")
    from sercap.audio import AudioError, audio_problem
    from sercap.features.extract import min_audio_samples

    sr = int(fs.params["sample_rate"])
    try:  # the checks extraction makes: what it would refuse, this refuses too
        y = load_audio(path, sr)
        problem = audio_problem(y, sr, min_audio_samples(fs.kind, fs.params))
    except AudioError as exc:
        problem = exc.message
    if problem:
        raise AudioError(f"{path}: {problem}")
    if fs.kind == "opensmile":
        from sercap.features.opensmile import column_names, functionals

        values = np.asarray(functionals(y, fs.params), dtype=np.float32).ravel()
        row = pl.DataFrame([dict(zip(column_names(fs.params), values.tolist(), strict=True))])
        return row.select(pl.lit(str(path)).alias("path"), pl.all())
    from sercap.features.framing import frame_seconds
    from sercap.features.functionals import compute_functionals, frames_table
    from sercap.features.lld import compute_frames, n_frames

    if n_frames(len(y), fs.params) == 0:
        raise AudioError(f"{path}: shorter than one analysis window")
    frames = compute_frames(y, fs.params)
    table = compute_functionals(frames_table(["x"], [frames]), frame_seconds(fs.params)[0])
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


@dataclass
class RegressionRun:
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
def get_run(wh: Warehouse, run_id: str) -> Run:
    """A stored run by id (a unique prefix is enough), with its predictions.

    A regression run (``train(..., target=...)``) comes back as a :class:`RegressionRun`
    (``ccc``, ``pearson``, ``mae``, ``predictions``).

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (``sercap.connect(path)``).
    run_id : str
        The run's id, or a prefix that only it starts with.

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

    _check_text("run_id", run_id, "svm-20261127-101500-3fa2")
    record = _get_run(wh, run_id)  # NotFoundError for no such run
    if record.get("target"):  # a regression run (sql/008_regression.sql)
        return _regression_run(wh, record)  # type: ignore[return-value]
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


@_takes_warehouse
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
    target: str | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    cluster: str | Client | None = None,
    progress: bool | None = None,
    say: Say | None = None,
) -> Run:
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
    _check_params(params)
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
        run.left_out = left_out  # type: ignore[attr-defined]
        run.comparison = comparison  # type: ignore[attr-defined]
        return run
    from sercap.models.registry import get_model

    cls = get_model(model)
    if params:  # a wrong value is one line before any data is read
        cls(dict(params))
    if columns is not None and cls.input_kind == "text":
        raise BadParameterError(
            f"{option('columns')} does not apply to {model}: it reads transcripts, not "
            "feature columns"
        )
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
    if getattr(data, "left_out", 0):
        failed = "their extraction failed (the extractions table keeps each one's error)"
        why = {
            "text": "they have no transcript",
            "multimodal": f"they have no transcript, or {failed}",
        }.get(data.input_kind, failed)
        say(f"note: {data.left_out} labelled utterance(s) left out: {why}")
    kwargs = dict(
        params=dict(params or {}),
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(progress),
        cluster=spec,
    )
    if tuned:
        study = tuned if isinstance(tuned, str) else None
        comparison = compare_tuned(wh, model, data, study=study, **kwargs)
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
    root: Path | None = field(default=None, repr=False)

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

    def plot(self, path: PathLike | None = None) -> Path:
        """Write the final study's history and parameter importances as one PNG.

        The default path is ``WAREHOUSE/reports/tune-NAME.png`` (what ``sercap tune --show``
        writes). Returns the path written.
        """
        from sercap.tuning import plot_study, summarise

        if self.final is None:
            raise SercapError(f"study {self.name} has no final study to plot")
        if path is None:
            if self.root is None:
                raise BadParameterError("this study has no warehouse", hint="give a path")
            path = self.root / "reports" / f"tune-{self.name}.png"
        return plot_study(summarise(self.final), Path(path))

    def __str__(self) -> str:
        from sercap.format import format_nested

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
    target: str | None = None,
    show: bool = False,
    folds: list[str] | None = None,
) -> tuple[Any, str, Any, str]:
    """The dataset, base study name, Optuna storage and its printable label. With ``show``
    (reading an existing tuning) nothing is created, and without ``storage`` the one the
    tuning recorded is used."""
    from sercap.experiment import data_request, load_for
    from sercap.store.runs import study_storage
    from sercap.tuning import check_folds, open_storage, shown_url, storage_url, study_name

    if target is not None:  # a rating: the regressor's dataset (its label map names it)
        from sercap.regression import load_target_dataset

        data, _ = load_target_dataset(
            wh, model, target, corpus=corpus, label_map=labels, feature_set=feature_set,
            image_set=image_set, columns=columns, speaker_norm=speaker_norm,
        )  # fmt: skip
    else:
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
    check_folds(data, folds)  # before any journal exists
    if study is not None and (not study or any(c in study for c in "/\\\0") or ".." in study):
        raise BadParameterError(  # it names files: the journal, the plots
            f"study name {study!r}: a name, not a path",
            hint="use letters, digits, '-', '_' and '.', without '/' or '..'",
        )
    name = study or study_name(model, data)
    if show and storage is None and (recorded := study_storage(wh, name)):
        if shown_url(recorded) != recorded or "***" in recorded:  # a masked password
            raise NotFoundError(
                f"study {name!r} is stored in {recorded}",
                hint=f"give its full URL with {option('storage')}",
            )
        storage = recorded
    backend = open_storage(storage, wh.root, name, create=not show)
    opened = storage_url(storage)  # as opened: a relative file made absolute
    label = shown_url(opened) if opened else str(wh.root / "studies" / f"{name}.journal")
    return data, name, backend, label


def _database_file(wh: Warehouse) -> str | None:
    """The DuckDB file behind ``wh``, or None for an in-memory catalog."""
    return wh.scalar("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")


@_takes_warehouse
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
    target: str | None = None,
) -> Study:
    """An existing nested tuning, without tuning (what ``sercap tune --show`` shows).

    Parameters
    ----------
    wh : Warehouse
        An open warehouse.
    model, corpus, labels, feature_set, image_set, columns, speaker_norm, storage, study, \
target
        As for :func:`tune`: they name the studies to read.

    Returns
    -------
    Study
        The outer-fold studies and the final one, as :func:`tune` returns them.

    Raises
    ------
    sercap.errors.SercapError
        When no such study exists yet (tune first).

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(tempfile.mkdtemp())
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> tuned = sercap.tune(wh, "svm", trials=2, final=False)
    >>> sercap.load_study(wh, "svm").name == tuned.name
    True
    >>> wh.close()
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
        target=target,
        show=True,
    )
    return Study(name, model, label, nested_studies(backend, name), wh.root)


@_takes_warehouse
def tune(
    wh: Warehouse,
    model: str,
    *,
    trials: int = 20,
    top_up: bool = False,
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
    final: bool | None = None,
    folds: Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
    target: str | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    cluster: str | Client | None = None,
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
    top_up : bool
        Count the trials the studies already have: each study ends with ``trials``
        finished (completed or pruned) trials in all. Use it to finish an interrupted
        tuning with the same budget for every fold, or to let several processes or machines
        share one budget (each stops once a study has them) instead of each adding
        ``trials``.
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
    final : bool, optional
        Also run the final all-speaker study (for ``predict``). Default: yes, unless
        ``folds`` names some (processes sharing the folds would each add trials to it).
    folds : sequence of str, optional
        Tune only these outer folds (to share the work between processes).
    params : mapping, optional
        Parameters held fixed while tuning.
    target : str, optional
        Tune the model's regressor of this rating (``"valence"``, ``"activation"``,
        ``"dominance"``): the studies maximise the inner cross-validated CCC, and
        ``train(wh, model, target=..., tuned=True)`` uses them.
    seed, jobs, device, cluster, progress
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
    _check_counts(trials=trials, jobs=jobs)
    _check_counts(minimum=2, inner_folds=inner_folds)
    from sercap.store import connect as _connect
    from sercap.tuning import PRUNERS, run_nested, store_nested, study_line

    spec = _cluster(cluster)
    if spec is not None and storage is not None and storage.startswith("sqlite"):
        raise BadParameterError(
            f"{option('storage')} {storage} with {option('cluster')}: SQLite ignores the row "
            "locks Optuna takes, so two workers run the same queued trial and Optuna then "
            "fails",
            hint="use the default journal file, or a PostgreSQL URL",
        )
    if trials < 1:
        raise BadParameterError(f"{option('trials')} {trials}", hint="ask for at least one trial")
    if inner_folds < 2:
        raise BadParameterError(
            f"{option('inner_folds')} {inner_folds}", hint="use at least 2 inner folds"
        )
    if timeout is not None and not timeout > 0:
        raise BadParameterError(
            f"{option('timeout')} {timeout}",
            hint="give a positive number of seconds, or none for no limit",
        )
    if pruner not in PRUNERS:
        raise BadParameterError(
            f"unknown pruner {pruner!r}", hint=f"choose one of: {', '.join(PRUNERS)}"
        )
    _check_seed(seed)
    _check_params(params)
    _require_writable(wh, "tuning stores its parameters")
    folds = _listed(folds) if folds else None  # "Ses01" is one fold, not five letters
    if final is None:  # `--fold F` tunes that fold's study; the final one when asked
        final = not folds
    if target is not None:  # fixed parameters are checked before any study exists
        from sercap.models.regressors import get_regressor

        get_regressor(model)(dict(params or {}))
    else:
        from sercap.models.registry import get_model

        get_model(model)(dict(params or {}))
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
        target=target,
        folds=folds,
    )
    database = _database_file(wh)
    if database:  # let other processes use the warehouse while trials run
        wh.close()
    n_folds = len(set(folds)) if folds else len(set(data.folds))
    say(
        f"study {name}: {len(data)} utterances, {n_folds} outer-fold studies"
        f"{' + final' if final else ''} × {trials} trials{' in all' if top_up else ''}, "
        f"{_inner_folds_used(data, inner_folds)}, storage {label}"
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
            only_folds=folds,
            seed=seed,
            n_jobs=jobs,
            device=device,
            progress=_bars(progress),
            cluster=spec,
            top_up=top_up,
            on_study=lambda each, done: say(f"  {study_line(each.removeprefix(name + '/'), done)}"),
        )
    except Exception as exc:
        from sercap.tuning import storage_failure

        lost = storage_failure(exc)
        if lost is None:
            raise
        raise SercapError(
            f"study storage {label} stopped answering ({lost}); the trials it stored are kept",
            hint=f"run the same tuning again once it is back (with {option('top_up')} True for "
            "the same budget)",
        ) from exc
    finally:
        if database:  # the caller's wh works again, whatever happened
            wh.con = _connect(wh.root).con
    store_nested(wh, result, model, data, label)
    return Study(name, model, label, result, wh.root)


# --------------------------------------------------------------------------- predict
def prediction_table(results: Sequence[Any], run_id: str) -> pl.DataFrame:
    """One row per file: run_id, path, emotion, a probability column per class, error."""
    import polars as pl

    classes = sorted({c for r in results for c in r.proba})
    rows = [
        {
            "run_id": run_id,
            "path": printable(str(r.path)),
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


@_takes_warehouse
def predict(
    wh: Warehouse,
    paths: Sequence[PathLike] | PathLike,
    *,
    model: str | None = None,
    run: str | None = None,
    corpus: str | None = None,
    jobs: int = 1,
    progress: bool | None = None,
    abstain: float | None = None,
    coverage: float | None = None,
    texts: Mapping[PathLike, str] | PathLike | None = None,
    say: Say | None = None,
) -> pl.DataFrame:
    """Predict the emotion of audio files with a stored run's final model (or, with a
    regression run, their rating).

    The first prediction with a run trains its final model on all of the run's data and
    stores it in the warehouse; later ones load it. A file that cannot be read gets its
    reason in the ``error`` column and no probabilities; the others are still predicted.

    A run whose model reads text (``text-lr``, ``text-svm``, a fusion model, an ensemble
    with such a member) predicts each file from its transcript in ``texts``; files without
    one are predicted by the newest audio-only run of the same corpus and label map, and
    ``say`` gets a one-line note naming it (the ``run_id`` column says which run predicted
    each file). An audio run ignores ``texts``, with a note.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse. A final model trained by this call is stored there; on a
        read-only one it is used for the call and not kept (:func:`models_to_fit` says
        beforehand whether any will be trained).
    paths : path or sequence of paths
        Audio files (any sample rate or channel count; ``say`` hears a note for a file
        recorded below the features' 16 kHz or shorter than every training utterance).
    model : str, optional
        Use the newest stored run of this model (chosen by time, never by score).
    run : str, optional
        Or this run (an id or unique prefix; an ensemble run works too).
    corpus : str, optional
        With ``model``: only runs on this corpus.
    jobs : int
        Threads for the final model's fitting.
    progress : bool, optional
        Progress bars (``None``: on a terminal only).
    abstain : float, optional
        Abstain below this confidence (the top probability, 0–1): such a file's ``emotion``
        is null and ``abstained`` is true (its probabilities are kept).
    coverage : float, optional
        Or abstain below the confidence that kept this share (0–1] of the run's stored
        out-of-fold predictions (e.g. 0.8: the threshold that set aside its least confident
        20 %).
    texts : mapping or path, optional
        The words of each file: ``{path: transcript}``, or the path of a UTF-8 CSV with the
        columns ``path,text``. Paths are matched after resolving them; a transcript for a
        file not in ``paths``, or two for one file, is an error. Blank ones count as none.
    say : callable, optional
        Receives the one-line notes (fallback run, ignored transcripts; default: silent).

    Returns
    -------
    polars.DataFrame
        ``run_id`` (the run that predicted the file), ``path``, ``emotion``, one
        probability column per class, ``confidence`` (the top probability), ``error``; with
        ``abstain`` or ``coverage`` also ``abstained``.

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
    >>> sure = sercap.predict(wh, [wav], model="svm", abstain=1.0)  # nothing is that sure
    >>> sure["emotion"][0] is None, sure["abstained"][0]
    (True, True)

    A text model predicts from the words; a file without words falls back to an audio run:

    >>> words = sercap.train(wh, "text-lr")
    >>> other = sorted(corpus.root.rglob("*.wav"))[1]
    >>> notes = []
    >>> table = sercap.predict(wh, [wav, other], run=words.run_id,
    ...                        texts={wav: "I am so happy, this is wonderful!"}, say=notes.append)
    >>> "no transcript for 1 of 2 files" in notes[0], "(svm), the newest audio-only" in notes[0]
    (True, True)
    >>> table["run_id"].to_list() == [words.run_id, sercap.runs(wh, model="svm")["run_id"][0]]
    True
    >>> wh.close()
    """
    _check_counts(jobs=jobs)
    import polars as pl

    from sercap.predict_text import predict_with_texts

    paths, record = _prediction_run(wh, paths, run, model, corpus, say)
    run_id = record.run_id
    if isinstance(record, RegressionRun):
        _refuse_class_options(
            record,
            {"abstain": abstain is not None, "coverage": coverage is not None,
             "text/texts": texts is not None},
        )  # fmt: skip
        _refuse_unopenable(paths)
        return _predict_ratings(wh, record, paths, jobs=jobs, progress=progress)
    _refuse_unopenable(paths, texts)
    threshold = _abstain_threshold(wh, run_id, abstain, coverage)
    results, used = predict_with_texts(
        wh, run_id, paths, texts, n_jobs=jobs, progress=_bars(progress), say=say or _quiet
    )
    table = prediction_table(results, run_id).with_columns(run_id=pl.Series(used, dtype=pl.String))
    return with_confidence(table, threshold)


def _refuse_class_options(run: RegressionRun, refused: Mapping[str, bool]) -> None:
    """One line naming the options given that only make sense for emotion classes."""
    if given := [name for name, on in refused.items() if on]:
        raise BadParameterError(
            f"run {run.run_id} predicts {run.record['target']} ratings; "
            f"{' and '.join(map(option, given))} {'is' if len(given) == 1 else 'are'} for "
            "emotion classes only",
            hint="leave them out for a rating",
        )


def _refuse_unopenable(paths: Sequence[Path], texts: Any = None) -> None:
    """Stop before a final model is trained when not one of ``paths`` can be opened (a
    typo'd folder, a glob that matched nothing): training then predicting nothing cost
    minutes and stored a model nobody asked for. Some openable files go on as documented:
    the others get their reason in the ``error`` column. With ``texts`` nothing is refused:
    a text run predicts from the words a file it cannot open."""
    from sercap.audio import file_problem

    if texts is not None:
        return

    problems = [(p, file_problem(p)) for p in paths]
    if any(why is None for _p, why in problems):
        return
    if len(problems) == 1:
        path, why = problems[0]
        raise NotFoundError(f"{printable(str(path))}: {why}; nothing predicted")
    listed = "; ".join(f"{printable(str(p))}: {why}" for p, why in problems[:3])
    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    raise NotFoundError(
        f"none of the {len(problems)} files can be opened ({listed}{more}); nothing predicted"
    )


def _prediction_run(
    wh: Warehouse,
    paths: Sequence[PathLike] | PathLike,
    run: str | None,
    model: str | None,
    corpus: str | None,
    say: Say | None = None,
) -> tuple[list[Path], Any]:
    """The files as a list of paths and the stored run that predicts them (:func:`predict`
    and :func:`models_to_fit` take the same arguments)."""
    from sercap.prediction import newest_run

    if (run is None) == (model is None):
        raise BadParameterError(
            "give exactly one of run or model", hint="name a stored run id or a model"
        )
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    given = paths
    paths = list(paths) if isinstance(paths, Iterable) else []
    if not paths or not all(isinstance(p, str | os.PathLike) for p in paths):
        raise BadParameterError(
            f"paths={given!r}", hint="give an audio file's path or a list of paths"
        )
    from sercap.prediction import refuse_speaker_normalised

    record = get_run(wh, run or newest_run(wh, model or "", corpus, say=say))
    refuse_speaker_normalised(record.record)  # models_to_fit listed it; the CLI opened writable
    return [Path(p) for p in paths], record


@_takes_warehouse
def models_to_fit(
    wh: Warehouse,
    paths: Sequence[PathLike] | PathLike,
    *,
    model: str | None = None,
    run: str | None = None,
    corpus: str | None = None,
    texts: Mapping[PathLike, str] | PathLike | None = None,
) -> list[str]:
    """The runs whose final models :func:`predict` would train before predicting.

    :func:`predict` with the same arguments loads a stored final model for every other
    run it uses; with none left to train it changes nothing in the warehouse, so a
    read-only connection does the same work. (``sercap predict`` opens the warehouse
    read-only when this is empty.)

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough).
    paths, model, run, corpus, texts
        As for :func:`predict`.

    Returns
    -------
    list of str
        Run ids: the run itself, an ensemble's members, or the audio run that files
        without transcripts fall back to, for each whose final model is not stored whole
        (never fitted, or damaged).

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> svm = sercap.train(wh, "svm")
    >>> wav = next(corpus.root.rglob("*.wav"))
    >>> sercap.models_to_fit(wh, [wav], model="svm") == [svm.run_id]
    True
    >>> _ = sercap.predict(wh, [wav], model="svm")  # trains and stores the final model
    >>> sercap.models_to_fit(wh, [wav], model="svm")
    []
    >>> wh.close()
    """
    from sercap.predict_text import runs_to_fit
    from sercap.prediction import final_model_stored

    paths, record = _prediction_run(wh, paths, run, model, corpus)
    try:
        _refuse_unopenable(paths, texts)
    except NotFoundError:
        return []  # predict refuses them before it trains anything
    if isinstance(record, RegressionRun):
        return [] if final_model_stored(wh, record.run_id) else [record.run_id]
    return runs_to_fit(wh, record.run_id, paths, texts)


def _inner_folds_used(data: Any, inner_folds: int) -> str:
    """``"3 inner folds each"``, or what the outer folds with fewer training speakers get
    (the inner split deals speakers, so it cannot have more folds than speakers)."""
    import numpy as np

    speakers, outer = np.asarray(data.speakers), np.asarray(data.folds)
    fewest = min(
        (len(np.unique(speakers[outer != fold])) for fold in np.unique(outer)),
        default=inner_folds,
    )
    if fewest >= inner_folds:
        return f"{inner_folds} inner folds each"
    return f"{inner_folds} inner folds each ({fewest} where a fold has {fewest} training speakers)"


def _predict_ratings(
    wh: Warehouse,
    run: RegressionRun,
    paths: list[Path],
    *,
    jobs: int,
    progress: bool | None,
) -> pl.DataFrame:
    """:func:`predict` with a regression run: ``run_id``, ``path``, the rating, ``error``."""
    import polars as pl

    from sercap.prediction import predict_files

    results = predict_files(wh, run.run_id, paths, n_jobs=jobs, progress=_bars(progress))
    return pl.DataFrame(
        {
            "run_id": [run.run_id] * len(results),
            "path": [printable(str(r.path)) for r in results],
            str(run.record["target"]): [r.value for r in results],
            "error": [r.error for r in results],
        },
        schema={
            "run_id": pl.String, "path": pl.String, str(run.record["target"]): pl.Float64,
            "error": pl.String,
        },
    )  # fmt: skip


def _abstain_threshold(
    wh: Warehouse, run_id: str, abstain: float | None, coverage: float | None
) -> float | None:
    """The confidence below which ``predict`` abstains (None: never)."""
    _check_fraction("abstain", abstain)
    _check_fraction("coverage", coverage)
    if abstain is not None and coverage is not None:
        raise BadParameterError(
            f"give {option('abstain')} (a confidence) or {option('coverage')} (a share), not both",
            hint="e.g. abstain 0.5 or coverage 0.8",
        )
    if coverage is not None:
        from sercap.analysis_store import abstain_threshold

        if not 0.0 < coverage <= 1.0:
            raise BadParameterError(
                f"{option('coverage')} {coverage}: give the share of files to keep, in (0, 1]"
            )
        return abstain_threshold(wh, run_id, coverage)
    if abstain is not None and not 0.0 <= abstain <= 1.0:
        raise BadParameterError(f"{option('abstain')} {abstain}: give a confidence between 0 and 1")
    return abstain


def with_confidence(table: pl.DataFrame, threshold: float | None = None) -> pl.DataFrame:
    """Add ``confidence`` (the top probability) after the probabilities; with a
    ``threshold``, null the emotion of files below it and add ``abstained``.

    Examples
    --------
    >>> import polars as pl
    >>> t = pl.DataFrame({"run_id": ["r", "r", "r"], "path": ["a", "b", "c"],
    ...                   "emotion": ["ang", "neu", None], "ang": [0.9, 0.45, None],
    ...                   "neu": [0.1, 0.55, None], "error": [None, None, "not found"]})
    >>> with_confidence(t, 0.6).select("emotion", "confidence", "abstained").rows()
    [('ang', 0.9, False), (None, 0.55, True), (None, None, False)]
    """
    import polars as pl

    fixed = {"run_id", "path", "emotion", "error"}
    classes = [c for c in table.columns if c not in fixed]
    confidence = pl.max_horizontal(classes) if classes else pl.lit(None, dtype=pl.Float64)
    out = table.with_columns(confidence.cast(pl.Float64).alias("confidence"))
    out = out.select("run_id", "path", "emotion", *classes, "confidence", "error")
    if threshold is None:
        return out
    below = pl.col("confidence").is_not_null() & (pl.col("confidence") < threshold)
    return out.with_columns(
        pl.when(below).then(None).otherwise(pl.col("emotion")).alias("emotion"),
        below.alias("abstained"),  # a file that could not be read did not abstain: see error
    )


# --------------------------------------------------------------------------- the warehouse
def warehouse_exists(path: PathLike) -> bool:
    """Whether a warehouse has been created at ``path`` (its DuckDB file exists).

    Examples
    --------
    >>> import tempfile, sercap
    >>> sercap.warehouse_exists(tempfile.mkdtemp())
    False
    """
    from sercap.store import DB_FILENAME

    return (Path(path).expanduser() / DB_FILENAME).exists()


@_takes_warehouse
def stale_audio(wh: Warehouse) -> str | None:
    """One line about stored features of audio whose file has changed since, or None.

    One ``stat`` per audio file (a file is hashed only when its stat moved); what ``check``
    reports, ``extract`` and ``sql`` warn about, and every reader of a dataset refuses.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.stale_audio(wh) is None
    True
    >>> wh.close()
    """
    from sercap.check import stale_audio_line

    return stale_audio_line(wh)


@_takes_warehouse
def damage(wh: Warehouse) -> str | None:
    """One line about registered parts found missing or damaged at open, or None.

    Such parts are left out of the views; :func:`repair` unregisters them.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (``sercap.connect(path)``).

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.damage(wh) is None
    True
    >>> wh.close()
    """
    from sercap.check import damage_line

    return damage_line(wh)


def use_numba_cache(cache_dir: PathLike | None = None) -> Path:
    """Keep numba's compiled librosa kernels between runs (a set ``NUMBA_CACHE_DIR`` wins).

    Parameters
    ----------
    cache_dir : path, optional
        Folder used when ``NUMBA_CACHE_DIR`` is unset (default ``~/.cache/sercap/numba``).

    Returns
    -------
    pathlib.Path
        The folder numba will use.

    Examples
    --------
    >>> import os, sercap
    >>> from pathlib import Path
    >>> sercap.use_numba_cache() == Path(os.environ["NUMBA_CACHE_DIR"]).expanduser()
    True
    """
    from sercap.numba_cache import use_cache_dir

    return use_cache_dir(cache_dir)


def sql_statements(query: str, *, write: bool = False) -> list[str]:
    """Split ``query`` into statements with DuckDB's parser, refusing writes unless ``write``.

    Nothing runs: a refused statement stops all of them (see :func:`sql`).

    Examples
    --------
    >>> import sercap
    >>> sercap.sql_statements("SELECT 1; SELECT 2;")
    ['SELECT 1', 'SELECT 2']
    """
    return [_text(statement) for statement in _classified(query, write)]


def _classified(query: str, write: bool) -> list[Any]:
    """``query``'s statements as :func:`sercap.sqlguard.classify` parses them (text, kind),
    writes refused unless ``write``: :func:`sql_statements` and :func:`iter_sql` share it."""
    import duckdb

    from sercap.sqlguard import classify, refuse_writes

    try:
        statements = classify(query)  # DuckDB's parser; nothing runs before the check
    except duckdb.ParserException as exc:
        raise _query_error(exc) from exc
    if not statements:
        raise BadParameterError("the query holds no SQL statement")
    if not write:
        refuse_writes(statements)
    return statements


def _text(statement: Any) -> str:
    """A statement's text without its separator (the parser keeps it on all but the last)."""
    return statement.text.strip().rstrip(";").rstrip()


@_takes_warehouse
def sql(
    wh: Warehouse, query: str | Sequence[str], *, write: bool = False
) -> list[tuple[str, pl.DataFrame]]:
    """Run SQL on the warehouse: every statement, in order, with its result.

    Without ``write`` only reading statements run (anything else is refused before any
    statement runs); on a warehouse opened with ``read_only=True`` (as the CLI's ``sql``
    opens it) no file but its Parquet parts can be read either. With ``write``, several
    statements run as one transaction: all of them are applied, or (one fails) none; a
    query holding its own ``BEGIN``/``COMMIT``, or a ``CHECKPOINT``, runs as written. The
    statements have all run when this returns; :func:`iter_sql` yields each result as its
    statement finishes instead.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough unless ``write``).
    query : str or list of str
        One or more statements separated by ``;`` (or :func:`sql_statements`' list).
    write : bool
        Allow statements that change the warehouse (DELETE, UPDATE, CREATE…).

    Returns
    -------
    list of (str, polars.DataFrame)
        Each statement and its result, in order.

    Raises
    ------
    sercap.errors.RefusedError
        Without ``write``: a statement that is not a read (nothing runs), or one that tried
        to reach a file or setting outside the fence.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> [(text, frame["n"][0]) for text, frame in sercap.sql(wh, "SELECT 42 AS n")]
    [('SELECT 42 AS n', 42)]
    >>> _ = sercap.sql(wh, "CREATE TABLE notes (x INT); INSERT INTO notes VALUES (7)", write=True)
    >>> sercap.sql(wh, "SELECT x FROM notes")[0][1]["x"].to_list()
    [7]
    >>> wh.close()
    """
    return list(iter_sql(wh, query, write=write))


@_takes_warehouse
def iter_sql(
    wh: Warehouse, query: str | Sequence[str], *, write: bool = False
) -> Iterator[tuple[str, pl.DataFrame]]:
    """:func:`sql`, yielding ``(statement, result)`` as each statement runs.

    The read-only check and the file fence are applied when this is called, before the
    first statement runs; each statement runs when the iterator reaches it.
    """
    # each item of a list as a query string: split, parsed and checked the same way (an
    # item with two statements kept only the last result, a typo was DuckDB's own error)
    if not isinstance(query, str) and not (
        isinstance(query, Sequence) and all(isinstance(item, str) for item in query)
    ):
        raise BadParameterError(
            f"query={query!r}", hint='give SQL text or a list of them, e.g. "SELECT 1"'
        )
    items = [query] if isinstance(query, str) else list(query)
    statements = [s for item in items for s in _classified(item, write)]
    texts = [_text(s) for s in statements]
    if write and wh.read_only:
        raise RefusedError(
            "the warehouse is open read-only, so writing SQL cannot run",
            hint="open it writable (sercap.connect without read_only=True)",
        )
    if not write and wh.read_only:
        _fence(wh)
    if write and len(texts) > 1 and not _controls_transactions(statements):
        return _run_atomically(wh, texts)
    return _run_statements(wh, texts)


def _controls_transactions(statements: Sequence[Any]) -> bool:
    """Whether any statement is BEGIN, COMMIT, ROLLBACK… (the user's own transactions), or
    a CHECKPOINT, which DuckDB refuses inside a transaction that has changed anything."""
    import re

    checkpoint = re.compile(r"\s*(FORCE\s+)?CHECKPOINT\b", re.I)
    return any(s.kind == "TRANSACTION" or checkpoint.match(s.text) for s in statements)


def _run_atomically(wh: Warehouse, texts: list[str]) -> Iterator[tuple[str, pl.DataFrame]]:
    """:func:`_run_statements` in one transaction: a failing statement rolls back those
    before it, which autocommit had kept (a user fixing the typo in the third statement ran
    the first two twice). Every statement runs, and the transaction commits, before the
    first result is handed over: a caller that stops early leaves no transaction open."""
    done = f"none of the {len(texts)} statements was applied (they run as one transaction)"
    wh.execute("BEGIN TRANSACTION")
    try:
        results = list(_run_statements(wh, texts))
    except SercapError as exc:
        wh.execute("ROLLBACK")
        raise type(exc)(exc.message, hint="; ".join(filter(None, (done, exc.hint)))) from exc
    except BaseException:
        with contextlib.suppress(Exception):
            wh.execute("ROLLBACK")
        raise
    _commit(wh, done)
    yield from results


def _commit(wh: Warehouse, done: str) -> None:
    """COMMIT, or one line (``done`` as its hint) when DuckDB finds a conflict at commit."""
    try:
        wh.execute("COMMIT")
    except Exception as exc:
        with contextlib.suppress(Exception):
            wh.execute("ROLLBACK")
        raise QueryError((str(exc).strip().splitlines() or [""])[0], hint=done) from exc


def _fence(wh: Warehouse) -> None:
    """Second fence of a read-only warehouse: no file but its parts, configuration locked.

    DuckDB's lock holds for the connection's life, so it is set once; a later call finds it
    in place, unless parts were registered since (then the connection must be reopened).
    A writable connection is not fenced: its owner can run anything through it anyway, and
    the lock would break their later work (extraction registers new parts).
    """
    from sercap.sqlguard import fence_settings
    from sercap.store.parts import all_part_paths

    parts = all_part_paths(wh)
    files = sorted({str(f) for p in parts for f in (os.path.abspath(p), os.path.realpath(p))})
    if wh.sql_fence is None:
        for setting in fence_settings(files):
            wh.execute(setting)
        wh.sql_fence = files
    elif wh.sql_fence != files:
        raise RefusedError(
            "the warehouse's parts changed since this read-only connection was fenced",
            hint="open the warehouse again (sercap.connect(..., read_only=True)) to query them",
        )


def _run_statements(wh: Warehouse, texts: list[str]) -> Iterator[tuple[str, pl.DataFrame]]:
    """Each statement's result; columns polars cannot hold (INTERVAL, UNION) as text."""
    import duckdb

    for text in texts:
        try:
            frame = wh.query(text, text_types=True)
        except duckdb.PermissionException as exc:
            raise RefusedError(
                str(exc).splitlines()[0],
                hint="read-only SQL reads only the warehouse's own tables and parts",
            ) from exc
        except duckdb.Error as exc:  # a typo, an unknown table or column, a bad cast…
            raise _query_error(exc) from exc
        yield text, frame


def _query_error(exc: Exception) -> QueryError:
    """DuckDB's first line, and what to look at for the usual mistakes."""
    lines = str(exc).strip().splitlines() or [""]
    line = lines[0]
    hint = None
    if line.startswith("Catalog Error"):  # an unknown table, view or function
        hint = 'list the tables and views with "SHOW TABLES"'
    elif line.startswith("Binder Error"):  # an unknown column, mostly
        hint = 'list a table\'s columns with "DESCRIBE table_name"'
    # DuckDB's own suggestion is the best hint when it has one (it was dropped)
    suggestion = next(
        (x.strip() for x in lines[1:] if x.startswith(("Did you mean", "Candidate bindings"))),
        None,
    )
    if suggestion:
        hint = f"{suggestion[0].lower()}{suggestion[1:]}" + (f"; or {hint}" if hint else "")
    return QueryError(line, hint=hint)


@_takes_warehouse
def info(wh: Warehouse) -> str:
    """What the warehouse holds: corpora, labels per speaker, feature sets, latest runs.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (``sercap.connect(path)``).

    Returns
    -------
    str
        The text ``sercap info`` prints.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.info(wh).splitlines()[-1]
    'no corpus yet: run `sercap ingest KIND DIR` (or `sercap demo`)'
    >>> wh.close()
    """
    from sercap.report import warehouse_summary

    return Text(warehouse_summary(wh))


@dataclass
class CheckResult(ShownAsText):
    """What :func:`verify` found: ``problems`` (each with ``line()``), ``parts`` verified and
    ``leftovers``: files in the part folders that no part row names, and folders of final
    models the catalog does not record (left by an interrupted run; harmless: the next
    extraction of their set, or the next prediction with their run, removes them)."""

    problems: list[Any]
    parts: int
    leftovers: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        """What ``sercap check`` prints: each problem's line, or that all is well."""
        lines = [p.line() for p in self.problems] or [f"no problems: {self.parts} part(s) verified"]
        if self.leftovers:
            lines.append(
                f"note: {len(self.leftovers)} file(s) or folder(s) left by interrupted runs "
                f"are not registered ({self.leftovers[0]}); the next extraction of their set, "
                "or prediction with their run, removes them"
            )
        return "\n".join(lines)


@_takes_warehouse
def verify(wh: Warehouse) -> CheckResult:
    """Verify the warehouse's Parquet parts and catalog, like ``git fsck``.

    Every registered part must exist, have its recorded size and SHA-256, read as Parquet
    and hold the rows recorded; every stored utterance must point at a registered part that
    holds it, no utterance may be stored twice in a feature set, every part must belong to
    a set with a ``feature_sets`` row and hold only utterances the ``utterances`` table
    lists, every catalog table must read to its end, and the audio behind each stored
    utterance must still hold the bytes ingest hashed.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (``sercap.connect(path)``).

    Returns
    -------
    CheckResult
        ``problems`` (each with ``line()``, and whether :func:`repair` can fix it), the
        ``parts`` verified and the ``leftovers`` of interrupted runs; true when no problem.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> result = sercap.verify(wh)
    >>> result.problems, result.parts
    ([], 0)
    >>> wh.close()
    """
    from sercap.check import check as _check

    problems = _check(wh)
    from sercap.store.layout import relative
    from sercap.store.parts import all_part_paths, unregistered_files
    from sercap.store.runs import unrecorded_artifacts

    leftovers = [relative(wh.root, p) for p in [*unregistered_files(wh), *unrecorded_artifacts(wh)]]
    return CheckResult(problems, len(all_part_paths(wh)), leftovers)


@_takes_warehouse
def repair(wh: Warehouse, problems: Sequence[Any] | CheckResult | None = None) -> Any:
    """Unregister broken parts and forget the utterances they held (a writable ``wh``).

    ``problems`` are what :func:`verify` found (default: verify now). The next
    :func:`extract` / :func:`images` recomputes exactly those utterances. Returns a summary
    whose ``lines()`` say what changed.

    Parameters
    ----------
    wh : Warehouse
        A warehouse open for writing (``sercap.connect(path)``).
    problems : CheckResult or sequence, optional
        What to repair; default: what :func:`verify` finds now.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.repair(wh).lines()  # what the "run sercap.repair(wh)" hints run
    ['repaired: 0 part(s) unregistered, 0 file(s) deleted']
    >>> wh.close()
    """
    from sercap.check import Problem
    from sercap.check import repair as _repair

    if problems is None:
        problems = verify(wh)
    if isinstance(problems, CheckResult):
        problems = problems.problems
    if isinstance(problems, str) or not all(isinstance(p, Problem) for p in problems):
        raise BadParameterError(
            f"problems={problems!r}"[:80],
            hint="give verify(wh) or its .problems, or leave problems out",
        )
    return _repair(wh, list(problems))


# --------------------------------------------------------------------------- feature sets
def get_feature_set(name: str, kind: str | None = None) -> Any:
    """A built-in feature or image set by name: ``.kind``, ``.hash``, ``.params``, ``.hop_s``.

    Examples
    --------
    >>> import sercap
    >>> sercap.get_feature_set("mel").kind
    'image'
    """
    from sercap.features.featureset import get_feature_set as _get

    return _get(name, kind)


@_takes_warehouse
def feature_sets(wh: Warehouse | None = None) -> pl.DataFrame:
    """Every built-in feature and image set, its hash and how many utterances are stored.

    Parameters
    ----------
    wh : Warehouse, optional
        Count what this open warehouse stores of each set; without one, the definitions.

    Returns
    -------
    polars.DataFrame

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> "default" in sercap.feature_sets(wh)["name"].to_list()
    True
    >>> wh.close()
    """
    from sercap.features.stored import feature_set_table

    return feature_set_table(wh)


@_takes_warehouse
def describe_feature_set(wh: Warehouse | None, name: str) -> str:
    """Parameters, library versions, hash, columns and storage of feature set ``name``.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.describe_feature_set(wh, "default").splitlines()[0].startswith("default")
    True
    >>> wh.close()
    """
    from sercap.features.stored import describe_feature_set as _describe

    return Text(_describe(wh, name))


@_takes_warehouse
def images(
    wh: Warehouse,
    image_set: str | FeatureSet = "mel",
    *,
    corpus: str | None = None,
    jobs: int = 1,
    chunk_size: int | None = None,
    retry_errors: bool = False,
    limit: int | None = None,
    cluster: str | Client | None = None,
    progress: bool | None = None,
) -> ExtractSummary:
    """Store one log-mel spectrogram per utterance as an 8-bit grayscale PNG.

    Incremental and resumable like :func:`extract` (same parameters); rows land in the
    ``images`` view (utt_id, height, width, png).

    Parameters
    ----------
    wh : Warehouse
        A warehouse open for writing (``sercap.connect(path)``).
    image_set : str or FeatureSet
        A built-in image set (``sercap.feature_sets()``), default ``"mel"``, or one defined
        in code.
    corpus, jobs, chunk_size, retry_errors, limit, cluster, progress
        As for :func:`extract`.

    Returns
    -------
    ExtractSummary

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=1, per_speaker=2)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> sercap.images(wh).done
    4
    >>> wh.close()
    """
    return extract(
        wh,
        image_set,
        corpus=corpus,
        jobs=jobs,
        chunk_size=chunk_size,
        retry_errors=retry_errors,
        limit=limit,
        cluster=cluster,
        kind="image",
        progress=progress,
    )


@_takes_warehouse
def image(wh: Warehouse, utt_id: str, image_set: str = "mel") -> Any:
    """One utterance's stored spectrogram: ``.png`` (bytes), ``.height``, ``.width``, ``.pixels``.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (``sercap.connect(path)``).
    utt_id : str
        The utterance.
    image_set : str
        Which stored image set, default ``"mel"``.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.image(wh, "u1")
    Traceback (most recent call last):
    ...
    sercap.errors.NotExtractedError: no images of set 'mel' in the warehouse; run `sercap images` / `sercap.images(wh)` first
    >>> wh.close()
    """  # noqa: E501
    from sercap.store.views import stored_image

    return stored_image(wh, utt_id, image_set)


def plot_image(image: Any, path: PathLike) -> Path:
    """Draw a stored image (from :func:`image`) with time and frequency axes into a PNG."""
    from sercap.features.images import plot_image as _plot

    _plot(image, Path(path))
    return Path(path)


# --------------------------------------------------------------------------- runs
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
        One row per run: id, model, corpus, label map, feature set, column pattern,
        speaker normalisation (``spk_norm``: ``"yes"``, ``"no"``, or ``"mixed"`` for an
        ensemble of both; ``get_run(wh, id).speaker_norm`` is the bool), UA, WA, macro-F1,
        fit seconds, tuned, and ``started_at``, which holds when the run was *stored* (its
        end, the time in its id).

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
    wh: Warehouse, run_ids: Sequence[str], *, weights: Sequence[float] | None = None
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
    run_ids : sequence of str
        At least two run ids (unique prefixes are enough).
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
    from sercap.ensemble import ensemble_runs as _ensemble

    if weights is not None and (
        isinstance(weights, str) or not all(isinstance(w, int | float) for w in weights)
    ):
        raise BadParameterError(
            f"weights={weights!r}", hint="give one number per run, e.g. weights=[2, 1, 1]"
        )
    run_id, _ = _ensemble(wh, _listed(run_ids), None if weights is None else list(weights))
    return get_run(wh, run_id)


@_takes_warehouse
def resolve_corpus(wh: Warehouse, corpus: str | None = None) -> str:
    """The corpus name to use: ``corpus`` if stored, else the only one (an error if several)."""
    from sercap.data import resolve_corpus as _resolve

    return _resolve(wh, corpus)


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
                  importance=importance, importance_folds=importance_folds)  # fmt: skip


# --------------------------------------------------------------------------- analysis
@_takes_warehouse
def compare_runs(
    wh: Warehouse,
    run_a: str,
    run_b: str,
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
    run_a, run_b : str
        Run ids (unique prefixes are enough), of one corpus and label map.
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
    ids = [get_run(wh, run_id).run_id for run_id in (run_a, run_b)]  # NotFoundError if unknown
    if ids[0] == ids[1]:  # printed a table of zeros and the verdict "within noise"
        raise BadParameterError(
            f"{run_a!r} and {run_b!r} are the same run, {ids[0]}",
            hint="compare two different runs (`sercap runs` lists them)",
        )
    return _compare(wh, ids[0], ids[1], n_boot=n_boot, level=level, seed=seed)


@_takes_warehouse
def fairness(wh: Warehouse, run: str, *, summary: bool = False) -> pl.DataFrame:
    """UA per gender and per speaker of a stored run, from its stored predictions only.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough).
    run : str
        A run id (a unique prefix is enough).
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


# --------------------------------------------------------------------------- bench
@dataclass
class Bench:
    """A model comparison: ``table`` (one row per run), ``corpus``, ``report`` (bench.md),
    ``written`` (every file of the report folder by role) and, with ``tuned=True``,
    ``comparisons`` (default vs nested-tuned UA per model with a paired bootstrap 95 % CI;
    with ``target``, the CCC: :class:`sercap.regression.TunedCCC`)."""

    table: pl.DataFrame
    corpus: str
    report: Path
    written: dict[str, Path] = field(repr=False)
    comparisons: list[Any] = field(default_factory=list, repr=False)
    #: With ``modalities``: each fused run against the best single-modality run (UA
    #: difference, paired bootstrap 95 % CI); see :func:`sercap.compare.fusion_vs_single`.
    fusion: pl.DataFrame | None = field(default=None, repr=False)
    #: With ``ensemble``: each fixed ensemble against its best member (UA difference,
    #: paired bootstrap 95 % CI); see :func:`sercap.compare.ensembles_vs_best_member`.
    ensembles: pl.DataFrame | None = field(default=None, repr=False)


@_takes_warehouse
def bench(
    wh: Warehouse,
    models: Sequence[str] = (),
    *,
    all_models: bool = False,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    speaker_norm: bool = False,
    tuned: bool = False,
    ensemble: bool = False,
    opensmile: bool = False,
    quick: bool = False,
    out_dir: PathLike | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    cluster: str | Client | None = None,
    progress: bool | None = None,
    modalities: Sequence[str] | None = None,
    target: str | None = None,
    resume: bool = False,
    say: Say | None = None,
) -> Bench:
    """Cross-validate several models (default: svm rf xgb lgbm trees) and compare them.

    Writes bench.md, bench.csv, a comparison chart, a per-class recall chart and a confusion
    matrix per model into ``out_dir`` (default ``WAREHOUSE/reports/bench-CORPUS``).

    Parameters
    ----------
    models : sequence of str
        Model names (empty: the tabular ones); ``all_models`` takes every registered model.
    tuned : bool
        Also run each model with its nested-tuned parameters and compare with the defaults
        (``Bench.comparisons``).
    ensemble : bool
        Add fixed ensembles (declared before scoring): every model at default settings, and
        resnet34+dnn+trees; each is compared with its best member (``Bench.ensembles``: UA
        difference and paired bootstrap 95 % CI).
    opensmile : bool
        Add svm on openSMILE ComParE 2016 and lgbm on eGeMAPS (extracted if needed).
    quick : bool
        Small settings for the torch models, and 200 trees instead of 500 for rf and
        trees (the demo's).
    corpus, labels, feature_set, image_set, speaker_norm, seed, jobs, device, cluster
        As for :func:`train`.
    modalities : sequence of str, optional
        Any of ``"audio"``, ``"text"``, ``"fusion"``: bench the named models of each (or its
        defaults: svm; text-lr, text-svm, text-cnn; fusion, early-fusion), add a
        ``modality`` column to ``Bench.table`` and compare each fused run with the best
        single-modality one (``Bench.fusion``). Text and fusion need a corpus with
        transcripts.
    target : str, optional
        Compare the models' regressors of this rating instead (default models: svm rf xgb
        lgbm; ``all_models``: every model with a regressor): the table has ``ccc``,
        ``pearson``, ``mae``, and the report folder defaults to
        ``WAREHOUSE/reports/bench-CORPUS-TARGET``.
    resume : bool
        Take a model's stored run instead of fitting it again when one exists with the same
        data (every utterance with the same label), parameters, seed, library versions and
        sercap code (a hash of its files): the runs an interrupted bench stored, or an
        earlier bench's. Leave it out to measure again. Not with ``tuned``, ``cluster`` or
        ``target``.
    say : callable, optional
        Receives a line per model as it finishes (its UA and time; where no progress bar
        shows, a log file, this is all that says the bench is alive).

    Returns
    -------
    Bench

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> sorted(sercap.bench(wh, ["svm", "rf"]).table["name"].to_list())  # best UA first
    ['rf', 'svm']
    >>> wh.close()
    """
    _check_counts(jobs=jobs)
    _output_dir(wh, out_dir, "")  # a bad --out is refused before any fit
    _check_seed(seed)
    _require_writable(wh, "bench stores its runs")
    from sercap.compare import available_models, plan_bench, run_bench

    if models is None or not (
        isinstance(models, str)
        or (isinstance(models, Sequence) and all(isinstance(m, str) for m in models))
    ):
        raise BadParameterError(
            f"models={models!r}", hint='give model names, e.g. ["svm", "lgbm"], or all_models=True'
        )
    models = _listed(models)

    spec = _cluster(cluster)
    corpus = resolve_corpus(wh, corpus)
    if out_dir is not None:  # writable before any fit, not after the runs are stored
        from sercap.format import make_output_dir

        make_output_dir(_output_dir(wh, out_dir, f"bench-{corpus}"))
    if target is not None:  # regressors of a rating (sercap.regression)
        from sercap.regression import bench_target

        table, written, comparisons = bench_target(
            wh, models, target, all_models=all_models, corpus=corpus, label_map=labels,
            feature_set=feature_set, image_set=image_set, speaker_norm=speaker_norm,
            tuned=tuned, refused={"ensemble": ensemble, "opensmile": opensmile, "quick": quick,
                                  "modalities": modalities is not None, "resume": resume},
            out_dir=out_dir, seed=seed, n_jobs=jobs, device=device, progress=_bars(progress),
            cluster=spec,
        )  # fmt: skip
        if comparisons:  # --tuned: the CCC comparison into bench.md too
            from sercap.format import format_tuning_comparison

            md = written["markdown"]
            md.write_text(md.read_text() + f"\n```\n{format_tuning_comparison(comparisons)}\n```\n")
        return Bench(table, corpus, written["markdown"], written, comparisons)
    if all_models and not modalities:  # every model the corpus can feed
        from sercap.models.registry import MODELS

        models, all_models = available_models(wh, corpus, list(MODELS)), False
    specs = plan_bench(
        models,
        all_models=all_models,
        opensmile=opensmile,
        modalities=None if modalities is None else _listed(modalities),
    )
    out = _output_dir(wh, out_dir, f"bench-{corpus}")
    table, written, comparisons = run_bench(
        wh,
        specs,
        out,
        corpus=corpus,
        label_map=labels,
        feature_set=feature_set,
        image_set=image_set,
        speaker_norm=speaker_norm,
        tuned=tuned,
        ensemble=ensemble,
        quick=quick,
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(progress),
        cluster=spec,
        resume=resume,
        say=say,
    )
    from sercap.compare import ensembles_vs_best_member, fusion_vs_single, with_modality
    from sercap.format import format_ensemble_comparison, format_fusion_comparison

    md = written["markdown"]
    ensembles = ensembles_vs_best_member(wh, table, seed=seed) if ensemble else None
    if ensembles is not None and not ensembles.is_empty():  # the CI goes into bench.md too
        md.write_text(md.read_text() + f"\n```\n{format_ensemble_comparison(ensembles)}\n```\n")
    if not modalities:
        return Bench(table, corpus, md, written, comparisons, ensembles=ensembles)
    fusion = fusion_vs_single(wh, table, seed=seed)
    if not fusion.is_empty():
        md.write_text(md.read_text() + f"\n```\n{format_fusion_comparison(fusion)}\n```\n")
    return Bench(
        with_modality(table), corpus, md, written, comparisons, fusion, ensembles=ensembles
    )


@_takes_warehouse
def bench_extract(
    wh: Warehouse,
    *,
    corpus: str | None = None,
    limit: int | None = None,
    jobs: int = 2,
    naive: bool = True,
    say: Say | None = None,
) -> pl.DataFrame:
    """Time feature extraction side by side, in one process, on the same decoded audio.

    sercap's default set (descriptors, SQL functionals, end to end), a naive loop calling
    each librosa feature function, and openSMILE ComParE 2016 / eGeMAPS v02 when installed;
    one thread each, then the default set in a pool of ``jobs`` processes. Nothing is stored.

    Parameters
    ----------
    corpus : str, optional
        Corpus name (default: the only one).
    limit : int, optional
        Time the first ``limit`` utterances only.
    jobs : int
        Worker processes for the pooled default set.
    naive : bool
        Include the naive librosa loop (the slowest).
    say : callable, optional
        Receives progress lines (what is decoded, skipped, timed).

    Returns
    -------
    polars.DataFrame
        One row per extractor, with ``x real time`` per core and a ``reference`` column.
    """
    _check_counts(limit=limit, jobs=jobs)
    from sercap.features.speed import bench_extraction, load_signals
    from sercap.store.catalog import utterance_audio

    say = say or _quiet
    corpus = resolve_corpus(wh, corpus)
    rows = [row[:4] for row in utterance_audio(wh, corpus, limit)]  # id, path, start, end
    say(f"decoding {len(rows)} utterances of {corpus} at 16 kHz (not timed)…")
    signals, problems = load_signals(rows, 16000)
    for problem in problems[:5]:
        say(f"skipped {problem}")
    if not signals:
        raise NotFoundError(f"no readable audio in corpus {corpus!r}")
    audio_min = sum(y.size for y in signals) / 16000 / 60
    say(f"timing on {len(signals)} utterances, {audio_min:.1f} min of audio")
    return bench_extraction(signals, jobs=jobs, naive=naive, say=lambda s: say(f"  {s}…"))


@_takes_warehouse
def bench_extract_commands(
    wh: Warehouse,
    *,
    corpus: str | None = None,
    limit: int | None = None,
    jobs: int = 2,
    opensmile: bool = True,
    work_dir: PathLike | None = None,
    repeat: int = 3,
    say: Say | None = None,
) -> pl.DataFrame:
    """Time extraction as a user meets it: whole commands, each a new process.

    ``sercap extract --jobs 1`` and ``--jobs N`` on fresh copies of a warehouse where the
    corpus is ingested (imports, decoding, descriptors, SQL functionals, Parquet writes and
    registration all inside the clock), and openSMILE eGeMAPS v02 functionals as a plain
    one-process Python loop over the same files (decoding included; nothing stored), in the
    same run. The corpus is re-ingested from where ``wh`` read it; ``wh`` is not changed.

    Parameters
    ----------
    corpus : str, optional
        Corpus name (default: the only one).
    limit : int, optional
        The first ``limit`` utterances by id only (``extract --limit``).
    jobs : int
        Worker processes of the pooled ``extract`` row.
    opensmile : bool
        Time openSMILE beside it (skipped when the package is not installed).
    work_dir : path, optional
        Keep the warehouses here (default: a temporary folder, removed).
    repeat : int
        Rounds, each running every command once (interleaved, so that a machine whose speed
        drifts moves every row alike); each row is the median of its runs.
    say : callable, optional
        Receives a line per step.

    Returns
    -------
    polars.DataFrame
        ``command``, ``seconds`` (median run), ``runs_s`` (every run), ``audio_s``,
        ``x_real_time`` and ``vs_opensmile`` (how many times faster than openSMILE's
        process; null without it).

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect("warehouse", read_only=True)  # doctest: +SKIP
    >>> sercap.bench_extract_commands(wh, jobs=2)  # doctest: +SKIP
    """
    _check_counts(limit=limit, jobs=jobs, repeat=repeat)
    from sercap.features.command_speed import commands_table, time_commands
    from sercap.store.catalog import corpus_source, utterance_audio

    corpus = resolve_corpus(wh, corpus)
    kind, root = corpus_source(wh, corpus)
    if not utterance_audio(wh, corpus, limit):
        raise NotFoundError(f"no utterances in corpus {corpus!r}")
    timings = time_commands(  # (both sides' files: those the timed extract stores)
        kind, root, corpus, jobs=jobs, limit=limit,
        opensmile_sets=("eGeMAPSv02",) if opensmile else (),
        work_dir=work_dir, repeat=repeat, say=say,
    )  # fmt: skip
    return commands_table(timings)


@_takes_warehouse
def bench_sql(
    wh: Warehouse,
    *,
    feature_set: str = "default",
    copies: int = 1,
    threads: int = 2,
    say: Say | None = None,
) -> pl.DataFrame:
    """Time per-utterance aggregates of the stored frames: DuckDB vs polars vs pandas.

    Each engine runs in a fresh process on the same Parquet files (reading included) and
    reports its peak memory.

    Parameters
    ----------
    feature_set : str
        Whose stored frames to aggregate.
    copies : int
        Aggregate this many renamed copies of the frames (a bigger table, same data).
    threads : int
        Threads per engine.
    say : callable, optional
        Receives progress lines.
    """
    _check_counts(copies=copies, threads=threads)
    import tempfile

    import polars as pl

    from sercap.features.aggregate_speed import bench_aggregation, replicate_frames

    say = say or _quiet
    fs = get_feature_set(feature_set, kind="lld")
    files = wh.part_paths("frames", fs.hash)
    if not files:
        raise NotExtractedError(
            f"no frames of feature set {feature_set!r}; run `sercap extract` / "
            "`sercap.extract(wh)` first"
        )
    with tempfile.TemporaryDirectory(prefix="sercap-bench-sql-") as tmp:
        if copies > 1:
            say(f"writing {copies} copies of the frames…")
            files = replicate_frames(files, copies, Path(tmp))
        shape = pl.scan_parquet([str(f) for f in files]).select(pl.len()).collect().item()
        say(f"{shape:,} frames in {len(files)} Parquet file(s)")
        return bench_aggregation(files, threads=threads, hop_s=fs.hop_s)


@dataclass(frozen=True)
class ScaleResult:
    """What :func:`bench_scale` measured: the side-by-side table, its Markdown, and the
    projected nested tuning of an IEMOCAP-sized corpus (a projection, labelled as such)."""

    table: pl.DataFrame
    projection: pl.DataFrame
    markdown: str


def bench_scale(
    kind: str,
    directory: PathLike,
    *,
    workers: int = 2,
    workloads: Sequence[str] = ("extract", "bench", "tune"),
    work_dir: PathLike | None = None,
    seed: int = 0,
    repeat: int = 1,
    say: Say | None = None,
) -> ScaleResult:
    """Time extract, bench svm + lgbm and a small nested tuning three ways, side by side.

    The corpus is ingested once into a template warehouse; every mode (one process, the
    in-process pool of ``workers`` processes, a LocalCluster of ``workers`` Dask workers)
    gets its own copy and runs each workload as a whole new process, start-up included
    (:mod:`sercap.scale`). The measured per-fit costs of the one-process bench and the
    cluster's overhead per task then project the wall time of an IEMOCAP-sized nested
    tuning of those models on 1, 8 and 64 workers.

    Parameters
    ----------
    kind, directory
        The corpus, as for :func:`ingest`.
    workers : int
        N: the pool's and the LocalCluster's size.
    workloads : sequence of str
        Some of ``extract``, ``bench``, ``tune`` (``bench``/``tune`` need ``extract``).
    work_dir : path-like, optional
        Where the template and the copies go (default: a temporary folder, removed after).
    seed : int
        Seed of the models and studies.
    repeat : int
        Rounds, each timing every mode once on a fresh copy (interleaved, so that a
        machine whose speed drifts moves every mode alike); each cell is the median.
    say : callable, optional
        Receives a line per finished measurement.

    Returns
    -------
    ScaleResult

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=1, per_speaker=2)
    >>> result = sercap.bench_scale("iemocap", corpus.root, workloads=["extract"])  # doctest: +SKIP
    >>> result.table.select("mode", "seconds", "speed_up")  # doctest: +SKIP
    """
    _check_counts(workers=workers, repeat=repeat)
    _check_seed(seed)
    import shutil
    import tempfile

    from sercap import scale

    if workers < 1:
        raise BadParameterError(f"workers must be at least 1, not {workers}")
    workloads = _listed(workloads)
    unknown = [w for w in workloads if w not in scale.WORKLOADS]
    if unknown:
        raise BadParameterError(
            f"unknown workload {unknown[0]!r}", hint=f"choose from {', '.join(scale.WORKLOADS)}"
        )
    if "extract" not in workloads:
        raise BadParameterError(
            "bench scale needs the extract workload (the others use its features)"
        )
    if "tune" in workloads or any(m.startswith("local:") for m in scale.modes(workers)):
        _cluster(f"local:{workers}")  # a one-line error when Dask is missing
    say = say or _quiet
    owned = work_dir is None
    base = Path(tempfile.mkdtemp(prefix="sercap-scale-")) if owned else Path(work_dir)
    try:
        template = base / "template"
        if template.exists():
            scale.refuse_foreign(template)  # a folder of the user's is never deleted
            shutil.rmtree(template)
        wh = connect(template)
        try:
            summary = ingest(wh, kind, directory, progress=False)
        finally:
            wh.close()
        say(f"template: {summary.stored} utterances of {kind} ingested; timing each mode…")
        load_before = os.getloadavg()[0]
        measured = scale.measure_scale(template, base, workers=workers, repeat=repeat,
                                       workloads=list(workloads), seed=seed, say=say)  # fmt: skip
        load = (load_before + os.getloadavg()[0]) / 2
        table = scale.scale_table(measured, load=load)
        projection = _scale_projection(base, table, workers, workloads)
        markdown = scale.table_markdown(table)
        return ScaleResult(table=table, projection=projection, markdown=markdown)
    finally:
        if owned:
            shutil.rmtree(base, ignore_errors=True)


def _scale_projection(
    base: Path, table: pl.DataFrame, workers: int, workloads: Sequence[str]
) -> pl.DataFrame:
    """Project IEMOCAP-sized nested tuning from the one-process copy's stored runs."""
    import polars as pl

    from sercap import scale

    if "bench" not in workloads:
        return pl.DataFrame()
    wh = connect(base / scale.mode_folder("1 process"), read_only=True)
    try:
        costs = scale.fit_costs(wh)
    finally:
        wh.close()
    bench = table.filter((pl.col("workload") == "bench") & (pl.col("mode") == f"local:{workers}"))
    overhead = max(0.0, float(bench["overhead_per_task_s"][0])) if bench.height else 0.0
    return scale.project_nested(costs, overhead_per_task_s=overhead)


# --------------------------------------------------------------------------- demo
def run_demo(
    out_dir: PathLike = "demo",
    corpus_dir: PathLike | None = None,
    *,
    kind: str | None = None,
    models: Sequence[str] | None = None,
    sessions: int = 5,
    per_speaker: int = 36,
    quick: bool = True,
    jobs: int = 2,
    seed: int = 0,
    progress: bool | None = None,
    say: Say | None = None,
    resume: bool = False,
) -> Any:
    """Everything end to end: synth → ingest → extract → images → bench → ensembles → report.

    Parameters
    ----------
    out_dir : path
        Where the corpus, warehouse and report go.
    corpus_dir : path, optional
        A real corpus instead of the synthetic one; ``kind`` names its format (default:
        guessed from its layout).
    models : sequence of str, optional
        Models to compare (default: all).
    sessions, per_speaker : int
        Size of the synthetic corpus.
    quick : bool
        Quick training settings.
    jobs, seed, progress
        As for :func:`train`.
    say : callable, optional
        Receives one line per step.
    resume : bool
        Take each model's stored run of the same settings instead of fitting it again (after
        an interrupted demo; see :func:`bench`). The corpus and features are reused anyway.

    Returns
    -------
    sercap.demo.DemoResult
        ``table``, ``corpus``, ``report`` and ``warehouse``.
    """
    _check_counts(sessions=sessions, per_speaker=per_speaker, jobs=jobs)
    _check_seed(seed)
    from sercap.demo import run_demo as _run

    return _run(
        Path(out_dir),
        None if corpus_dir is None else Path(corpus_dir),
        kind,
        models=None if models is None else _listed(models),
        sessions=sessions,
        per_speaker=per_speaker,
        quick=quick,
        jobs=jobs,
        seed=seed,
        say=say or _quiet,
        progress=_bars(progress),
        resume=resume,
    )


def check_model(name: str) -> str:
    """``name`` if it is a registered model, else one line listing them (what ``train``,
    ``tune`` and ``bench`` say; the CLI asks before it opens the warehouse, so that a typo
    does not wait for another process' lock first).

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


# --------------------------------------------------------------------------- cross-corpus
@_takes_warehouse
def bench_cross(
    wh: Warehouse,
    corpora: Sequence[str] | None = None,
    *,
    model: str = "svm",
    feature_set: str | None = None,
    speaker_norm: bool | str = False,
    params: Mapping[str, Any] | None = None,
    out_dir: PathLike | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    progress: bool | None = None,
    say: Say | None = None,
    cluster: Any = None,
) -> pl.DataFrame:
    """Cross-corpus matrix: train on each corpus, test on each other, under shared labels.

    The label map keeps the emotions of the ``shared_emotions`` table (neutral, anger,
    happiness, sadness, fear, disgust, surprise, boredom) that every chosen corpus has under
    its own default label map. Each off-diagonal cell fits ``model`` on the whole row corpus
    and scores it on the whole column corpus; the diagonal is the column corpus' own
    speaker-independent protocol. Every cell is a stored run with its predictions (label map
    ``shared``; ``runs.train_corpus`` and ``runs.cross_matrix`` set; view
    ``cross_corpus_runs``). Writes cross.md, cross.csv and the heatmap cross-ua.png into
    ``out_dir`` (default ``WAREHOUSE/reports/cross-<corpora>``).

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse holding at least two corpora, extracted with one
        feature set.
    corpora : sequence of str, optional
        Corpus names (default: every corpus of the warehouse).
    model : str
        A registered audio model (default ``svm``).
    feature_set : str, optional
        Feature (or, for image models, image) set every corpus was extracted with.
    speaker_norm : bool or "both"
        Standardise every speaker of every corpus with that speaker's own statistics
        (over all its extracted utterances, no labels); ``"both"`` computes both matrices.
    params : mapping, optional
        Model parameters (default: the model's defaults).
    out_dir : path, optional
        Report folder.
    seed, jobs, device, progress
        As for :func:`train`.
    say : callable, optional
        Receives a line naming the matrix id and each file written.
    cluster : str or dask.distributed.Client, optional
        Fit every cell's folds on a Dask cluster (``local:N``, ``tcp://HOST:PORT`` or a
        client of yours; default ``$SERCAP_CLUSTER``), all cells in one batch; the same runs
        as in process.

    Returns
    -------
    polars.DataFrame
        The UA matrix: ``speaker_norm``, ``train`` (the train corpus) and one column per
        test corpus; one row per (setting, train corpus).

    Raises
    ------
    SercapError
        An unknown corpus, fewer than two corpora, fewer than two shared classes, or a
        corpus not extracted with the feature set (each one line).

    Examples
    --------
    Two corpora: a synthetic one, and a second synthetic one given as a manifest (its
    utterance ids renamed, since every synthetic corpus uses the same ones).

    >>> import tempfile, polars as pl, sercap
    >>> wh = sercap.connect(":memory:")
    >>> a = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> _ = sercap.ingest(wh, "iemocap", a.root, name="a")
    >>> b = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6, seed=1)
    >>> wavs = sorted(b.root.rglob("*.wav"))
    >>> pl.DataFrame({
    ...     "path": [str(w) for w in wavs], "utt_id": ["b_" + w.stem for w in wavs],
    ...     "label": [b.labels[w.stem] for w in wavs], "speaker": [w.stem[:6] for w in wavs],
    ... }).write_csv(b.root / "manifest.csv")
    >>> _ = sercap.ingest(wh, "manifest", b.root / "manifest.csv", name="b")
    >>> _ = sercap.extract(wh)
    >>> matrix = sercap.bench_cross(wh, ["a", "b"], model="svm", speaker_norm="both")
    >>> matrix.columns
    ['speaker_norm', 'train', 'a', 'b']
    >>> matrix.select("speaker_norm", "train").rows()
    [(False, 'a'), (False, 'b'), (True, 'a'), (True, 'b')]
    >>> wh.close()
    """
    _check_counts(jobs=jobs)
    _output_dir(wh, out_dir, "")  # a bad --out is refused before any fit
    _check_seed(seed)
    _require_writable(wh, "the cross-corpus runs are stored")
    from sercap.cross import caption, run_cross, write_cross_report

    say = say or _quiet
    if speaker_norm not in (False, True, "both"):
        raise BadParameterError(f"speaker_norm={speaker_norm!r}", hint="use False, True or 'both'")
    settings = (False, True) if speaker_norm == "both" else (bool(speaker_norm),)
    result = run_cross(
        wh,
        None if corpora is None else _listed(corpora),
        model=model,
        feature_set=feature_set,
        speaker_norm=settings,
        params=None if params is None else dict(params),
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(progress),
        cluster=_cluster(cluster),
    )
    out = _output_dir(wh, out_dir, "cross-" + "-".join(result.corpora))
    written = write_cross_report(result, out)
    say(caption(result))
    say(f"matrix {result.matrix_id}: {result.cells.height} runs stored")
    for role, path in written.items():
        say(f"{role}: {path}")
    return result.matrix


__all__ = [
    "INGEST_KINDS",
    "check_model",
    "Bench",
    "CheckResult",
    "RegressionRun",
    "Run",
    "Study",
    "bench",
    "bench_cross",
    "bench_extract",
    "bench_extract_commands",
    "bench_scale",
    "bench_sql",
    "compare_runs",
    "dataset",
    "fairness",
    "verify",
    "connect",
    "damage",
    "run_demo",
    "describe_feature_set",
    "ensemble_runs",
    "extract",
    "feature_sets",
    "features",
    "get_feature_set",
    "get_run",
    "image",
    "images",
    "info",
    "ingest",
    "load_study",
    "models_to_fit",
    "stale_audio",
    "plot_image",
    "predict",
    "prediction_table",
    "repair",
    "write_report",
    "resolve_corpus",
    "runs",
    "sql",
    "iter_sql",
    "sql_statements",
    "synth",
    "train",
    "tune",
    "use_numba_cache",
    "warehouse_exists",
]


def _check_arguments_of_every_verb() -> None:
    """Wrap each public function so that its simple arguments are checked against its
    annotations, and paths have ``~`` expanded (:mod:`sercap._arguments`)."""
    import inspect

    from sercap._arguments import checked_arguments

    for name in __all__:
        obj = globals()[name]
        if inspect.isfunction(obj) and obj.__module__ == __name__:
            globals()[name] = checked_arguments(obj)


_check_arguments_of_every_verb()
