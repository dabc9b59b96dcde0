"""Write a corpus into the warehouse: one transaction, idempotent, problems recorded.

Only rows that are new or differ from what is stored are written, so running an ingest
twice changes nothing and a bigger copy adds only what is new (rows of utterances read
again are refreshed, e.g. their path when the corpus moved). An id owned by another corpus
name, or a fatal reading error, stops everything before the first write.

Every utterance's audio gets a content fingerprint (SHA-256 of its file, see
:mod:`sercap.corpora.fingerprint`). When a re-ingest finds that an utterance's audio changed
(another hash, or another segment of the file), its extractions and stored features are
dropped in the same transaction (:mod:`sercap.corpora.invalidate`) so that the next
``extract`` recomputes it. So are those of a stored utterance whose file is now missing
or unusable (deleted, truncated, damaged): its features describe audio the warehouse can no
longer point to. Its row and labels stay; ``extract`` records its audio's problem, and
restoring the file and ingesting again brings it back.

One audio source is one utterance: a second row naming the same file and segment, or (for
ids a manifest leaves to sercap) a copy of a file with the same segment as another
utterance of the corpus, is a problem ("duplicate audio"), not a second utterance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from sercap._lazy import pl
from sercap.audio import AudioError, AudioInfo, empty_audio_reason, probe_audio, unreachable
from sercap.corpora import corpus_kind
from sercap.corpora.fingerprint import Fingerprint, fingerprint
from sercap.corpora.invalidate import Invalidation, invalidate
from sercap.corpora.records import CorpusKind, Problem, UtteranceRecord
from sercap.corpora.transcripts import transcript_frame
from sercap.errors import SercapError, option, require_utf8_path, step
from sercap.store import Warehouse, catalog, check_name
from sercap.store import corpora as corpora_store
from sercap.store.corpora import (
    audio_file_schema,
    corpus_names,
    evaluation_schema,
    label_schema,
    same_audio,
    utterance_schema,
)

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
    per_label: pl.DataFrame = field(repr=False)
    per_speaker: pl.DataFrame = field(repr=False)
    problems: list[Problem] = field(default_factory=list, repr=False)
    #: Utterances stored before whose audio changed; their extractions were dropped.
    audio_changed: int = 0
    #: Stored utterances whose file is now missing or unusable, with the reason; their
    #: extractions were dropped too. (One extract already failed to reach is not counted
    #: again: its error rows say why.)
    audio_gone: dict[str, str] = field(default_factory=dict)
    #: Utterances whose file extract could not reach and that read fine now: their error
    #: rows were dropped, so extract tries them again.
    audio_back: int = 0
    #: Stored utterances of this corpus that this ingest does not write (an earlier
    #: manifest's rows, or a row it rejected) and whose file is still fine: left as they
    #: were, and still trained on.
    kept: list[str] = field(default_factory=list, repr=False)
    #: Stored utterances whose words this ingest changed (or removed): runs that read
    #: them (text, fused) were trained on the old words.
    words_changed: int = 0
    invalidation: Invalidation = field(default_factory=Invalidation)
    #: Files hashed now (the others kept the hash recorded for the same size/times/inode).
    hashed: int = 0
    hash_s: float = 0.0
    #: Pairs of utterances with the same audio (bytes and segment), one of this corpus and
    #: one of another speaker or corpus (:func:`sercap.store.corpora.same_audio`).
    same_audio: list[tuple[str, ...]] = field(default_factory=list, repr=False)

    @property
    def stored(self) -> int:
        return int(self.per_speaker["utterances"].sum()) if self.per_speaker.height else 0

    def __str__(self) -> str:
        """What ``sercap ingest`` prints."""
        from sercap.format import format_ingest_summary

        return format_ingest_summary(self)

    def _repr_markdown_(self) -> str:
        return f"```\n{self}\n```"

    def same_audio_line(self) -> str | None:
        """One line on recordings this corpus shares with another speaker or corpus."""
        if not self.same_audio:
            return None
        utt, corpus, _, other, other_corpus, _ = self.same_audio[0]
        if corpus != self.corpus:  # this corpus' utterance first
            utt, other, other_corpus = other, utt, corpus
        where = "" if other_corpus == self.corpus else f" of corpus {other_corpus!r}"
        return (
            f"note: {len(self.same_audio)} utterance pair(s) hold the same audio under two "
            f"speakers or corpora (first: {utt} and {other}{where}); folds and cross-corpus "
            "cells would test on recordings they trained on, so training refuses such a pair "
            "in two folds, and cross-corpus such a pair in two corpora"
        )

    def words_line(self) -> str | None:
        """One line on stored words this ingest changed (the counts name rows, not words)."""
        if not self.words_changed:
            return None
        return (
            f"note: the words of {self.words_changed} stored utterance(s) changed; text and "
            "fused runs trained on the old words no longer describe them (predict refuses "
            "them): train them again"
        )

    def rare_labels_line(self) -> str | None:
        """One line on a manifest's labels that hold a single utterance in a corpus of a
        few dozen or more: a typo (``angy``) became a class of its own without a word."""
        if self.kind != "manifest" or self.per_label.is_empty():
            return None
        counts = dict(zip(self.per_label["label"], self.per_label["utterances"], strict=True))
        if sum(counts.values()) < 20:
            return None
        rare = sorted(label for label, n in counts.items() if n == 1)
        if not rare:
            return None
        return (
            f"note: label(s) {', '.join(map(repr, rare))} hold one utterance each: a typo? A "
            "manifest's labels are kept as given (lowercased); fix the row to merge it"
        )

    def kept_line(self) -> str | None:
        """One line on stored utterances this ingest left as they were."""
        if not self.kept:
            return None
        return (
            f"note: {len(self.kept)} stored utterance(s) of corpus {self.corpus!r} that this "
            f"ingest does not write (first: {self.kept[0]}) stay as stored before, and are "
            "trained on; a row rejected above keeps its earlier version. To leave them out, "
            f"ingest under a new name ({option('name')})"
        )

    def audio_line(self) -> str | None:
        """One line on changed, lost or found audio, or None when nothing stored changed."""
        if not self.audio_changed and not self.audio_gone:
            if self.audio_back:
                return (
                    f"audio back: {self.audio_back} utterance(s) whose file extract could not "
                    f"reach read fine now; {step('extract', 'extract(wh)')} will try them again"
                )
            return None
        parts = [f"{self.audio_changed} utterance(s)"] if self.audio_changed else []
        if self.audio_gone:
            utt, reason = next(iter(self.audio_gone.items()))
            parts.append(
                f"{len(self.audio_gone)} stored utterance(s) whose file is missing or unusable "
                f"now (first: {utt}: {reason})"
            )
        if self.audio_back:
            parts.append(f"{self.audio_back} whose file extract could not reach reads fine now")
        head = "audio changed: " + " and ".join(parts)
        inv = self.invalidation
        if not inv.extractions:
            return f"{head}; nothing was extracted from them yet"
        then = f"{step('extract', 'extract(wh)')} will re-extract them"
        if self.audio_gone:
            then += " (and record the problem of a file still missing or unusable)"
        return (
            f"{head}; {inv.extractions} extraction(s) and {inv.rows_dropped} stored row(s) in "
            f"{inv.parts_rewritten} part(s) dropped; {then}"
        )


def ingest(
    wh: Warehouse,
    kind: str,
    root: str | Path,
    name: str | None = None,
    *,
    progress: bool | None = False,
    rehash: bool = False,
) -> IngestSummary:
    """Read the corpus at ``root`` with the ``kind`` reader and store it as corpus ``name``.

    Non-fatal problems (a missing wav, a malformed line, a second row naming the same audio)
    skip what they concern and are stored in ``ingest_problems``; fatal ones raise
    :class:`SercapError` with nothing written. Utterances whose audio changed since the last
    ingest lose their extractions (see the module doc). ``rehash`` hashes every file even
    when its stat is unchanged. ``progress=None`` shows a bar while probing headers only
    when stderr is a terminal.
    """
    spec = corpus_kind(kind)
    corpus = check_name(name or kind, "corpus name")
    require_utf8_path(Path(root).absolute(), "the corpus folder")  # its parents' names too
    root = Path(root)
    _check_corpus_kind(wh, corpus, spec)
    problems: list[Problem] = []
    read = list(spec.reader(root, problems))
    records = _unique(read, problems)
    known = {} if rehash else corpora_store.known_fingerprints(wh)
    probed, hashing = _probe(records, problems, progress, known)
    probed = _unique_probed(_one_per_source(wh, corpus, probed, problems), problems)
    _check_ownership(
        wh, corpus, pl.DataFrame({"utt_id": [p.record.utt_id for p in probed]}), spec.name
    )
    utterances, labels, evaluations, files = _tables(corpus, probed)
    if utterances.is_empty():
        ordered = sorted(problems, key=lambda p: (p.file or "", p.line or 0))
        first = f"; first: {ordered[0]}" if ordered else ""
        raise SercapError(f"{root}: no usable utterances ({len(problems)} problems{first})")
    gone, kept = _audio_gone(wh, corpus, utterances["utt_id"])
    # A file that could not be reached when extract tried it: still missing, nothing to
    # drop (extract recorded why); readable again, its error rows go so extract retries it.
    failed = _failed_unreachable(wh, [*gone, *utterances["utt_id"]])
    gone = {u: why for u, why in gone.items() if u not in failed}
    back = failed & set(utterances["utt_id"])
    invalidation = Invalidation()
    try:
        with wh.transaction():
            changed_audio = corpora_store.audio_changed(wh, utterances)
            # segments of a changed file that this ingest does not list: stale all the same
            changed_audio |= corpora_store.refingerprint_elsewhere(
                wh, corpus, utterances["utt_id"], files
            )
            counts = corpora_store.store_rows(
                wh, corpus, spec, root, utterances, labels, evaluations, problems
            )
            corpora_store.store_audio_files(wh, files)
            words_changed = corpora_store.store_transcripts(
                wh, utterances["utt_id"], transcript_frame(records, utterances["utt_id"])
            )
            invalidation = invalidate(wh, changed_audio | set(gone) | back)
    except BaseException:
        invalidation.abort()
        raise
    invalidation.commit()
    if invalidation.parts_rewritten:
        wh.refresh_views()  # this connection's views listed the parts just replaced
    counts["usable"] = utterances.height
    summary = _summary(wh, corpus, spec, root, len(read), counts, problems)
    summary.audio_changed = len(changed_audio)
    summary.audio_gone = gone
    summary.kept = kept
    summary.words_changed = words_changed
    summary.audio_back = len(back - changed_audio)
    summary.invalidation = invalidation
    summary.hashed, summary.hash_s = hashing
    return summary


def _failed_unreachable(wh: Warehouse, utt_ids: list[str]) -> set[str]:
    """Those of ``utt_ids`` whose every extraction (at least one) failed because the file
    could not be reached (missing, not openable): the same audio may read fine later."""
    return {
        utt_id
        for utt_id, errors in catalog.extraction_errors(wh, utt_ids).items()
        if all(unreachable(e) for e in errors)
    }


def _audio_gone(wh: Warehouse, corpus: str, written: pl.Series) -> tuple[dict[str, str], list[str]]:
    """Stored utterances of ``corpus`` this ingest does not write whose file is missing or
    unusable now → the reason; and those whose file is still fine (e.g. from an earlier
    manifest of the same corpus, or a row this one rejected), which are left alone."""
    gone: dict[str, str] = {}
    kept: list[str] = []
    reasons: dict[str, str | None] = {}
    for utt_id, path in corpora_store.stored_elsewhere(wh, corpus, written):
        if path not in reasons:
            try:
                probe_audio(path)
                reasons[path] = None
            except AudioError as exc:
                reasons[path] = str(exc)
        reason = reasons[path]
        if reason is not None:
            gone[utt_id] = reason
        else:
            kept.append(utt_id)
    return gone, sorted(kept)


def _check_corpus_kind(wh: Warehouse, corpus: str, spec: CorpusKind) -> None:
    stored = wh.scalar("SELECT kind FROM corpora WHERE name = ?", [corpus])
    if stored is not None and stored != spec.name:
        raise SercapError(
            f"corpus name {corpus!r} is taken by a corpus of kind {stored}; give this "
            f"{spec.name} corpus another name with {option('name')}"
        )


def _unique(records: list[UtteranceRecord], problems: list[Problem]) -> list[UtteranceRecord]:
    """Keep the first record of each id; later ones are problems (naming where the first
    is: it may itself turn out unusable, and then neither is stored)."""
    seen: dict[str, UtteranceRecord] = {}
    kept = []
    for record in records:
        if record.utt_id in seen:
            first = seen[record.utt_id].problem("")
            where = first.file + (f":{first.line}" if first.line is not None else "")
            problems.append(
                record.problem(f"duplicate utterance id; only its first row ({where}) is read")
            )
            continue
        seen[record.utt_id] = record
        kept.append(record)
    return kept


@dataclass
class _Probed:
    """A record whose audio was found usable: its header and its file's fingerprint."""

    record: UtteranceRecord
    info: AudioInfo
    duration: float
    print: Fingerprint

    @property
    def source(self) -> tuple[str, float | None, float | None]:
        """The file and segment this utterance is."""
        return (str(self.record.path), self.record.start_s, self.record.end_s)

    @property
    def content(self) -> tuple[str, float | None, float | None]:
        """The bytes and segment this utterance is (equal for copies of one file)."""
        return (self.print.sha256, self.record.start_s, self.record.end_s)


def _probe(
    records: list[UtteranceRecord],
    problems: list[Problem],
    progress: bool | None,
    known: dict[str, Fingerprint],
) -> tuple[list[_Probed], tuple[int, float]]:
    """Probe every wav's header and fingerprint its file (once per file); also return how
    many files were hashed now and how long that took."""
    import time

    probed: list[_Probed] = []
    prints: dict[str, Fingerprint] = {}
    hashed, hash_s = 0, 0.0
    bar = tqdm(
        records,
        desc="probing audio",
        unit="file",
        leave=False,
        disable=None if progress is None else not progress,
    )
    for record in bar:
        # the audio's path, where the problem is located at an annotation or manifest line
        # (a corpus named by its files already names it: it was said twice)
        audio = f": {record.path}" if record.origin else ""
        try:
            info = probe_audio(record.path)
        except AudioError as exc:
            problems.append(record.problem(f"{exc}{audio}"))
            continue
        if info.frames == 0:
            problems.append(record.problem(f"{empty_audio_reason(record.path)}{audio}"))
            continue
        duration = _duration(record, info.duration_s)
        if duration is None:
            problems.append(record.problem(_segment_problem(record, info.duration_s)))
            continue
        key = str(record.path)
        if key not in prints:
            started = time.perf_counter()
            try:
                prints[key], fresh = fingerprint(key, known.get(key))
            except OSError as exc:
                problems.append(record.problem(f"cannot read the file ({exc.strerror}): {key}"))
                continue
            hashed += fresh
            hash_s += time.perf_counter() - started
        probed.append(_Probed(record, info, duration, prints[key]))
    return probed, (hashed, hash_s)


def _one_per_source(
    wh: Warehouse, corpus: str, probed: list[_Probed], problems: list[Problem]
) -> list[_Probed]:
    """One utterance per audio source: stable ids for derived ones, duplicates reported.

    A derived id (manifest without ``utt_id``) becomes the id already stored for the same
    file and segment, or, for a file that moved, for the same content and segment that no
    other row of this ingest names. Then a row naming the same file and segment as an
    earlier row is a problem and is not stored; so is a derived-id row with the same content
    and segment as an earlier row or as a stored utterance of the corpus that this ingest
    does not list, and a row whose file and segment are stored under another id that this
    ingest does not list (ids changed in a manifest). (Where the corpus names its
    utterances, its ids say what is one utterance, so identical bytes under two ids stay
    two; where sercap makes the id up from the file name, the audio is the identity, and a
    copy of a file is the same utterance.)
    """
    stored = wh.con.execute(
        "SELECT utt_id, path, start_s, end_s, audio_sha256 FROM utterances WHERE corpus = ? "
        "ORDER BY utt_id",
        [corpus],
    ).fetchall()
    by_source = {(path, s, e): utt for utt, path, s, e, _ in stored}
    by_content: dict[tuple, str] = {}
    for utt, _, s, e, sha in stored:
        if sha is not None:
            by_content.setdefault((sha, s, e), utt)
    for p in probed:  # the same file and segment keeps its stored id
        if p.record.derived_id and p.source in by_source:
            p.record.utt_id = by_source[p.source]
    named = {p.record.utt_id for p in probed}
    for p in probed:  # a moved file keeps the id of its content, if no other row claims it
        utt = by_content.get(p.content)
        if p.record.derived_id and p.source not in by_source and utt and utt not in named:
            p.record.utt_id = utt
            named.add(utt)
    seen_source: dict[tuple, str] = {}
    seen_content = {k: utt for k, utt in by_content.items() if utt not in named}
    kept = []
    for p in probed:
        first = seen_source.get(p.source)
        if first is not None:
            problems.append(
                p.record.problem(f"duplicate audio: {p.record.path} is already utterance {first}")
            )
            continue
        stored_as = by_source.get(p.source)
        if stored_as is not None and stored_as != p.record.utt_id and stored_as not in named:
            # the same file and segment, stored under another id this ingest no longer
            # lists: keeping both would count the audio twice (and could split it over folds)
            problems.append(
                p.record.problem(
                    f"duplicate audio: {p.record.path} is already utterance {stored_as} of "
                    f"corpus {corpus!r}, which this ingest does not list; keep its id, or "
                    f"ingest the corpus under a new name ({option('name')})"
                )
            )
            continue
        first = seen_content.get(p.content) if p.record.derived_id else None
        if first is not None and first != p.record.utt_id:
            segment = "" if p.record.start_s is None else " (same segment)"
            problems.append(
                p.record.problem(
                    f"duplicate audio: {p.record.path} has the same content{segment} as "
                    f"utterance {first}"
                )
            )
            continue
        seen_source[p.source] = p.record.utt_id
        seen_content.setdefault(p.content, p.record.utt_id)
        kept.append(p)
    return kept


def _unique_probed(probed: list[_Probed], problems: list[Problem]) -> list[_Probed]:
    """Ids stay unique after :func:`_one_per_source` gave some rows their stored id."""
    ids = {id(r) for r in _unique([p.record for p in probed], problems)}
    return [p for p in probed if id(p.record) in ids]


def _tables(
    corpus: str, probed: list[_Probed]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The rows of utterances, labels, evaluations and audio_files."""
    utterance_rows, label_rows, evaluation_rows = [], [], []
    files = {}
    for p in probed:
        utterance_rows.append(_utterance_row(corpus, p))
        label_rows.append(_label_row(p.record))
        evaluation_rows.extend(_evaluation_rows(p.record))
        files[p.print.path] = p.print.row()
    return (
        pl.DataFrame(utterance_rows, schema=utterance_schema(), orient="row"),
        pl.DataFrame(label_rows, schema=label_schema(), orient="row"),
        pl.DataFrame(evaluation_rows, schema=evaluation_schema(), orient="row"),
        pl.DataFrame(list(files.values()), schema=audio_file_schema(), orient="row"),
    )


def _duration(record: UtteranceRecord, file_duration: float) -> float | None:
    """Length of what extraction will load: the segment, or the whole file."""
    start = record.start_s or 0.0
    end = file_duration if record.end_s is None else record.end_s
    if start < 0 or end <= start or end > file_duration + _SEGMENT_SLACK_S:
        return None
    return min(end, file_duration) - start


def _segment_problem(record: UtteranceRecord, file_duration: float) -> str:
    """Why :func:`_duration` found no usable segment: one line naming it."""
    start = record.start_s or 0.0
    end = file_duration if record.end_s is None else record.end_s
    segment = f"segment {record.start_s}-{record.end_s} s"
    if start < 0:
        return f"{segment} starts before the file (a negative start)"
    if end <= start:
        return f"{segment} ends before it starts" if end < start else f"{segment} is empty"
    return f"{segment} is outside the file ({file_duration:.2f} s long)"


def _utterance_row(corpus: str, p: _Probed) -> tuple:
    r, info = p.record, p.info
    return (
        r.utt_id,
        corpus,
        r.session,
        r.speaker,
        r.gender,
        str(r.path),
        r.start_s,
        r.end_s,
        p.duration,
        info.sample_rate,
        info.channels,
        r.text_id,
        r.source_start_s,
        r.source_end_s,
        p.print.sha256,
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


def _check_ownership(wh: Warehouse, corpus: str, ids: pl.DataFrame, kind: str) -> None:
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
        more = f" (and {n - 1} more)" if n > 1 else ""
        owner_kind = wh.scalar("SELECT kind FROM corpora WHERE name = ?", [owner])
        if owner_kind == kind:
            then = f"ingest it with {option('name')}{owner!r} to update that corpus"
        elif kind == "manifest":  # that corpus' name is taken by another kind: no way there
            then = "ids are unique in a warehouse: give these rows other ids (a utt_id column)"
        else:
            then = f"ids are unique in a warehouse: ingest this {kind} corpus into another one"
        raise SercapError(f"utterance {utt_id!r}{more} already belongs to corpus {owner!r}; {then}")


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
    shared = [
        row
        for row in same_audio(wh, corpus_names(wh))
        if corpus in (row[1], row[4])  # (the other corpus' own pairs are its ingest's)
    ]
    return IngestSummary(
        corpus=corpus,
        kind=spec.name,
        root=root,
        label_map=spec.label_map,
        protocol=wh.scalar(  # (a manifest of dyadic sessions: session-kfold-5)
            "SELECT any_value(protocol) FROM folds WHERE corpus = ?", [corpus]
        )
        or spec.protocol,
        read=n_read,
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["usable"] - counts["added"] - counts["updated"],
        in_label_map=int(in_label_map or 0),
        per_label=per_label,
        per_speaker=per_speaker,
        problems=problems,
        same_audio=shared,
    )
