"""Views over the registered Parquet parts (``frames_<set>``, ``features_<set>``,
``images_<set>``, the ``frames``/``utterance_features``/``images``/``frame_stats`` aliases),
persistent in the catalog and shadowed per connection; and reads of stored images.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from sercap.sqlfiles import read_sql
from sercap.store.parts import (
    changed_content,
    parquet_problem,
    parts_columns,
    record_schema,
    record_stat,
    schema_digest,
    stat_problem,
)

if TYPE_CHECKING:
    from sercap.features.images import StoredImage
    from sercap.store.warehouse import Warehouse


def refresh_views(wh: Warehouse) -> None:
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

    A registered part that is missing, has another size than recorded, holds other bytes
    than it was registered with, or cannot be read is left out of the views and listed in
    :attr:`Warehouse.damaged`. One ``stat`` per part; a part is hashed only when its stat
    (mtime, ctime, inode) differs from the one recorded, as git does (a copied warehouse's
    parts are hashed once, at its first writable open, then their new stat is recorded).
    Extracted utterances recorded in a part that is not registered are listed there too.
    """
    have = parts_columns(wh)

    def column(name: str) -> str:
        return f"p.{name}, " if name in have else "NULL, "

    rows = wh.con.execute(
        "SELECT p.kind, f.name, p.feature_set_hash, p.path, "
        + "".join(
            column(c)
            for c in ("size_bytes", "sha256", "schema_sha256", "mtime_ns", "ctime_ns", "inode")
        )
        + "f.params_json "
        "FROM parts p "
        "JOIN feature_sets f ON f.hash = p.feature_set_hash "
        "ORDER BY f.created_at, p.feature_set_hash, p.path"
    ).fetchall()
    wh.damaged = []
    verified: list[tuple[str, tuple]] = []  # bytes match, stat changed: record the new one
    # A name can have several hashes (a parameter or library version changed): the
    # name's view shows the most recently defined one, ``<kind>_<name>_<hash>`` each.
    by_hash: dict[tuple[str, str, str], list[str]] = {}
    # the column digest of each view's parts (None: not known, so read by name)
    schemas: dict[tuple[str, str, str], set[str | None]] = {}
    unrecorded: list[tuple[str, str]] = []  # parts from before column digests: record them
    hops: dict[str, tuple[float, float]] = {}  # hash -> (hop, half a window) in seconds
    for kind, name, fs_hash, rel, size, sha256, columns, *stat, params_json in rows:
        hops[fs_hash] = _hop_and_half_window(params_json)
        problem = stat_problem(wh.root / rel, size)
        if problem is None:
            try:
                changed, seen = changed_content(
                    wh.root / rel, tuple(stat), sha256, read_only=wh.read_only
                )
            except OSError as exc:  # EIO, EACCES: damage to list, not a failed open
                changed, seen, problem = False, None, f"cannot be read ({exc.strerror})"
            if changed:
                problem = "its bytes changed since it was registered (SHA-256 differs)"
            elif seen is not None and "mtime_ns" in have:
                verified.append((rel, seen))
        if problem:
            wh.damaged.append((rel, problem))
            continue
        if columns is None and not wh.read_only and "schema_sha256" in have:
            with contextlib.suppress(Exception):  # unreadable here: read by name, as before
                columns = schema_digest(wh.root / rel)
                unrecorded.append((rel, columns))
        by_hash.setdefault((kind, name, fs_hash), []).append(rel)
        schemas.setdefault((kind, name, fs_hash), set()).add(columns)
    registered = {r[0] for r in wh.con.execute("SELECT path FROM parts").fetchall()}
    wh.damaged += _unregistered_extractions(wh, registered)
    kept: dict[tuple[str, str, str], list[str]] = {}
    uniform = {key: None not in found and len(found) == 1 for key, found in schemas.items()}
    for key, files in by_hash.items():
        kind, name, fs_hash = key
        columns = _part_columns(kind, hops[fs_hash])
        files = _create_parts_view(
            wh, f"{kind}_{name}_{fs_hash}", columns, files, by_name=not uniform[key]
        )
        if files:
            kept[key] = files
    statements = _views_sql(kept, hops, wh.root.absolute(), uniform)
    for view, body in statements[len(kept) :]:  # the parts views exist already
        wh.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {body}")
    if not wh.read_only:
        # On failure (rolled back) plain clients keep the previous views until the next
        # writable open; this connection's temporary views above are complete and current.
        with contextlib.suppress(duckdb.Error):
            _persist_views(wh, kept, hops, uniform)
        if verified or unrecorded:
            with contextlib.suppress(duckdb.Error, OSError), wh.transaction():
                for rel, seen in verified:
                    record_stat(wh, rel, seen)
                for rel, digest in unrecorded:
                    record_schema(wh, rel, digest)


def _hop_and_half_window(params_json: str | None) -> tuple[float, float]:
    """(hop, half a window) in seconds of a set's frames, for the views' ``time_s``: whole
    samples at the set's rate (:func:`sercap.features.framing.frame_seconds`); a set
    without a frame grid (openSMILE) as before: the nominal hop, default 10 ms."""
    import json

    from sercap.features.framing import frame_seconds

    params = json.loads(params_json or "{}")
    try:
        hop, window = frame_seconds(params)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return float(params.get("hop_ms") or 10) / 1000, float(params.get("window_ms") or 0) / 2000
    return hop, window / 2


def _unregistered_extractions(wh: Warehouse, registered: set[str]) -> list[tuple[str, str]]:
    """(part, why) for each part that ``ok`` extractions name but ``parts`` does not: its
    utterances count as extracted, yet no view shows them (``sercap check --repair`` makes
    the next ``extract`` compute them again). A row names its chunk's per-utterance part; the
    chunk's other kinds (the frames beside an lld set's features) must be registered too."""
    from pathlib import PurePosixPath

    from sercap.store.layout import catalog_relative

    def tail(path: str) -> str:  # kind/feature_set=…/corpus=…/part-….parquet
        return "/".join(PurePosixPath(path).parts[-4:])

    # Rows of older warehouses name parts by absolute path, which a moved or copied
    # warehouse no longer matches: their last four components still name the part. One row
    # per part (not per utterance): this runs at every open.
    from sercap.store.layout import CHUNK_KINDS

    registered = {tail(p) for p in registered}
    # kind/feature_set=…/corpus=… folders holding any registered part: a set that stores a
    # kind stores it for every chunk (only hand-made test warehouses hold features alone)
    stored_kinds = {p.rpartition("/")[0] for p in registered}
    missing: dict[str, int] = {}
    counts = wh.con.execute(
        "SELECT e.part, f.kind, count(*), coalesce(bool_or(e.n_frames > 0), false) "
        "FROM extractions e LEFT JOIN feature_sets f ON f.hash = e.feature_set_hash "
        "WHERE e.status = 'ok' GROUP BY e.part, f.kind"
    ).fetchall()
    for part, set_kind, n, framed in counts:
        if part is None:
            missing["(no part)"] = missing.get("(no part)", 0) + n
            continue
        named = tail(part)
        own, _, rest = named.partition("/")  # kind, feature_set=…/corpus=…/part-….parquet
        for kind in (own, *(k for k in CHUNK_KINDS.get(set_kind or "", ()) if k != own)):
            if f"{kind}/{rest}" in registered:
                continue
            # the chunk's other kinds too: a file left on disk without its row, or row and
            # file both gone where the set stores that kind for its other chunks or where
            # extraction recorded frames (either hid those utterances from sequence
            # datasets; `check` also lists the rest)
            other = f"{kind}/{rest}"
            if kind != own and not (
                (wh.root / other).is_file()
                or other.rpartition("/")[0] in stored_kinds
                or (kind == "frames" and framed)  # extraction recorded frames for them
            ):
                continue
            key = catalog_relative(wh.root, part).rpartition(named)[0] + other
            missing[key] = missing.get(key, 0) + n
    return [
        (part, f"not registered, though {n} extracted utterance(s) are recorded in it")
        for part, n in sorted(missing.items())
    ]


def _create_parts_view(
    wh: Warehouse, view: str, columns: str, files: list[str], *, by_name: bool = True
) -> list[str]:
    """Create one temporary view over ``files``, leaving out any file DuckDB cannot read
    (listed in :attr:`Warehouse.damaged`); returns the files kept (none: no view).

    ``by_name`` False (every file's column digest is the same) binds from one footer
    instead of all of them."""
    while files:
        listing = _listing(files, wh.root.absolute())
        try:
            wh.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {columns} FROM "
                f"{_read_parts(listing, by_name)}"
            )
            return files
        except duckdb.Error as exc:
            # Same size as registered but not readable (overwritten in place): find which.
            bad = [f for f in files if parquet_problem(wh.root / f)]
            if not bad:
                bad = list(files)  # readable one by one, not together: leave the set out
            reason = str(exc).splitlines()[0]
            wh.damaged += [(f, f"unreadable ({reason})") for f in bad]
            files = [f for f in files if f not in bad]
    return []


def _persist_views(
    wh: Warehouse, kept: dict[tuple[str, str, str], list[str]], hops: dict, uniform: dict
) -> None:
    """Write the catalog's views (relative part paths) when the parts they list changed."""
    import hashlib
    import json

    statements = _views_sql(kept, hops, None, uniform)
    fingerprint = hashlib.sha256(json.dumps(statements).encode()).hexdigest()
    stored = wh.scalar("SELECT value FROM schema_info WHERE key = 'part_views'")
    previous = json.loads(stored) if stored else {"fingerprint": None, "views": []}
    if previous["fingerprint"] == fingerprint:
        return
    names = [view for view, _ in statements]
    search_path = wh.scalar("SELECT current_setting('file_search_path')")
    # Binding a view reads its parts: relative paths are found through the search path.
    wh.con.execute("SET file_search_path = ?", [wh.root.resolve().as_posix()])
    try:
        with wh.transaction():
            for view in previous["views"]:
                if view not in names:
                    wh.con.execute(f"DROP VIEW IF EXISTS main.{view}")
            for view, body in statements:
                wh.con.execute(f"CREATE OR REPLACE VIEW main.{view} AS {body}")
            wh.execute(
                "INSERT OR REPLACE INTO schema_info VALUES ('part_views', ?)",
                [json.dumps({"fingerprint": fingerprint, "views": names})],
            )
    finally:
        wh.con.execute("SET file_search_path = ?", [search_path or ""])


_EMPTY_VIEW = "SELECT NULL::VARCHAR AS utt_id WHERE false"
_ALIASES = {
    "frames": ("frames", "default"),
    "utterance_features": ("features", "default"),
    "images": ("images", "mel"),
}


def _part_columns(kind: str, timing: tuple[float, float]) -> str:
    """The select list of a parts view: a frame's ``time_s`` is its window's centre
    (``frame · hop + window / 2``), the instant its descriptors describe, as Praat and
    openSMILE time their frames."""
    if kind != "frames":
        return "*"
    hop_s, half_s = timing
    return (
        f"utt_id, frame, CAST(frame * {hop_s!r} + {half_s!r} AS FLOAT) AS time_s, "
        "* EXCLUDE (utt_id, frame)"
    )


def _listing(files: list[str], root: Path | None) -> str:
    """SQL list of part paths: absolute under ``root``, or as registered (relative)."""
    paths = [(root / f).as_posix() if root is not None else f for f in files]
    return ", ".join("'" + f.replace("'", "''") + "'" for f in paths)


def _read_parts(listing: str, by_name: bool) -> str:
    """The ``read_parquet`` of a parts view: by column name unless every part is known to
    have the same columns (:func:`sercap.store.parts.schema_digest`)."""
    return (
        f"read_parquet([{listing}], union_by_name = {str(by_name).lower()}, "
        "hive_partitioning = false)"
    )


def _views_sql(
    kept: dict[tuple[str, str, str], list[str]],
    hops: dict[str, tuple[float, float]],
    root: Path | None,
    uniform: dict[tuple[str, str, str], bool],
) -> list[tuple[str, str]]:
    """(view, SELECT) of every view over parts, the per-hash parts views first.

    A set's name view and its alias read its parts themselves, as its per-hash view does,
    rather than ``SELECT * FROM`` that view: DuckDB binds a view by binding the views it
    reads, and each level of a features view's 2,855 columns cost ~9 ms more, at every
    (re)creation and every query (``SELECT * FROM utterance_features LIMIT 0``: 53 ms
    through three levels, 16 ms through one)."""
    out: list[tuple[str, str]] = []
    latest: dict[tuple[str, str], str] = {}
    bodies: dict[str, str] = {}
    for key, files in kept.items():
        kind, name, fs_hash = key
        view = f"{kind}_{name}_{fs_hash}"
        bodies[view] = (
            f"SELECT {_part_columns(kind, hops[fs_hash])} FROM "
            f"{_read_parts(_listing(files, root), not uniform.get(key, False))}"
        )
        out.append((view, bodies[view]))
        latest[(kind, name)] = fs_hash  # later (newer) hashes replace earlier ones
    for (kind, name), fs_hash in latest.items():
        out.append((f"{kind}_{name}", bodies[f"{kind}_{name}_{fs_hash}"]))
    for alias, key in _ALIASES.items():
        body = bodies[f"{key[0]}_{key[1]}_{latest[key]}"] if key in latest else _EMPTY_VIEW
        out.append((alias, body))
    if ("frames", "default") in latest:
        template = read_sql("templates/frame_stats.sql")
        head = "CREATE OR REPLACE TEMP VIEW frame_stats AS"
        body = template[template.index(head) + len(head) :].strip().rstrip(";")
        out.append(("frame_stats", body))
    else:
        out.append(("frame_stats", _EMPTY_VIEW))
    return out


def stored_image(wh: Warehouse, utt_id: str, image_set: str = "mel") -> StoredImage:
    """Read one utterance's image from the warehouse (a one-line error when it is absent)."""
    from sercap.errors import NotExtractedError, NotFoundError
    from sercap.features.featureset import get_feature_set
    from sercap.features.images import StoredImage

    fs = get_feature_set(image_set, kind="image")
    view = f"images_{image_set}_{fs.hash}"
    if not wh.has_relation(view):
        raise NotExtractedError(
            f"no images of set {image_set!r} in the warehouse; run `sercap images` / "
            "`sercap.images(wh)` first"
        )
    rows = wh.con.execute(
        f"SELECT png, height, width FROM {view} WHERE utt_id = ?", [utt_id]
    ).fetchall()
    if not rows:
        raise NotFoundError(f"no {image_set!r} image for utterance {utt_id!r}")
    png, height, width = rows[0]
    return StoredImage(utt_id, bytes(png), int(height), int(width), dict(fs.params), wh.root)
