"""Verify a warehouse's Parquet parts and catalog bookkeeping, and repair what is broken.

``check`` is sercap's ``git fsck``: every registered part must exist, have the size and
SHA-256 recorded when it was registered, read as Parquet and hold the rows recorded; and the
catalog must agree with the parts: each ``ok`` extraction row points at a registered part
that holds its utterance, each part holds only utterances recorded as stored in it, and no
utterance is stored twice in one feature set; every part belongs to a set with a
``feature_sets`` row and holds only utterances the ``utterances`` table lists (rows deleted
by hand left parts no view reads, or features of an utterance nobody lists). The audio
behind each stored utterance must still hold the bytes ingest hashed (``repair`` cannot
mend that one: ``ingest`` re-reads the audio and drops the stale features).

The unit of repair is the *chunk*: extraction writes one chunk of utterances as one part per
kind (an ``lld`` set: ``frames/…/part-X.parquet`` and ``features/…/part-X.parquet``, the same
name) and records each utterance's ``extractions`` row with that part. ``repair`` unregisters
every part of a broken chunk, deletes the ``ok`` extraction rows of the utterances the chunk
held, and deletes the chunk's files, in one transaction; ``extract`` treats an utterance
without an ``ok`` row as pending, so the next run recomputes exactly those utterances and
nothing else. Rows recorded as errors are kept (their audio was unusable; ``--retry-errors``
still decides about them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sercap.errors import REPAIR_STEP, SercapError, step
from sercap.store import Warehouse, catalog, file_digest, layout
from sercap.store import parts as store_parts
from sercap.store import runs as store_runs
from sercap.store.layout import CHUNK_KINDS  # which part kinds a chunk of each set kind has


@dataclass(frozen=True)
class Problem:
    """One thing wrong, and what ``repair`` does about it.

    ``chunk`` is ``(feature_set_hash, part path without its kind folder)`` when the fix is
    to drop that chunk; ``utt_ids`` are extraction rows (of ``feature_set_hash``) to forget.
    """

    what: str
    detail: str
    feature_set_hash: str | None = None
    chunk: tuple[str, str] | None = None
    utt_ids: tuple[str, ...] = ()
    #: False for damage :func:`repair` cannot mend (the catalog itself: restore a copy)
    repairable: bool = True
    #: the run whose stored final model is damaged: repair drops it, ``predict`` refits it
    artifact: str | None = None

    def line(self) -> str:
        """The problem in one line, as ``sercap check`` prints it."""
        return f"{self.what}: {self.detail}"


@dataclass
class RepairSummary:
    """What ``repair`` changed: parts unregistered, files deleted, utterances to recompute."""

    parts_unregistered: int = 0
    files_deleted: int = 0
    #: runs whose damaged stored final model was dropped (``predict`` fits it again)
    models_dropped: list[str] = field(default_factory=list)
    #: feature-set name -> (kind, number of utterances the next extraction recomputes)
    recompute: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: hashes of sets whose feature_sets row was gone: dropped, with no name to extract by
    lost_sets: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary, one line per fact."""
        out = [
            f"repaired: {self.parts_unregistered} part(s) unregistered, "
            f"{self.files_deleted} file(s) deleted"
        ]
        for name, (kind, n) in sorted(self.recompute.items()):
            command = (
                f"sercap images --image-set {name}"
                if kind == "image"
                else f"sercap extract --feature-set {name}"
            )
            out.append(f"`{command}` will recompute {n} utterance(s)")
        if self.models_dropped:
            out.append(
                f"dropped the damaged stored model of {len(self.models_dropped)} run(s) "
                f"({', '.join(self.models_dropped)}): `sercap predict` fits it again"
            )
        for fs_hash in sorted(self.lost_sets):
            out.append(
                f"feature set {fs_hash} had lost its definition (feature_sets row): its parts "
                "are dropped; extracting a set by name stores it anew"
            )
        return out


@dataclass(frozen=True)
class _Part:
    path: str
    kind: str
    fs_hash: str
    corpus: str
    n_rows: int | None
    size: int | None
    sha256: str | None

    @property
    def chunk(self) -> str:
        return _chunk_of(self.path)


def _chunk_of(path: str) -> str:
    """A part's chunk: its path without the kind folder (``feature_set=H/corpus=C/part-X``),
    the same for the frames and the features part written together."""
    return "/".join(PurePosixPath(path).parts[1:])


def _parts(wh: Warehouse) -> list[_Part]:
    return [_Part(*r) for r in store_parts.registered_parts(wh)]


def _read_part(path: Path, part: _Part, verify_checksums: bool) -> tuple[str | None, list[str]]:
    """(problem or None, the utt_id of every row) of one registered part."""
    import pyarrow.parquet as pq

    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "missing", []
    except OSError as exc:
        return f"cannot be read ({exc.strerror})", []
    if part.size is not None and actual != part.size:
        return f"size {actual} bytes, {part.size} when registered (truncated or replaced)", []
    if verify_checksums and part.sha256 is not None:
        try:
            _, digest = file_digest(path)
        except OSError as exc:  # no read permission, an I/O error: this part's problem
            return f"cannot be read ({exc.strerror or type(exc).__name__})", []
        if digest != part.sha256:
            return "content differs from what was registered (SHA-256 mismatch)", []
    try:
        table = pq.read_table(path, columns=["utt_id"])
    except Exception as exc:  # pyarrow raises several types for a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"not readable as Parquet with a utt_id column ({reason})", []
    if part.n_rows is not None and table.num_rows != part.n_rows:
        return f"{table.num_rows} rows, {part.n_rows} when registered", []
    return None, table.column("utt_id").to_pylist()


def _sample(ids: Any, n: int = 3) -> str:
    ids = sorted(ids)
    more = f" and {len(ids) - n} more" if len(ids) > n else ""
    return ", ".join(ids[:n]) + more


def check(wh: Warehouse, *, verify_checksums: bool = True) -> list[Problem]:
    """Verify every registered part and the catalog's bookkeeping of extracted utterances.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough).
    verify_checksums : bool, default True
        Hash every part and compare with the SHA-256 recorded at registration (reads all the
        part bytes once; parts registered before checksums were recorded are not hashed),
        and every stored final model's files with their checksums.

    Returns
    -------
    list of Problem
        Empty when the warehouse is sound; one entry per thing wrong otherwise.

    Examples
    --------
    >>> from sercap.store import connect
    >>> wh = connect(":memory:")
    >>> check(wh)
    []
    """
    problems: list[Problem] = _catalog_problems(wh)
    if problems:  # the bookkeeping below reads the same tables
        return problems
    problems += _definition_problems(wh)
    fs_kind = dict(wh.con.execute("SELECT hash, kind FROM feature_sets").fetchall())
    parts = _parts(wh)
    # Parts whose bytes are fine: which utterances each holds.
    held: dict[str, list[str]] = {}
    by_chunk: dict[tuple[str, str], list[_Part]] = defaultdict(list)
    for part in parts:
        by_chunk[(part.fs_hash, part.chunk)].append(part)
        rel = PurePosixPath(part.path)
        if rel.is_absolute() or ".." in rel.parts or os.path.normpath(part.path) != part.path:
            problems.append(
                Problem(
                    part.path,
                    "registered under a path that is not a plain path inside the warehouse",
                    part.fs_hash,
                    (part.fs_hash, part.chunk),
                )
            )
            continue
        problem, utts = _read_part(layout.absolute(wh.root, part.path), part, verify_checksums)
        if problem:
            problems.append(Problem(part.path, problem, part.fs_hash, (part.fs_hash, part.chunk)))
        else:
            held[part.path] = utts

    # The extractions rows of each chunk.
    recorded: dict[tuple[str, str], set[str]] = defaultdict(set)
    unregistered: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    registered_paths = {p.path for p in parts}
    for utt, fs_hash, part in catalog.ok_extractions(wh):
        if part is None or part not in registered_paths:
            unregistered[(fs_hash, part)].append(utt)
            continue
        recorded[(fs_hash, _chunk_of(part))].add(utt)
    for (fs_hash, part), utts in sorted(unregistered.items(), key=lambda kv: str(kv[0])):
        where = f"part {part}, which is not registered" if part else "no part"
        problems.append(
            Problem(
                "extractions",
                f"{len(utts)} utterance(s) of feature set {fs_hash} recorded as stored in "
                f"{where} ({_sample(utts)})",
                fs_hash,
                utt_ids=tuple(utts),
            )
        )

    # Each chunk: the kinds its set needs, and exactly the utterances recorded in it.
    broken_chunks = {p.chunk for p in problems if p.chunk}
    known_utts = {u for (u,) in wh.con.execute("SELECT utt_id FROM utterances").fetchall()}
    for chunk, chunk_parts in sorted(by_chunk.items()):
        fs_hash, _name = chunk
        if chunk in broken_chunks:
            continue
        if fs_hash not in fs_kind:  # a deleted feature_sets row: no view reads the set
            problems.append(
                Problem(
                    chunk_parts[0].path,
                    f"its feature set {fs_hash} has no row in feature_sets (its definition "
                    "is lost)",
                    fs_hash,
                    chunk,
                )
            )
            continue
        strangers = sorted({u for p in chunk_parts for u in held[p.path]} - known_utts)
        if strangers:  # a deleted utterances row: features of an utterance nobody lists
            problems.append(
                Problem(
                    chunk_parts[0].path,
                    f"holds {len(strangers)} utterance(s) the utterances table does not list "
                    f"({_sample(strangers)})",
                    fs_hash,
                    chunk,
                )
            )
            continue
        expected = CHUNK_KINDS.get(fs_kind.get(fs_hash, ""), ())
        have = {p.kind for p in chunk_parts}
        lacking = [k for k in expected if k not in have]
        if lacking:
            problems.append(
                Problem(
                    chunk_parts[0].path,
                    f"its chunk has no registered {' or '.join(lacking)} part",
                    fs_hash,
                    chunk,
                )
            )
            continue
        want = recorded.get(chunk, set())
        for part in chunk_parts:
            utts = set(held[part.path])
            extra, lost = utts - want, want - utts
            if extra:
                problems.append(
                    Problem(
                        part.path,
                        f"holds {len(extra)} utterance(s) not recorded as stored in it "
                        f"({_sample(extra)})",
                        fs_hash,
                        chunk,
                    )
                )
            if lost:
                problems.append(
                    Problem(
                        part.path,
                        f"lacks {len(lost)} utterance(s) recorded as stored in it "
                        f"({_sample(lost)})",
                        fs_hash,
                        chunk,
                    )
                )

    # No utterance twice in one kind of one feature set (frames: in two parts).
    owners: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for part in parts:
        for utt in set(held.get(part.path, ())):
            owners[(part.kind, part.fs_hash, utt)].add(part.path)
    twice: dict[tuple[str, str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (kind, fs_hash, utt), paths in owners.items():
        if len(paths) > 1:
            twice[(kind, fs_hash, tuple(sorted(paths)))].append(utt)
    for (kind, fs_hash, paths), utts in sorted(twice.items()):
        problems.append(
            Problem(
                f"{kind} of feature set {fs_hash}",
                f"{len(utts)} utterance(s) stored in {len(paths)} parts ({_sample(utts)}): "
                + ", ".join(paths),
                fs_hash,
            )
        )
    # Each row of a part counted once: the same file registered twice under other spellings.
    spelled = Counter(os.path.normpath(p.path) for p in parts)
    for path, n in sorted(spelled.items()):
        if n > 1:
            problems.append(Problem(path, f"registered {n} times", None))
    stored_models = _artifact_problems(wh) if verify_checksums else []  # hashes every file
    return problems + _audio_problems(wh) + stored_models


def _artifact_problems(wh: Warehouse) -> list[Problem]:
    """Stored final models (``predict``'s) whose files differ from what was stored: a
    model file changed, missing or added, or its checksums file missing or altered (the
    catalog holds that file's SHA-256). ``predict`` would refit such a model; ``check``
    used to say "no problems" about it."""
    problems = []
    for run_id, folder, digest in store_runs.artifacts(wh):
        if not folder.is_dir():  # the cache deleted: predict fits the model again
            continue
        try:
            store_runs.verify_artifact(folder, digest)
        except SercapError as exc:
            rel = layout.relative(wh.root, folder)
            problems.append(
                Problem(
                    rel,
                    f"the stored final model of run {run_id} is damaged ({exc.message}); "
                    "repair drops it and `sercap predict` fits it again",
                    artifact=run_id,
                )
            )
    return problems


def stale_audio_line(
    wh: Warehouse, utt_ids: Sequence[str] | None = None, feature_set_hash: str | None = None
) -> str | None:
    """What :func:`check` says about stored features of audio that has changed since, or
    None: what ``extract`` warns about, and what ``train`` and every other reader of a
    dataset refuse (for its ``utt_ids`` and ``feature_set_hash`` only). Files found unchanged
    after their stat moved (``touch``, a copy) get their new stat recorded on a writable
    warehouse, and remembered for the connection's life on a read-only one, so they are not
    hashed again at every call."""
    found = _audio_problems(
        wh, refresh=not wh.read_only, utt_ids=utt_ids, feature_set_hash=feature_set_hash
    )
    return f"{found[0].what}: {found[0].detail}" if found else None


def missing_audio(wh: Warehouse) -> list[str]:
    """The audio files of stored utterances that are no longer there (each once, sorted).

    Not damage: the stored features belong to the audio that was, and stay. But the next
    ``ingest`` drops them, and ``extract`` cannot compute them again, so ``check`` says so
    (:func:`_audio_problems` leaves a missing file to ingest)."""
    paths = {path for path, _, _ in catalog.extracted_audio(wh, None, None)}
    return sorted(path for path in paths if not os.path.exists(path))


def _audio_problems(
    wh: Warehouse,
    *,
    refresh: bool = False,
    utt_ids: Sequence[str] | None = None,
    feature_set_hash: str | None = None,
) -> list[Problem]:
    """Utterances whose stored features came from bytes their audio file no longer holds.

    One ``stat`` per audio file; a file is hashed only when its stat differs from the one
    ingest recorded (the pre-check of :mod:`sercap.corpora.fingerprint`). A file that is gone
    is not a problem here: the features belong to the audio that was (ingest decides). With
    ``refresh``, a file hashed again and found unchanged gets its fingerprint re-recorded.
    """
    from sercap.corpora.fingerprint import Fingerprint, fingerprint
    from sercap.store.corpora import known_fingerprints, record_fingerprints

    prints = known_fingerprints(wh) | wh.audio_seen  # seen this connection (read-only)
    changed: list[tuple[str, list[str]]] = []
    unchanged: list[Fingerprint] = []
    current: dict[str, Any] = {}  # path → its fingerprint now (None: unreadable)
    for path, utts, sha in catalog.extracted_audio(wh, utt_ids, feature_set_hash):
        if path not in current:  # (a file can come twice: segments recorded other bytes)
            known = prints.get(path)
            if known is not None and known.sha256 != sha:
                known = None  # recorded for other bytes than these utterances': hash again
            try:
                now, hashed = fingerprint(path, known)
            except OSError:
                now, hashed = None, False
            current[path] = now
            if now is not None and hashed and now.sha256 == sha:
                unchanged.append(now)
        now = current[path]
        if now is not None and now.sha256 != sha:
            changed.append((path, utts))
    if refresh and unchanged:
        record_fingerprints(wh, unchanged)
    elif unchanged:  # a read-only connection cannot record them: it remembers them
        wh.audio_seen.update((f.path, f) for f in unchanged)
    if not changed:
        return []
    n = sum(len(u) for _, u in changed)
    path, utts = changed[0]
    more = f" and {len(changed) - 1} more file(s)" if len(changed) > 1 else ""
    return [
        Problem(
            "audio",
            f"{n} utterance(s) have stored features of audio their file no longer holds "
            f"({path}: {utts[0]}{more}); run {step('ingest', 'ingest(wh, …)')} on the "
            "corpus again: it drops their features, and the next extract recomputes them",
            repairable=False,
        )
    ]


def _definition_problems(wh: Warehouse) -> list[Problem]:
    """Feature-set rows whose definition no longer hashes to their hash: an edited
    ``params_json`` (a hop of 20 ms instead of 10) silently changed what the views compute
    from the stored parts (frame times), and the parts were computed with the old one."""
    import json

    from sercap.features.featureset import FeatureSet

    found = []
    rows = wh.con.execute(
        "SELECT hash, name, kind, params_json, versions_json FROM feature_sets ORDER BY name"
    ).fetchall()
    for digest, name, kind, params, versions in rows:
        if not re.fullmatch(r"[0-9a-f]{16}", digest or ""):
            continue  # not a hash sercap computed (hand-made rows, tests): nothing to verify
        try:
            again = FeatureSet(name, kind, json.loads(params), versions=json.loads(versions)).hash
        except (TypeError, ValueError):
            again = None
        if again != digest:
            found.append(
                Problem(
                    "feature_sets",
                    f"the definition of {name!r} does not hash to its hash {digest}: its row "
                    "was edited after its parts were computed, so they would be read with "
                    "other settings; restore the row (or the warehouse) from a copy",
                    digest,
                    repairable=False,
                )
            )
    return found


def _catalog_problems(wh: Warehouse) -> list[Problem]:
    """Every catalog table read to its last row: a damaged block of ``sercap.duckdb`` (a
    flipped byte) made `train` fail while `check` read only two tables and said all was well.
    """
    import duckdb

    from sercap.store.layout import DB_FILENAME

    tables = wh.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1"
    ).fetchall()
    found = []
    for (table,) in tables:
        try:
            # a relation, not an executed result: DuckDB warns (and copies every row once
            # more) when a DB-API result is turned into Arrow
            for _batch in wh.con.sql(f'SELECT * FROM "{table}"').to_arrow_reader(50_000):
                pass
        except duckdb.Error as exc:
            reason = (str(exc).strip().splitlines() or ["unreadable"])[0]
            found.append(
                Problem(
                    f"catalog {DB_FILENAME}",
                    f"table {table} cannot be read ({reason}); restore {DB_FILENAME} from a "
                    "copy (--repair mends parts, not the catalog)",
                    repairable=False,
                )
            )
    return found


def repair(wh: Warehouse, problems: list[Problem]) -> RepairSummary:
    """Unregister broken parts and forget the utterances they held, in one transaction.

    Every part of each broken chunk is unregistered (and its file deleted once the
    transaction is committed); the ``ok`` extraction rows of the utterances the chunk held,
    and the rows that point at no registered part, are deleted. The next ``extract`` (or
    ``images``) therefore recomputes exactly those utterances.

    Parameters
    ----------
    wh : Warehouse
        A warehouse open for writing.
    problems : list of Problem
        What :func:`check` found.

    Returns
    -------
    RepairSummary
    """

    if wh.read_only:
        raise SercapError(f"{wh.root}: the warehouse is open read-only; repair writes to it")
    chunks = {p.chunk for p in problems if p.chunk}
    loose = {(p.feature_set_hash, u) for p in problems for u in p.utt_ids}
    parts = _parts(wh)
    drop_parts = [p for p in parts if (p.fs_hash, p.chunk) in chunks]
    forget: set[tuple[str, str]] = set(loose)
    for utt, fs_hash, part in catalog.ok_extractions(wh):
        if part is not None and (fs_hash, _chunk_of(part)) in chunks:
            forget.add((fs_hash, utt))
    summary = RepairSummary(parts_unregistered=len(drop_parts))
    models = sorted({p.artifact for p in problems if p.artifact})
    folders = {r: store_runs.artifact_path(wh, r) or store_runs.artifact_dir(wh, r) for r in models}
    with wh.transaction():
        for run_id in models:
            store_runs.forget_artifact(wh, run_id)
        for part in drop_parts:
            store_parts.unregister_part(wh, part.path)
        by_set: dict[str, list[str]] = defaultdict(list)
        for fs_hash, utt in forget:
            by_set[fs_hash].append(utt)
        for fs_hash, utts in by_set.items():
            catalog.forget_extractions(wh, fs_hash, utts)
    names = dict(wh.con.execute("SELECT hash, name || '\t' || kind FROM feature_sets").fetchall())
    touched = set(by_set) | {p.fs_hash for p in drop_parts}
    for fs_hash in touched:  # what the next extract does: every utterance without a row
        if fs_hash not in names:  # its definition was deleted: no name to extract it by
            summary.lost_sets.append(fs_hash)
            continue
        name, kind = names[fs_hash].split("\t")
        pending = catalog.count_unrecorded(wh, fs_hash)
        previous = summary.recompute.get(name, (kind, 0))[1]
        summary.recompute[name] = (kind, previous + pending)
    for part in drop_parts:
        summary.files_deleted += store_parts.delete_part_file(wh, part.path)
    for run_id, folder in folders.items():  # unrecorded first, so a crash leaves a stray
        shutil.rmtree(folder, ignore_errors=True)
        summary.models_dropped.append(run_id)
    wh.refresh_views()
    return summary


def damage_line(wh: Warehouse) -> str | None:
    """One line about the parts found damaged when ``wh`` was opened, or None if none."""
    if not wh.damaged:
        return None
    path, why = wh.damaged[0]
    more = f" and {len(wh.damaged) - 1} more" if len(wh.damaged) > 1 else ""
    return (
        f"{len(wh.damaged)} Parquet part(s) are missing, damaged or unregistered ({path}: {why}"
        f"{more}); their utterances are left out of the views; run {REPAIR_STEP}"
    )
