"""Corpora: make the synthetic one, ingest any kind."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sercap.api._common import (
    PathLike,
    _check_counts,
    _check_seed,
    _require_writable,
    _takes_warehouse,
)
from sercap.errors import BadParameterError, SercapError

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    from sercap.corpora.ingest import IngestSummary
    from sercap.corpora.synthetic import SynthResult
    from sercap.store import Warehouse


#: Corpus formats :func:`ingest` reads.
INGEST_KINDS = ("iemocap", "emodb", "ravdess", "cremad", "tess", "manifest")


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
