"""Runs, their out-of-fold predictions, saved models (artifacts) and tuned parameters.

Every read or write of the ``runs``, ``predictions``, ``artifacts`` and ``tuned_params``
tables; the statements are the named queries of ``sql/queries/runs.sql``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap._lazy import pl
from sercap.errors import NotFoundError, SercapError, step
from sercap.sqlfiles import named_query
from sercap.store import layout

if TYPE_CHECKING:
    import pyarrow as pa

    from sercap.store.warehouse import Warehouse


def _q(name: str) -> str:
    return named_query("runs", name)


def insert_run(wh: Warehouse, run: Mapping[str, Any], predictions: pa.Table) -> None:
    """Store one run (the columns of ``runs`` but ``started_at``) and its predictions
    (``run_id, utt_id, fold, label, predicted, proba``) in one transaction."""
    with wh.transaction():
        wh.execute(_q("insert_run"), dict(run))
        wh.con.register("new_predictions", predictions)
        try:
            wh.execute("INSERT INTO predictions SELECT * FROM new_predictions")
        finally:
            wh.con.unregister("new_predictions")


def audio_sources(wh: Warehouse, corpus: str) -> dict[str, str | None]:
    """Each utterance of ``corpus`` → what its audio is: the file's SHA-256 and the segment
    (``sha:start-end``), or None where ingest never hashed the file (an older warehouse)."""
    rows = wh.con.execute(
        "SELECT utt_id, audio_sha256, start_s, end_s FROM utterances WHERE corpus = ? "
        "ORDER BY utt_id",
        [corpus],
    ).fetchall()
    return {u: None if sha is None else f"{sha}:{start}-{end}" for u, sha, start, end in rows}


def data_fingerprint(
    utt_ids: Sequence[str],
    labels: Sequence[str],
    audio: Mapping[str, str | None],
    *,
    every_recording: bool = False,
    with_audio: bool = True,
) -> str | None:
    """SHA-256 (16 hex digits) of the data a run reads: its sorted (utterance, label,
    audio) rows (``audio``: :func:`audio_sources`), and with ``every_recording`` (speaker
    normalisation reads them all) every utterance's audio in ``audio``.

    Two runs with the same fingerprint and feature-set hash read the same numbers: the
    features are a function of the audio and the set's definition. A replaced recording or
    segment (re-ingested and re-extracted), a relabelled, added or lost utterance changes
    it. None where an utterance's audio was never hashed: filling the hash in later would
    change the fingerprint of unchanged data. ``with_audio`` False (a model of transcripts)
    leaves the audio out.
    """
    import hashlib

    digest = hashlib.sha256()
    for utt, label in sorted(zip(map(str, utt_ids), map(str, labels), strict=True)):
        source = audio.get(utt) if with_audio else "-"
        if source is None:
            return None
        digest.update(f"{utt}\t{label}\t{source}\n".encode())
    if every_recording and with_audio:
        digest.update(b"speaker statistics\n")
        for utt, source in audio.items():
            if source is None:
                return None
            digest.update(f"{utt}\t{source}\n".encode())
    return digest.hexdigest()[:16]


def find_runs(wh: Warehouse, run_id: str) -> pl.DataFrame:
    """Runs whose id is ``run_id`` or starts with it, all columns."""
    return wh.query(_q("find_run"), {"id": run_id})


def get_run(wh: Warehouse, run_id: str) -> dict:
    """One stored run as a dict; a unique prefix of its id is enough."""
    frame = find_runs(wh, run_id)
    exact = frame.filter(frame["run_id"] == run_id)
    if exact.height == 1:
        frame = exact
    if frame.is_empty():
        raise NotFoundError(f"no run {run_id!r}; list them with {step('runs', 'runs(wh)')}")
    if frame.height > 1:  # which ones: a user typed the model name as a prefix
        ids = frame["run_id"].to_list()
        shown = ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
        raise SercapError(f"{run_id!r} matches {frame.height} runs ({shown}); give more of the id")
    return frame.to_dicts()[0]


def count_runs(wh: Warehouse) -> int:
    """How many runs are stored."""
    return int(wh.scalar("SELECT count(*) FROM runs"))


def list_runs(wh: Warehouse, corpus: str | None = None, model: str | None = None) -> pl.DataFrame:
    """Stored runs, newest first, with the facts needed to read their figures."""
    return wh.query(_q("list_runs"), {"corpus": corpus, "model": model})


def latest_runs(wh: Warehouse, n: int = 10) -> pl.DataFrame:
    """The ``n`` newest runs, their figures rounded for a summary."""
    return wh.query(_q("latest_runs"), {"n": n})


def newest_per_configuration(wh: Warehouse, corpus: str, label_map: str) -> list[str]:
    """The newest run of each (model, feature set, columns, speaker norm, tuned, kind; for
    an ensemble its members' recipe and weights): chosen by time, never by UA. Only runs
    under the protocol the corpus' folds follow now (:func:`other_protocol_runs` counts
    the others)."""
    frame = wh.query(_q("newest_per_configuration"), {"corpus": corpus, "label_map": label_map})
    return frame["run_id"].to_list()


def other_protocol_runs(wh: Warehouse, corpus: str, label_map: str) -> dict[str, int]:
    """Protocol → number of runs of ``corpus``/``label_map`` scored under another protocol
    than the corpus' folds follow now (an older sercap dealt them otherwise, or the corpus
    changed): their folds differ, so their scores are not comparable with today's."""
    frame = wh.query(_q("other_protocol_runs"), {"corpus": corpus, "label_map": label_map})
    return {str(p): int(n) for p, n in frame.iter_rows()}


def newest_per_model(wh: Warehouse, corpus: str, label_map: str) -> dict[str, str]:
    """Model name → its newest model run on a corpus and label map (by time, never by UA)."""
    frame = wh.query(_q("newest_per_model"), {"corpus": corpus, "label_map": label_map})
    return dict(zip(frame["model"], frame["run_id"], strict=True))


def run_for_prediction(wh: Warehouse, model: str, corpus: str | None) -> tuple[str, bool] | None:
    """(run id, speaker_norm) of the run ``predict`` should use: runs without speaker
    normalisation first, then the newest (never by UA); None when ``model`` has no run."""
    rows = wh.con.execute(_q("run_for_prediction"), {"model": model, "corpus": corpus})
    found = rows.fetchall()
    return (found[0][0], bool(found[0][1])) if found else None


def newest_rating_run(wh: Warehouse, model: str, corpus: str | None) -> tuple[str, str] | None:
    """(run id, target) of the newest regression run of ``model``, or None."""
    found = wh.con.execute(
        "SELECT run_id, target FROM runs WHERE model = ? AND (? IS NULL OR corpus = ?) "
        "AND target IS NOT NULL AND cross_matrix IS NULL ORDER BY started_at DESC LIMIT 1",
        [model, corpus, corpus],
    ).fetchall()
    return (found[0][0], found[0][1]) if found else None


def newer_speaker_normed(wh: Warehouse, model: str, corpus: str | None, run_id: str) -> str | None:
    """The newest run of ``model`` with speaker normalisation started after ``run_id``, or
    None: what ``predict --model`` passes over."""
    params = {"model": model, "corpus": corpus, "run_id": run_id}
    found = wh.con.execute(_q("newer_speaker_normed"), params).fetchall()
    return found[0][0] if found else None


def prediction_corpora(wh: Warehouse, model: str) -> list[str]:
    """The corpora holding a run of ``model`` that ``predict --model`` could use."""
    rows = wh.con.execute(
        "SELECT DISTINCT corpus FROM runs WHERE model = ? AND cross_matrix IS NULL "
        "AND target IS NULL ORDER BY 1",
        [model],
    ).fetchall()
    return [c for (c,) in rows]


def prediction_variants(
    wh: Warehouse, model: str, corpus: str | None, run_id: str
) -> list[tuple[str, str | None]]:
    """(label map, column pattern) of the runs ``predict --model`` could use other than
    ``run_id``'s: the classes or inputs a user may have meant instead."""
    rows = wh.con.execute(
        "SELECT DISTINCT label_map, columns FROM runs WHERE model = $model "
        "AND ($corpus IS NULL OR corpus = $corpus) AND cross_matrix IS NULL AND target IS NULL "
        "AND NOT speaker_norm EXCEPT SELECT label_map, columns FROM runs WHERE run_id = $run_id "
        "ORDER BY 1, 2 NULLS FIRST",
        {"model": model, "corpus": corpus, "run_id": run_id},
    ).fetchall()
    return [(m, c) for m, c in rows]


def bench_rows(wh: Warehouse, run_ids: Sequence[str]) -> pl.DataFrame:
    """The columns a comparison table shows, for some runs (any order)."""
    return wh.query(_q("bench_rows"), {"ids": list(run_ids)})


def run_ua(wh: Warehouse, run_ids: Sequence[str]) -> dict[str, float]:
    """Run id → pooled UA."""
    frame = wh.query("SELECT run_id, ua FROM runs WHERE list_contains(?, run_id)", [list(run_ids)])
    return dict(frame.iter_rows())


def ensemble_members(wh: Warehouse, run_id: str) -> pl.DataFrame:
    """The member runs of an ensemble run (run_id, model, ua), best pooled UA first; empty
    for a run that is not an ensemble."""
    return wh.query(
        "SELECT run_id, model, ua FROM runs WHERE list_contains("
        "(SELECT members FROM runs WHERE run_id = ?), run_id) ORDER BY ua DESC, run_id",
        [run_id],
    )


def predictions(wh: Warehouse, run_id: str) -> pl.DataFrame:
    """A run's out-of-fold predictions: utt_id, fold, label, predicted, proba (list)."""
    return wh.query(_q("predictions"), {"run_id": run_id})


def largest_fold(wh: Warehouse, run_id: str) -> int:
    """The number of utterances in a run's largest test fold (0 without predictions)."""
    n = wh.scalar(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM predictions WHERE run_id = ? GROUP BY fold)",
        [run_id],
    )
    return int(n or 0)


def predictions_with_groups(wh: Warehouse, run_id: str) -> pl.DataFrame:
    """A run's out-of-fold predictions with each utterance's speaker and gender (``"?"`` for
    an utterance missing from the catalog), by utt_id."""
    return wh.query(_q("predictions_with_groups"), {"run_id": run_id})


# -- artifacts --------------------------------------------------------------------------
def artifact_dir(wh: Warehouse, run_id: str) -> Path:
    """Where a run's saved model lives (it may not exist yet)."""
    return layout.artifact_dir(wh.root, run_id)


def artifact_path(wh: Warehouse, run_id: str) -> Path | None:
    """The artifact folder the catalog records for a run, or None."""
    rel = wh.scalar("SELECT path FROM artifacts WHERE run_id = ?", [run_id])
    return None if rel is None else layout.absolute(wh.root, rel)


def record_artifact(wh: Warehouse, run_id: str, folder: Path, checksums_sha256: str) -> None:
    """Record the (complete, renamed into place) artifact folder of a run and the SHA-256
    of its checksums file."""
    wh.execute(
        "INSERT OR REPLACE INTO artifacts (run_id, path, created_at, checksums_sha256) "
        "VALUES (?, ?, now(), ?)",
        [run_id, layout.relative(wh.root, folder), checksums_sha256],
    )


#: SHA-256 of every other file of an artifact, checked before the model is loaded.
CHECKSUMS = "checksums.json"


def artifact_checksums(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file of an artifact folder but the checksums file."""
    from sercap.store.parts import file_digest

    return {
        p.relative_to(folder).as_posix(): file_digest(p)[1]
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS
    }


def write_artifact_checksums(folder: Path) -> str:
    """Write ``checksums.json`` (:func:`artifact_checksums`) into an artifact folder; return
    that file's SHA-256, which :func:`record_artifact` keeps in the catalog."""
    from sercap.store.parts import file_digest

    path = folder / CHECKSUMS
    path.write_text(json.dumps(artifact_checksums(folder), indent=1))
    return file_digest(path)[1]


def verify_artifact(folder: Path, checksums_sha256: str | None) -> None:
    """Raise a :class:`SercapError` naming the file when an artifact differs from what was
    stored: its checksums file missing or not the one the catalog recorded
    (``checksums_sha256``), or a file missing, added or changed. Artifacts stored before the
    catalog kept the digest (None) are checked against their checksums file if they have
    one, and taken as they are if not."""
    from sercap.store.parts import file_digest

    path = folder / CHECKSUMS
    if checksums_sha256 is not None:
        if not path.is_file():
            raise SercapError(f"{CHECKSUMS}: missing")
        if file_digest(path)[1] != checksums_sha256:
            raise SercapError(f"{CHECKSUMS}: its SHA-256 differs from the one the catalog holds")
    elif not path.is_file():
        return
    recorded, found = json.loads(path.read_text()), artifact_checksums(folder)
    for name in sorted(set(recorded) | set(found)):
        if recorded.get(name) != found.get(name):
            why = "missing" if name not in found else "not recorded" if name not in recorded else (
                "its SHA-256 differs from the one stored"
            )  # fmt: skip
            raise SercapError(f"{name}: {why}")


def forget_artifact(wh: Warehouse, run_id: str) -> None:
    """Unrecord a run's stored final model (its folder is the caller's to delete)."""
    wh.execute("DELETE FROM artifacts WHERE run_id = ?", [run_id])


def artifacts(wh: Warehouse) -> list[tuple[str, Path, str | None]]:
    """(run_id, folder, SHA-256 of its checksums file or None) of every recorded artifact;
    None also where an older warehouse opened read-only lacks the column."""
    digest = "checksums_sha256" if _has_artifact_digests(wh) else "NULL"
    rows = wh.con.execute(f"SELECT run_id, path, {digest} FROM artifacts ORDER BY run_id")
    return [(r, layout.absolute(wh.root, p), d) for r, p, d in rows.fetchall()]


def same_run(wh: Warehouse, settings: dict, labels: list[tuple[str, str]]) -> str | None:
    """The newest run of kind ``model`` (not tuned, not a rating, not a cross-corpus cell)
    whose columns equal ``settings`` (NULL matching None) and whose stored predictions are
    exactly the (utt_id, label) pairs in ``labels`` (sorted), or None."""
    where = " AND ".join(f'"{column}" IS NOT DISTINCT FROM ?' for column in settings)
    have = wh.columns_of("runs")  # an older warehouse opened read-only lacks the later ones
    extra = "".join(
        f" AND {column} IS NULL"
        for column in ("tuned_from", "target", "cross_matrix")
        if column in have
    )
    candidates = wh.con.execute(
        f"SELECT run_id FROM runs WHERE kind = 'model' AND {where}{extra} ORDER BY started_at DESC",
        list(settings.values()),
    ).fetchall()
    for (run_id,) in candidates:
        stored = wh.con.execute(
            "SELECT utt_id, label FROM predictions WHERE run_id = ?", [run_id]
        ).fetchall()
        if sorted(stored) == labels:
            return run_id
    return None


def unrecorded_artifacts(wh: Warehouse) -> list[Path]:
    """Folders under ``artifacts/`` that the catalog does not record: a final model being
    written when its ``predict`` was killed (``<run>.tmp``), or one stored without its row.
    ``predict`` never loads them; the next ``predict`` of the run replaces them."""
    return [p for p in _unrecorded(wh) if layout.is_artifact_dir(p)]


def foreign_artifacts(wh: Warehouse) -> list[Path]:
    """Entries under ``artifacts/`` that sercap would not have made (files, folders not
    named by a run id): sercap neither reads nor removes them."""
    return [p for p in _unrecorded(wh) if not layout.is_artifact_dir(p)]


def _unrecorded(wh: Warehouse) -> list[Path]:
    folder = wh.root / "artifacts"
    if not folder.is_dir():
        return []
    recorded = {path.resolve() for _run, path, _digest in artifacts(wh)}
    return sorted(p for p in folder.iterdir() if p.resolve() not in recorded)


def artifact_digest(wh: Warehouse, run_id: str) -> str | None:
    """The SHA-256 of a run's artifact checksums file the catalog records, or None."""
    if not _has_artifact_digests(wh):
        return None
    return wh.scalar("SELECT checksums_sha256 FROM artifacts WHERE run_id = ?", [run_id])


def _has_artifact_digests(wh: Warehouse) -> bool:
    """Whether the artifacts table has its checksums column (an older warehouse opened
    read-only has not)."""
    return "checksums_sha256" in wh.columns_of("artifacts")


# -- tuned parameters -------------------------------------------------------------------
def store_tuned_params(
    wh: Warehouse,
    *,
    study: str,
    model: str,
    corpus: str,
    label_map: str,
    feature_set_hash: str | None,
    storage: str,
    best_trial: int,
    best_value: float | None,
    n_complete: int,
    params: Mapping[str, Any],
    base_study: str | None = None,
    outer_fold: str | None = None,
    speaker_norm: bool | None = None,
    columns: str | None = None,
    speakers: Sequence[str] | None = None,
    data_sha256: str | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """Record a study's chosen parameters where ``train --tuned`` finds them (one row per
    outer fold's study, ``outer_fold`` NULL for the final study of a nested tuning;
    ``columns`` the data's column pattern, None for all columns; ``speakers`` those the
    study's trials were fitted and scored on, ``data_sha256`` the fingerprint of that data,
    :func:`data_fingerprint`; ``fixed`` the parameters the tuning held fixed)."""
    wh.execute(
        _q("insert_tuned_params"),
        {
            "study": study,
            "model": model,
            "corpus": corpus,
            "label_map": label_map,
            "feature_set_hash": feature_set_hash,
            "storage": storage,
            "best_trial": best_trial,
            "best_value": best_value,
            "n_complete": n_complete,
            "params_json": json.dumps(dict(params), sort_keys=True, default=float),
            "base_study": base_study,
            "outer_fold": outer_fold,
            "speaker_norm": speaker_norm,
            "columns": columns,
            "speakers": None if speakers is None else json.dumps(sorted(speakers)),
            "data_sha256": data_sha256,
            "fixed_json": json.dumps(dict(fixed or {}), sort_keys=True, default=float),
        },
    )


def study_storage(wh: Warehouse, base: str) -> str | None:
    """Where the nested tuning ``base`` was stored (as recorded: a password is masked)."""
    return wh.scalar(
        "SELECT storage FROM tuned_params WHERE base_study = ? OR study = ? "
        "ORDER BY updated_at DESC LIMIT 1",
        [base, base],
    )


def nested_tuned_params(
    wh: Warehouse,
    model: str,
    corpus: str,
    label_map: str,
    feature_set_hash: str | None,
    speaker_norm: bool | None,
    columns: str | None = None,
) -> pl.DataFrame:
    """Rows of nested tunings of this model and data (base_study, outer_fold, params_json,
    updated_at, speakers: a JSON list or None), newest first; ``outer_fold`` is NULL for a
    final study. Only tunings on the same column pattern (None: all columns) count."""
    return wh.query(
        _q("nested_tuned_params"),
        {
            "model": model,
            "corpus": corpus,
            "label_map": label_map,
            "feature_set_hash": feature_set_hash,
            "speaker_norm": speaker_norm,
            "columns": columns,
        },
    )


def study_journal(wh: Warehouse, study: str) -> Path:
    """The default Optuna journal of a study (``studies/<study>.journal``)."""
    return layout.study_journal(wh.root, study)


def folds_of(wh: Warehouse, run_ids: list[str]) -> int:
    """Outer folds fitted by these runs together (the tasks of a bench)."""
    return int(
        wh.scalar("SELECT sum(n_folds) FROM runs WHERE list_contains(?, run_id)", [run_ids]) or 0
    )


def newest_default_fits(wh: Warehouse) -> pl.DataFrame:
    """model, fit_s, n_folds, n_utterances of each model's newest untuned cross-validation."""
    return wh.query(
        "SELECT model, fit_s, n_folds, n_utterances FROM runs WHERE kind = 'model' "
        "AND tuned_from IS NULL AND n_folds > 1 "
        "QUALIFY row_number() OVER (PARTITION BY model ORDER BY started_at DESC) = 1 "
        "ORDER BY model"
    )


# -- cross-corpus matrices (sql/007_cross_corpus.sql) -------------------------------------
def shared_emotions(wh: Warehouse) -> list[str]:
    """The class codes a cross-corpus label map may keep, in display order."""
    frame = wh.query("SELECT label FROM shared_emotions ORDER BY position, label")
    return frame["label"].to_list()


def mark_cross_corpus(wh: Warehouse, run_id: str, train_corpus: str, matrix: str) -> None:
    """Mark a stored run as the cell (``train_corpus`` → its corpus) of a cross-corpus
    matrix. Call it in the transaction that stored the run, so that no run is ever left
    unmarked."""
    wh.execute(
        "UPDATE runs SET train_corpus = ?, cross_matrix = ? WHERE run_id = ?",
        [train_corpus, matrix, run_id],
    )


def cross_corpus_cells(wh: Warehouse, matrix: str) -> pl.DataFrame:
    """The runs of one cross-corpus matrix (the ``cross_corpus_runs`` view's columns)."""
    return wh.query(
        "SELECT * FROM cross_corpus_runs WHERE cross_matrix = ? "
        "ORDER BY speaker_norm, train_corpus, test_corpus",
        [matrix],
    )
