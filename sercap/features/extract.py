"""Parallel, incremental, resumable extraction into Parquet parts.

The main process lists what is not yet stored for a feature-set hash, cuts it into chunks
of utterances and hands them to a process pool. A worker loads each chunk's audio, computes
what the set's kind asks for, and writes its parts under a temporary name then renames them:

  lld        frames part (one row per frame) AND features part (the SQL functionals of
             those frames, computed by the worker with its own in-memory DuckDB)
  opensmile  features part (openSMILE functionals, one row per utterance)
  image      images part (utt_id, height, width, png)

The main process then registers the parts and the chunk's ``extractions`` rows in ONE
transaction. A crash (Ctrl-C, kill -9) can therefore leave only unregistered files, which the
next run deletes before it starts; every utterance is either fully stored (frames, features
and its extractions row) or not at all, so a rerun resumes with nothing lost or duplicated.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sercap._interrupt import is_interrupt
from sercap._spawn import main_not_rerun, sigint_ignored, start_resource_tracker
from sercap.errors import (
    INGEST_STEP,
    REPAIR_STEP,
    BadParameterError,
    NotExtractedError,
    NotFoundError,
    SercapError,
    step,
)
from sercap.features.featureset import FeatureSet, get_feature_set, store_step
from sercap.features.stored import register
from sercap.store import Warehouse, catalog
from sercap.store.parts import arrow_schema_digest, write_part

#: Environment that keeps every worker on one core (set before numpy-heavy imports).
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
PART_KIND = {"lld": "features", "opensmile": "features", "image": "images"}
#: Most utterances per chunk (one Parquet part per kind). Each chunk pays ~0.1 s of fixed
#: SQL cost (a connection, planning the UNPIVOT of ~140 columns): on EmoDB, chunks of 128
#: extract in one process ~1 s faster than chunks of 64. Fewer, larger chunks would leave
#: workers idle at the end, hence :func:`auto_chunk_size`.
CHUNK_SIZE = 128
#: The fewest utterances per chunk :func:`auto_chunk_size` chooses.
MIN_CHUNK_SIZE = 16


def auto_chunk_size(n_items: int, workers: int) -> int:
    """Utterances per chunk when none is given: at least 4 chunks per worker (so that they
    finish together and a crash loses little), between ``MIN_CHUNK_SIZE`` and
    ``CHUNK_SIZE``."""
    per = -(-max(1, n_items) // (4 * max(1, workers)))
    return max(MIN_CHUNK_SIZE, min(CHUNK_SIZE, per))


#: Stored reasons of unexpected per-utterance failures start with these (the file follows).
DESCRIPTORS_FAILED = "feature computation failed"
FUNCTIONALS_FAILED = "functionals failed"


# ----------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Item:
    utt_id: str
    path: str
    start_s: float | None
    end_s: float | None
    sha256: str | None = None  # of the audio file when ingested (None: not recorded)


@dataclass(frozen=True)
class Task:
    """One chunk of one corpus for one feature set (picklable, small)."""

    kind: str
    params: dict[str, Any]
    corpus: str
    part_name: str
    frames_dir: str | None
    out_dir: str
    items: tuple[Item, ...]


@dataclass
class ChunkResult:
    task: Task
    frames_path: str | None = None
    frames_rows: int = 0
    #: :func:`~sercap.store.parts.schema_digest` of each part, from the table written
    frames_columns: str | None = None
    out_path: str | None = None
    out_rows: int = 0
    out_columns: str | None = None
    rows: list[tuple[str, str, str | None, int | None]] = field(default_factory=list)
    audio_s: float = 0.0


@dataclass
class ExtractSummary:
    feature_set: str
    feature_set_hash: str
    done: int = 0
    failed: int = 0
    skipped: int = 0
    audio_s: float = 0.0
    seconds: float = 0.0
    orphans_removed: int = 0
    #: Stored utterances whose audio file has changed since (one line), or None.
    stale_audio: str | None = None
    left: int = 0
    #: Utterances whose earlier extraction failed, not tried again (``retry_errors`` does).
    failed_before: int = 0
    #: The command that tries them again (this set, this corpus), as both front ends say it.
    retry: str = ""
    problems: Counter = field(default_factory=Counter)
    #: The first few files of each problem (to name them in the summary).
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add_rows(self, res: ChunkResult) -> None:
        """Count a stored chunk's utterances: done, or a problem grouped by its reason."""
        paths = {item.utt_id: item.path for item in res.task.items}
        for utt, status, err, _n in res.rows:
            if status == "ok":
                self.done += 1
                continue
            self.failed += 1
            key = _reason_key(err)
            self.problems[key] += 1
            files = self.examples.setdefault(key, [])
            if len(files) < 3:
                files.append(paths.get(utt, utt))
        self.audio_s += res.audio_s

    def __str__(self) -> str:
        """What ``sercap extract`` prints."""
        return "\n".join(self.lines())

    def _repr_markdown_(self) -> str:
        return f"```\n{self}\n```"

    def lines(self) -> list[str]:
        speed = self.audio_s / self.seconds if self.seconds else 0.0
        out = [
            f"{self.feature_set} ({self.feature_set_hash}): {self.done} extracted, "
            f"{self.failed} with problems, {self.skipped} already stored"
            + (
                f"; {self.audio_s:.0f} s of audio in {self.seconds:.1f} s ({speed:.0f}x real time)"
                if speed >= 10
                else f"; {self.audio_s:.0f} s of audio in {self.seconds:.1f} s "
                f"({speed:.2g}x real time)"
                if self.done
                else ""
            )
        ]
        if self.left:
            out.append(f"{self.left} utterances left for a later run (--limit)")
        if self.failed_before:
            why = f"{catalog.ERRORS_QUERY} AND feature_set_hash = '{self.feature_set_hash}'"
            retry = self.retry or step("extract --retry-errors", "extract(wh, retry_errors=True)")
            out.append(
                f"{self.failed_before} failed before and were not tried again (fixed their "
                f"audio? {retry}; why: {why})"
            )
        if self.orphans_removed:
            out.append(f"removed {self.orphans_removed} unregistered part(s) left by a crash")
        if self.stale_audio:
            out.append(f"warning: {self.stale_audio}")
        for reason, n in self.problems.most_common():
            out.append(f"  {n:5d}  {reason}")
            files = self.examples.get(reason, [])
            out.extend(f"         {'e.g.' if i == 0 else '    '} {f}" for i, f in enumerate(files))
        if self.problems:
            out.append(f"  (per utterance: {catalog.ERRORS_QUERY})")
        return out


# ----------------------------------------------------------------------------- worker side
def init_worker() -> None:
    """Pool initializer: one thread per worker for BLAS/OpenMP/numba (and DuckDB).

    Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the main process
    alone decides what happens (it terminates the pool and keeps what is committed).
    """
    if threading.current_thread() is threading.main_thread():  # a Dask task runs in a thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(SINGLE_THREAD_ENV)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # threadpoolctl is optional
        pass


def init_pool_worker() -> None:
    """Initializer of :func:`pool_results`' worker processes: :func:`init_worker`, an exit
    when the parent process dies (a ``kill -9``'d extract left its workers behind), and no
    last garbage collections when the worker ends (0.2 s the parent waited for at the end of
    every ``extract --jobs N``: :func:`sercap._interrupt.skip_exit_collections`)."""
    from sercap._interrupt import skip_exit_collections
    from sercap._spawn import exit_with_parent

    init_worker()
    exit_with_parent()
    skip_exit_collections()


#: Hash of each audio file this worker read, by (path, size, mtime, ctime, inode): a long
#: recording cut into many segments is hashed once per worker, not once per segment.
_DIGESTS: dict[tuple, str] = {}

#: What extract records for an utterance whose file is no longer the audio ingest hashed.
AUDIO_CHANGED = (
    "the audio file changed since it was ingested (its SHA-256 is not the one recorded); "
    f"run {step('ingest', 'ingest(wh, …)')} on the corpus again, then "
    f"{step('extract --retry-errors', 'extract(wh, retry_errors=True)')}"
)


def _stat_key(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # load_audio says what is wrong with it
    return (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _audio_changed(item: Item, before: tuple | None) -> bool:
    """Whether ``item``'s file holds other bytes than ingest hashed (features computed from
    it would be stored as those of the audio the catalog describes). ``before`` is the
    file's stat taken before it was decoded: a file replaced meanwhile counts as changed."""
    from sercap.store.parts import file_digest

    if item.sha256 is None or before is None:
        return False
    if before not in _DIGESTS:
        if len(_DIGESTS) > 4096:
            _DIGESTS.clear()
        _DIGESTS[before] = file_digest(Path(item.path))[1]
    return _DIGESTS[before] != item.sha256 or _stat_key(item.path) != before


def _load(item: Item, sample_rate: int, min_samples: int) -> tuple[Any, str | None]:
    from sercap.audio import AudioError, audio_problem, load_audio

    try:
        before = _stat_key(item.path)
        y = load_audio(item.path, sample_rate, item.start_s, item.end_s)
        if _audio_changed(item, before):  # decodable, but not the audio ingest described
            return None, AUDIO_CHANGED
    except AudioError as exc:
        return None, str(exc)
    except Exception as exc:  # a decoder bug must not stop the run
        return None, f"unreadable audio ({type(exc).__name__}: {exc})"
    problem = audio_problem(y, sample_rate, min_samples)
    return (None, problem) if problem else (y, None)


def run_task(task: Task) -> ChunkResult:
    """Compute and write one chunk's parts (runs in a worker, or inline with one job).

    Any failure of one utterance (its audio, its descriptors, its SQL functionals) is
    recorded in its row and the others go on; only an interruption or an I/O error of the
    chunk's parts stops the chunk. Numeric warnings are silenced: a result with infinite
    values is rejected instead.
    """
    with warnings.catch_warnings(), _quiet_numpy(), _gc_paused():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _run_task(task)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one chunk (as it was, after it).

    A chunk allocates many container objects but makes few reference cycles (about 300
    objects in 128 utterances); the collections its allocations set off, some of them full
    ones that walk every object the process holds (~140,000 once numba and scipy are
    loaded, 0.03-0.05 s each), cost ~0.05 s of an EmoDB extract. Reference counting still
    frees everything else at once; a chunk's cycles are collected after it.
    """
    import gc

    if not gc.isenabled():  # the caller's choice (or another thread's chunk): left as is
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _quiet_numpy() -> Any:
    import numpy as np

    return np.errstate(all="ignore")


def _run_task(task: Task) -> ChunkResult:
    import numpy as np
    import pyarrow as pa

    result = ChunkResult(task)
    sr = int(task.params["sample_rate"])
    min_samples = min_audio_samples(task.kind, task.params)
    ok: list[tuple[Item, Any, float]] = []  # item, computed value, seconds of audio
    raised: list[BaseException] = []
    for item in task.items:
        y, problem = _load(item, sr, min_samples)
        if problem is None:
            try:
                ok.append((item, _compute(task, y), y.size / sr))
                continue
            except Exception as exc:
                _reraise_interrupt(exc)
                raised.append(exc)
                problem = _failure(DESCRIPTORS_FAILED, item, exc)
        result.rows.append((item.utt_id, "error", problem, None))
    if not ok:
        _refuse_systemic(task, raised)
    feats = frames = None
    if ok and task.kind == "lld":
        ok, frames, feats, failed = _functionals_isolating(task, ok)
        result.rows.extend(failed)
    for item, value, seconds in ok:
        result.rows.append((item.utt_id, "ok", None, _n_frames(task, value)))
        result.audio_s += seconds
    if not ok:
        return result
    ok_ids = [item.utt_id for item, _, _ in ok]
    values = [value for _, value, _ in ok]
    name = task.part_name
    if task.kind == "lld":
        assert task.frames_dir is not None and frames is not None and feats is not None
        result.frames_path = write_part(frames, task.frames_dir, name)
        result.frames_rows = frames.num_rows
        result.frames_columns = arrow_schema_digest(frames.schema)
        result.out_path = write_part(feats, task.out_dir, name)
        result.out_rows = feats.num_rows
        result.out_columns = arrow_schema_digest(feats.schema)
    elif task.kind == "opensmile":
        from sercap.features.opensmile import column_names

        matrix = np.vstack(values)
        data = {"utt_id": pa.array(ok_ids, pa.string())}
        for j, col in enumerate(column_names(task.params)):
            data[col] = pa.array(matrix[:, j])
        table = pa.table(data)
        result.out_path = write_part(table, task.out_dir, name)
        result.out_rows = len(ok_ids)
        result.out_columns = arrow_schema_digest(table.schema)
    else:
        from sercap.features.images import encode_png

        table = pa.table(
            {
                "utt_id": pa.array(ok_ids, pa.string()),
                "height": pa.array([v.shape[0] for v in values], pa.int32()),
                "width": pa.array([v.shape[1] for v in values], pa.int32()),
                "png": pa.array([encode_png(v) for v in values], pa.binary()),
            }
        )
        result.out_path = write_part(table, task.out_dir, name)
        result.out_rows = len(ok_ids)
        result.out_columns = arrow_schema_digest(table.schema)
    return result


def _functionals_isolating(
    task: Task, ok: list[tuple[Item, Any, float]]
) -> tuple[list[tuple[Item, Any, float]], Any, Any, list[tuple[str, str, str, None]]]:
    """SQL functionals of a chunk's frames; when the chunk's query fails, each utterance is
    tried alone so that only the culprits are recorded as failed.

    Returns the utterances kept, their frames table (Arrow, what the frames part stores),
    their functionals table and the rows of those that failed.
    """
    from sercap.features.framing import frame_seconds
    from sercap.features.functionals import frames_table

    hop_s = frame_seconds(task.params)[0]
    try:
        frames = frames_table([e[0].utt_id for e in ok], [e[1] for e in ok])
        return ok, frames, _functionals(frames, hop_s), []
    except Exception as exc:
        _reraise_interrupt(exc)
    kept: list[tuple[Item, Any, float]] = []
    failed: list[tuple[str, str, str, None]] = []
    for entry in ok:
        try:
            _functionals(frames_table([entry[0].utt_id], [entry[1]]), hop_s)
            kept.append(entry)
        except Exception as exc:
            _reraise_interrupt(exc)
            reason = _failure(FUNCTIONALS_FAILED, entry[0], exc)
            failed.append((entry[0].utt_id, "error", reason, None))
    if not kept:
        return kept, None, None, failed
    frames = frames_table([e[0].utt_id for e in kept], [e[1] for e in kept])
    return kept, frames, _functionals(frames, hop_s), failed


def _functionals(frames: Any, hop_s: float) -> Any:
    from sercap.features.functionals import compute_functionals

    return compute_functionals(frames, hop_s)


def min_audio_samples(kind: str, params: dict[str, Any]) -> int:
    """Fewest samples that give features for a set of ``kind`` (one analysis window)."""
    from sercap.features.lld import frame_geometry

    return frame_geometry(params)[0] if kind != "opensmile" else int(params["sample_rate"]) // 10


def _reraise_interrupt(exc: BaseException) -> None:
    if is_interrupt(exc):
        raise KeyboardInterrupt from exc


#: Files of one chunk that, all readable and all failing the same way, say that the cause
#: is the installation (a damaged numba cache: UnpicklingError from every kernel), not them.
SYSTEMIC_FAILURES = 3


def _refuse_systemic(task: Task, raised: list[BaseException]) -> None:
    """Stop the run, storing nothing of the chunk, when every readable file of it (at least
    :data:`SYSTEMIC_FAILURES`, none computed) failed its descriptors with one exception type
    that says the installation is broken (:func:`_installation_error`): recorded as each
    file's problem, a damaged numba cache marked every utterance of the corpus failed, and
    every later run said they "failed before". The cache's markers go, so the next run
    probes it again (and sets it aside if it is damaged)."""
    kinds = {type(exc) for exc in raised}
    if len(raised) < SYSTEMIC_FAILURES or len(kinds) != 1 or not _installation_error(raised[0]):
        return
    from sercap.numba_cache import forget_probes

    with contextlib.suppress(OSError):
        forget_probes()
    first = (str(raised[0]).strip().splitlines() or [""])[0][:200]
    raise SercapError(
        f"the descriptors of each of {len(raised)} readable files failed with the same error "
        f"({type(raised[0]).__name__}: {first}); that is this installation's problem, not the "
        "audio's, so nothing of them was stored",
        hint="run the command again (sercap probes its numba cache again and sets a damaged "
        "one aside); if it fails the same way, reinstall sercap's dependencies",
    )


def _installation_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the installation is broken (a damaged compiled-kernel cache, a
    module that will not import), never the audio or the set's parameters (a ValueError
    every file of a chunk raises is still each file's recorded problem)."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError | ImportError | EOFError):
        return True
    return type(exc).__module__.split(".")[0] in ("numba", "llvmlite")


def _failure(what: str, item: Item, exc: BaseException) -> str:
    """One line: what failed, on which file, and the exception's first line."""
    lines = str(exc).strip().splitlines()
    detail = lines[0][:200] if lines else ""
    return f"{what} on {item.path} ({type(exc).__name__}: {detail})"


def _check_finite(value: Any) -> Any:
    """Reject descriptors with infinite values (NaN is fine: unvoiced frames)."""
    import numpy as np

    if isinstance(value, dict):  # descriptor columns: one check of their shared matrix
        from sercap.features.lld import frames_matrix

        inf = np.isinf(frames_matrix(value)).any(axis=1)
        if inf.any():
            raise FloatingPointError(f"{list(value)[int(np.argmax(inf))]} has infinite values")
        return value
    x = np.asarray(value)
    if x.dtype.kind == "f" and np.isinf(x).any():
        raise FloatingPointError("features has infinite values")
    return value


def _compute(task: Task, y: Any) -> Any:
    if task.kind == "lld":
        from sercap.features.lld import compute_frames

        return _check_finite(compute_frames(y, task.params))
    if task.kind == "opensmile":
        from sercap.features.opensmile import functionals

        return _check_finite(functionals(y, task.params))
    from sercap.features.images import spectrogram_image

    return _check_finite(spectrogram_image(y, task.params))


def _n_frames(task: Task, value: Any) -> int:
    if task.kind == "lld":
        return len(next(iter(value.values())))
    if task.kind == "image":
        return int(value.shape[1])
    return 1


# ----------------------------------------------------------------------------- main side
def pending(
    wh: Warehouse, fs: FeatureSet, corpus: str | None, retry_errors: bool, limit: int | None
) -> tuple[list[tuple[str, Item]], int, int, int]:
    """(corpus, item) of the utterances to extract now (at most ``limit``), how many are
    stored already, how many the limit leaves for a later run, and how many failed before
    and are not retried (without ``retry_errors``)."""
    total = catalog.count_utterances(wh, corpus)
    if not total:
        from sercap.store.corpora import corpus_names, unknown_corpus

        names = corpus_names(wh)
        if corpus and names and corpus not in names:  # as train and the other verbs say it
            raise unknown_corpus(corpus, names)
        if corpus:
            raise NotFoundError(f"no utterances in corpus {corpus!r}; run {INGEST_STEP} first")
        raise NotExtractedError(f"no utterances in the warehouse; run {INGEST_STEP} first")
    rows = catalog.pending_utterances(wh, fs.hash, corpus, retry_errors)
    failed = 0 if retry_errors else catalog.count_failed(wh, fs.hash, corpus)
    stored = int(total) - len(rows) - failed
    left = max(0, len(rows) - limit) if limit is not None else 0
    items = [(c, Item(u, p, s, e, h)) for c, u, p, s, e, h in rows[: len(rows) - left]]
    return items, stored, left, failed


def _refuse_unrecorded(wh: Warehouse, fs: FeatureSet, utt_ids: Sequence[str]) -> None:
    """Refuse to extract utterances that registered parts of ``fs`` already hold.

    That happens only when the catalog lost their ``extractions`` rows (a hand-edited
    catalog, a bug): extracting them again would store every one of them twice. Reading the
    ``utt_id`` column of the set's per-utterance parts costs milliseconds.
    """
    kind = "images" if fs.kind == "image" else "features"
    paths = [str(p) for p in wh.part_paths(kind, fs.hash)]
    if not paths or not utt_ids:
        return
    try:
        rows = wh.con.execute(
            "SELECT DISTINCT utt_id FROM read_parquet(?) WHERE list_contains(?, utt_id) "
            "ORDER BY utt_id",
            [paths, list(utt_ids)],
        ).fetchall()
    except duckdb.Error as exc:
        raise SercapError(
            f"the stored parts of feature set {fs.name!r} cannot be read "
            f"({str(exc).splitlines()[0]}); run {REPAIR_STEP} first"
        ) from exc
    if rows:
        raise SercapError(
            f"{len(rows)} utterance(s) to extract for feature set {fs.name!r} are already in "
            f"its stored parts without a record (e.g. {rows[0][0]}); extracting them again "
            f"would store them twice: run {REPAIR_STEP} first"
        )


def make_tasks(
    wh: Warehouse, fs: FeatureSet, items: Sequence[tuple[str, Item]], chunk_size: int
) -> Iterator[Task]:
    """Chunks of at most ``chunk_size`` utterances, never mixing corpora."""
    by_corpus: dict[str, list[Item]] = {}
    for corpus, item in items:
        by_corpus.setdefault(corpus, []).append(item)
    for corpus, its in by_corpus.items():
        # absolute: a Dask worker runs in a folder of its own, where a relative -w names
        # nothing (or another copy of the warehouse)
        frames_dir = (
            str(wh.part_dir("frames", fs.hash, corpus).absolute()) if fs.kind == "lld" else None
        )
        out_dir = str(wh.part_dir(PART_KIND[fs.kind], fs.hash, corpus).absolute())
        for i in range(0, len(its), chunk_size):
            yield Task(
                kind=fs.kind,
                params=dict(fs.params),
                corpus=corpus,
                part_name=f"part-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet",
                frames_dir=frames_dir,
                out_dir=out_dir,
                items=tuple(its[i : i + chunk_size]),
            )


def store_result(wh: Warehouse, fs: FeatureSet, res: ChunkResult) -> None:
    """Register a chunk's parts and its extractions rows, all in one transaction."""
    corpus = res.task.corpus
    part = None
    with wh.transaction():
        if res.frames_path:
            wh.register_part(
                "frames", fs.hash, corpus, Path(res.frames_path), res.frames_rows,
                res.frames_columns,
            )  # fmt: skip
        if res.out_path:
            wh.register_part(
                PART_KIND[fs.kind], fs.hash, corpus, Path(res.out_path), res.out_rows,
                res.out_columns,
            )  # fmt: skip
            part = Path(res.out_path)
        if res.rows:
            catalog.insert_extractions(wh, fs.hash, part, res.rows)


def remove_orphans(wh: Warehouse, fs: FeatureSet, corpora: Sequence[str]) -> int:
    """Delete part files of ``fs`` that were never registered (a crash's leftovers)."""
    kinds = ["frames", "features"] if fs.kind == "lld" else [PART_KIND[fs.kind]]
    return sum(wh.remove_orphan_parts(k, fs.hash, c) for k in kinds for c in corpora)


def extract(
    wh: Warehouse,
    feature_set: str | FeatureSet = "default",
    corpus: str | None = None,
    jobs: int = 1,
    chunk_size: int | None = None,
    retry_errors: bool = False,
    limit: int | None = None,
    progress: bool | None = True,
    kind: str | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    cluster: Any = None,
    say: Callable[[str], None] | None = None,
    every_s: float = 30.0,
) -> ExtractSummary:
    """Extract every utterance (of ``corpus``) not yet stored for ``feature_set``.

    ``on_chunk`` is called after each chunk is committed (tests use it to simulate a crash).
    Where no bar shows, ``say`` hears a progress line after a chunk at most every
    ``every_s`` seconds (a log file saw nothing for minutes).
    ``cluster`` (a spec such as ``"local:4"`` / ``"tcp://host:8786"``, or a Dask Client)
    runs the chunks on Dask workers instead of the ``jobs`` pool; see :func:`_dask_results`.
    """
    fs = feature_set if isinstance(feature_set, FeatureSet) else get_feature_set(feature_set, kind)
    if kind is not None and fs.kind != kind:  # (a set given as an object: its kind unchecked)
        raise BadParameterError(
            f"feature set {fs.name!r} is of kind {fs.kind!r}, not {kind!r}: "
            + ("images stores image sets" if kind == "image" else "give a set of that kind")
            + " (sercap features list)"
        )
    if fs.kind == "opensmile":
        from sercap.features.opensmile import available

        if not available():
            raise SercapError(
                f"feature set {fs.name!r} needs the opensmile package; "
                "pip install 'sercap[opensmile]'"
            )
    if wh.read_only:
        raise SercapError(f"{wh.root}: the warehouse is open read-only; extraction writes to it")
    items, stored, left, failed_before = pending(wh, fs, corpus, retry_errors, limit)
    _refuse_unrecorded(wh, fs, [item.utt_id for _c, item in items])
    # only once the request is known to be valid: a typo'd corpus left the set defined
    register(wh, fs)
    summary = ExtractSummary(
        fs.name, fs.hash, skipped=stored, left=left, failed_before=failed_before,
        retry=store_step(fs.name, fs.kind, corpus, retry=True),
    )  # fmt: skip
    from sercap.check import stale_audio_line  # one stat per audio file

    summary.stale_audio = stale_audio_line(wh)
    # every corpus this call covers, not only those with work left: a run with nothing to
    # do left a killed run's files in place while `check` said "the next extract removes them"
    from sercap.store.corpora import corpus_names

    covered = [corpus] if corpus is not None else corpus_names(wh)
    corpora = sorted(set(covered) | {c for c, _ in items})
    summary.orphans_removed = remove_orphans(wh, fs, corpora)
    if not items:
        wh.refresh_views()
        return summary
    started = time.perf_counter()
    if fs.kind in ("lld", "image"):  # numba kernels: compiled once, never by two workers
        from sercap.numba_cache import ensure_numba_cache, warm_spec

        # its one line ("compiling numba kernels…") shows where progress would
        shown = bool(progress) if progress is not None else sys.stderr.isatty()
        ensure_numba_cache(arg=warm_spec(fs.kind, fs.params), log=shown)
    bar = _progress_bar(len(items), progress)
    said = started
    try:
        with _opened(cluster) as cluster:  # before the chunks: sized by its workers
            if chunk_size is None:
                from sercap.cluster import cluster_threads

                # (at least 2: an adaptive cluster may have one worker when it opens)
                workers = jobs if cluster is None else max(2, cluster_threads(cluster))
                chunk_size = auto_chunk_size(len(items), workers)
            for res in _results(make_tasks(wh, fs, items, chunk_size), jobs, cluster):
                store_result(wh, fs, res)
                summary.add_rows(res)
                if bar is not None:
                    elapsed = max(time.perf_counter() - started, 1e-9)
                    bar.set_postfix_str(f"{summary.audio_s / elapsed:.0f} audio-s/s", refresh=False)
                    bar.update(len(res.rows))
                elif say is not None and time.perf_counter() - said >= every_s:
                    said = time.perf_counter()
                    done = summary.done + summary.failed
                    say(
                        f"  {done} of {len(items)} utterances ({100 * done / len(items):.0f}%), "
                        f"{summary.audio_s / max(said - started, 1e-9):.0f}× real time"
                    )
                if on_chunk is not None:
                    on_chunk(res)
            if cluster is not None:  # temporary files of workers killed mid-chunk
                summary.orphans_removed += remove_orphans(wh, fs, corpora)
    finally:
        if bar is not None:
            bar.close()
        summary.seconds = time.perf_counter() - started
        wh.refresh_views()
    return summary


def _reason_key(err: str | None) -> str:
    """Group problems by kind (durations and exception texts differ per file)."""
    text = err or "unknown"
    for prefix in (DESCRIPTORS_FAILED, FUNCTIONALS_FAILED):
        if text.startswith(prefix):
            return prefix
    return text.split(" (")[0] if text.startswith(("shorter", "unreadable")) else text


def _progress_bar(total: int, enabled: bool | None) -> Any:
    """A tqdm bar on stderr (``None``: only when stderr is a terminal)."""
    import sys

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", unit_scale=False, dynamic_ncols=True, leave=True)


def _results(tasks: Iterator[Task], jobs: int, cluster: Any = None) -> Iterator[ChunkResult]:
    """Run tasks inline (one job) or in a spawn pool whose workers use one thread each."""
    if cluster is not None:
        yield from _dask_results(tasks, cluster)
        return
    if jobs <= 1:
        from threadpoolctl import threadpool_limits

        try:
            with threadpool_limits(1):
                for task in tasks:
                    yield run_task(task)
        finally:  # a notebook's process keeps no DuckDB (~70 MB) once its extract is done
            if "sercap.features.functionals" in sys.modules:
                sys.modules["sercap.features.functionals"].close_connection()
        return
    saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    os.environ.update(SINGLE_THREAD_ENV)  # inherited by the spawned workers before imports
    try:
        yield from pool_results(tasks, jobs)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pool_results(
    tasks: Iterator[Any], jobs: int, work: Callable[[Any], Any] | None = None
) -> Iterator[Any]:
    """``work`` (default :func:`run_task`) of each task in ``jobs`` spawned processes, as
    they finish; at most two tasks per process are queued, so memory stays bounded.

    A process pool from ``concurrent.futures``, not ``multiprocessing.Pool``: when a worker
    dies (kill -9, the OOM killer) the latter waits for its task for ever, while this one
    breaks, and the run stops in one line; everything stored before is kept.
    """
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    work = work or run_task
    ctx = mp.get_context("spawn")
    # main_not_rerun: the workers never run the caller's script
    with main_not_rerun():
        # No max_tasks_per_child: a replacement worker would be started by the pool's
        # manager thread, outside sigint_ignored, and a Ctrl-C during its start-up would
        # end in its own traceback.
        start_resource_tracker()  # before the pool's first semaphore starts it, SIGHUP-proof
        executor = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=init_pool_worker)
        finished = False
        try:
            pending: set[Any] = set()
            queue = iter(tasks)
            more = True
            while more or pending:
                while more and len(pending) < 2 * jobs:
                    task = next(queue, None)
                    if task is None:
                        more = False
                        break
                    with sigint_ignored():  # workers started here inherit it: Ctrl-C during
                        pending.add(executor.submit(work, task))  # their start-up is ours
                if pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            finished = True
        except BrokenProcessPool as exc:
            raise SercapError(
                "an extraction worker process died (killed, or out of memory: a very long "
                "recording?); everything finished before is stored: rerun to resume (with "
                "--jobs 1 to see which file)"
            ) from exc
        finally:
            if not finished:  # interrupted or broken: stop the workers now, as Pool did
                for process in list((getattr(executor, "_processes", None) or {}).values()):
                    process.terminate()
            executor.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- Dask path
def run_task_on_worker(task: Task) -> ChunkResult:
    """:func:`run_task` on a Dask worker: one thread, and a one-line error when the worker
    does not see the warehouse folder at the client's path (no shared filesystem)."""
    import socket

    init_worker()
    for folder in (task.out_dir, task.frames_dir):
        if folder is not None and not os.path.isdir(folder):
            raise SercapError(
                f"worker on {socket.gethostname()} cannot see {folder}: workers need the "
                "warehouse and the audio at the same paths as the client (a shared filesystem)"
            )
    if task.items and not any(os.path.isdir(os.path.dirname(i.path)) for i in task.items):
        # a folder, not the file: a file deleted after ingest is recorded as an error as usual
        raise SercapError(
            f"worker on {socket.gethostname()} cannot see {os.path.dirname(task.items[0].path)}"
            ": workers need the audio at the same paths as the client (a shared filesystem)"
        )
    return run_task(task)


def _opened(cluster: Any) -> contextlib.AbstractContextManager:
    """``cluster`` as a Dask client: a spec (``"local:4"``, an address) opened for the run
    and closed after it; a Client the caller manages, or None, as it is."""
    if cluster is None or hasattr(cluster, "submit"):
        return contextlib.nullcontext(cluster)
    from sercap.cluster import open_client

    return open_client(cluster)


def _dask_results(tasks: Iterator[Task], client: Any) -> Iterator[ChunkResult]:
    """Run every chunk as one Dask task; yield results as they complete.

    A worker writes its chunk's parts exactly as a pool worker does (temporary name, then an
    atomic rename to the chunk's unique part name); only this process registers them. When a
    worker dies mid-chunk, Dask reruns the chunk elsewhere: the rerun writes the same part
    name (replacing any file the dead worker renamed into place), the dead worker's
    temporary file is removed after the run by :func:`remove_orphans`, and each chunk's
    result reaches :func:`store_result` once — nothing is lost or registered twice.
    ``client`` is open (:func:`_opened`).
    """
    from sercap.cluster import map_tasks

    yield from map_tasks(client, run_task_on_worker, tasks, progress=False)
