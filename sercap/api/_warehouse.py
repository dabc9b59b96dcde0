"""Verbs on the warehouse itself: connect, inspect, verify and repair it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap._text import ShownAsText, Text
from sercap.api._common import PathLike, _takes_warehouse
from sercap.errors import BadParameterError, NotFoundError

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    from sercap.store import Warehouse


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
            if warehouse_exists(Path(where) / "warehouse"):  # the demo's folder
                raise NotFoundError(
                    f"no warehouse at {where}, but there is one in {Path(where) / 'warehouse'}",
                    hint="use that path",
                )
            raise NotFoundError(
                f"no warehouse at {where}",
                hint="check the path, or create one: sercap.connect(path) then sercap.ingest",
            )
    return _connect(path, memory=memory, read_only=read_only, wait_s=wait_s)


def warehouse_exists(path: PathLike) -> bool:
    """Whether a warehouse has been created at ``path`` (its DuckDB file exists).

    Parameters
    ----------
    path : str or Path
        A warehouse folder.

    Returns
    -------
    bool

    Examples
    --------
    >>> import tempfile, sercap
    >>> sercap.warehouse_exists(tempfile.mkdtemp())
    False
    """
    from sercap.store import DB_FILENAME

    return (Path(path).expanduser() / DB_FILENAME).exists()


@_takes_warehouse(polars=False)
def stale_audio(wh: Warehouse) -> str | None:
    """One line about stored features of audio whose file has changed since, or None.

    One ``stat`` per audio file (a file is hashed only when its stat moved); what ``check``
    reports, ``extract`` and ``sql`` warn about, and every reader of a dataset refuses.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse.

    Returns
    -------
    str or None
        The line, naming the first such utterance and what to run.

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


@_takes_warehouse(polars=False)
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
    """What :func:`verify` found: ``problems`` (each with ``line()``), ``parts`` verified,
    ``leftovers``: part files that no part row names and model folders the catalog does not
    record (left by an interrupted run; harmless: the next extraction of their set, or the
    next prediction with their run, removes them), and ``foreign``: files in sercap's own
    folders that sercap did not write (it neither reads nor removes them)."""

    problems: list[Any]
    parts: int
    leftovers: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    #: audio files of stored utterances that are gone: their features stay as stored, but
    #: the next ingest drops them and extract cannot compute them again
    audio_gone: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems

    def notes(self) -> list[str]:
        """One line each on the leftovers, the foreign files and the audio files gone, where
        there are any."""
        out = []
        if self.leftovers:
            out.append(
                f"note: {_count(self.leftovers, 'file(s) or folder(s)')} left by an interrupted "
                "run are not registered; the next extract (or images) of their set, or predict "
                "with their run, removes them"
            )
        if self.foreign:
            out.append(
                f"note: {_count(self.foreign, 'file(s) or folder(s)')} in sercap's own folders "
                "are not sercap's; it neither reads nor removes them: move them out of the "
                "warehouse"
            )
        if self.audio_gone:
            out.append(
                f"note: {_count(self.audio_gone, 'audio file(s)')} of stored utterances are "
                "gone; their features stay as stored, but the next ingest drops them and "
                "extract cannot compute them again: put the files back, or ingest to leave "
                "those utterances out"
            )
        return out

    def __str__(self) -> str:
        """What ``sercap check`` prints: each problem's line, or that all is well, then the
        notes."""
        lines = [p.line() for p in self.problems] or [f"no problems: {self.parts} part(s) verified"]
        return "\n".join(lines + self.notes())


def _count(paths: list[str], what: str) -> str:
    """``3 file(s) (a/b and 2 more)``."""
    more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
    return f"{len(paths)} {what} ({paths[0]}{more})"


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
        ``parts`` verified, the ``leftovers`` of interrupted runs and ``foreign`` files;
        true when no problem.

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
    from sercap.check import missing_audio

    problems = _check(wh)
    from sercap.store.layout import relative
    from sercap.store.parts import all_part_paths, foreign_files, unregistered_files
    from sercap.store.runs import foreign_artifacts, unrecorded_artifacts

    leftovers = [relative(wh.root, p) for p in [*unregistered_files(wh), *unrecorded_artifacts(wh)]]
    foreign = [relative(wh.root, p) for p in [*foreign_files(wh), *foreign_artifacts(wh)]]
    return CheckResult(
        problems, len(all_part_paths(wh)), leftovers, foreign, audio_gone=missing_audio(wh)
    )


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


@_takes_warehouse
def resolve_corpus(wh: Warehouse, corpus: str | None = None) -> str:
    """The corpus name to use: ``corpus`` if stored, else the only one (an error if several).

    Parameters
    ----------
    wh : Warehouse
        An open warehouse.
    corpus : str, optional
        A corpus name; checked against the stored ones.

    Returns
    -------
    str
        The corpus name.

    Raises
    ------
    NotExtractedError
        No corpus is stored yet (ingest one first).
    NotFoundError
        ``corpus`` is not one of the stored ones.
    BadParameterError
        ``corpus`` is None and the warehouse holds several.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> sercap.resolve_corpus(wh)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sercap.errors.NotExtractedError: the warehouse at ... has no corpus yet; run ...
    >>> wh.close()
    """
    from sercap.data import resolve_corpus as _resolve

    return _resolve(wh, corpus)
