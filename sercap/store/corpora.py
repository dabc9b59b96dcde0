"""Corpus rows of the catalog: utterances, labels, evaluations, audio fingerprints,
transcripts, the corpora row and ingest problems (what ``sercap ingest`` writes).

Everything runs inside the caller's transaction; staged rows arrive as polars frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap._lazy import pl
from sercap.errors import NotFoundError

if TYPE_CHECKING:
    from sercap.store.warehouse import Warehouse


def utterance_schema() -> dict[str, Any]:
    """Columns of the staged ``utterances`` rows ingest writes (the catalog's column order).

    Functions, not constants: building polars types imports polars, which a command that
    only reads these tables through DuckDB (``extract``) does not need.
    """
    return {
        "utt_id": pl.String,
        "corpus": pl.String,
        "session": pl.String,
        "speaker": pl.String,
        "gender": pl.String,
        "path": pl.String,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
        "duration_s": pl.Float64,
        "sample_rate": pl.Int32,
        "channels": pl.Int32,
        "text_id": pl.String,
        "source_start_s": pl.Float64,
        "source_end_s": pl.Float64,
        "audio_sha256": pl.String,
    }


def audio_file_schema() -> dict[str, Any]:
    """The staged ``audio_files`` rows' columns (see :func:`utterance_schema`)."""
    return {
        "path": pl.String,
        "size": pl.Int64,
        "mtime_ns": pl.Int64,
        "ctime_ns": pl.Int64,
        "inode": pl.Int64,
        "sha256": pl.String,
        "hashed_ns": pl.Int64,
    }


def label_schema() -> dict[str, Any]:
    """The staged ``labels`` rows' columns (see :func:`utterance_schema`)."""
    return {
        "utt_id": pl.String,
        "emotion": pl.String,
        "emotion_raw": pl.String,
        "votes": pl.List(pl.String),
        "valence": pl.Float64,
        "activation": pl.Float64,
        "dominance": pl.Float64,
        "intensity": pl.String,
    }


def evaluation_schema() -> dict[str, Any]:
    """The staged ``evaluations`` rows' columns (see :func:`utterance_schema`)."""
    return {
        "utt_id": pl.String,
        "evaluator": pl.String,
        "is_self": pl.Boolean,
        "kind": pl.String,
        "emotions": pl.List(pl.String),
        "valence": pl.Float64,
        "activation": pl.Float64,
        "dominance": pl.Float64,
        "comment": pl.String,
    }


def store_rows(
    wh: Warehouse,
    corpus: str,
    spec: Any,
    root: Path,
    utterances: pl.DataFrame,
    labels: pl.DataFrame,
    evaluations: pl.DataFrame,
    problems: list[Any],
) -> dict[str, int]:
    """Write what is new or changed (inside the caller's transaction); count both."""
    staged = {"_ingest_u": utterances, "_ingest_l": labels, "_ingest_e": evaluations}
    for view, frame in staged.items():
        wh.con.register(view, frame)
    try:
        new_ids = _ids(wh, "SELECT utt_id FROM _ingest_u ANTI JOIN utterances USING (utt_id)")
        stale = (
            "FROM evaluations WHERE utt_id IN (SELECT utt_id FROM _ingest_u) AND "
            "(utt_id, evaluator, kind) NOT IN (SELECT (utt_id, evaluator, kind) FROM _ingest_e)"
        )
        changed = _ids(wh, f"SELECT utt_id {stale}")
        wh.execute(f"DELETE {stale}")
        changed |= upsert_changed(wh, "utterances", "_ingest_u", utterance_schema())
        changed |= upsert_changed(wh, "labels", "_ingest_l", label_schema())
        changed |= upsert_changed(wh, "evaluations", "_ingest_e", evaluation_schema())
    finally:
        for view in staged:
            wh.con.unregister(view)
    store_corpus_row(wh, corpus, spec, root, touched=bool(changed))
    wh.execute("DELETE FROM ingest_problems WHERE corpus = ?", [corpus])
    if problems:
        wh.con.executemany(
            "INSERT INTO ingest_problems VALUES (?, ?, ?, ?)",
            [(corpus, p.file, p.line, p.message) for p in problems],
        )
    return {"added": len(new_ids), "updated": len(changed - new_ids)}


def audio_changed(wh: Warehouse, utterances: pl.DataFrame) -> set[str]:
    """Stored utterances whose audio differs from the staged rows' (before they are written).

    Another hash or segment means other audio. Rows stored before fingerprints existed have
    no hash: for them a changed duration, sample rate or channel count is the evidence. A
    new utterance whose id already has extractions (its row was deleted by hand, the
    features stayed) counts too: those features are of audio no longer described.
    """
    wh.con.register("_ingest_a", utterances)
    try:
        return _ids(
            wh,
            "SELECT s.utt_id FROM _ingest_a s JOIN utterances u USING (utt_id) WHERE "
            "u.start_s IS DISTINCT FROM s.start_s OR u.end_s IS DISTINCT FROM s.end_s OR "
            "(CASE WHEN u.audio_sha256 IS NULL THEN "
            "u.duration_s IS DISTINCT FROM s.duration_s OR "
            "u.sample_rate IS DISTINCT FROM s.sample_rate OR "
            "u.channels IS DISTINCT FROM s.channels "
            "ELSE u.audio_sha256 <> s.audio_sha256 END) "
            "UNION SELECT s.utt_id FROM _ingest_a s WHERE s.utt_id NOT IN "
            "(SELECT utt_id FROM utterances) AND s.utt_id IN "
            "(SELECT utt_id FROM extractions WHERE status = 'ok')",
        )
    finally:
        wh.con.unregister("_ingest_a")


def stored_elsewhere(wh: Warehouse, corpus: str, utt_ids: pl.Series) -> list[tuple[str, str]]:
    """(utt_id, path) of the stored utterances of ``corpus`` that are not in ``utt_ids``
    (those an ingest is about to write), by id."""
    wh.con.register("_ingest_ids", pl.DataFrame({"utt_id": utt_ids}))
    try:
        return wh.con.execute(
            "SELECT utt_id, path FROM utterances WHERE corpus = ? "
            "AND utt_id NOT IN (SELECT utt_id FROM _ingest_ids) ORDER BY utt_id",
            [corpus],
        ).fetchall()
    finally:
        wh.con.unregister("_ingest_ids")


def refingerprint_elsewhere(
    wh: Warehouse, corpus: str, utt_ids: pl.Series, files: pl.DataFrame
) -> set[str]:
    """Stored utterances of ``corpus`` not in ``utt_ids`` (those an ingest writes) whose file
    it hashed (``files``) to other bytes than they recorded: their recorded hash becomes the
    file's, and their ids come back, since their stored features are of the old bytes.

    Two segments of one file, one of them left out of a later manifest: re-ingesting after
    the file changed updated the listed segment only, and the other kept its stale features.
    """
    wh.con.register("_ingest_ids", pl.DataFrame({"utt_id": utt_ids}))
    wh.con.register("_ingest_files", files.select("path", "sha256"))
    try:
        rows = wh.con.execute(
            "SELECT u.utt_id FROM utterances u JOIN _ingest_files f USING (path) "
            "WHERE u.corpus = ? AND u.audio_sha256 IS NOT NULL "
            "AND u.audio_sha256 <> f.sha256 "
            "AND u.utt_id NOT IN (SELECT utt_id FROM _ingest_ids)",
            [corpus],
        ).fetchall()
        stale = {row[0] for row in rows}
        if stale:
            wh.execute(
                "UPDATE utterances SET audio_sha256 = f.sha256 FROM _ingest_files f "
                "WHERE utterances.path = f.path AND list_contains(?, utterances.utt_id)",
                [sorted(stale)],
            )
        return stale
    finally:
        wh.con.unregister("_ingest_ids")
        wh.con.unregister("_ingest_files")


def store_audio_files(wh: Warehouse, files: pl.DataFrame) -> None:
    """Record the fingerprints that are new or changed."""
    columns = ", ".join(audio_file_schema())
    wh.con.register("_ingest_f", files)
    try:
        wh.execute(
            f"INSERT OR REPLACE INTO audio_files ({columns}) "
            f"SELECT {columns} FROM _ingest_f EXCEPT SELECT {columns} FROM audio_files"
        )
    finally:
        wh.con.unregister("_ingest_f")


def known_fingerprints(wh: Warehouse) -> dict[str, Any]:
    """The fingerprints ingest recorded (:class:`sercap.corpora.fingerprint.Fingerprint`),
    by path."""
    from sercap.corpora.fingerprint import FileStat, Fingerprint

    rows = wh.con.execute(
        "SELECT path, sha256, size, mtime_ns, ctime_ns, inode, hashed_ns FROM audio_files"
    ).fetchall()
    return {
        path: Fingerprint(path, sha, FileStat(size, mtime, ctime, inode), hashed)
        for path, sha, size, mtime, ctime, inode, hashed in rows
    }


def record_fingerprints(wh: Warehouse, prints: Sequence[Any]) -> None:
    """Record fingerprints of files hashed again and found unchanged, so the next stat
    pre-check trusts them."""
    rows = [f.row() for f in prints]
    store_audio_files(wh, pl.DataFrame(rows, schema=audio_file_schema(), orient="row"))


def _ids(wh: Warehouse, sql: str) -> set[str]:
    return {row[0] for row in wh.con.execute(sql).fetchall()}


def upsert_changed(wh: Warehouse, table: str, view: str, schema: dict) -> set[str]:
    """INSERT OR REPLACE only the staged rows that differ from the stored ones."""
    columns = ", ".join(schema)
    differing = f"SELECT {columns} FROM {view} EXCEPT SELECT {columns} FROM {table}"
    changed = _ids(wh, f"SELECT DISTINCT utt_id FROM ({differing})")
    if changed:
        wh.execute(f"INSERT OR REPLACE INTO {table} ({columns}) {differing}")
    return changed


def store_corpus_row(wh: Warehouse, corpus: str, spec: Any, root: Path, touched: bool) -> None:
    """The corpora row: created once, refreshed only when this ingest changed something."""
    root_text = str(root.absolute())
    stored_root = wh.scalar("SELECT root FROM corpora WHERE name = ?", [corpus])
    if stored_root is not None and stored_root == root_text and not touched:
        return
    wh.execute(
        "INSERT OR REPLACE INTO corpora (name, kind, root, label_map, protocol, ingested_at) "
        "VALUES (?, ?, ?, ?, ?, now())",
        [corpus, spec.name, root_text, spec.label_map, spec.protocol],
    )


def store_transcripts(wh: Warehouse, utt_ids: pl.Series, frame: pl.DataFrame) -> int:
    """Replace the stored words of the utterances ``utt_ids`` (this ingest's) by ``frame``
    (inside the caller's transaction, after its utterances are written). The words of the
    corpus' other utterances stay: ingesting one session of a corpus after another must
    not drop the first session's transcripts. Returns how many utterances had words
    stored that are now other words, or none."""
    wh.con.register("_ingest_ids", pl.DataFrame({"utt_id": utt_ids}))
    try:
        before = dict(
            wh.con.execute(
                "SELECT utt_id, text FROM transcripts WHERE utt_id IN "
                "(SELECT utt_id FROM _ingest_ids)"
            ).fetchall()
        )
        wh.execute("DELETE FROM transcripts WHERE utt_id IN (SELECT utt_id FROM _ingest_ids)")
    finally:
        wh.con.unregister("_ingest_ids")
    now = dict(zip(frame["utt_id"].to_list(), frame["text"].to_list(), strict=True))
    changed = sum(now.get(u) != words for u, words in before.items())
    if frame.is_empty():
        return changed
    wh.con.register("_ingest_t", frame)
    try:
        wh.execute(
            "INSERT OR REPLACE INTO transcripts (utt_id, text) SELECT utt_id, text FROM _ingest_t"
        )
    finally:
        wh.con.unregister("_ingest_t")
    return changed


def has_transcripts(wh: Warehouse, corpus: str) -> bool:
    """Whether any utterance of ``corpus`` has words in ``transcripts``."""
    found = wh.con.execute(
        "SELECT 1 FROM transcripts t JOIN utterances u USING (utt_id) WHERE u.corpus = ? LIMIT 1",
        [corpus],
    ).fetchall()
    return bool(found)


def same_audio(wh: Warehouse, corpora: Sequence[str]) -> list[tuple[str, ...]]:
    """Utterances of ``corpora`` holding the same audio (file bytes and segment) as an
    utterance of another speaker or another of ``corpora``: (utt_id, corpus, path, other
    utt_id, other corpus, other path), one row per pair, ordered.

    The same recording under two speakers (a file copied into two corpora, or filed under
    two actors) defeats speaker-independent splits: a model is tested on audio it trained
    on. Utterances of one speaker sharing a file (segments of one recording) are not pairs.
    """
    if not corpora:
        return []
    marks = ", ".join("?" * len(corpora))
    return wh.con.execute(
        "SELECT a.utt_id, a.corpus, a.path, b.utt_id, b.corpus, b.path "
        "FROM utterances a JOIN utterances b "
        "ON a.audio_sha256 = b.audio_sha256 AND a.utt_id < b.utt_id "
        "AND a.start_s IS NOT DISTINCT FROM b.start_s AND a.end_s IS NOT DISTINCT FROM b.end_s "
        "AND (a.corpus <> b.corpus OR a.speaker IS DISTINCT FROM b.speaker) "
        f"WHERE a.corpus IN ({marks}) AND b.corpus IN ({marks}) ORDER BY a.utt_id, b.utt_id",
        [*corpora, *corpora],
    ).fetchall()


def duration_range(wh: Warehouse, corpus: str) -> tuple[float | None, float | None]:
    """The durations in seconds of the shortest and the longest utterance of ``corpus``
    (None, None: none)."""
    ((shortest, longest),) = wh.con.execute(
        "SELECT min(duration_s), max(duration_s) FROM utterances WHERE corpus = ?", [corpus]
    ).fetchall()
    return shortest, longest


def corpus_names(wh: Warehouse) -> list[str]:
    """The names of the warehouse's corpora, sorted."""
    return [name for (name,) in wh.con.execute("SELECT name FROM corpora ORDER BY 1").fetchall()]


def unknown_corpus(corpus: str, names: list[str]) -> NotFoundError:
    """What every verb says about a corpus name the warehouse does not hold."""
    return NotFoundError(f"no corpus {corpus!r} in the warehouse (have: {', '.join(names)})")
