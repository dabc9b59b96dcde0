"""Which SQL statements ``sercap sql`` may run without ``--write``.

Opening the catalog read-only protects ``sercap.duckdb`` only: a ``COPY … TO`` can still
overwrite a Parquet part, and ``ATTACH … (READ_WRITE)`` can reopen the catalog for writing.
So without ``--write`` every statement is classified by DuckDB's own parser
(:meth:`duckdb.DuckDBPyConnection.extract_statements` and its tokenizer, never a regular
expression) before anything runs, and only these are allowed:

======================  ===============================================================
statement type          allowed when
======================  ===============================================================
``SELECT``              always: ``SELECT``, ``WITH … SELECT``, ``FROM …``, ``VALUES``,
                        ``UNION``…, and ``DESCRIBE``, ``SHOW``, ``SUMMARIZE`` (DuckDB
                        parses all of these as ``SELECT``), unless it calls a function
                        with side effects (:data:`_SIDE_EFFECTS`: ``checkpoint()``,
                        ``enable_logging()``…)
``EXPLAIN``             the explained statement is itself allowed (``EXPLAIN ANALYZE``
                        runs it)
``PRAGMA``              a table-valued pragma that only reads, named in
                        :data:`READ_PRAGMAS` (``IMPORT DATABASE`` and ``COPY FROM
                        DATABASE`` are parsed as ``PRAGMA`` too, and are refused)
======================  ===============================================================

Everything else is refused: ``INSERT``/``UPDATE``/``DELETE``/``MERGE`` (also inside a
``SELECT``'s ``WITH``, which DuckDB parses as a ``SELECT``), ``CREATE``/``DROP``/
``ALTER``, ``COPY``, ``EXPORT``, ``ATTACH``/``DETACH``, ``SET``/``RESET``/``USE``,
``INSTALL``/``LOAD``, ``CALL`` (``CHECKPOINT`` is a ``CALL``), transactions, ``PREPARE``/
``EXECUTE``, ``VACUUM``/``ANALYZE``, a ``PIVOT`` without an ``IN`` list (DuckDB runs it as
several statements, the first creating a type; with the values listed it is a ``SELECT``), and
any type this DuckDB names that is not listed.

:func:`fence_settings` is the second fence, for the read-only connection: no file access
except the registered Parquet parts (exact files, so nothing can be written beside them),
no extension installs, and a locked configuration that cannot be switched back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from sercap.errors import RefusedError

#: Table-valued pragmas that only read the catalog or report on DuckDB itself.
READ_PRAGMAS = frozenset(
    {
        "collations",
        "database_list",
        "database_size",
        "functions",
        "metadata_info",
        "platform",
        "show",
        "show_databases",
        "show_tables",
        "show_tables_expanded",
        "storage_info",
        "table_info",
        "user_agent",
        "version",
    }
)


#: Keywords that make a SELECT write (a data-modifying CTE); DuckDB parses the whole as a
#: SELECT, which a writable connection runs.
_DML = frozenset({"delete", "insert", "update", "merge"})


#: Functions a SELECT can call that change the database or write files (a writable
#: connection runs them: ``SELECT * FROM checkpoint()``, or ``enable_logging`` writing a log
#: into the warehouse's folders, which ``check`` then reported as foreign files).
_SIDE_EFFECTS = frozenset(
    {
        "checkpoint",
        "force_checkpoint",
        "enable_logging",
        "disable_logging",
        "truncate_duckdb_logs",
        "write_log",
        "enable_profiling",
        "disable_profiling",
        "add_grammar_extension",
        "remove_grammar_extension",
        "create_external_resource",
        "destroy_external_resource",
        "register_external_resource",
        "deregister_external_resource",
        "register_external_resource_type",
        # runs the SQL of a string, which this check cannot see: query('SELECT * FROM
        # checkpoint()') checkpointed (write the statement itself instead)
        "query",
    }
)


@dataclass(frozen=True)
class Statement:
    """One statement of a query: its text, DuckDB's type name, and whether it only reads."""

    text: str
    kind: str
    read_only: bool


def _words(text: str) -> list[tuple[int, str, str]]:
    """DuckDB's tokens of ``text`` as (offset, kind, lower-case text), comments dropped."""
    tokens = duckdb.tokenize(text)
    out = []
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(text)
        if kind == duckdb.token_type.comment:
            continue
        out.append((start, kind.name, text[start:end].strip().lower()))
    return out


def _explained(text: str) -> list[str]:
    """Candidate texts of the statement an ``EXPLAIN [ANALYZE] [(options)]`` explains."""
    words = _words(text)
    if not words or words[0][2] != "explain":
        return []
    i = 1
    if i < len(words) and words[i][2] in ("analyze", "analyse"):
        i += 1
    if i >= len(words):
        return []
    candidates = [text[words[i][0] :]]
    if words[i][2] == "(":  # EXPLAIN (FORMAT json) SELECT …: skip the options
        depth = 0
        for j in range(i, len(words)):
            depth += {"(": 1, ")": -1}.get(words[j][2], 0)
            if depth == 0:
                if j + 1 < len(words):
                    candidates.append(text[words[j + 1][0] :])
                break
    return candidates


def _is_read(statement: duckdb.Statement, con: duckdb.DuckDBPyConnection) -> tuple[str, bool]:
    try:
        kind = statement.type.name
    except ValueError:  # a type this duckdb's Python enum does not name (UPDATE EXTENSIONS)
        return "UNKNOWN", False
    if kind == "SELECT":  # …unless a CTE modifies data: WITH d AS (DELETE … RETURNING *)
        words = _words(statement.query)
        changes = sorted({w[2] for w in words if w[1] == "keyword"} & _DML)
        if changes:
            return f"SELECT with {changes[0].upper()}", False
        called = {
            word[2].strip('"') for word, after in zip(words, words[1:], strict=False)
            if after[2] == "(" and word[1] in ("identifier", "keyword")
        }  # fmt: skip
        effects = sorted(called & _SIDE_EFFECTS)
        if effects:
            return f"SELECT calling {effects[0]}()", False
        return kind, True
    if kind == "PRAGMA":
        words = _words(statement.query)
        ok = (
            len(words) >= 2
            and words[0][2] == "pragma"
            and words[1][1] in ("identifier", "keyword")
            and words[1][2] in READ_PRAGMAS
        )
        return kind, ok
    if kind == "EXPLAIN":
        for candidate in _explained(statement.query):
            try:
                inner = con.extract_statements(candidate)
            except duckdb.Error:
                continue
            if len(inner) == 1 and _is_read(inner[0], con)[1]:
                return kind, True
        return kind, False
    return kind, False


def classify(query: str, con: duckdb.DuckDBPyConnection | None = None) -> list[Statement]:
    """Split ``query`` into statements with DuckDB's parser and say which only read.

    Parameters
    ----------
    query
        One or more SQL statements separated by ``;``.
    con
        A connection whose parser to use (nothing is executed); default: a fresh in-memory
        one.

    Returns
    -------
    list of Statement
        In order; ``read_only`` is True only for the allow-list in this module's docstring.

    Raises
    ------
    duckdb.ParserException
        When DuckDB cannot parse the query (the caller reports it like any SQL error).
    """
    own = con is None
    con = duckdb.connect() if con is None else con
    try:
        out = []
        for statement in con.extract_statements(query):
            kind, ok = _is_read(statement, con)
            out.append(Statement(text=statement.query.strip(), kind=kind, read_only=ok))
        return out
    finally:
        if own:
            con.close()


def refuse_writes(statements: Iterable[Statement]) -> None:
    """Raise a one-line :class:`RefusedError` naming the first statement that is not a read."""
    statements = list(statements)
    for i, statement in enumerate(statements, 1):
        if not statement.read_only:
            where = f"statement {i} of {len(statements)}" if len(statements) > 1 else "this query"
            first = " ".join(statement.text.rstrip(";").split())
            first = first if len(first) <= 60 else first[:57] + "..."
            what = f"is of type {statement.kind}, not a read"
            if statement.kind == "EXPLAIN":  # EXPLAIN ANALYZE runs the statement it explains
                what = (
                    "is of type EXPLAIN of a statement that is not a read (EXPLAIN ANALYZE "
                    "would run it)"
                )
            elif statement.kind == "CALL":  # CHECKPOINT parses as a CALL too
                what = (
                    "is of type CALL (a procedure, or CHECKPOINT), not a read; a table "
                    "function reads with SELECT * FROM name(...)"
                )
            elif statement.kind == "MULTI" and any(
                w[2] == "pivot" for w in _words(statement.text)
            ):  # PIVOT … ON col without IN first creates an ENUM type of col's values
                raise RefusedError(
                    f"{where} ({first}) is a PIVOT without an IN list, which DuckDB runs as "
                    "several statements (it first creates a type of the column's values); "
                    "name the values, e.g. PIVOT t ON col IN ('a', 'b') USING count(*), and it "
                    "runs read-only; or allow writes (--write, or write=True in Python)"
                )
            raise RefusedError(
                f"{where} ({first}) {what}; read-only SQL runs only SELECT, WITH, EXPLAIN, "
                "DESCRIBE, SHOW, SUMMARIZE and reading PRAGMAs; nothing was run: allow writes "
                "to change the warehouse (--write, or write=True in Python)"
            )


def fence_settings(readable_files: Iterable[str]) -> list[str]:
    """SET statements that narrow a read-only connection to reading ``readable_files``.

    Run them in order on the connection, after its views exist: file access outside the
    listed files is refused (other databases, ``COPY`` targets, ``read_csv`` of anything,
    ``INSTALL``), and ``lock_configuration`` stops any later ``SET`` from undoing it. The
    files are exact paths (DuckDB's ``allowed_paths``), not folders, so even a statement that
    slipped past :func:`refuse_writes` could not create a file beside a part; it could still
    overwrite a listed part in place, which is why the statement check comes first.

    Parameters
    ----------
    readable_files
        Absolute paths of the Parquet parts the views read.

    Returns
    -------
    list of str
        The statements, in the order they must run.
    """
    listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in readable_files)
    return [
        f"SET allowed_paths = [{listing}]",
        "SET enable_external_access = false",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET lock_configuration = true",
    ]
