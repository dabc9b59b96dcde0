"""Predicting a chunk of files at once.

Each file is decoded once per sample rate and its descriptors are computed once per feature
set, whichever ensemble members read them; the functionals of the whole chunk come from one
SQL query (the same ``sql/templates/functionals.sql`` that extraction runs), and a model on
functionals whose rows are scored independently (``batch_invariant``: scikit-learn,
XGBoost, LightGBM) scores the chunk in one call. One file at a time paid about 80 ms of
fixed work per file (a DuckDB connection, the query's planning, assembling its wide table)
against about 13 ms of descriptors.

A file's own problem (unreadable audio, features that cannot be computed, a non-finite
output) stays that file's: it is returned as an :class:`~sercap.audio.AudioError` in its
place and the other files of the chunk are still predicted.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sercap.audio import AudioError, audio_problem, load_audio, probe_audio
from sercap.modality import AUDIO, FUSED, TEXT
from sercap.predict_inputs import FinalModel, fused_input, model_input

#: Files whose features and predictions are computed together, at most.
CHUNK_FILES = 32
#: Seconds of audio a chunk holds at most (decoded audio and descriptors of all its files
#: are in memory together): a file longer than this is a chunk of its own.
CHUNK_SECONDS = 600.0


def chunks(
    paths: Sequence[Path], size: int | None = None, seconds: float | None = None
) -> list[list[Path]]:
    """``paths`` in consecutive chunks, in order, of at most ``size`` files (default
    :data:`CHUNK_FILES`) and ``seconds`` of audio (default :data:`CHUNK_SECONDS`, from each
    file's header; a file that cannot be probed counts as none)."""
    size = CHUNK_FILES if size is None else size
    seconds = CHUNK_SECONDS if seconds is None else seconds
    out: list[list[Path]] = []
    held = 0.0
    for path in paths:
        try:
            duration = probe_audio(path).duration_s
        except AudioError:
            duration = 0.0
        if not out or len(out[-1]) >= size or (out[-1] and held + duration > seconds):
            out.append([])
            held = 0.0
        out[-1].append(path)
        held += duration
    return out


def predict_chunk(
    member: FinalModel,
    paths: Sequence[Path],
    texts: Sequence[str | None],
    shared: dict | None = None,
    rows: dict[Path, np.ndarray] | None = None,
) -> list[np.ndarray | AudioError]:
    """One final model's output for each file of a chunk: probabilities (a regressor: its
    one rating), or the :class:`AudioError` that says why the file has none.

    ``shared`` holds what the chunk's other members can reuse (decoded audio, descriptors,
    functionals); pass the same dict to every member of an ensemble for one chunk. A model
    on functionals leaves each file's row, as it read it, in ``rows`` (for
    :func:`sercap.prediction.outside_training_range`).
    """
    from sercap.features.extract import DESCRIPTORS_FAILED

    shared = {} if shared is None else shared
    results: list[Any] = [None] * len(paths)
    waves: dict[int, np.ndarray | None] = {}
    for i, (path, text) in enumerate(zip(paths, texts, strict=True)):
        try:
            waves[i] = _wave(member, path, text, shared)
        except AudioError as exc:
            results[i] = exc
    inputs = _inputs(member, paths, texts, waves, shared)
    batch = [i for i in waves if not isinstance(inputs[i], BaseException)]
    for i in waves:
        if isinstance(inputs[i], BaseException):
            results[i] = _failed(DESCRIPTORS_FAILED, inputs[i])
    for i, out in zip(batch, _outputs(member, [inputs[i] for i in batch]), strict=True):
        if isinstance(out, BaseException):
            results[i] = _failed(DESCRIPTORS_FAILED, out)
        elif not np.all(np.isfinite(out)):
            results[i] = AudioError(
                f"{DESCRIPTORS_FAILED} (the model gave non-finite probabilities)"
            )
        else:
            results[i] = out
            if rows is not None and member.input_kind == "tabular":
                rows[paths[i]] = np.asarray(inputs[i], dtype=np.float64).reshape(-1)
    return results


def _stop_on_interrupt(exc: BaseException) -> None:
    """Raise KeyboardInterrupt when ``exc`` is a Ctrl-C (however DuckDB or numba wrapped it):
    an interrupted chunk stops, it does not become a failed file."""
    from sercap._interrupt import is_interrupt

    if is_interrupt(exc):
        raise KeyboardInterrupt from exc


def _failed(prefix: str, exc: BaseException) -> AudioError:
    """The one-line error of a file whose features or output failed."""
    _stop_on_interrupt(exc)
    if isinstance(exc, AudioError):
        return exc
    detail = (str(exc).strip().splitlines() or [""])[0][:200]
    return AudioError(f"{prefix} ({type(exc).__name__}: {detail})")


def _wave(member: FinalModel, path: Path, text: str | None, shared: dict) -> np.ndarray | None:
    """The file's waveform at the member's feature rate, after the checks extraction applies
    (None for a text model, which reads only the words)."""
    from sercap.features.extract import min_audio_samples

    if member.modality != AUDIO and text is None:
        raise AudioError(f"no transcript: a {member.input_kind} model needs the file's words")
    if member.modality == TEXT:
        return None
    fs = member.feature_set
    sr = int(fs["params"]["sample_rate"])
    key = ("audio", str(path), sr)
    if key not in shared:
        try:
            shared[key] = load_audio(path, sr)
        except AudioError as exc:
            shared[key] = exc
    y = shared[key]
    if isinstance(y, AudioError):
        raise y
    problem = audio_problem(y, sr, min_audio_samples(fs["kind"], fs["params"]))
    if problem:
        raise AudioError(problem)
    return y


def _reads_functionals(member: FinalModel) -> bool:
    """Whether the member reads sercap's functionals row (a tabular or fused audio model on
    a descriptor set), which a chunk computes in one query."""
    return (
        member.modality != TEXT
        and member.input_kind != "sequence"
        and (member.input_kind != "image" and member.feature_set.get("kind") == "lld")
    )


def _inputs(
    member: FinalModel,
    paths: Sequence[Path],
    texts: Sequence[str | None],
    waves: dict[int, np.ndarray | None],
    shared: dict,
) -> dict[int, Any]:
    """The model's input for each file in ``waves`` (an exception where it failed)."""
    out: dict[int, Any] = {}
    if not _reads_functionals(member):
        for i, y in waves.items():
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out[i] = model_input(member, y, texts[i])
            except Exception as exc:
                out[i] = exc
        return out
    rows = functionals_rows(member, [paths[i] for i in waves], list(waves.values()), shared)
    for i, row in zip(waves, rows, strict=True):
        if isinstance(row, BaseException) or member.modality != FUSED:
            out[i] = row
            continue
        try:  # (a model's own prediction_input hook may refuse one file's words)
            out[i] = fused_input(member, row, texts[i])
        except Exception as exc:
            out[i] = exc
    return out


def functionals_rows(
    member: FinalModel, paths: Sequence[Path], waves: Sequence[np.ndarray], shared: dict
) -> list[np.ndarray | Exception]:
    """Each file's (1, d) float32 row of the member's functionals columns, NaN where a
    functional is undefined (an exception for a file whose features failed).

    The descriptors are computed per file and the functionals of all the files in one SQL
    query; members reading the same feature set share both through ``shared``.
    """
    fs = member.feature_set
    key = ("functionals", json.dumps(fs, sort_keys=True, default=str))
    done: dict[str, Any] = shared.setdefault(key, {})
    todo = [(str(p), y) for p, y in zip(paths, waves, strict=True) if str(p) not in done]
    if todo:
        done.update(_functionals(fs["params"], todo))
    matrices: dict[int, Any] = {}  # (files, columns) of each table, built once
    rows: list[np.ndarray | Exception] = []
    for path in paths:
        found = done[str(path)]
        if isinstance(found, Exception):
            rows.append(found)
            continue
        table, index = found
        if id(table) not in matrices:
            try:
                matrices[id(table)] = _columns(table, member.columns)
            except AudioError as exc:  # every file of the table: each gets the reason
                matrices[id(table)] = exc
        got = matrices[id(table)]
        rows.append(got if isinstance(got, Exception) else got[index : index + 1])
    return rows


def _columns(table: Any, columns: Sequence[str]) -> np.ndarray:
    """(rows, len(columns)) float32 matrix of a functionals table's named columns."""
    from sercap._arrow import to_floats

    # (by position: a column looked up by name scans the whole schema, ~3,000 names here)
    index = {name: i for i, name in enumerate(table.column_names)}
    missing = [c for c in columns if c not in index]
    if missing:
        raise AudioError(f"the features lack the model's column {missing[0]!r}")
    return np.column_stack([to_floats(table.column(index[c])) for c in columns]).astype(np.float32)


def _functionals(params: dict, todo: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    """path → (functionals table, row index) or the exception that file's features raised.

    A query that fails for the chunk as a whole is run again file by file, so one file's
    failure does not take the others with it.
    """
    from sercap.features.framing import frame_seconds
    from sercap.features.functionals import compute_functionals, frames_table
    from sercap.features.lld import compute_frames

    out: dict[str, Any] = {}
    frames: dict[str, Any] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for path, y in todo:
            try:
                frames[path] = compute_frames(y, params)
            except Exception as exc:
                _stop_on_interrupt(exc)
                out[path] = exc
    if not frames:
        return out
    hop_s = frame_seconds(params)[0]
    ids = [str(i) for i in range(len(frames))]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # (float32 overflow)
            warnings.simplefilter("ignore", RuntimeWarning)
            table = compute_functionals(frames_table(ids, list(frames.values())), hop_s)
    except Exception as exc:
        _stop_on_interrupt(exc)
        if len(frames) == 1:
            return out | {next(iter(frames)): exc}
        for path, y in ((p, dict(todo)[p]) for p in frames):
            out.update(_functionals(params, [(path, y)]))
        return out
    position = {u: i for i, u in enumerate(table.column("utt_id").to_pylist())}
    for utt, path in zip(ids, frames, strict=True):
        out[path] = (table, position[utt])
    return out


def _outputs(member: FinalModel, inputs: list[Any]) -> list[np.ndarray | Exception]:
    """The model's output for each input: a tabular model whose class declares
    ``batch_invariant`` (each row's output is the same alone or among others: the
    scikit-learn, XGBoost and LightGBM models) scores them in one call (row by row again if
    that fails, to find the file); any other model one batch of one each, as a file alone
    (a network's float32 matrix products differ in the last bits with the batch)."""
    if not inputs:
        return []
    if member.input_kind == "tabular" and getattr(type(member.model), "batch_invariant", False):
        try:
            return list(_output(member, np.vstack(inputs)))
        except Exception as exc:
            _stop_on_interrupt(exc)
            if len(inputs) == 1:
                return [exc]
    out: list[np.ndarray | Exception] = []
    for x in inputs:
        batch = x if member.input_kind == "tabular" or member.modality != AUDIO else [x]
        try:
            out.append(_output(member, batch)[0])
        except Exception as exc:
            _stop_on_interrupt(exc)
            out.append(exc)
    return out


def _output(member: FinalModel, batch: Any) -> np.ndarray:
    """(n, classes) probabilities, or (n, 1) ratings for a regressor."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if member.target is not None:
            return np.asarray(member.model.predict(batch), dtype=np.float64).reshape(-1, 1)
        return np.asarray(member.model.predict_proba(batch), dtype=np.float64)
