"""Write a corpus into the warehouse: one transaction, idempotent, problems recorded.

Only rows that are new or differ from what is stored are written, so running an ingest
twice changes nothing and a bigger copy adds only what is new (rows of utterances read
again are refreshed, e.g. their path when the corpus moved). An id owned by another corpus
name, or a fatal reading error, stops everything before the first write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from tqdm import tqdm

from sercap.audio import AudioError, probe_audio
from sercap.corpora import corpus_kind
from sercap.corpora.records import CorpusKind, Problem, UtteranceRecord
from sercap.corpora.transcripts import store_transcripts, transcript_frame
from sercap.errors import SercapError
from sercap.warehouse import Warehouse, check_name

UTTERANCE_SCHEMA = {
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
}
LABEL_SCHEMA = {
    "utt_id": pl.String,
    "emotion": pl.String,
    "emotion_raw": pl.String,
    "votes": pl.List(pl.String),
    "valence": pl.Float64,
    "activation": pl.Float64,
    "dominance": pl.Float64,
    "intensity": pl.String,
}
EVALUATION_SCHEMA = {
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
#: Tolerance for a segment's end beyond the end of its file (header rounding).
_SEGMENT_SLACK_S = 0.05


@dataclass
class IngestSummary:
    """What an ingest read, wrote and found wrong; the tables cover the whole corpus."""

    corpus: str
    kind: str
    root: Path
    label_map: str
    protocol: str
    read: int
    added: int
    updated: int
    unchanged: int
    in_label_map: int
    per_label: pl.DataFrame
    per_speaker: pl.DataFrame
    problems: list[Problem] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return int(self.per_speaker["utterances"].sum()) if self.per_speaker.height else 0


def ingest(
    wh: Warehouse,
    kind: str,
    root: str | Path,
    name: str | None = None,
    *,
    progress: bool | None = False,
) -> IngestSummary:
    """Read the corpus at ``root`` with the ``kind`` reader and store it as corpus ``name``.

    Non-fatal problems (a missing wav, a malformed line) skip what they concern and are
    stored in ``ingest_problems``; fatal ones raise :class:`SercapError` with nothing written.
    ``progress=None`` shows a bar while probing headers only when stderr is a terminal.
    """
    spec = corpus_kind(kind)
    corpus = check_name(name or kind, "corpus name")
    root = Path(root)
    _check_corpus_kind(wh, corpus, spec)
    problems: list[Problem] = []
    records = _unique(list(spec.reader(root, problems)), problems)
    _check_ownership(wh, corpus, pl.DataFrame({"utt_id": [r.utt_id for r in records]}))
    utterances, labels, evaluations = _tables(corpus, records, problems, progress)
    if utterances.is_empty():
        first = f"; first: {problems[0]}" if problems else ""
        raise SercapError(f"{root}: no usable utterances ({len(problems)} problems{first})")
    with wh.transaction():
        counts = _store(wh, corpus, spec, root, utterances, labels, evaluations, problems)
        store_transcripts(wh, corpus, transcript_frame(records, utterances["utt_id"]))
    counts["usable"] = utterances.height
    return _summary(wh, corpus, spec, root, len(records), counts, problems)


def _check_corpus_kind(wh: Warehouse, corpus: str, spec: CorpusKind) -> None:
    stored = wh.scalar("SELECT kind FROM corpora WHERE name = ?", [corpus])
    if stored is not None and stored != spec.name:
        raise SercapError(
            f"corpus name {corpus!r} is taken by a corpus of kind {stored}; give this "
            f"{spec.name} corpus another name with --name"
        )


def _unique(records: list[UtteranceRecord], problems: list[Problem]) -> list[UtteranceRecord]:
    """Keep the first record of each id; later ones are problems."""
    seen: set[str] = set()
    kept = []
    for record in records:
        if record.utt_id in seen:
            problems.append(record.problem("duplicate utterance id (first one kept)"))
            continue
        seen.add(record.utt_id)
        kept.append(record)
    return kept


def _tables(
    corpus: str, records: list[UtteranceRecord], problems: list[Problem], progress: bool | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Probe every wav's header and build the rows of utterances, labels, evaluations."""
    utterance_rows, label_rows, evaluation_rows = [], [], []
    bar = tqdm(
        records,
        desc="probing audio",
        unit="file",
        leave=False,
        disable=None if progress is None else not progress,
    )
    for record in bar:
        try:
            info = probe_audio(record.path)
        except AudioError as exc:
            problems.append(record.problem(f"{exc}: {record.path}"))
            continue
        duration = _duration(record, info.duration_s)
        if duration is None:
            problems.append(
                record.problem(f"segment {record.start_s}-{record.end_s} s is outside the file")
            )
            continue
        utterance_rows.append(_utterance_row(corpus, record, info, duration))
        label_rows.append(_label_row(record))
        evaluation_rows.extend(_evaluation_rows(record))
    return (
        pl.DataFrame(utterance_rows, schema=UTTERANCE_SCHEMA, orient="row"),
        pl.DataFrame(label_rows, schema=LABEL_SCHEMA, orient="row"),
        pl.DataFrame(evaluation_rows, schema=EVALUATION_SCHEMA, orient="row"),
    )


def _duration(record: UtteranceRecord, file_duration: float) -> float | None:
    """Length of what extraction will load: the segment, or the whole file."""
    start = record.start_s or 0.0
    end = file_duration if record.end_s is None else record.end_s
    if start < 0 or end <= start or end > file_duration + _SEGMENT_SLACK_S:
        return None
    return min(end, file_duration) - start


def _utterance_row(corpus: str, r: UtteranceRecord, info, duration: float) -> tuple:
    return (
        r.utt_id,
        corpus,
        r.session,
        r.speaker,
        r.gender,
        str(r.path),
        r.start_s,
        r.end_s,
        duration,
        info.sample_rate,
        info.channels,
        r.text_id,
        r.source_start_s,
        r.source_end_s,
    )


def _label_row(r: UtteranceRecord) -> tuple:
    votes = list(r.votes) if r.votes else None
    return (
        r.utt_id,
        r.emotion,
        r.emotion_raw,
        votes,
        r.valence,
        r.activation,
        r.dominance,
        r.intensity,
    )


def _evaluation_rows(r: UtteranceRecord) -> list[tuple]:
    return [
        (
            r.utt_id,
            e.evaluator,
            e.is_self,
            e.kind,
            list(e.emotions) if e.emotions is not None else None,
            e.valence,
            e.activation,
            e.dominance,
            e.comment,
        )
        for e in r.evaluations
    ]


def _check_ownership(wh: Warehouse, corpus: str, ids: pl.DataFrame) -> None:
    """Refuse ids that another corpus name already owns (ids are global keys)."""
    wh.con.register("_ingest_ids", ids)
    try:
        clash = wh.query(
            "SELECT u.utt_id, u.corpus, count(*) OVER () AS n FROM _ingest_ids s "
            "JOIN utterances u USING (utt_id) WHERE u.corpus <> ? ORDER BY u.utt_id LIMIT 1",
            [corpus],
        )
    finally:
        wh.con.unregister("_ingest_ids")
    if clash.height:
        utt_id, owner, n = clash.row(0)
        raise SercapError(
            f"utterance {utt_id!r} (and {n - 1} more) already belongs to corpus {owner!r}; "
            f"ingest it with --name {owner} to update that corpus"
        )


def _store(
    wh: Warehouse,
    corpus: str,
    spec: CorpusKind,
    root: Path,
    utterances: pl.DataFrame,
    labels: pl.DataFrame,
    evaluations: pl.DataFrame,
    problems: list[Problem],
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
        changed |= _upsert_changed(wh, "utterances", "_ingest_u", UTTERANCE_SCHEMA)
        changed |= _upsert_changed(wh, "labels", "_ingest_l", LABEL_SCHEMA)
        changed |= _upsert_changed(wh, "evaluations", "_ingest_e", EVALUATION_SCHEMA)
    finally:
        for view in staged:
            wh.con.unregister(view)
    _store_corpus(wh, corpus, spec, root, touched=bool(changed))
    wh.execute("DELETE FROM ingest_problems WHERE corpus = ?", [corpus])
    if problems:
        wh.con.executemany(
            "INSERT INTO ingest_problems VALUES (?, ?, ?, ?)",
            [(corpus, p.file, p.line, p.message) for p in problems],
        )
    return {"added": len(new_ids), "updated": len(changed - new_ids)}


def _ids(wh: Warehouse, sql: str) -> set[str]:
    return {row[0] for row in wh.con.execute(sql).fetchall()}


def _upsert_changed(wh: Warehouse, table: str, view: str, schema: dict) -> set[str]:
    """INSERT OR REPLACE only the staged rows that differ from the stored ones."""
    columns = ", ".join(schema)
    differing = f"SELECT {columns} FROM {view} EXCEPT SELECT {columns} FROM {table}"
    changed = _ids(wh, f"SELECT DISTINCT utt_id FROM ({differing})")
    if changed:
        wh.execute(f"INSERT OR REPLACE INTO {table} ({columns}) {differing}")
    return changed


def _store_corpus(wh: Warehouse, corpus: str, spec: CorpusKind, root: Path, touched: bool) -> None:
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


def _summary(
    wh: Warehouse,
    corpus: str,
    spec: CorpusKind,
    root: Path,
    n_read: int,
    counts: dict[str, int],
    problems: list[Problem],
) -> IngestSummary:
    per_label = wh.query(
        "SELECT l.emotion AS label, count(*) AS utterances FROM utterances u "
        "JOIN labels l USING (utt_id) WHERE u.corpus = ? GROUP BY ALL ORDER BY 2 DESC, 1",
        [corpus],
    )
    per_speaker = wh.query(
        "SELECT speaker, any_value(gender) AS gender, count(*) AS utterances, "
        "round(sum(duration_s) / 60, 1) AS minutes FROM utterances WHERE corpus = ? "
        "GROUP BY speaker ORDER BY speaker",
        [corpus],
    )
    in_label_map = wh.scalar(f"SELECT count(*) FROM {spec.label_map} WHERE corpus = ?", [corpus])
    return IngestSummary(
        corpus=corpus,
        kind=spec.name,
        root=root,
        label_map=spec.label_map,
        protocol=spec.protocol,
        read=n_read,
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["usable"] - counts["added"] - counts["updated"],
        in_label_map=int(in_label_map or 0),
        per_label=per_label,
        per_speaker=per_speaker,
        problems=problems,
    )
