"""Transcripts for ``predict``: read them, match them to the files, and decide which run
predicts which file.

A run that reads text (a text model, or a fused one) predicts the files that have a
transcript; the files without one are predicted by the newest audio-only run of the same
corpus and label map, and a one-line note says so. An audio run given transcripts ignores
them, with a note. Paths are matched after resolving them (``a.wav`` and ``./a.wav`` are one
file); relative paths are read from the current directory.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sercap.errors import SercapError, option
from sercap.modality import AUDIO, TEXT, needs_text, run_modality
from sercap.store import Warehouse
from sercap.store import runs as store_runs

if TYPE_CHECKING:
    from sercap.prediction import Prediction

PathLike = str | os.PathLike
CSV_COLUMNS = ("path", "text")


def _key(path: PathLike) -> str:
    return str(Path(path).expanduser().resolve(strict=False))


def read_texts_csv(path: PathLike) -> list[tuple[str, str, str]]:
    """The rows of a ``path,text`` CSV as (path, text, where) with ``where`` naming its line.

    Parameters
    ----------
    path : path
        A UTF-8 CSV with a header naming (at least) the columns ``path`` and ``text``.

    Returns
    -------
    list of (str, str, str)

    Raises
    ------
    SercapError
        One line naming the CSV and the problem: missing, not UTF-8, not CSV, no header,
        a missing column, a row without a path.
    """
    source = Path(path).expanduser()
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise SercapError(f"{source}: no such file; give a CSV with columns path,text") from None
    except OSError as exc:
        raise SercapError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SercapError(
            f"{source}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
            "save it as UTF-8"
        ) from None
    reader = csv.DictReader(io.StringIO(content, newline=""), strict=True)
    try:
        header = [(h or "").strip() for h in (reader.fieldnames or [])]
        if not header:
            raise SercapError(f"{source} is empty; give a header line path,text and a row per file")
        repeated = sorted({h for h in header if h and header.count(h) > 1})
        if repeated:  # the last of them would win, silently
            raise SercapError(
                f"{source}: the header names {', '.join(repr(h) for h in repeated)} twice; "
                "give each column once (path,text)"
            )
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise SercapError(
                f"{source}: no {' or '.join(repr(c) for c in missing)} column (the header has: "
                f"{', '.join(header)}); give a header line path,text"
            )
        reader.fieldnames = header
        rows = []
        for row in reader:
            where = f"{source} line {reader.line_num}"
            extra = [v for v in row.get(None) or [] if (v or "").strip()]  # type: ignore[call-overload]
            if extra:  # more fields than the header: an unquoted comma in the words
                raise SercapError(
                    f"{where}: more fields than the header's {len(header)}; put a text with "
                    'commas in double quotes ("Well, I do not know")'
                )
            file = (row.get("path") or "").strip()
            if not file:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # a blank line
                raise SercapError(f"{where}: no path; every row names an audio file")
            rows.append((file, row.get("text") or "", where))
    except csv.Error as exc:
        line = reader.line_num + 1  # the record that failed starts after the last one read
        raise SercapError(f"{source} line {line}: not valid CSV ({exc})") from None
    return rows


def match_texts(
    paths: list[Path],
    texts: Mapping[PathLike, str | None] | PathLike | None,
) -> dict[str, str]:
    """Transcripts keyed by ``str(path)`` of the files to predict (blank ones left out).

    Parameters
    ----------
    paths : list of Path
        The files to predict, as given.
    texts : mapping, path or None
        Path → transcript, or the path of a ``path,text`` CSV (see :func:`read_texts_csv`).

    Raises
    ------
    SercapError
        A transcript for a file not being predicted, or two for the same file (naming the
        CSV line or the mapping key).
    """
    if texts is None:
        return {}
    if isinstance(texts, Mapping):
        rows = [(k, v, f"texts[{str(k)!r}]") for k, v in texts.items()]
    else:
        rows = read_texts_csv(texts)
    wanted = {_key(p): str(p) for p in paths}
    found: dict[str, str] = {}
    first: dict[str, str] = {}
    for file, text, where in rows:
        key = _key(file)
        if key not in wanted:
            raise SercapError(
                f"{where}: {str(file)!r} is not one of the files to predict (paths are read "
                "from the current directory)"
            )
        if key in first:
            raise SercapError(
                f"{where}: a second transcript for {str(file)!r} (the first: {first[key]})"
            )
        first[key] = _short(where)
        if text is not None and not isinstance(text, str):
            raise SercapError(
                f"{where}: the transcript must be a string, not {type(text).__name__}"
            )
        if text and text.strip():  # a blank transcript is no transcript
            found[wanted[key]] = text
    return found


def _short(where: str) -> str:
    """ "line 3" of "data/texts.csv line 3"; a mapping's key as is."""
    head, sep, tail = where.rpartition(" line ")
    return f"line {tail}" if sep else where


@dataclass
class PredictPlan:
    """Which run predicts which file (indices into the paths), and the notes to show."""

    groups: list[tuple[str, list[int]]]
    notes: list[str] = field(default_factory=list)
    unpredictable: list[int] = field(default_factory=list)  # no text and no audio run
    reason: str = ""


def _names(paths: list[Path], idx: list[int], most: int = 3) -> str:
    shown = [Path(paths[i]).name for i in idx[:most]]
    more = f", … {len(idx) - most} more" if len(idx) > most else ""
    return ", ".join(shown) + more


def fallback_run(wh: Warehouse, run: dict) -> dict | None:
    """The newest audio-only run of ``run``'s corpus and label map that can predict single
    files (no speaker normalisation): chosen by time, never by UA."""
    listed = store_runs.list_runs(wh, run["corpus"])
    for run_id, label_map in zip(listed["run_id"], listed["label_map"], strict=True):
        if label_map != run["label_map"] or run_id == run["run_id"]:
            continue
        other = store_runs.get_run(wh, run_id)
        if other["speaker_norm"]:
            continue
        if run_modality(wh, other) == AUDIO:
            return other
    return None


def plan_prediction(
    wh: Warehouse, run_id: str, paths: list[Path], texts: Mapping[str, str]
) -> PredictPlan:
    """Decide which run predicts each file, given the transcripts that were found.

    Parameters
    ----------
    wh : Warehouse
        The warehouse holding the run.
    run_id : str
        The run asked for (full id).
    paths : list of Path
        The files, as given.
    texts : mapping
        ``str(path)`` → transcript (from :func:`match_texts`).

    Returns
    -------
    PredictPlan
    """
    run = store_runs.get_run(wh, run_id)
    modality = run_modality(wh, run)
    every = list(range(len(paths)))
    label = f"run {run['run_id']} ({run['model']})"
    if not needs_text(modality):
        notes = []
        if texts:
            notes.append(f"note: {label} reads audio only; the transcripts given are ignored")
        return PredictPlan([(run["run_id"], every)], notes)
    reads = f"reads {'text' if modality == TEXT else 'audio and text'}"
    with_text = [i for i in every if str(paths[i]) in texts]
    without = [i for i in every if str(paths[i]) not in texts]
    groups = [(run["run_id"], with_text)] if with_text else []
    if not without:
        return PredictPlan(groups)
    missing = f"no transcript for {len(without)} of {len(paths)} files ({_names(paths, without)})"
    fallback = fallback_run(wh, run)
    if fallback is None:
        reason = (
            f"no transcript, and no audio-only run of {run['corpus']} ({run['label_map']}) "
            f"to fall back to; give {option('texts')} or train an audio model"
        )
        note = f"note: {label} {reads}; {missing} and no audio-only run to fall back to"
        return PredictPlan(groups, [note], unpredictable=without, reason=reason)
    groups.append((fallback["run_id"], without))
    note = (
        f"note: {label} {reads}; {missing}: predicted with run "
        f"{fallback['run_id']} ({fallback['model']}), the newest audio-only run of "
        f"{run['corpus']} ({run['label_map']})"
    )
    return PredictPlan(groups, [note])


def runs_to_fit(
    wh: Warehouse,
    run_id: str,
    paths: list[Path],
    texts: Mapping[PathLike, str | None] | PathLike | None,
) -> list[str]:
    """The model runs whose final models :func:`predict_with_texts` would fit first
    (none stored whole yet), in the order it meets them: the run or an ensemble's
    members, and the audio run that files without words fall back to."""
    from sercap.prediction import final_model_stored

    plan = plan_prediction(wh, run_id, paths, match_texts(paths, texts))
    needed: list[str] = []
    for group_run, _idx in plan.groups:
        run = store_runs.get_run(wh, group_run)
        needed += run["members"] if run["kind"] == "ensemble" else [run["run_id"]]
    return [r for r in dict.fromkeys(needed) if not final_model_stored(wh, r)]


def predict_with_texts(
    wh: Warehouse,
    run_id: str,
    paths: list[Path],
    texts: Mapping[PathLike, str | None] | PathLike | None,
    *,
    n_jobs: int = 1,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> tuple[list[Prediction], list[str]]:
    """Predict ``paths`` with ``run_id``, reading transcripts where the run needs them.

    Parameters
    ----------
    wh : Warehouse
        The warehouse (final models are stored there).
    run_id : str
        The run asked for (full id).
    paths : list of Path
        The files.
    texts : mapping, path or None
        As for :func:`match_texts`.
    n_jobs, progress
        As for :func:`sercap.prediction.predict_files`.
    say : callable
        Receives the plan's one-line notes.

    Returns
    -------
    (list of Prediction, list of str)
        One prediction per file, in order, and the id of the run that made each.
    """
    from sercap.prediction import Prediction, predict_files

    words = match_texts(paths, texts)
    plan = plan_prediction(wh, run_id, paths, words)
    for note in plan.notes:
        say(note)
    done: dict[int, tuple[str, Prediction]] = {
        i: (run_id, Prediction(str(paths[i]), None, {}, plan.reason)) for i in plan.unpredictable
    }
    for group_run, idx in plan.groups:
        results = predict_files(
            wh, group_run, [paths[i] for i in idx], n_jobs=n_jobs, progress=progress,
            texts=words, say=say,
        )  # fmt: skip
        done.update({i: (group_run, r) for i, r in zip(idx, results, strict=True)})
    order = sorted(done)
    return [done[i][1] for i in order], [done[i][0] for i in order]
