"""Feature sets and extraction bookkeeping: which utterance of which set is stored where.

The ``feature_sets`` and ``extractions`` tables; statements longer than a line are the named
queries of ``sql/queries/extractions.sql``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap._lazy import pl
from sercap.sqlfiles import named_query
from sercap.store import layout

if TYPE_CHECKING:
    from sercap.store.warehouse import Warehouse

#: The query a user runs to see why utterances failed (printed by ``sercap extract``).
ERRORS_QUERY = "SELECT utt_id, error FROM extractions WHERE status = 'error'"


def _q(name: str) -> str:
    return named_query("extractions", name)


# -- feature sets -----------------------------------------------------------------------
def register_feature_set(
    wh: Warehouse, digest: str, name: str, kind: str, params: Any, versions: Any
) -> None:
    """Record a feature-set definition as its name's current one (an existing hash keeps
    its row, with the time moved to now: extracting an earlier definition of a name again
    made no difference, and neither train nor predict could reach it)."""
    current = wh.con.execute(
        "SELECT hash FROM feature_sets WHERE name = ? ORDER BY created_at DESC LIMIT 1", [name]
    ).fetchall()
    if current and current[0][0] == digest:
        return  # (already current: an extract with nothing new writes no byte)
    wh.execute("UPDATE feature_sets SET created_at = now() WHERE hash = ?", [digest])
    wh.execute(
        "INSERT OR IGNORE INTO feature_sets (hash, name, kind, params_json, versions_json, "
        "created_at) VALUES (?, ?, ?, ?, ?, now())",
        [
            digest,
            name,
            kind,
            json.dumps(params, sort_keys=True),
            json.dumps(dict(versions), sort_keys=True),
        ],
    )


def extraction_counts(wh: Warehouse) -> dict[str, tuple[int, int]]:
    """Feature-set hash → (utterances stored, utterances with problems)."""
    rows = wh.con.execute(_q("counts_per_set")).fetchall()
    return {h: (int(ok), int(bad)) for h, ok, bad in rows}


def stored_feature_sets(wh: Warehouse) -> list[tuple[str, str, str]]:
    """(hash, name, kind) of every recorded definition, oldest first."""
    return wh.con.execute(
        "SELECT hash, name, kind FROM feature_sets ORDER BY created_at"
    ).fetchall()


def feature_set_record(wh: Warehouse, digest: str) -> dict | None:
    """name, kind, params, versions and hash of a recorded definition, or None."""
    rows = wh.con.execute(
        "SELECT name, kind, params_json, versions_json FROM feature_sets WHERE hash = ?",
        [digest],
    ).fetchall()
    if not rows:
        return None
    name, kind, params, versions = rows[0]
    return {
        "name": name,
        "kind": kind,
        "params": json.loads(params),
        "versions": json.loads(versions or "{}"),
        "hash": digest,
    }


def newest_feature_set_record(wh: Warehouse, name: str) -> dict | None:
    """The newest recorded definition called ``name`` (what that name means to ``train``
    and the views), or None."""
    rows = wh.con.execute(
        "SELECT hash FROM feature_sets WHERE name = ? ORDER BY created_at DESC LIMIT 1", [name]
    ).fetchall()
    return feature_set_record(wh, rows[0][0]) if rows else None


def feature_set_versions(wh: Warehouse, name: str) -> list[str]:
    """The hashes of every recorded version of the set ``name``, newest first."""
    rows = wh.con.execute(
        "SELECT hash FROM feature_sets WHERE name = ? ORDER BY created_at DESC", [name]
    ).fetchall()
    return [digest for (digest,) in rows]


def feature_set_overview(wh: Warehouse) -> pl.DataFrame:
    """name, kind, hash, utterances extracted and failed of every recorded set, by name."""
    return wh.query(_q("overview"))


# -- extractions ------------------------------------------------------------------------
def count_utterances(wh: Warehouse, corpus: str | None = None) -> int:
    """Utterances in the warehouse (or in one corpus)."""
    return int(
        wh.scalar("SELECT count(*) FROM utterances WHERE ? IS NULL OR corpus = ?", [corpus, corpus])
    )


def corpus_source(wh: Warehouse, corpus: str) -> tuple[str, str]:
    """(kind, root directory) a corpus was ingested from."""
    row = wh.con.execute("SELECT kind, root FROM corpora WHERE name = ?", [corpus]).fetchone()
    if row is None:
        raise KeyError(corpus)
    return str(row[0]), str(row[1])


def utterance_audio(
    wh: Warehouse, corpus: str, limit: int | None = None
) -> list[tuple[str, str, float | None, float | None, float | None]]:
    """(utt_id, path, start_s, end_s, duration_s) of a corpus' utterances by id (the order
    ``extract`` takes them in), the first ``limit`` when given."""
    return wh.con.execute(
        "SELECT utt_id, path, start_s, end_s, duration_s FROM utterances WHERE corpus = ? "
        "ORDER BY utt_id LIMIT ?",
        [corpus, limit],
    ).fetchall()


def pending_utterances(
    wh: Warehouse, digest: str, corpus: str | None, retry_errors: bool
) -> list[tuple[str, str, str, float | None, float | None, str | None]]:
    """(corpus, utt_id, path, start_s, end_s, audio_sha256) of utterances with no stored
    extraction of the set (``retry_errors``: failed ones too), by corpus and id."""
    return wh.con.execute(
        _q("pending"), {"corpus": corpus, "hash": digest, "retry_errors": retry_errors}
    ).fetchall()


def count_failed(wh: Warehouse, digest: str, corpus: str | None) -> int:
    """Utterances (of ``corpus``) whose extraction of a set is recorded as failed."""
    return int(
        wh.scalar(
            "SELECT count(*) FROM extractions e JOIN utterances u ON u.utt_id = e.utt_id "
            "WHERE e.feature_set_hash = ? AND e.status = 'error' AND (? IS NULL OR u.corpus = ?)",
            [digest, corpus, corpus],
        )
    )


def count_unrecorded(wh: Warehouse, digest: str) -> int:
    """Utterances with no ``extractions`` row (ok or error) for a set: what ``extract`` does."""
    return int(
        wh.scalar(
            "SELECT count(*) FROM utterances u WHERE NOT EXISTS (SELECT 1 FROM extractions e "
            "WHERE e.utt_id = u.utt_id AND e.feature_set_hash = ?)",
            [digest],
        )
    )


def insert_extractions(
    wh: Warehouse, digest: str, part: Path | None, rows: Sequence[tuple]
) -> None:
    """Record (utt_id, status, error, n_frames) rows of one chunk; ``ok`` rows point at
    ``part`` (a registered part's path). One INSERT from an Arrow table (executemany costs
    ~2 ms a row in DuckDB)."""
    import duckdb
    import pyarrow as pa

    from sercap._arrow import optional_ints, strings

    rel = layout.relative(wh.root, part) if part is not None else None
    utt, status, error, n_frames = (list(c) for c in zip(*rows, strict=True))
    table = pa.table(
        {
            "utt_id": strings(utt),
            "status": strings(status),
            "error": strings(error),
            "part": strings([rel if s == "ok" else None for s in status]),
            "n_frames": optional_ints(n_frames),
        }
    )
    wh.con.register("_new_extractions", table)
    try:
        wh.execute(_q("insert_staged"), {"hash": digest})
    finally:
        # An interrupted INSERT aborts the transaction (rolled back by the caller).
        with contextlib.suppress(duckdb.Error):
            wh.con.unregister("_new_extractions")


def ok_extractions(wh: Warehouse) -> list[tuple[str, str, str | None]]:
    """(utt_id, feature_set_hash, part relative to the warehouse) of every ``ok`` row."""
    rows = wh.con.execute(
        "SELECT utt_id, feature_set_hash, part FROM extractions WHERE status = 'ok' "
        "ORDER BY feature_set_hash, utt_id"
    ).fetchall()
    return [(u, h, layout.catalog_relative(wh.root, p) if p else None) for u, h, p in rows]


def extracted_audio(
    wh: Warehouse, utt_ids: Sequence[str] | None = None, feature_set_hash: str | None = None
) -> list[tuple[str, list[str], str]]:
    """Per audio file and recorded SHA-256 behind stored (``ok``) utterances with a
    fingerprint: path, those utterances and that hash (a file whose segments were ingested
    at different times can have two); only of ``utt_ids`` and stored for
    ``feature_set_hash`` when given (what one dataset reads), else every one."""
    return wh.con.execute(
        "SELECT u.path, list(DISTINCT u.utt_id ORDER BY u.utt_id), u.audio_sha256 "
        "FROM utterances u WHERE u.audio_sha256 IS NOT NULL AND EXISTS (SELECT 1 FROM "
        "extractions e WHERE e.utt_id = u.utt_id AND e.status = 'ok' "
        "AND (?::VARCHAR IS NULL OR e.feature_set_hash = ?)) "
        "AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], u.utt_id)) "
        "GROUP BY u.path, u.audio_sha256 ORDER BY u.path, u.audio_sha256",
        [feature_set_hash, feature_set_hash, utt_ids, utt_ids],
    ).fetchall()


def forget_extractions(wh: Warehouse, digest: str, utt_ids: Sequence[str]) -> None:
    """Drop the ``ok`` rows of some utterances of one set (they will be extracted again)."""
    wh.execute(
        "DELETE FROM extractions WHERE feature_set_hash = ? AND status = 'ok' "
        "AND utt_id IN (SELECT unnest(?::VARCHAR[]))",
        [digest, sorted(utt_ids)],
    )


def extraction_errors(wh: Warehouse, utt_ids: Sequence[str]) -> dict[str, list[str | None]]:
    """Each of ``utt_ids`` that has extraction rows → their errors (None for an ``ok``
    row), one per feature set."""
    rows = wh.con.execute(
        "SELECT utt_id, list(CASE WHEN status = 'error' THEN error END) "
        "FROM extractions WHERE list_contains(?, utt_id) GROUP BY utt_id",
        [list(utt_ids)],
    ).fetchall()
    return dict(rows)


def drop_extractions_of(wh: Warehouse, utt_ids: Sequence[str]) -> int:
    """Drop every extraction row (all sets) of some utterances; returns how many there were."""
    stale = list(utt_ids)
    n = int(wh.scalar("SELECT count(*) FROM extractions WHERE list_contains(?, utt_id)", [stale]))
    wh.execute("DELETE FROM extractions WHERE list_contains(?, utt_id)", [stale])
    return n


def parts_of_utterances(wh: Warehouse, utt_ids: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """(path, kind, feature_set_hash, corpus) of registered parts holding an ``ok`` row of
    one of ``utt_ids`` (a chunk's frames part counts: it shares its file name)."""
    return wh.con.execute(_q("parts_of_utterances"), {"utts": list(utt_ids)}).fetchall()


def repoint_chunk(wh: Warehouse, digest: str, corpus: str, chunk: str, part: Path) -> None:
    """Point the ``ok`` rows of a chunk (file name ``chunk``) at its rewritten ``part``."""
    wh.execute(
        _q("repoint_chunk"),
        {"part": layout.relative(wh.root, part), "hash": digest, "chunk": chunk, "corpus": corpus},
    )


def missing_extractions(wh: Warehouse, digest: str, utt_ids: pl.Series) -> int:
    """How many of ``utt_ids`` were never attempted for the set (no row, ok or failed)."""
    wh.con.register("_wanted", pl.DataFrame({"utt_id": utt_ids}).to_arrow())
    try:
        return int(
            wh.scalar(
                "SELECT count(*) FROM _wanted w WHERE NOT EXISTS (SELECT 1 FROM extractions e "
                "WHERE e.utt_id = w.utt_id AND e.feature_set_hash = ?)",
                [digest],
            )
        )
    finally:
        wh.con.unregister("_wanted")
