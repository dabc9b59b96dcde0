"""Features and images: extract them, describe feature sets, read one file or image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap._text import Text
from sercap.api._common import PathLike, Say, _check_counts, _cluster, _takes_warehouse
from sercap.errors import BadParameterError

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    import polars as pl
    from distributed import Client

    from sercap.features.extract import ExtractSummary
    from sercap.features.featureset import FeatureSet
    from sercap.store import Warehouse


@_takes_warehouse(polars=False)
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
    say: Say | None = None,
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
    say : callable, optional
        Where no bar shows (a log file, a notebook), hears a line on the progress at most
        every 30 s, e.g. ``print``.

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
        say=say,
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


def get_feature_set(name: str, kind: str | None = None) -> Any:
    """A built-in feature or image set by name: ``.kind``, ``.hash``, ``.params``, ``.hop_s``.

    Parameters
    ----------
    name : str
        A built-in set (``sercap features list``).
    kind : str, optional
        ``"lld"``, ``"image"`` or ``"opensmile"``: refuse a set of another kind.

    Returns
    -------
    FeatureSet

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
    say: Say | None = None,
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
    corpus, jobs, chunk_size, retry_errors, limit, cluster, progress, say
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
        say=say,
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
    """Draw a stored image (from :func:`image`) with time and frequency axes into a PNG.

    A path among the files of the warehouse the image came from (its catalog, parts, models
    or journals) is refused with one line, as ``sercap images show --out`` refuses it.

    Parameters
    ----------
    image : StoredImage
        A stored spectrogram, from :func:`image`.
    path : str or Path
        The ``.png`` file to write (outside the warehouse's own files).

    Returns
    -------
    Path
        ``path``, written.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect("warehouse")  # doctest: +SKIP
    >>> sercap.plot_image(sercap.image(wh, "03a01Fa"), "03a01Fa.png")  # doctest: +SKIP
    PosixPath('03a01Fa.png')
    """
    from sercap.features.images import StoredImage
    from sercap.features.images import plot_image as _plot
    from sercap.format import refuse_inside

    if not isinstance(image, StoredImage):  # an AttributeError from inside the drawing
        raise BadParameterError(
            f"image={image!r:.60}", hint="give a stored image: sercap.image(wh, utt_id)"
        )
    refuse_inside(Path(path), image.warehouse)
    if Path(path).suffix.lower() != ".png":  # matplotlib's own error is a traceback
        raise BadParameterError(f"{path}: a spectrogram is written as .png; name a .png file")
    _plot(image, Path(path))
    return Path(path)
