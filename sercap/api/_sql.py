"""``sql``: run the user's SQL, refusing writes unless asked, fenced when read-only."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sercap.api._common import _takes_warehouse
from sercap.errors import BadParameterError, QueryError, RefusedError, SercapError

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    import polars as pl

    from sercap.store import Warehouse


def sql_statements(query: str, *, write: bool = False) -> list[str]:
    """Split ``query`` into statements with DuckDB's parser, refusing writes unless ``write``.

    Nothing runs: a refused statement stops all of them (see :func:`sql`).

    Parameters
    ----------
    query : str
        One or more SQL statements.
    write : bool
        Allow statements that change the warehouse.

    Returns
    -------
    list of str
        Each statement's text.

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
    query holding its own ``BEGIN``/``COMMIT``, or a ``CHECKPOINT``, runs as written, and
    must end in the same call the transactions it begins: one left open (a ``BEGIN`` here,
    its ``COMMIT`` in a later call) is rolled back with a one-line error, since every other
    verb on the warehouse would fail inside it. The statements have all run when this
    returns; :func:`iter_sql` yields each result as its statement finishes instead.

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

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough unless ``write``).
    query : str or list of str
        One or more SQL statements, as for :func:`sql`.
    write : bool
        Allow statements that change the warehouse, as for :func:`sql`.

    Returns
    -------
    iterator of (str, polars.DataFrame)
        Each statement's text and its whole result, as it finishes.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> [(text, frame.height) for text, frame in sercap.iter_sql(wh, "FROM range(3); SELECT 1")]
    [('FROM range(3)', 3), ('SELECT 1', 1)]
    >>> wh.close()
    """
    return ((text, frame) for text, frame, _rows in _results(wh, query, write, None))


class Preview(NamedTuple):
    """A statement, the first rows of its result, and how many rows the result has."""

    statement: str
    head: pl.DataFrame
    rows: int


@_takes_warehouse
def sql_preview(
    wh: Warehouse, query: str | Sequence[str], limit: int = 50, *, write: bool = False
) -> Iterator[Preview]:
    """:func:`iter_sql` for looking at results: each statement's first ``limit`` rows and
    its number of rows, without holding the whole result.

    Each result is read in batches; the rows past ``limit`` are counted and dropped, so
    ``SELECT * FROM frames`` on a corpus of millions of frames costs one batch of memory
    (what ``sercap sql`` prints as a table). The same checks as :func:`sql` apply, when this
    is called.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough unless ``write``).
    query : str or list of str
        As for :func:`sql`.
    limit : int
        Rows kept of each result.
    write : bool
        As for :func:`sql`.

    Returns
    -------
    iterator of Preview
        ``(statement, head, rows)`` for each statement, as it finishes.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> [(p.head.height, p.rows) for p in sercap.sql_preview(wh, "FROM range(10000)", 3)]
    [(3, 10000)]
    >>> wh.close()
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise BadParameterError(f"limit={limit!r}", hint="give a number of rows (0 or more)")
    return (Preview(*result) for result in _results(wh, query, write, limit))


@_takes_warehouse
def sql_stream(
    wh: Warehouse, query: str | Sequence[str], *, write: bool = False
) -> Iterator[tuple[str, Iterator[pl.DataFrame]]]:
    """:func:`iter_sql` for results too large to hold: each statement and its result as
    polars DataFrames of about 32 MB each, read as they are consumed.

    What ``sercap sql --format csv|json`` and ``--out`` write. DuckDB runs one query at a
    time on a connection: asking for the next statement closes what is left of the current
    one's frames, and so does any other query or verb on the warehouse (a ``break`` out of
    the loop leaves nothing open); frames read after that raise a one-line error, never
    stop early. With ``write``, the statements run as one
    transaction as :func:`sql` says, and each result comes whole, as one frame.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough unless ``write``).
    query : str or list of str
        One or more SQL statements, as for :func:`sql`.
    write : bool
        As for :func:`sql`.

    Returns
    -------
    iterator of (str, iterator of polars.DataFrame)
        Each statement's text and its result's frames.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect(":memory:")
    >>> [(text, sum(f.height for f in frames))
    ...  for text, frames in sercap.sql_stream(wh, "FROM range(100000)")]
    [('FROM range(100000)', 100000)]
    >>> wh.close()
    """
    if write:
        return ((text, iter([frame])) for text, frame in iter_sql(wh, query, write=True))
    return _streams(_results(wh, query, False, None, stream=True))


def _streams(
    results: Iterator[tuple[str, Any, int]],
) -> Iterator[tuple[str, Iterator[pl.DataFrame]]]:
    """Each statement's frames, what the consumer left of them closed before the next
    statement runs (only then: dropping this iterator leaves the last frames readable)."""
    for text, frames, _rows in results:
        yield text, frames
        frames.close()


def _results(
    wh: Warehouse,
    query: str | Sequence[str],
    write: bool,
    head: int | None,
    *,
    stream: bool = False,
) -> Iterator[tuple[str, pl.DataFrame, int]]:
    """Check ``query`` (refused writes, the read-only fence) now, then run each statement
    as the iterator reaches it: ``(statement, result, rows)``, the result cut to its first
    ``head`` rows when ``head`` is given."""
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
    if write and _controls_transactions(statements):
        return _run_own_transactions(wh, texts, head)
    if write and len(texts) > 1:
        return _run_atomically(wh, texts, head)
    return _run_statements(wh, texts, head, stream)


def _controls_transactions(statements: Sequence[Any]) -> bool:
    """Whether any statement is BEGIN, COMMIT, ROLLBACK… (the user's own transactions), or
    a CHECKPOINT, which DuckDB refuses inside a transaction that has changed anything."""
    import re

    checkpoint = re.compile(r"\s*(FORCE\s+)?CHECKPOINT\b", re.I)
    return any(s.kind == "TRANSACTION" or checkpoint.match(s.text) for s in statements)


def _run_atomically(
    wh: Warehouse, texts: list[str], head: int | None = None
) -> Iterator[tuple[str, pl.DataFrame, int]]:
    """:func:`_run_statements` in one transaction: a failing statement rolls back those
    before it, which autocommit had kept (a user fixing the typo in the third statement ran
    the first two twice). Every statement runs, and the transaction commits, before the
    first result is handed over: a caller that stops early leaves no transaction open."""
    done = f"none of the {len(texts)} statements was applied (they run as one transaction)"
    wh.execute("BEGIN TRANSACTION")
    try:
        results = list(_run_statements(wh, texts, head))
    except SercapError as exc:
        wh.execute("ROLLBACK")
        raise type(exc)(exc.message, hint="; ".join(filter(None, (done, exc.hint)))) from exc
    except BaseException:
        with contextlib.suppress(Exception):
            wh.execute("ROLLBACK")
        raise
    _commit(wh, done)
    yield from results


def _run_own_transactions(
    wh: Warehouse, texts: list[str], head: int | None = None
) -> Iterator[tuple[str, pl.DataFrame, int]]:
    """Statements that begin and end transactions themselves, all run before the first
    result is handed over. A transaction they leave open (a BEGIN without its COMMIT, or a
    statement that failed inside one) is rolled back, with one line: left open, it made
    every later verb on the warehouse fail, and closing the warehouse dropped it silently."""
    try:
        results = list(_run_statements(wh, texts, head))
    except SercapError as exc:
        if not _rolled_back(wh):
            raise
        hint = "; ".join(filter(None, (exc.hint, "the transaction it was in was rolled back")))
        raise type(exc)(exc.message, hint=hint) from exc
    if _rolled_back(wh):
        raise QueryError(
            "the statements began a transaction and did not end it, so it was rolled back: "
            "nothing they did after its BEGIN is stored",
            hint="end it in the same call (…; COMMIT)",
        )
    yield from results


def _rolled_back(wh: Warehouse) -> bool:
    """Roll back the transaction open on ``wh``'s connection, if one is (DuckDB refuses a
    BEGIN inside one: that is the test); whether there was one."""
    import duckdb

    try:
        wh.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException:
        wh.execute("ROLLBACK")
        return True
    wh.execute("ROLLBACK")
    return False


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


def _run_statements(
    wh: Warehouse, texts: list[str], head: int | None = None, stream: bool = False
) -> Iterator[tuple[str, Any, int]]:
    """Each statement, its result (its first ``head`` rows when given; with ``stream`` an
    iterator of frames, and -1 for its rows) and its number of rows; columns polars cannot
    hold (INTERVAL, UNION) as text."""
    for text in texts:
        run = _as_run(text)
        with _said_as_sql():
            if stream:
                first = _stream(wh, run)
                frame, rows = _with_first(first, next(first)), -1
            elif head is None:
                frame = wh.query(run, text_types=True)
                rows = frame.height
            else:
                frame, rows = wh.query_head(run, head, text_types=True)
        yield text, frame, rows


def _as_run(text: str) -> str:
    """The SQL that runs for statement ``text``: itself, except ``SHOW TABLES``, which lists
    each name once. The warehouse's views exist twice, stored in the catalog (for DuckDB's
    own CLI) and as this connection's temporary views of the same name, and DuckDB listed
    both.

    >>> _as_run("show  tables")
    'SELECT DISTINCT name FROM (SHOW TABLES) ORDER BY name'
    >>> _as_run("/* mine */ SHOW TABLES -- all of them") == _as_run("show tables")
    True
    >>> _as_run("SELECT 1")
    'SELECT 1'
    """
    import re

    bare = re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S)  # comments around it
    if re.fullmatch(r"\s*SHOW\s+TABLES\s*;?\s*", bare, re.I):
        return "SELECT DISTINCT name FROM (SHOW TABLES) ORDER BY name"
    return text


@contextlib.contextmanager
def _said_as_sql() -> Iterator[None]:
    """DuckDB's errors raised in the block as :func:`sql` says them: a read the fence
    refused as :class:`RefusedError`, anything else (a typo, an unknown table or column, a
    bad cast…) as :func:`_query_error`'s one line."""
    import duckdb

    try:
        yield
    except duckdb.PermissionException as exc:
        raise RefusedError(
            str(exc).splitlines()[0],
            hint="read-only SQL reads only the warehouse's own tables and parts",
        ) from exc
    except duckdb.Error as exc:
        raise _query_error(exc) from exc


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


def _stream(wh: Warehouse, text: str) -> Iterator[pl.DataFrame]:
    """A statement's frames (:meth:`Warehouse.frames`), DuckDB's errors met while reading
    them said as :func:`_run_statements` says them."""
    with _said_as_sql():
        yield from wh.frames(text, text_types=True)


def _with_first(rest: Iterator[pl.DataFrame], first: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """``first`` then ``rest`` (the statement ran, up to its first frame, when it was
    reached: its errors belong to that step); closing it closes ``rest``."""
    try:
        yield first
        yield from rest
    finally:
        rest.close()
