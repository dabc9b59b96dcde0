"""The warehouse: one DuckDB catalog plus Parquet parts beside it.

A warehouse is a directory. ``sercap.duckdb`` holds the catalog tables and the views defined
in ``sql/``; bulk data (per-frame descriptors, materialised functionals, spectrogram images)
lives in Parquet parts under ``frames/``, ``features/`` and ``images/``. Parts are written by
whoever computes them (under a temporary name, renamed into place) and become visible only
once registered in the ``parts`` table: a crash can leave an orphan file, never a half row.

This module is the only place that knows the layout. Everything else asks it for paths,
connections and views.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from sercap.errors import SercapError

#: Version of the catalog schema this code writes. Bump it and add ``sql/migrations/<N>.sql``
#: (the statements that take a version N-1 warehouse to N) whenever ``sql/`` changes a table.
SCHEMA_VERSION = 1

DB_FILENAME = "sercap.duckdb"
PART_KINDS = ("frames", "features", "images")
#: The ``sql/`` folder of a clone (beside the package); a wheel carries it as ``sercap/sql``.
_SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def sql_dir() -> Path:
    """The ``sql/`` folder (schema, views, query templates).

    An installed wheel has it inside the package (``sercap/sql``, found with
    :mod:`importlib.resources`); a clone (or an editable install of one) has it at the
    repository root, beside the package.
    """
    from importlib.resources import files

    packaged = files("sercap") / "sql"
    candidates = [Path(str(packaged))] if isinstance(packaged, os.PathLike) else []
    for candidate in [*candidates, _SQL_DIR]:
        if (candidate / "001_schema.sql").is_file():
            return candidate
    raise SercapError(
        f"{_SQL_DIR}: the sql/ folder is missing (neither in the package nor beside it); "
        "reinstall sercap"
    )


def read_sql(name: str) -> str:
    """Text of one file under ``sql/`` (e.g. ``"templates/functionals.sql"``)."""
    path = sql_dir() / name
    if not path.is_file():
        raise SercapError(f"{path}: no such SQL file")
    return path.read_text()


def file_digest(path: Path) -> tuple[int, str]:
    """Size in bytes and hex SHA-256 of a file's bytes."""
    import hashlib

    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
        return fh.tell(), digest


def default_path() -> Path:
    """``$SERCAP_WAREHOUSE`` if set, else ``./warehouse``."""
    return Path(os.environ.get("SERCAP_WAREHOUSE") or "warehouse")


def check_name(name: str, what: str = "name") -> str:
    """Names become view and folder names: lowercase letters, digits and underscores."""
    if not _NAME_RE.match(name):
        raise SercapError(
            f"{what} {name!r} is not valid: use lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    return name


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
    _in_transaction: bool = field(default=False, repr=False)

    # -- queries -----------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> pl.DataFrame:
        """Run a query and return all of its rows as a polars DataFrame."""
        rel = self.con.sql(sql, params=params)
        return rel.pl() if rel is not None else pl.DataFrame()

    def execute(self, sql: str, params: Sequence[Any] | dict | None = None) -> None:
        """Run a statement whose result is not needed (fully consumed, as DuckDB 2 asks)."""
        result = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        if result.description is not None:
            result.fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        """First column of the first row, or None."""
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
            self.con.execute("COMMIT")
        finally:
            self._in_transaction = False

    # -- Parquet parts -----------------------------------------------------------------
    def part_dir(self, kind: str, feature_set_hash: str, corpus: str) -> Path:
        """Folder of the parts of one (kind, feature set, corpus); created on demand."""
        if kind not in PART_KINDS:
            raise ValueError(f"kind must be one of {PART_KINDS}, got {kind!r}")
        path = self.root / kind / f"feature_set={feature_set_hash}" / f"corpus={corpus}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def register_part(
        self, kind: str, feature_set_hash: str, corpus: str, path: Path, n_rows: int
    ) -> None:
        """Record a finished (renamed) part; only registered parts are visible in views.

        The file's size and the SHA-256 of its bytes are recorded with it, so that
        ``sercap check`` can tell a part that was truncated, overwritten or lost (hashing a
        just-written part reads it from the page cache: ~3 ms per MB here).
        """
        full = Path(path)
        rel = full.resolve().relative_to(self.root.resolve()).as_posix()
        size, digest = file_digest(full)
        self.execute(
            "INSERT OR REPLACE INTO parts (path, kind, feature_set_hash, corpus, n_rows, "
            "created_at, size_bytes, sha256) VALUES (?, ?, ?, ?, ?, now(), ?, ?)",
            [rel, kind, feature_set_hash, corpus, n_rows, size, digest],
        )

    def part_paths(self, kind: str, feature_set_hash: str, corpus: str | None = None) -> list[Path]:
        """Absolute paths of the registered parts of a feature set (optionally one corpus)."""
        sql = "SELECT path FROM parts WHERE kind = ? AND feature_set_hash = ?"
        params: list[Any] = [kind, feature_set_hash]
        if corpus is not None:
            sql += " AND corpus = ?"
            params.append(corpus)
        rows = self.con.execute(sql + " ORDER BY path", params).fetchall()
        return [self.root / r[0] for r in rows]

    def remove_orphan_parts(self, kind: str, feature_set_hash: str, corpus: str) -> int:
        """Delete files in a part folder that were never registered (a crash's leftovers)."""
        folder = self.part_dir(kind, feature_set_hash, corpus)
        known = {p.resolve() for p in self.part_paths(kind, feature_set_hash, corpus)}
        removed = 0
        for path in folder.iterdir():
            if path.is_file() and path.resolve() not in known:
                path.unlink()
                removed += 1
        return removed

    # -- views -------------------------------------------------------------------------
    def refresh_views(self) -> None:
        """(Re)create the views over the registered Parquet parts.

        For every feature set with registered parts: ``frames_<name>`` (per-frame
        descriptors), ``features_<name>`` (per-utterance functionals), ``images_<name>``.
        ``frames``, ``utterance_features`` and ``images`` are those of the set named
        ``default`` (``mel`` for images); they are empty until something is extracted.
        ``frame_stats`` (sql/templates/frame_stats.sql) aggregates ``frames`` live.
        When a set's definition changed (new hash, same name), ``<kind>_<name>`` shows the
        newest hash and ``<kind>_<name>_<hash>`` every hash, so old rows stay queryable.

        The views exist twice. In the catalog (persistent, so that any DuckDB client sees
        them) they name each part by its path relative to the warehouse folder, so a moved
        or copied warehouse never reads another folder's parts: a plain client reads them
        from inside the warehouse folder or after ``SET file_search_path = '<folder>'``.
        They are rewritten on a writable open whenever the registered parts changed.
        This connection shadows them with temporary views naming the parts by absolute
        path, so sercap never depends on the current directory.

        A registered part that is missing, has another size than recorded, or cannot be read
        is left out of the views and listed in :attr:`damaged` (one ``stat`` per part: no
        file is hashed here; ``sercap check`` verifies checksums).
        """
        has_size = bool(
            self.scalar(
                "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'parts' "
                "AND column_name = 'size_bytes' AND schema_name = 'main' "
                "AND database_name = current_database()"
            )
        )
        rows = self.con.execute(
            "SELECT p.kind, f.name, p.feature_set_hash, p.path, "
            + ("p.size_bytes, " if has_size else "NULL, ")
            + "coalesce(try_cast(json_extract(f.params_json, '$.hop_ms') AS DOUBLE), 10) / 1000 "
            "FROM parts p "
            "JOIN feature_sets f ON f.hash = p.feature_set_hash "
            "ORDER BY f.created_at, p.feature_set_hash, p.path"
        ).fetchall()
        self.damaged = []
        # A name can have several hashes (a parameter or library version changed): the
        # name's view shows the most recently defined one, ``<kind>_<name>_<hash>`` each.
        by_hash: dict[tuple[str, str, str], list[str]] = {}
        hops: dict[str, float] = {}
        for kind, name, fs_hash, rel, size, hop_s in rows:
            hops[fs_hash] = float(hop_s)
            problem = _stat_problem(self.root / rel, size)
            if problem:
                self.damaged.append((rel, problem))
                continue
            by_hash.setdefault((kind, name, fs_hash), []).append(rel)
        kept: dict[tuple[str, str, str], list[str]] = {}
        for (kind, name, fs_hash), files in by_hash.items():
            columns = _part_columns(kind, hops[fs_hash])
            files = self._create_parts_view(f"{kind}_{name}_{fs_hash}", columns, files)
            if files:
                kept[(kind, name, fs_hash)] = files
        statements = _views_sql(kept, hops, self.root.absolute())
        for view, body in statements[len(kept) :]:  # the parts views exist already
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {body}")
        if not self.read_only:
            # On failure (rolled back) plain clients keep the previous views until the next
            # writable open; this connection's temporary views above are complete and current.
            with contextlib.suppress(duckdb.Error):
                self._persist_views(kept, hops)

    def _create_parts_view(self, view: str, columns: str, files: list[str]) -> list[str]:
        """Create one temporary view over ``files``, leaving out any file DuckDB cannot read
        (listed in :attr:`damaged`); returns the files kept (none: no view)."""
        while files:
            listing = _listing(files, self.root.absolute())
            try:
                self.con.execute(
                    f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {columns} FROM read_parquet("
                    f"[{listing}], union_by_name = true, hive_partitioning = false)"
                )
                return files
            except duckdb.Error as exc:
                # Same size as registered but not readable (overwritten in place): find which.
                bad = [f for f in files if _parquet_problem(self.root / f)]
                if not bad:
                    bad = list(files)  # readable one by one, not together: leave the set out
                reason = str(exc).splitlines()[0]
                self.damaged += [(f, f"unreadable ({reason})") for f in bad]
                files = [f for f in files if f not in bad]
        return []

    def _persist_views(self, kept: dict[tuple[str, str, str], list[str]], hops: dict) -> None:
        """Write the catalog's views (relative part paths) when the parts they list changed."""
        import hashlib
        import json

        statements = _views_sql(kept, hops, None)
        fingerprint = hashlib.sha256(json.dumps(statements).encode()).hexdigest()
        stored = self.scalar("SELECT value FROM schema_info WHERE key = 'part_views'")
        previous = json.loads(stored) if stored else {"fingerprint": None, "views": []}
        if previous["fingerprint"] == fingerprint:
            return
        names = [view for view, _ in statements]
        search_path = self.scalar("SELECT current_setting('file_search_path')")
        # Binding a view reads its parts: relative paths are found through the search path.
        self.con.execute("SET file_search_path = ?", [self.root.resolve().as_posix()])
        try:
            with self.transaction():
                for view in previous["views"]:
                    if view not in names:
                        self.con.execute(f"DROP VIEW IF EXISTS main.{view}")
                for view, body in statements:
                    self.con.execute(f"CREATE OR REPLACE VIEW main.{view} AS {body}")
                self.execute(
                    "INSERT OR REPLACE INTO schema_info VALUES ('part_views', ?)",
                    [json.dumps({"fingerprint": fingerprint, "views": names})],
                )
        finally:
            self.con.execute("SET file_search_path = ?", [search_path or ""])

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_EMPTY_VIEW = "SELECT NULL::VARCHAR AS utt_id WHERE false"
_ALIASES = {
    "frames": ("frames", "default"),
    "utterance_features": ("features", "default"),
    "images": ("images", "mel"),
}


def _part_columns(kind: str, hop_s: float) -> str:
    """The select list of a parts view: frames get their time from the set's hop."""
    if kind != "frames":
        return "*"
    return f"utt_id, frame, CAST(frame * {hop_s!r} AS FLOAT) AS time_s, * EXCLUDE (utt_id, frame)"


def _listing(files: list[str], root: Path | None) -> str:
    """SQL list of part paths: absolute under ``root``, or as registered (relative)."""
    paths = [(root / f).as_posix() if root is not None else f for f in files]
    return ", ".join("'" + f.replace("'", "''") + "'" for f in paths)


def _views_sql(
    kept: dict[tuple[str, str, str], list[str]], hops: dict[str, float], root: Path | None
) -> list[tuple[str, str]]:
    """(view, SELECT) of every view over parts, the per-hash parts views first."""
    out: list[tuple[str, str]] = []
    latest: dict[tuple[str, str], str] = {}
    for (kind, name, fs_hash), files in kept.items():
        out.append(
            (
                f"{kind}_{name}_{fs_hash}",
                f"SELECT {_part_columns(kind, hops[fs_hash])} FROM read_parquet("
                f"[{_listing(files, root)}], union_by_name = true, hive_partitioning = false)",
            )
        )
        latest[(kind, name)] = fs_hash  # later (newer) hashes replace earlier ones
    for (kind, name), fs_hash in latest.items():
        out.append((f"{kind}_{name}", f"SELECT * FROM {kind}_{name}_{fs_hash}"))
    for alias, key in _ALIASES.items():
        out.append((alias, f"SELECT * FROM {key[0]}_{key[1]}" if key in latest else _EMPTY_VIEW))
    if ("frames", "default") in latest:
        template = read_sql("templates/frame_stats.sql")
        head = "CREATE OR REPLACE TEMP VIEW frame_stats AS"
        body = template[template.index(head) + len(head) :].strip().rstrip(";")
        out.append(("frame_stats", body))
    else:
        out.append(("frame_stats", _EMPTY_VIEW))
    return out


def _stat_problem(path: Path, size: int | None) -> str | None:
    """What a ``stat`` tells about a registered part: missing, wrong size, or nothing."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if size is not None and actual != size:
        return f"{actual} bytes, {size} when registered"
    return None


def _parquet_problem(path: Path) -> str | None:
    """Why a file does not read as Parquet (footer and schema only), or None."""
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


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
                who = f" (PID {holder.group(1)})" if holder else ""
                raise SercapError(
                    f"{database}: the warehouse is in use by another process{who}; DuckDB lets "
                    "one process write at a time: wait for it to finish, or use another "
                    "--warehouse"
                ) from exc
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


def _apply_schema_statements(con: duckdb.DuckDBPyConnection, database: str) -> None:
    has_info = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_info'"
    ).fetchall()[0][0]
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
    if path is not None and str(path) == ":memory:":
        root = Path(tempfile.mkdtemp(prefix="sercap-"))
        memory = True
    else:
        root = Path(path) if path is not None else default_path()
    if root.exists() and not root.is_dir():
        raise SercapError(f"{root}: the warehouse must be a directory, this is a file")
    database = ":memory:" if memory else str(root / DB_FILENAME)
    if read_only and not memory and not Path(database).is_file():
        raise SercapError(f"{root}: no warehouse here yet; run `sercap ingest` first")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SercapError(f"{root}: cannot create the warehouse folder ({exc.strerror})") from exc
    con = _open_duckdb(database, read_only=read_only, wait_s=wait_s)
    try:
        if read_only:
            if not con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_info'"
            ).fetchall()[0][0]:  # created, then interrupted before its schema was committed
                raise SercapError(f"{root}: no warehouse here yet; run `sercap ingest` first")
            version = con.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchall()
            if not version or int(version[0][0]) != SCHEMA_VERSION:
                raise SercapError(
                    f"{database}: schema version differs from this sercap's; open it once "
                    "without read-only access to migrate it"
                )
        else:
            _apply_schema(con, database)
        wh = Warehouse(root=root, con=con, read_only=read_only)
        wh.refresh_views()
    except BaseException:
        con.close()
        raise
    return wh
