"""Parquet parts: where they go, their registration in ``parts``, checksums and orphans.

Parts are written by whoever computes them (under a temporary name, renamed into place) and
become visible only once registered in the ``parts`` table: a crash can leave an orphan
file, never a half row.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap.errors import SercapError
from sercap.store import layout

if TYPE_CHECKING:
    from sercap.store.warehouse import Warehouse


def file_digest(path: Path) -> tuple[int, str]:
    """Size in bytes and hex SHA-256 of a file's bytes."""
    import hashlib

    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
        return fh.tell(), digest


def write_part(table: Any, folder: str | Path, name: str) -> str:
    """Write a Parquet part under a temporary name in ``folder``, then rename it into place
    (atomic); returns its path. A failed write (full disk, quota, read-only folder) removes
    the temporary file and is one line naming the part."""
    import pyarrow.parquet as pq

    final = os.path.join(folder, name)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    # Measured on EmoDB's parts (one thread): descriptors and functionals are float32 noise
    # to a compressor (zstd level 1 saves 13% of the frames' bytes, LZ4 3%), and zstd's
    # per-column-chunk set-up made a functionals part of 67 rows × 2,854 columns cost
    # 0.23 s to write and 0.20 s to read, against 0.05 s and 0.08 s with LZ4 and no
    # statistics. Statistics are kept for utt_id (DuckDB skips row groups on it); those of
    # 2,853 float columns served no query. Dictionary-encoding float columns costs 4× the
    # write time and makes files bigger, so only utt_id is dictionary-encoded.
    try:
        pq.write_table(
            table,
            tmp,
            compression="lz4",
            use_dictionary=["utt_id"],
            write_statistics=["utt_id"] if "utt_id" in table.column_names else False,
        )
        _synced(tmp)  # on disk before the catalog can name it: after a power cut a
        os.replace(tmp, final)  # registered part was an empty or torn file
        with contextlib.suppress(OSError):  # (a filesystem that cannot sync a folder)
            _synced(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        reason = os.strerror(exc.errno) if exc.errno else str(exc).strip().splitlines()[0]
        raise SercapError(
            f"{final}: cannot write this part ({reason}); nothing of it was registered: free "
            "space or fix the folder, then run the command again (it resumes)"
        ) from exc
    return final


def _synced(path: str | Path) -> None:
    """``fsync`` a file, or a folder (its entries: a rename into it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def digest_problem(wh: Warehouse, rel: str) -> str | None:
    """Why a registered part's bytes are not those recorded (size or SHA-256), or None
    (also for a part registered before checksums were kept)."""
    size, sha = wh.con.execute(
        "SELECT size_bytes, sha256 FROM parts WHERE path = ?", [rel]
    ).fetchone() or (None, None)
    if sha is None:
        return None
    try:
        found_size, found_sha = file_digest(layout.absolute(wh.root, rel))
    except OSError as exc:
        return f"this registered part cannot be read ({exc.strerror})"
    if found_size != size or found_sha != sha:
        return "this registered part's bytes differ from those recorded (damaged or replaced)"
    return None


def part_dir(wh: Warehouse, kind: str, feature_set_hash: str, corpus: str) -> Path:
    """Folder of the parts of one (kind, feature set, corpus); created on demand."""
    path = layout.part_dir(wh.root, kind, feature_set_hash, corpus)
    path.mkdir(parents=True, exist_ok=True)
    return path


def register_part(
    wh: Warehouse,
    kind: str,
    feature_set_hash: str,
    corpus: str,
    path: Path,
    n_rows: int,
    columns: str | None = None,
) -> None:
    """Record a finished (renamed) part; only registered parts are visible in views.

    The file's size and the SHA-256 of its bytes are recorded with it, so that
    ``sercap check`` can tell a part that was truncated, overwritten or lost (hashing a
    just-written part reads it from the page cache: ~3 ms per MB here). ``columns`` is its
    :func:`schema_digest` where the writer knows it (:func:`arrow_schema_digest` of the
    table it wrote); otherwise it is read from the file's footer.
    """
    full = Path(path)
    rel = layout.relative(wh.root, full)
    before = full.stat()
    size, digest = file_digest(full)
    if columns is None:
        columns = schema_digest(full)
    stat = _stat_key(full.stat())
    if stat != _stat_key(before):  # changed while hashed: let the next open hash it again
        stat = (None, None, None)
    wh.execute(
        "INSERT OR REPLACE INTO parts (path, kind, feature_set_hash, corpus, n_rows, "
        "created_at, size_bytes, sha256, mtime_ns, ctime_ns, inode, schema_sha256) "
        "VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?, ?)",
        [rel, kind, feature_set_hash, corpus, n_rows, size, digest, *stat, columns],
    )


def schema_digest(path: Path) -> str:
    """SHA-256 (16 hex digits) of a Parquet file's column names and types, read from its
    footer: equal digests mean the views may bind the files from one footer."""
    import pyarrow.parquet as pq

    return arrow_schema_digest(pq.read_schema(path))


def arrow_schema_digest(schema: Any) -> str:
    """:func:`schema_digest` of the file an Arrow table of this schema is written to
    (:func:`write_part` writes the table's schema into the footer, which gives it back):
    the writer knows it without reading the footer again (2,855 fields of a features part,
    ~10 ms each)."""
    import hashlib

    text = "\n".join(f"{f.name}\t{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_schema(wh: Warehouse, rel: str, digest: str) -> None:
    """Record the column digest of a part registered before digests were kept."""
    wh.execute("UPDATE parts SET schema_sha256 = ? WHERE path = ?", [digest, rel])


def _stat_key(st: Any) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def changed_content(
    path: Path, recorded: tuple, sha256: str | None, *, read_only: bool = False
) -> tuple[bool, tuple | None]:
    """Whether a registered part's bytes differ from those it was registered with, judged
    like git's index: a part whose stat is the recorded one is unchanged without reading
    it; any other is hashed and compared with ``sha256``.

    A writable open compares (mtime, ctime, inode) and records the stat of a part whose
    bytes still match, so a copied warehouse is hashed once. A read-only open cannot record
    anything, so that a copy (new inodes and ctimes) is not hashed at every open it compares
    the mtime only (``cp -a`` and ``rsync -a`` keep it; an edit in place changes it), and a
    part whose stat was never recorded (a warehouse from before stats) keeps the size check.

    Returns ``(changed, verified)``: ``verified`` is the stat taken before the bytes were
    hashed and found to match (for :func:`record_stat`), else None. Raises OSError when the
    file cannot be read.
    """
    if sha256 is None:  # registered before checksums: nothing to compare with
        return False, None
    before = _stat_key(path.stat())
    if None in recorded:
        if read_only:
            return False, None
    elif before == tuple(recorded) or (read_only and before[0] == recorded[0]):
        return False, None
    changed = file_digest(path)[1] != sha256
    return changed, None if changed or _stat_key(path.stat()) != before else before


def record_stat(wh: Warehouse, rel: str, stat: tuple) -> None:
    """Record the stat a part had when its bytes were found to match its checksum."""
    wh.execute(
        "UPDATE parts SET mtime_ns = ?, ctime_ns = ?, inode = ? WHERE path = ?", [*stat, rel]
    )


def part_paths(
    wh: Warehouse, kind: str, feature_set_hash: str, corpus: str | None = None
) -> list[Path]:
    """Absolute paths of the registered parts of a feature set (optionally one corpus)."""
    sql = "SELECT path FROM parts WHERE kind = ? AND feature_set_hash = ?"
    params: list[Any] = [kind, feature_set_hash]
    if corpus is not None:
        sql += " AND corpus = ?"
        params.append(corpus)
    rows = wh.con.execute(sql + " ORDER BY path", params).fetchall()
    return [layout.absolute(wh.root, r[0]) for r in rows]


def all_part_paths(wh: Warehouse) -> list[Path]:
    """Absolute paths of every registered part (any kind, set or corpus)."""
    rows = wh.con.execute("SELECT path FROM parts ORDER BY path").fetchall()
    return [layout.absolute(wh.root, r[0]) for r in rows]


def unregistered_files(wh: Warehouse) -> list[Path]:
    """Part files that no ``parts`` row names: what an interrupted or killed run left
    (``.part-….tmp`` files, parts written but never registered). The views never read
    them; the next extraction of their set removes them."""
    return [p for p in _unnamed_files(wh) if layout.is_part_file(wh.root, p)]


def foreign_files(wh: Warehouse) -> list[Path]:
    """Files in the part folders that sercap would not have written (another name, another
    depth): sercap neither reads nor removes them."""
    return [p for p in _unnamed_files(wh) if not layout.is_part_file(wh.root, p)]


def _unnamed_files(wh: Warehouse) -> list[Path]:
    known = {p.resolve() for p in all_part_paths(wh)}
    found = []
    for kind in layout.PART_KINDS:
        folder = wh.root / kind
        if folder.is_dir():
            found += [p for p in folder.rglob("*") if p.is_file() and p.resolve() not in known]
    return sorted(found)


def parts_columns(wh: Warehouse) -> set[str]:
    """The columns the ``parts`` table has (an older warehouse opened read-only lacks the
    later ones: sizes and checksums, stats)."""
    return wh.columns_of("parts")


def registered_parts(wh: Warehouse) -> list[tuple]:
    """(path, kind, feature_set_hash, corpus, n_rows, size_bytes, sha256) of every
    registered part by path; size and checksum are None where an older warehouse lacks them."""
    cols = parts_columns(wh)
    size = "size_bytes" if "size_bytes" in cols else "NULL"
    digest = "sha256" if "sha256" in cols else "NULL"
    return wh.con.execute(
        f"SELECT path, kind, feature_set_hash, corpus, n_rows, {size}, {digest} FROM parts "
        "ORDER BY path"
    ).fetchall()


def unregister_part(wh: Warehouse, rel: str) -> None:
    """Forget a registered part (its file stays until :func:`delete_part_file`)."""
    wh.execute("DELETE FROM parts WHERE path = ?", [rel])


def delete_part_file(wh: Warehouse, rel: str) -> bool:
    """Delete the file of a (no longer registered) part, never outside the warehouse: a
    catalog path that is absolute or climbs out (``..``) is left alone; one under a part
    folder that links to another disk is deleted there."""
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        return False
    path = layout.absolute(wh.root, rel)
    if path.is_file():
        path.unlink()  # (a link itself is removed, never what it points to)
        return True
    return False


def remove_orphan_parts(wh: Warehouse, kind: str, feature_set_hash: str, corpus: str) -> int:
    """Delete part files in a part folder that were never registered (a crash's leftovers);
    a file under another name is not sercap's and stays (``check`` names it)."""
    folder = part_dir(wh, kind, feature_set_hash, corpus)
    known = {p.resolve() for p in part_paths(wh, kind, feature_set_hash, corpus)}
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and path.resolve() not in known and layout.is_part_file(wh.root, path):
            path.unlink()
            removed += 1
    return removed


def stat_problem(path: Path, size: int | None) -> str | None:
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


def parquet_problem(path: Path) -> str | None:
    """Why a file does not read as Parquet (footer and schema only), or None."""
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None
