"""The warehouse: one DuckDB catalog plus Parquet parts beside it.

A warehouse is a directory. ``sercap.duckdb`` holds the catalog tables and the views defined
in ``sql/``; bulk data (per-frame descriptors, materialised functionals, spectrogram images)
lives in Parquet parts under ``frames/``, ``features/`` and ``images/``. Parts are written by
whoever computes them (under a temporary name, renamed into place) and become visible only
once registered in the ``parts`` table: a crash can leave an orphan file, never a half row.

This module holds the connection, the schema and transactions; the layout of the folder is
:mod:`sercap.store.layout`, parts :mod:`sercap.store.parts`, views :mod:`sercap.store.views`.
Services ask :mod:`sercap.store` for paths, connections, views and catalog rows.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from sercap._interrupt import is_interrupt
from sercap._lazy import pl
from sercap.errors import (
    NotFoundError,
    SercapError,
    WarehouseBusyError,
    catalog_damage_error,
    damaged_part_error,
    is_catalog_damage,
    require_utf8_path,
)
from sercap.sqlfiles import sql_dir
from sercap.store import parts, views
from sercap.store.layout import DB_FILENAME

if TYPE_CHECKING:
    import pyarrow as pa

#: Version of the catalog schema this code writes. Changes to a table are numbered scripts in
#: ``sql/`` (``0NN_*.sql``) that are idempotent (``ADD COLUMN IF NOT EXISTS``) and applied in
#: order at every writable open; bump this only for a change such scripts cannot make.
SCHEMA_VERSION = 1


def default_path() -> Path:
    """``$SERCAP_WAREHOUSE`` if set, else ``./warehouse``."""
    return Path(os.environ.get("SERCAP_WAREHOUSE") or "warehouse").expanduser()


#: DuckDB types polars cannot import (it fails, or panics when they are nested) or imports
#: wrongly (a TIMETZ loses its offset; BIT and BIGNUM come as opaque bytes).
_UNSHOWABLE = ("INTERVAL", "UNION(", "TIME WITH TIME ZONE", "BIT", "BIGNUM", "VARIANT")


def _as_text_where_needed(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """``rel`` with each column whose type holds one of :data:`_UNSHOWABLE` cast to VARCHAR,
    and each name that repeats (``SELECT *`` of a join: ``utt_id`` twice, which polars
    refuses) numbered from its second time (``utt_id_2``). Columns are taken by position,
    so the repeated names stay apart; projecting a statement's result does not run the
    statement again.

    >>> con = duckdb.connect()
    >>> rel = con.sql("SELECT 1 AS id, INTERVAL 2 DAY AS span, 3 AS id")
    >>> _as_text_where_needed(rel).fetchall()
    [(1, '2 days', 3)]
    >>> _as_text_where_needed(rel).columns
    ['id', 'span', 'id_2']
    """
    names = _numbered(rel.columns)
    exprs, changed = [], names != list(rel.columns)
    for i, (name, kind) in enumerate(zip(names, rel.types, strict=True), start=1):
        quoted = '"' + name.replace('"', '""') + '"'
        if any(t in str(kind) for t in _UNSHOWABLE):
            exprs.append(f"CAST(#{i} AS VARCHAR) AS {quoted}")
            changed = True
        elif str(kind) == "TIMESTAMP_S":  # its 'infinity' overflows on the way to Arrow
            exprs.append(f"CAST(#{i} AS TIMESTAMP) AS {quoted}")  # (read as 1969-12-31)
            changed = True
        elif (texted := _dates_as_text(kind)) is not None:
            exprs.append(f"CAST(#{i} AS {texted}) AS {quoted}")
            changed = True
        else:
            exprs.append(f"#{i} AS {quoted}")
    return rel.project(", ".join(exprs)) if changed else rel


#: DuckDB's date and time types (their ``DuckDBPyType.id``): inside a list or a struct,
#: values Python cannot hold (``'infinity'``, year 10000) make polars panic, where
#: :func:`sercap.format._python_range` does not look, and the others print as Python's
#: repr (``datetime.time(10, 0)``): they are written as DuckDB writes them.
_DATE_IDS = frozenset(
    {"date", "timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns"}
    | {"timestamp with time zone", "time", "time with time zone"}
)


def _dates_as_text(kind: Any, nested: bool = False) -> str | None:
    """The type ``kind`` with each date or timestamp inside a list, array, struct or map
    replaced by VARCHAR (the shape kept: JSON still gets arrays and objects), or None when
    it holds none. A date or timestamp column itself is left to
    :func:`sercap.format._python_range`, which keeps its type where it can.

    >>> con = duckdb.connect()
    >>> kinds = con.sql("SELECT [DATE '2020-01-02'], {'DATE': TIMESTAMP '2020-01-02'}, 1").types
    >>> [_dates_as_text(k) for k in kinds]
    ['VARCHAR[]', 'STRUCT("DATE" VARCHAR)', None]
    """
    children = kind.children if kind.id in ("list", "array", "struct", "map") else []
    if not children:
        return "VARCHAR" if nested and kind.id in _DATE_IDS else None
    if kind.id == "struct":
        fields = [(name, _dates_as_text(child, True)) for name, child in children]
        if all(t is None for _, t in fields):
            return None
        parts = [
            '"' + name.replace('"', '""') + '" ' + (t or str(child))
            for (name, t), (_, child) in zip(fields, children, strict=True)
        ]
        return f"STRUCT({', '.join(parts)})"
    if kind.id == "map":
        (_, key), (_, value) = children
        k, v = _dates_as_text(key, True), _dates_as_text(value, True)
        return None if k is None and v is None else f"MAP({k or key}, {v or value})"
    inner = children[0][1]
    texted = _dates_as_text(inner, True)
    if texted is None:
        return None
    return f"{texted}[]" if kind.id == "list" else f"{texted}[{children[1][1]}]"


def _numbered(names: Sequence[str]) -> list[str]:
    """``names`` with each repeat numbered from its second time, never onto a name taken.

    >>> _numbered(["id", "x", "id", "id_2", "id"])
    ['id', 'x', 'id_3', 'id_2', 'id_4']
    """
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        new, n = name, 1
        while new in seen or (new != name and new in taken):
            n += 1
            new = f"{name}_{n}"
        seen.add(new)
        out.append(new)
    return out


#: Rows per batch when :meth:`Warehouse.query_head` reads a result (DuckDB's vector size).
HEAD_BATCH_ROWS = 2048
#: About how many bytes of a result :meth:`Warehouse.frames` holds at a time.
STREAM_BYTES = 32 * 2**20


def _as_duckdb_error(exc: BaseException) -> duckdb.Error:
    """The DuckDB exception an error's text names (``"Conversion Error: …"`` →
    ``duckdb.ConversionException``; ``duckdb.Error`` when the name is not one of DuckDB's).

    >>> type(_as_duckdb_error(OSError("Conversion Error: Could not convert 'x'"))).__name__
    'ConversionException'
    """
    text = str(exc)
    prefix, sep, _ = text.partition(" Error:")
    name = prefix.replace(" ", "") + "Exception"
    cls = getattr(duckdb, name, None) if sep else None
    if not (isinstance(cls, type) and issubclass(cls, duckdb.Error)):
        cls = duckdb.Error
    return cls(text)


@dataclass
class Warehouse:
    """An open warehouse: ``root`` for Parquet parts, ``con`` for the catalog.

    Hold it briefly: DuckDB lets one process write a database file at a time, so long jobs
    (extraction workers, Optuna trials) read what they need, close, and reopen to store.
    """

    root: Path
    con: duckdb.DuckDBPyConnection
    read_only: bool = False
    #: Registered parts found missing or of the wrong size when the views were last built
    #: (relative path, what is wrong); the views leave them out. ``sercap check`` says more.
    damaged: list[tuple[str, str]] = field(default_factory=list)
    #: The files read-only SQL may read, once :func:`sercap.api.sql` has fenced this
    #: (read-only) connection; DuckDB keeps the fence for the connection's life.
    sql_fence: list[str] | None = field(default=None, repr=False)
    #: A ``connect(":memory:")`` warehouse's own temporary folder, removed by :meth:`close`
    #: (or, for one never closed, when the object is collected or the process exits).
    temporary: bool = field(default=False, repr=False)
    _in_transaction: bool = field(default=False, repr=False)
    _cleanup: Any = field(default=None, repr=False, compare=False)
    #: Audio fingerprints a read-only connection hashed again and found unchanged (it
    #: cannot record them): by path, so the next dataset load does not hash them again.
    audio_seen: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The result :meth:`_read` is streaming, until it is read to the end or closed.
    _reading: Any = field(default=None, repr=False, compare=False)
    #: What the parts table held when this connection last built its views.
    _parts_seen: Any = field(default=None, repr=False, compare=False)

    # -- queries -----------------------------------------------------------------------
    def query(
        self,
        sql: str,
        params: Sequence[Any] | dict | None = None,
        *,
        text_types: bool = False,
    ) -> pl.DataFrame:
        """Run a query and return all of its rows as a polars DataFrame.

        A stored part that cannot be read (damaged without changing its size, which opening
        does not see) raises a one-line :class:`SercapError` naming the part and the repair.
        With ``text_types``, columns of types polars cannot hold (an INTERVAL or a UNION,
        also inside a struct, list or map) come back as DuckDB's text of them (for queries
        a user wrote; the statement runs once either way).
        """
        self.release()
        with self._damage_said():
            rel = self.con.sql(sql, params=params)
            if rel is None:
                return pl.DataFrame()
            if text_types:
                rel = _as_text_where_needed(rel)
            return rel.pl()

    @contextlib.contextmanager
    def _damage_said(self) -> Iterator[None]:
        """A DuckDB error about a damaged part (or catalog) of this warehouse, raised in the
        block, as one line naming it and the repair (:func:`damaged_part_error`)."""
        try:
            yield
        except Exception as exc:
            if is_interrupt(exc):  # a Ctrl-C, as DuckDB reports it ("Query interrupted"):
                raise KeyboardInterrupt from exc  # Python's own, as everywhere else
            damaged = damaged_part_error(exc, self.root)  # (None: not a DuckDB error)
            if damaged is None:
                raise
            raise damaged from exc

    def query_head(
        self, sql: str, limit: int, *, text_types: bool = False
    ) -> tuple[pl.DataFrame, int]:
        """The first ``limit`` rows of a query as a polars DataFrame, and how many rows it has.

        The result is read in batches of DuckDB's vector size (:meth:`frames`): rows past
        ``limit`` are counted and dropped, so a result of millions of rows (``SELECT * FROM
        frames``) holds one batch in memory, not the whole result. Otherwise as
        :meth:`query`.
        """
        kept: list[pl.DataFrame] = []
        held = total = 0
        for frame in self.frames(sql, text_types=text_types, rows=HEAD_BATCH_ROWS):
            total += frame.height
            if held < limit or not kept:  # (the first, even empty: it has the columns)
                kept.append(frame.head(limit - held))
                held += kept[-1].height
        return pl.concat(kept, rechunk=True), total

    def frames(
        self, sql: str, *, text_types: bool = False, rows: int | None = None
    ) -> Iterator[pl.DataFrame]:
        """A query's result as polars DataFrames of ``rows`` rows (default: about
        :data:`STREAM_BYTES` each), read as they are consumed (one in memory at a time); an
        empty result is one empty frame with the result's columns. ``text_types`` as for
        :meth:`query`. Read it to the end, or close it (see :meth:`batches`)."""
        rel = self._relation(sql)  # (binds now: a typo raises before anything is read)
        if rel is None:
            yield pl.DataFrame()
            return
        if text_types:
            rel = _as_text_where_needed(rel)
        if rows is None:
            rows = max(HEAD_BATCH_ROWS, STREAM_BYTES // (8 * max(len(rel.columns), 1)))
        empty = True
        for batch in self._read(rel, rows):
            empty = False
            yield pl.from_arrow(batch)
        if empty:  # no batch: the columns still come back
            yield pl.from_arrow(rel.limit(0).to_arrow_table())

    def batches(self, sql: str, rows: int | None = None) -> Iterator[pa.RecordBatch]:
        """A query's result as Arrow record batches of at most ``rows`` rows, read as they
        are consumed (one batch in memory at a time). Read it to the end, or close it:
        DuckDB refuses other queries on the connection while a result is partly read.
        ``rows`` defaults to :data:`HEAD_BATCH_ROWS`."""
        rel = self._relation(sql)
        if rel is not None:
            yield from self._read(rel, rows)

    def _relation(self, sql: str) -> duckdb.DuckDBPyRelation | None:
        """``con.sql(sql)``, a damaged part met while binding as one line (as :meth:`query`)."""
        self.release()
        with self._damage_said():
            return self.con.sql(sql)

    def _read(
        self, rel: duckdb.DuckDBPyRelation, rows: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """``rel``'s record batches as they are read; a damaged part as one line.

        An error DuckDB raises after the first batch reaches Python through pyarrow's
        stream, as an ``OSError`` (or ``ArrowException``) holding DuckDB's text: it is raised
        again as the DuckDB exception that text names, so callers handle it as any other.
        """
        import pyarrow as pa

        with self._damage_said(), rel.to_arrow_reader(batch_size=rows or HEAD_BATCH_ROWS) as reader:
            self._reading = reader
            try:
                yield from reader
            except (OSError, pa.ArrowException) as exc:
                if self._reading is not reader:  # closed by release(): said, not DuckDB's text
                    raise SercapError(
                        "a query result was read after the warehouse ran another query, "
                        "which closed what was left of it",
                        hint="read a streamed result to the end before the next query",
                    ) from exc
                raise _as_duckdb_error(exc) from exc
            finally:
                if self._reading is reader:
                    self._reading = None

    def release(self) -> None:
        """Close what is left of a result whose reader stopped part-way (a ``break`` out of
        :func:`sercap.sql_stream`'s frames), which DuckDB holds open and which blocks every
        other query on the connection. Each query of this class calls it first; a reader
        that goes on afterwards gets a one-line error, not fewer rows."""
        reader, self._reading = self._reading, None
        if reader is not None:
            reader.close()

    def execute(self, sql: str, params: Sequence[Any] | dict | None = None) -> None:
        """Run a statement whose result is not needed (fully consumed, as DuckDB 2 asks).

        Outside a :meth:`transaction` a write commits at once, and a commit the disk cannot
        take is one line naming the catalog, as :meth:`_commit` says it."""
        self.release()
        try:
            result = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
            if result.description is not None:
                result.fetchall()
        except duckdb.Error as exc:
            failure = None if self._in_transaction else self._write_failure(exc)
            if failure is None:
                raise
            raise failure from exc

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        """First column of the first row, or None."""
        self.release()
        result = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        rows = result.fetchall()
        return rows[0][0] if rows else None

    def has_relation(self, name: str) -> bool:
        """Whether a table or view of that name exists (temporary views included)."""
        return bool(
            self.scalar(
                "SELECT (SELECT count(*) FROM duckdb_tables() WHERE table_name = $1)"
                " + (SELECT count(*) FROM duckdb_views() WHERE view_name = $1)",
                [name],
            )
        )

    def columns_of(self, table: str) -> set[str]:
        """The columns catalog table ``table`` has: an older warehouse opened read-only
        (never migrated) lacks those later ``sql/`` files add."""
        rows = self.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
            "AND schema_name = 'main' AND database_name = current_database()",
            [table],
        ).fetchall()
        return {name for (name,) in rows}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """All or nothing: commit on success, roll back on any exception (Ctrl-C included)."""
        if self._in_transaction:
            yield self
            return
        self.con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self._commit()
        finally:
            self._in_transaction = False

    def _commit(self) -> None:
        """COMMIT; a catalog the disk cannot take (full, gone read-only) is one line in
        sercap's words, as a part that cannot be written is, not DuckDB's "TransactionContext
        Error: Failed to commit: Could not write file …"."""
        try:
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):  # (DuckDB may have rolled back itself)
                self.con.execute("ROLLBACK")
            failure = self._write_failure(exc)
            if failure is None:  # a constraint, a conflict: DuckDB's own
                raise
            raise failure from exc

    def _write_failure(self, exc: BaseException) -> SercapError | None:
        """The one-line error for a catalog write the disk refused (full, read-only, not
        writable: DuckDB's "Failed to commit: Could not write file …wal"), else None."""
        text = str(exc)
        io = ("Could not write", "No space left", "Read-only file system", "Disk quota",
              "Permission denied", "Cannot open file")  # fmt: skip
        if not any(what in text for what in io):
            return None
        reason = text.rsplit(": ", 1)[-1].strip() or type(exc).__name__
        return SercapError(
            f"{self.root / DB_FILENAME}: the catalog could not be written ({reason}); "
            "nothing of this step was stored: free space on that disk (or make it "
            "writable) and run it again, it resumes"
        )

    # -- Parquet parts (sercap.store.parts) ---------------------------------------------
    def part_dir(self, kind: str, feature_set_hash: str, corpus: str) -> Path:
        """Folder of the parts of one (kind, feature set, corpus); created on demand."""
        return parts.part_dir(self, kind, feature_set_hash, corpus)

    def register_part(
        self,
        kind: str,
        feature_set_hash: str,
        corpus: str,
        path: Path,
        n_rows: int,
        columns: str | None = None,
    ) -> None:
        """Record a finished part (see :func:`sercap.store.parts.register_part`)."""
        parts.register_part(self, kind, feature_set_hash, corpus, path, n_rows, columns)

    def part_paths(self, kind: str, feature_set_hash: str, corpus: str | None = None) -> list[Path]:
        """Absolute paths of the registered parts of a feature set (optionally one corpus)."""
        return parts.part_paths(self, kind, feature_set_hash, corpus)

    def remove_orphan_parts(self, kind: str, feature_set_hash: str, corpus: str) -> int:
        """Delete files in a part folder that were never registered (a crash's leftovers)."""
        return parts.remove_orphan_parts(self, kind, feature_set_hash, corpus)

    # -- views (sercap.store.views) ----------------------------------------------------
    def refresh_views(self) -> None:
        """(Re)create the views over the registered parts (see
        :func:`sercap.store.views.refresh_views`)."""
        views.refresh_views(self)
        self._parts_seen = self._parts_state()

    def _parts_state(self) -> tuple:
        return self.con.execute(
            "SELECT count(*), coalesce(sum(hash(path, sha256, size_bytes, created_at)), 0) "
            "FROM parts"  # (a part registered again at its path changes its digest and time)
        ).fetchall()[0]

    def views_current(self) -> None:
        """Build this connection's views again when another connection in this process
        registered or removed parts since they were built: a notebook's second ``connect``
        of the same warehouse extracted a set, and the first one's views did not show it (a
        query of it fell through to the stored view's relative paths, a raw DuckDB error)."""
        if self._parts_seen is not None and self._parts_state() != self._parts_seen:
            self.refresh_views()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return isinstance(self.con, _ClosedConnection)

    @property
    def on_read_only_disk(self) -> bool:
        """Whether this process cannot write the warehouse's folder or catalog at all (a
        read-only mount, another user's files): opening it writable would fail, so work
        that would store something is done in memory instead (``predict``'s final model)."""
        if self.temporary:
            return False
        catalog = self.root / DB_FILENAME
        return not os.access(self.root, os.W_OK) or (
            catalog.exists() and not os.access(catalog, os.W_OK)
        )

    @contextlib.contextmanager
    def released(
        self,
        wait_s: float = 3600.0,
        *,
        done: str = "the work",
        then: str = "nothing is stored: run it again once the warehouse is free",
        hint: str | None = None,
    ) -> Iterator[None]:
        """Let other processes open the warehouse while the block runs, then take it back.

        DuckDB lets no other process open a file that one holds for writing, not even to
        read, so a ``train`` fitting for a quarter of an hour (IEMOCAP's size) made ``sql``
        and ``info`` give up after their minute's wait. Work that reads nothing from the
        warehouse (the folds' fits, after the data is loaded) runs in this block: the
        catalog is closed and opened again after it, waiting up to ``wait_s`` for another
        writer (saying so, as any open does). A read-only handle is given back too (while a
        process reads, DuckDB lets none open the file for writing: a ``report`` refitting
        models for its importance charts kept every writer out) and opened read-only again.
        In-memory warehouses stay open (no lock to give back), and so do one in a
        :meth:`transaction` and a connection :func:`sercap.sql` fenced.

        The new connection is this warehouse's, views and all; what a caller made on the old
        one for itself (a ``TEMP`` table or macro, a ``SET``) is gone after the block. When
        it cannot be opened again after the block, the error says ``done`` is done and
        ``then`` (what is kept, and what to run), with ``hint``.
        """
        database = self.con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()[0][0]
        if self.temporary or not database or self._in_transaction or self.sql_fence is not None:
            yield  # (in a transaction: closing would roll back what the caller wrote)
            return
        self.close()
        # Until it is taken back, a use of this handle takes it back itself: when another
        # process holds the warehouse at the end of the block (a reader in another notebook),
        # the handle is not left closed by a close the user never called.
        self.con = _ReleasedConnection(self)  # type: ignore[assignment]
        try:
            yield
        except BaseException:  # a Ctrl-C: end now, never wait (up to an hour) for the lock
            with contextlib.suppress(SercapError):
                self._take_back(wait_s=0)
            raise
        try:
            self._take_back(wait_s=wait_s)
        except SercapError as exc:
            raise SercapError(
                f"{done} is done, but the warehouse could not be opened again to store it "
                f"({exc}); {then}",
                hint=hint,
            ) from exc

    def _take_back(self, wait_s: float = 60.0) -> None:
        """Open the catalog again after :meth:`released` (waiting up to ``wait_s`` for
        another process, as any open does)."""
        self.con = connect(self.root, read_only=self.read_only, wait_s=wait_s).con

    def close(self) -> None:
        """Close the catalog (again is fine); any later use is a one-line error."""
        if isinstance(self.con, _ClosedConnection):
            return
        if not isinstance(self.con, _ReleasedConnection):
            self.con.close()
        if self.temporary or not (self.root / DB_FILENAME).is_file():
            again = 'its catalog was in memory: connect a new one with sercap.connect(":memory:")'
        else:
            flag = ", read_only=True" if self.read_only else ""
            again = f"open it again with sercap.connect({str(self.root)!r}{flag})"
        self.con = _ClosedConnection(self.root, again)  # type: ignore[assignment]
        if self._cleanup is not None:
            self._cleanup()  # _remove_unreachable, once

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _no_warehouse(root: Path) -> NotFoundError:
    if (root / "warehouse" / DB_FILENAME).is_file():  # `-w demo` for the demo's folder
        return NotFoundError(
            f"no warehouse at {root}, but there is one in {root / 'warehouse'}: use that path"
        )
    return NotFoundError(
        f"no warehouse at {root}: create one with `sercap ingest KIND DIR` (or `sercap "
        "demo`), or in Python with `sercap.connect(path)` and `sercap.ingest(wh, KIND, DIR)`"
    )


def _refuse_parts_without_catalog(root: Path) -> None:
    """Stored parts with no catalog beside them: its file was lost or moved. Creating a new
    catalog there would make the next `extract` delete every part as a crash's leftover,
    and a backup of the catalog could then no longer be restored."""
    from sercap.store.layout import PART_KINDS

    n = sum(1 for kind in PART_KINDS for _ in (root / kind).rglob("*.parquet"))
    if n:
        raise SercapError(
            f"{root}: {n} stored part(s) but no catalog ({DB_FILENAME}): restore "
            f"{DB_FILENAME} from a copy, or move the folder away to start a new warehouse"
        )


def _remove_unreachable(root: Path) -> None:
    """What only an in-memory catalog could read (parts, cached models) goes with it; what
    the caller was handed a path or an object for (reports, study journals) stays, and the
    folder goes when nothing is left."""
    from sercap.store.layout import PART_KINDS

    for name in (*PART_KINDS, "artifacts"):
        shutil.rmtree(root / name, ignore_errors=True)
    with contextlib.suppress(OSError):
        root.rmdir()  # only when empty


class _ClosedConnection:
    """What a closed warehouse's ``con`` becomes: DuckDB would say "Connection has already
    been closed" from deep inside whichever verb a notebook cell ran next."""

    def __init__(self, root: Path, again: str) -> None:
        self._root, self._again = root, again

    def __getattr__(self, name: str) -> Any:
        raise SercapError(f"the warehouse at {self._root} is closed; {self._again}")


class _ReleasedConnection:
    """A warehouse's ``con`` while :meth:`Warehouse.released` has given the lock
    back, and after it when the catalog could not be taken back then (another process held
    it): the next use opens it again, waiting for the other process as an open does."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    def __getattr__(self, name: str) -> Any:
        self._warehouse._take_back()
        return getattr(self._warehouse.con, name)


def _lock_holder(pid: str) -> str:
    """``command, started HH:MM:SS`` of process ``pid`` from /proc where there is one, else ''."""
    try:
        proc = Path("/proc") / pid
        command = proc.joinpath("cmdline").read_bytes().decode(errors="replace")
        ticks = int(proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[19])
        stat = Path("/proc/stat").read_text().split()
        boot = int(stat[stat.index("btime") + 1])
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return ""
    command = " ".join(command.replace("\0", " ").split())  # one line, whatever argv holds
    command = command if len(command) <= 80 else command[:77] + "..."
    return f"`{command}`, started {time.strftime('%H:%M:%S', time.localtime(started))}"


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _open_duckdb(
    database: str,
    read_only: bool,
    wait_s: float,
    on_wait: Callable[[str], None] | None = _stderr_line,
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, waiting while another sercap process holds its write lock.

    When the file is locked, ``on_wait`` gets one line (which process holds it, since when,
    how long this one will wait) once, as the waiting starts; by default it goes to stderr,
    ``None`` waits silently. After ``wait_s`` seconds a :class:`SercapError` gives up.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.05
    told = False
    while True:
        try:
            return duckdb.connect(database, read_only=read_only)
        except duckdb.IOException as exc:
            message = str(exc).splitlines()[0]
            holder = re.search(r"\(PID (\d+)\)", message)
            if "lock" in message.lower() and time.monotonic() > deadline:
                pid = holder.group(1) if holder else None
                what = _lock_holder(pid) if pid else ""
                who = f" (PID {pid}{': ' + what if what else ''})" if pid else ""
                rule = (  # a reader waits only for a writer; a writer for anyone
                    "while a process has it open for writing DuckDB lets no other open it, "
                    "not even to read"
                    if read_only
                    else "while any process has it open, even read-only, DuckDB lets no "
                    "other open it for writing"
                )
                raise WarehouseBusyError(
                    f"{database}: the warehouse is in use by another process{who}; {rule}",
                    hint="wait for that command to finish; a notebook or script holding it "
                    "must close it (wh.close())"
                    + (" or open it with read_only=True" if read_only else "")
                    + "; or use another warehouse directory",
                ) from exc
            if is_catalog_damage(message):  # emptied, overwritten, cut short
                raise catalog_damage_error(message, Path(database).parent) from exc
            if "lock" not in message.lower():
                raise SercapError(f"{database}: cannot open the warehouse ({message})") from exc
            if not told and on_wait is not None:
                pid = holder.group(1) if holder else None
                what = _lock_holder(pid) if pid else ""
                who = f"PID {pid}" + (f" ({what})" if what else "") if pid else "another process"
                on_wait(
                    f"waiting: {database} is locked by {who}; waiting since "
                    f"{time.strftime('%H:%M:%S')} for up to {wait_s:g} s (Ctrl-C to stop)"
                )
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _apply_schema(con: duckdb.DuckDBPyConnection, database: str) -> None:
    """Create or migrate the catalog, then (re)apply every numbered file under ``sql/``.

    All of it is one transaction, so an interruption (Ctrl-C during the first ``ingest``)
    leaves either the previous schema or the whole new one, never half of it.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        _apply_schema_statements(con, database)
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # already rolled back, or gone
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _schema_fingerprint() -> tuple[str, set[str]]:
    """A hash of the schema version and every numbered file under ``sql/``, and the names
    of the tables and views those files create."""
    import hashlib

    digest = hashlib.sha256(str(SCHEMA_VERSION).encode())
    names: set[str] = set()
    for path in sorted(sql_dir().glob("[0-9]*.sql")):
        text = path.read_text()
        digest.update(path.name.encode() + b"\0" + text.encode())
        names |= set(
            re.findall(
                r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
                text,
                flags=re.I,
            )
        )
    return digest.hexdigest()[:16], names


def _schema_is_current(con: duckdb.DuckDBPyConnection, fingerprint: str, names: set[str]) -> bool:
    """Whether the catalog was last set up by these very ``sql/`` files and still has every
    table and view they create (one a user dropped is made again)."""
    rows = con.execute(
        "SELECT value FROM schema_info WHERE key IN ('version', 'schema_sql') ORDER BY key"
    ).fetchall()
    if [r[0] for r in rows] != [fingerprint, str(SCHEMA_VERSION)]:  # 'schema_sql' < 'version'
        return False
    have = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
            "AND database_name = current_database() UNION ALL SELECT view_name FROM "
            "duckdb_views() WHERE schema_name = 'main' AND database_name = current_database()"
        ).fetchall()
    }
    return names <= have


def _apply_schema_statements(con: duckdb.DuckDBPyConnection, database: str) -> None:
    has_info = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_info'"
    ).fetchall()[0][0]
    fingerprint, names = _schema_fingerprint()
    # Up to date: nothing to run, so a writable open changes no byte of the catalog (every
    # open re-ran the scripts, and a command that then failed had still rewritten the file).
    if has_info and _schema_is_current(con, fingerprint, names):
        return
    version = 0
    if has_info:
        rows = con.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchall()
        version = int(rows[0][0]) if rows else 0
    if version > SCHEMA_VERSION:
        raise SercapError(
            f"{database}: warehouse schema version {version} is newer than this sercap "
            f"understands ({SCHEMA_VERSION}); upgrade sercap"
        )
    if 0 < version < SCHEMA_VERSION:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            migration = sql_dir() / "migrations" / f"{step:04d}.sql"
            if not migration.is_file():
                raise SercapError(
                    f"{database}: schema version {version} cannot be migrated to "
                    f"{SCHEMA_VERSION} ({migration.name} missing); re-create the warehouse"
                )
            con.execute(migration.read_text())
    for path in sorted(sql_dir().glob("[0-9]*.sql")):
        try:
            con.execute(path.read_text())
        except duckdb.Error as exc:
            raise SercapError(f"{path}: {str(exc).splitlines()[0]}") from exc
    con.execute("INSERT OR REPLACE INTO schema_info VALUES ('version', ?)", [str(SCHEMA_VERSION)])
    con.execute("INSERT OR REPLACE INTO schema_info VALUES ('schema_sql', ?)", [fingerprint])


_ADDED_COLUMN = re.compile(
    r"^\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+([^;]+?)\s*;?\s*$",
    flags=re.I | re.S,
)
_NEW_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", flags=re.I)
_VIEW = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+VIEW\s+", flags=re.I)


def _shadow_older_schema(con: duckdb.DuckDBPyConnection) -> None:
    """On a read-only connection to a catalog last set up by an older sercap's ``sql/``
    files, temporary stand-ins for what the newer files add: each missing table (empty),
    each table missing a column as a view with that column NULL, and every view of the
    files as this sercap defines it. Nothing is written: the stand-ins live in this
    connection only, and the next writable open migrates the catalog itself.

    Without them a read-only command (``report``, ``predict``, ``runs``…) on a warehouse
    written by the previous release failed on the first column or view column it named.
    """
    fingerprint, names = _schema_fingerprint()
    if _schema_is_current(con, fingerprint, names):
        return
    database = con.execute("SELECT current_database()").fetchall()[0][0]
    columns: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall():
        columns.setdefault(table, set()).add(column)
    missing: dict[str, list[str]] = {}  # table -> "NULL::TYPE AS column" of each added one
    views: list[str] = []
    made: set[str] = set()  # tables made here, empty (a column added to them: added there)
    for path in sorted(sql_dir().glob("[0-9]*.sql")):
        for statement in con.extract_statements(path.read_text()):
            text = "\n".join(
                line for line in statement.query.splitlines() if not line.lstrip().startswith("--")
            )
            if (new := _NEW_TABLE.match(text)) and new.group(1) not in columns:
                con.execute(_NEW_TABLE.sub(lambda m: f"CREATE TEMP TABLE {m.group(1)}", text, 1))
                columns[new.group(1)] = set()
                made.add(new.group(1))
            elif added := _ADDED_COLUMN.match(text):
                table, column, kind = added.groups()
                if table in made:
                    con.execute(text)
                elif column not in columns.get(table, {column}):
                    missing.setdefault(table, []).append(f"NULL::{kind} AS {column}")
            elif _VIEW.match(text):
                views.append(_VIEW.sub("CREATE OR REPLACE TEMP VIEW ", text, 1))
    quoted = '"' + database.replace('"', '""') + '"'
    for table, extra in missing.items():
        con.execute(
            f"CREATE TEMP VIEW {table} AS SELECT *, {', '.join(extra)} FROM {quoted}.main.{table}"
        )
    for view in views:
        con.execute(view)


def _refuse_pattern_characters(root: Path) -> None:
    """One line for a warehouse whose absolute path holds ``*``, ``?`` or ``[``: DuckDB reads
    every part path as a file pattern, so ``/data/exp[1]`` read the parts of ``/data/exp1``
    (another warehouse's data, which ``check`` did not see: it hashes the right files)."""
    where = os.path.abspath(root)
    found = sorted({c for c in where if c in "*?["})
    if found:
        raise SercapError(
            f"{where}: the warehouse's path holds {' '.join(repr(c) for c in found)}, which "
            "DuckDB reads as a file pattern (it would read other folders' parts)",
            hint="move or link the warehouse to a path without * ? [",
        )


def connect(
    path: str | os.PathLike[str] | None = None,
    *,
    memory: bool = False,
    read_only: bool = False,
    wait_s: float = 60.0,
) -> Warehouse:
    """Open (creating if needed) the warehouse at ``path`` (default: :func:`default_path`).

    ``path=":memory:"`` gives an in-memory catalog with Parquet parts in a fresh temporary
    folder; ``memory=True`` keeps the catalog in memory but puts parts under ``path`` (what
    the tests use). ``read_only`` opens an existing warehouse without changing it, which
    several processes may do at once.
    """
    temporary = path is not None and str(path) == ":memory:"
    if temporary:
        root = Path(tempfile.mkdtemp(prefix="sercap-"))
        memory = True
    else:
        root = Path(path).expanduser() if path is not None else default_path()
        require_utf8_path(root, "the warehouse")  # DuckDB cannot open it (std::bad_cast)
        _refuse_pattern_characters(root)
    if root.exists() and not root.is_dir():
        raise SercapError(f"{root}: the warehouse must be a directory, this is a file")
    database = ":memory:" if memory else str(root / DB_FILENAME)
    if not memory and not Path(database).is_file():
        _refuse_parts_without_catalog(root)
        if read_only or (root / "warehouse" / DB_FILENAME).is_file():
            # (`connect("demo")` for the demo's folder made a second, empty warehouse
            # beside the demo's own: "no corpus yet")
            raise _no_warehouse(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SercapError(f"{root}: cannot create the warehouse folder ({exc.strerror})") from exc
    if not read_only and not memory and not os.access(root, os.W_OK):
        # a catalog file this process may write in a folder it may not: DuckDB opens it, and
        # the first commit fails on its log (sercap.duckdb.wal), after a train's whole fit
        read_only_mount = bool(os.statvfs(root).f_flag & os.ST_RDONLY)
        why = "read-only file system" if read_only_mount else "permission denied"
        raise SercapError(
            f"{root}: cannot write into the warehouse folder ({why}), where the catalog "
            f"keeps its log ({DB_FILENAME}.wal) and the parts go",
            hint="make the folder writable, or open the warehouse read-only (read-only "
            "commands do: sql, info, runs, check, report)",
        )
    try:
        wh = _open(root, database, read_only, wait_s)
    except duckdb.Error as exc:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
        text = (str(exc).strip().splitlines() or [""])[0]
        if is_catalog_damage(text):
            raise catalog_damage_error(text, root) from exc
        if "WAL" in text:  # the log of a killed writer's last commits, damaged since
            raise SercapError(
                f"the warehouse's write-ahead log {database}.wal cannot be replayed ({text})",
                hint=f"move {database}.wal aside: the catalog then opens as of its last "
                "checkpoint, without the commits in the log (`sercap check` names their "
                "parts, the next extract stores them again); or restore the warehouse from a "
                "copy",
            ) from exc
        if "different configuration" in text:  # open in this process, the other way
            other = "writable" if read_only else "read-only"
            raise SercapError(
                f"{root}: this process already has the warehouse open {other}, and DuckDB "
                "opens a file one way per process; close that one first (wh.close()), or "
                f"open it {other} here too"
            ) from exc
        raise
    except BaseException:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
        raise
    wh.temporary = temporary
    if temporary:  # a notebook rarely closes: each leaked a folder under /tmp
        import weakref

        wh._cleanup = weakref.finalize(wh, _remove_unreachable, root)
    return wh


def _open(root: Path, database: str, read_only: bool, wait_s: float) -> Warehouse:
    con = _open_duckdb(database, read_only=read_only, wait_s=wait_s)
    try:
        if read_only:
            if not con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_info'"
            ).fetchall()[0][0]:  # created, then interrupted before its schema was committed
                raise _no_warehouse(root)
            version = con.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchall()
            if version and int(version[0][0]) > SCHEMA_VERSION:  # no migration goes forward
                raise SercapError(
                    f"{database}: warehouse schema version {version[0][0]} is newer than this "
                    f"sercap understands ({SCHEMA_VERSION}); upgrade sercap"
                )
            if not version or int(version[0][0]) != SCHEMA_VERSION:
                raise SercapError(
                    f"{database}: schema version differs from this sercap's; open it once "
                    "without read-only access to migrate it"
                )
            _shadow_older_schema(con)
        else:
            _apply_schema(con, database)
        wh = Warehouse(root=root, con=con, read_only=read_only)
        wh.refresh_views()
    except BaseException:
        con.close()
        raise
    return wh
