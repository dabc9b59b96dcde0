"""Errors users see as one line instead of a traceback, and the hierarchy under them.

Every user-facing problem is a :class:`SercapError`. The subclasses say which kind it is, so
that library callers (a notebook, the CLI) can react by kind, and carry an optional ``hint``:
what to do about it, phrased without command-line flags so that each front end can add its
own (the CLI names ``sercap extract``, a notebook ``sercap.extract(wh)``).

>>> from sercap.errors import BadParameterError, SercapError
>>> err = BadParameterError("trials must be at least 1", hint="ask for one trial or more")
>>> isinstance(err, SercapError) and isinstance(err, ValueError)
True
>>> str(err)
'trials must be at least 1; ask for one trial or more'
>>> err.message, err.hint
('trials must be at least 1', 'ask for one trial or more')
"""

from __future__ import annotations

import errno
import re
from pathlib import Path


class SercapError(Exception):
    """A problem the user can fix (bad input, missing step); its message says what to do.

    The CLI prints ``error: <message>`` and exits with status 1. Messages name the file (and
    line) involved and, where there is one, the command to run first.

    Parameters
    ----------
    message : str
        One line naming the file or thing involved and what is wrong with it.
    hint : str, optional
        What to do about it, free of CLI flag names. ``str(error)`` appends it after ``"; "``.
    """

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class NotFoundError(SercapError, LookupError):
    """Something named does not exist: a file, corpus, run, study, feature set, model."""


class NotExtractedError(SercapError):
    """The warehouse lacks a step's output (features, images, runs) that this one needs."""


class BadParameterError(SercapError, ValueError):
    """A parameter value that cannot be used (also a :class:`ValueError`)."""


class DivergedError(BadParameterError):
    """Training blew up (non-finite weights, NaN or infinite predictions): these parameters
    (usually a learning rate far too high) cannot be scored. A tuning records such a trial
    as pruned and goes on; anywhere else it is the command's one-line error."""


class AudioError(SercapError, ValueError):
    """An audio file that cannot give features: unreadable, empty, silent, too short…

    Inside extraction the message is the bare reason, stored beside the utterance; the
    functions that take a path (``sercap.features``) put the path in front.
    """


class WarehouseBusyError(SercapError):
    """Another process holds the warehouse's write lock (DuckDB allows one writer)."""


class QueryError(SercapError, ValueError):
    """SQL that DuckDB could not run: a syntax error, an unknown table or column, a bad cast
    (the first line of DuckDB's message, e.g. ``Catalog Error: Table with name nope does not
    exist!``)."""


class RefusedError(SercapError, PermissionError):
    """Read-only SQL reached for a file or setting outside the warehouse's own parts."""


#: A Parquet file named in an error message, and any quoted path.
_PART_IN_MESSAGE = re.compile(r"""["']([^"']+\.parquet)["']""")
_QUOTED_PATH = re.compile(r"""["'][^"']*/[^"']*["']""")
#: What DuckDB's Parquet reader says about a damaged file when it does not name the file.
_PARQUET_DAMAGE = re.compile(
    r"TProtocolException|Decompression failure|magic bytes|Out of buffer|[Cc]orrupt|"
    r"don't know what type"
)
#: What DuckDB says when its own database file (the catalog) fails a block checksum.
_CATALOG_DAMAGE = "Corrupt database file"
#: DuckDB's words for a catalog file cut short (truncated by a full disk or a bad copy).
_CATALOG_SHORT = re.compile(r'Could not read enough bytes from file "([^"]*sercap\.duckdb)"')


def is_catalog_damage(text: str) -> bool:
    """Whether a DuckDB error message says the catalog file itself is damaged: corrupt,
    not a DuckDB file (emptied, overwritten) or cut short.

    >>> is_catalog_damage('IO Error: Could not read enough bytes from file "w/sercap.duckdb"')
    True
    >>> is_catalog_damage('IO Error: Could not read enough bytes from file "x.parquet"')
    False
    """
    return (
        _CATALOG_DAMAGE in text
        or "not a valid DuckDB database file" in text
        or _CATALOG_SHORT.search(text) is not None
    )


def printable(text: str) -> str:
    r"""``text`` with any undecodable byte of a file name shown as ``\xNN``.

    Python decodes a file name that is not valid UTF-8 with "surrogate escapes", which
    cannot be printed, stored in DuckDB or handed to libsndfile. Messages and stored
    problems use this form instead.

    >>> printable("caf\udce9.wav")
    'caf\\xe9.wav'
    >>> printable("café.wav")
    'café.wav'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:  # a file name's undecodable bytes (surrogate escapes \udc80-\udcff)
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # any other lone surrogate (from JSON, say)
            return text.encode("utf-8", "backslashreplace").decode("utf-8")


def require_utf8_path(path: str | Path, what: str) -> None:
    """A one-line SercapError when ``path`` is not valid UTF-8 (see :func:`printable`)."""
    if printable(str(path)) != str(path):
        raise SercapError(
            f"{printable(str(path))}: {what}'s path is not valid UTF-8; rename it (or link to "
            "it from a UTF-8 path)"
        )


def option(name: str) -> str:
    """A parameter as both front ends spell it, for messages that ask to give or change it.

    A message read in a notebook must not only say ``--corpus``; one read in a shell must
    not only say ``corpus=``. Parameters are named as in the Python API (underscores).

    >>> option("corpus")
    '--corpus / corpus='
    >>> option("speaker_norm")
    '--speaker-norm / speaker_norm='
    """
    return f"--{name.replace('_', '-')} / {name}="


def step(cli: str, python: str) -> str:
    """A step to run, as both front ends spell it, for messages that say what to run first.

    A message read in a notebook must not only name a shell command; one read in a shell
    must not only name a function.

    >>> step("extract", "extract(wh)")
    '`sercap extract` / `sercap.extract(wh)`'
    >>> step("check --repair", "repair(wh)")
    '`sercap check --repair` / `sercap.repair(wh)`'
    """
    return f"`sercap {cli}` / `sercap.{python}`"


#: The steps messages name most often, as both front ends spell them.
REPAIR_STEP = step("check --repair", "repair(wh)")
INGEST_STEP = step("ingest KIND DIR", "ingest(wh, KIND, DIR)")
#: What to do about a damaged part (both front ends).
REPAIR_HINT = (
    f"run {step('check', 'verify(wh)')} to list damaged parts and {REPAIR_STEP} to rebuild them"
)


#: errno values of a disk that refuses a write (full, over quota, read-only, no permission,
#: failing): what the writers that can carry on, or say so in one line, catch.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO})


def catalog_damage_error(text: str, root: str | Path) -> SercapError:
    """The one-line error for a damaged catalog (``sercap.duckdb``), which no part can
    rebuild: it holds the corpora, labels, runs and the registry of parts."""
    return SercapError(
        f"the warehouse catalog {Path(root) / 'sercap.duckdb'} is damaged ({text})",
        hint="restore sercap.duckdb from a copy, or build a new warehouse (ingest, then "
        "extract): its Parquet parts cannot rebuild the catalog",
    )


def damaged_part_error(exc: BaseException, root: str | Path) -> SercapError | None:
    """A one-line error for a DuckDB error about reading one of this warehouse's parts (or
    its catalog, :func:`catalog_damage_error`), or None when ``exc`` is about something else.

    Examples
    --------
    >>> import duckdb, tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "features").mkdir()
    >>> _ = (root / "features" / "part-1.parquet").write_bytes(b"PAR1 damaged")
    >>> err = damaged_part_error(
    ...     duckdb.InvalidInputException(
    ...         f'Invalid Input Error: Failed to read file "{root}/features/part-1.parquet": '
    ...         "ZSTD Decompression failure"
    ...     ),
    ...     root,
    ... )
    >>> err.message
    'stored part features/part-1.parquet cannot be read (ZSTD Decompression failure)'
    >>> err.hint == REPAIR_HINT
    True
    """
    if not type(exc).__module__.lstrip("_").startswith("duckdb"):  # _duckdb.Error and kin
        return None
    text = (str(exc).strip().splitlines() or [""])[0]
    if is_catalog_damage(text):
        return catalog_damage_error(text, root)
    hint = REPAIR_HINT
    found = _PART_IN_MESSAGE.search(text)
    if found is None:  # some decoder errors name no file ("TProtocolException: Invalid data")
        if _PARQUET_DAMAGE.search(text) and not _QUOTED_PATH.search(text):
            return SercapError(f"a stored part cannot be read ({text})", hint=hint)
        return None  # about something else, or another file (sercap.duckdb read as Parquet)
    path = Path(found.group(1))
    if any(c in found.group(1) for c in "*?[") or not path.is_file():
        return None  # a glob or a file that is not there: not a damaged part
    try:
        shown = path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None  # a file outside the warehouse (a user's own read_parquet)
    reason = text[found.end() :].lstrip(": ").strip() or text
    return SercapError(f"stored part {shown} cannot be read ({reason})", hint=hint)


__all__ = [
    "AudioError",
    "BadParameterError",
    "NotExtractedError",
    "NotFoundError",
    "QueryError",
    "RefusedError",
    "SercapError",
    "WarehouseBusyError",
    "damaged_part_error",
    "option",
    "step",
]
