"""IEMOCAP reader: ``SessionN/dialog/EmoEvaluation/*.txt`` + ``SessionN/sentences/wav/``.

The words of each turn come from ``SessionN/dialog/transcriptions/<dialog>.txt`` when that
folder exists (format: :mod:`sercap.corpora.transcripts`).

An annotation file is a header line, then blank-line separated blocks (not in time order):

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
    C-E2:<TAB>Neutral;<TAB>()
    C-F1:<TAB>Frustration; Anger;<TAB>(comment)      self-evaluation of an actor
    A-E3:<TAB>val 3; act 2; dom  2;<TAB>()           spacing varies

The per-utterance wav is the whole utterance, so ``start_s``/``end_s`` stay NULL (load it
whole); the dialog times go to ``source_start_s``/``source_end_s`` for information.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sercap.corpora.records import (
    Evaluation,
    Problem,
    UtteranceRecord,
    corpus_dir,
    normalise_emotion,
)
from sercap.corpora.transcripts import read_transcription
from sercap.errors import SercapError

_SESSION_DIR = re.compile(r"^Session(\d+)$")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+|nan)"
_SUMMARY = re.compile(
    rf"^\[\s*(?P<start>{_NUMBER})\s*-\s*(?P<end>{_NUMBER})\s*\]\s+(?P<utt>\S+)\s+(?P<label>\S+)"
    rf"\s+\[\s*(?P<v>{_NUMBER})\s*,\s*(?P<a>{_NUMBER})\s*,\s*(?P<d>{_NUMBER})\s*\]\s*$",
    re.IGNORECASE,
)
_EVALUATOR = re.compile(
    r"^(?P<kind>[CA])-(?P<who>[A-Za-z]+\d*)\s*:\s*(?P<body>[^(]*?)\s*(?:\((?P<comment>.*)\))?\s*$"
)
_ATTRIBUTE = {
    name: re.compile(rf"\b{name}\s*(?P<value>{_NUMBER})?\s*(?:;|$)", re.IGNORECASE)
    for name in ("val", "act", "dom")
}
_UTT_ID = re.compile(r"^Ses(?P<session>\d\d)[FM]_.+_(?P<gender>[FM])\d+$")
_SELF_EVALUATOR = re.compile(r"^[FM]\d*$")


def read(root: Path, problems: list[Problem]) -> Iterator[UtteranceRecord]:
    """Records of every annotated utterance under ``root`` (a release, or some sessions)."""
    sessions = session_dirs(root)
    return _records(sessions, problems)


def session_dirs(root: Path) -> list[Path]:
    """The ``SessionN`` folders: in ``root``, in ``root/IEMOCAP_full_release``, or root itself."""
    root = corpus_dir(root)
    if _SESSION_DIR.match(root.name) and (root / "dialog").is_dir():
        return [root]
    for base in (root, root / "IEMOCAP_full_release"):
        try:
            found = sorted(p for p in base.iterdir() if _SESSION_DIR.match(p.name) and p.is_dir())
        except OSError:
            continue
        if found:
            return found
    raise SercapError(
        f"{root}: no Session1..Session5 folders here (expected IEMOCAP_full_release/SessionN/ "
        "or SessionN/ with dialog/EmoEvaluation/ and sentences/wav/)"
    )


def _records(sessions: list[Path], problems: list[Problem]) -> Iterator[UtteranceRecord]:
    for session_dir in sessions:
        eval_dir = session_dir / "dialog" / "EmoEvaluation"
        try:
            files = sorted(
                p
                for p in eval_dir.iterdir()
                if p.suffix == ".txt" and not p.name.startswith("._") and p.is_file()
            )
        except OSError as exc:
            problems.append(Problem(str(eval_dir), None, f"cannot read ({exc.strerror})"))
            continue
        if not files:
            problems.append(Problem(str(eval_dir), None, "no annotation files (*.txt)"))
        wav_root = session_dir / "sentences" / "wav"
        if files and not wav_root.is_dir():  # one line, not one per utterance
            problems.append(
                Problem(
                    str(wav_root),
                    None,
                    f"folder not found: the audio of {session_dir.name}'s {len(files)} "
                    "annotation file(s) is expected there (sentences/wav/DIALOG/UTT.wav)",
                )
            )
            continue
        words_dir = session_dir / "dialog" / "transcriptions"
        for path in files:
            if not (wav_root / path.stem).is_dir():
                problems.append(
                    Problem(
                        str(wav_root / path.stem),
                        None,
                        f"folder not found: the audio of the utterances in {path.name}",
                    )
                )
                continue
            records = parse_annotation_file(path, wav_root, problems)
            if words_dir.is_dir():
                records = with_transcripts(records, words_dir / path.name, problems)
            yield from records


def with_transcripts(
    records: Iterator[UtteranceRecord], transcription: Path, problems: list[Problem]
) -> Iterator[UtteranceRecord]:
    """The records of one dialog with their words from its transcription file.

    A missing file is one problem (the records keep ``text=None``); an annotated turn with no
    line in the file is one problem each.
    """
    if not transcription.is_file():
        problems.append(Problem(str(transcription), None, "no transcription for this dialog"))
        yield from records
        return
    rejected: set[str] = set()  # (turns whose line was a problem already: said once)
    words = read_transcription(transcription, problems, rejected)
    for record in records:
        record.text = words.get(record.utt_id)
        if record.text is None and record.utt_id not in rejected:
            problems.append(Problem(str(transcription), None, f"{record.utt_id}: no line"))
        yield record


def parse_annotation_file(
    path: Path, wav_root: Path, problems: list[Problem]
) -> Iterator[UtteranceRecord]:
    """Records of one ``EmoEvaluation/<dialog>.txt``; bad lines become problems."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")  # a BOM is not text
    except OSError as exc:
        problems.append(Problem(str(path), None, f"cannot read ({exc.strerror})"))
        return
    for first_line, block in _blocks(text.splitlines()):
        record = _parse_block(path, first_line, block, wav_root, problems)
        if record is not None:
            yield record


def _blocks(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number of its first line, lines) of each block: blank-line separated, and a
    summary line (``[start - end]\tutt…``) always begins one.

    A lost blank line merged two blocks: the second turn was dropped as a "malformed
    evaluator line" and its evaluators' votes were filed under the first turn.

    >>> [start for start, _ in _blocks(["[1.0 - 2.0]\tA\tneu\t[2, 2, 2]", "C-E1:\tNeutral;",
    ...     "[2.0 - 3.0]\tB\tsad\t[2, 2, 2]", "", "[3.0 - 4.0]\tC\tang\t[2, 2, 2]"])]
    [1, 3, 5]
    """
    block: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("%"):
            continue  # the header line
        if not stripped or (block and _SUMMARY.match(stripped)):
            if block:
                yield start, block
            block = []
            if not stripped:
                continue
        if not block:
            start = number
        block.append(line.rstrip("\r\n"))
    if block:
        yield start, block


def _parse_block(
    path: Path, first_line: int, block: list[str], wav_root: Path, problems: list[Problem]
) -> UtteranceRecord | None:
    file = str(path)
    summary = _SUMMARY.match(block[0].strip())
    if summary is None:
        problems.append(Problem(file, first_line, f"malformed summary line: {block[0]!r}"))
        return None
    utt_id = summary["utt"]
    id_parts = _UTT_ID.fullmatch(utt_id)
    if id_parts is None:
        problems.append(Problem(file, first_line, f"unexpected utterance id {utt_id!r}"))
        return None
    if utt_id.rsplit("_", 1)[0] != path.stem:  # each file annotates one dialog
        problems.append(
            Problem(
                file, first_line,
                f"{utt_id} is not of this file's dialog {path.stem}: skipped (it would hide "
                "that utterance's own entry as a duplicate)",
            )
        )  # fmt: skip
        return None
    raw_label = summary["label"]
    emotion = normalise_emotion(raw_label)
    if emotion is None:
        problems.append(Problem(file, first_line, f"{utt_id}: unknown label {raw_label!r}"))
        return None
    evaluations: list[Evaluation] = []
    seen: set[tuple[str, str]] = set()
    for offset, line in enumerate(block[1:], start=1):
        evaluation = _parse_evaluator_line(line, Problem(file, first_line + offset, ""), problems)
        if evaluation is None:
            continue
        key = (evaluation.evaluator, evaluation.kind)
        if key in seen:
            problems.append(
                Problem(file, first_line + offset, f"{utt_id}: second {line.split(':')[0]} line")
            )
            continue
        seen.add(key)
        evaluations.append(evaluation)
    votes = tuple(
        code
        for e in evaluations
        if e.kind == "categorical" and not e.is_self
        for code in (e.emotions or ())
    )
    dialog = utt_id.rsplit("_", 1)[0]
    gender = id_parts["gender"]
    session = f"Ses{id_parts['session']}"
    return UtteranceRecord(
        utt_id=utt_id,
        speaker=session + gender,
        path=(wav_root / dialog / f"{utt_id}.wav").absolute(),
        emotion=emotion,
        emotion_raw=raw_label,
        session=session,
        gender=gender,
        source_start_s=_float(summary["start"]),
        source_end_s=_float(summary["end"]),
        votes=votes or None,
        valence=_float(summary["v"]),
        activation=_float(summary["a"]),
        dominance=_float(summary["d"]),
        text_id=dialog.split("_", 1)[1] if "_" in dialog else None,
        evaluations=tuple(evaluations),
        origin=(file, first_line),
    )


def _parse_evaluator_line(line: str, where: Problem, problems: list[Problem]) -> Evaluation | None:
    """A ``C-…`` or ``A-…`` line; ``where`` carries its file and line number."""
    match = _EVALUATOR.match(line.strip())
    if match is None:
        problems.append(Problem(where.file, where.line, f"malformed evaluator line: {line!r}"))
        return None
    who = match["who"]
    is_self = bool(_SELF_EVALUATOR.match(who))
    comment = (match["comment"] or "").strip() or None
    body = match["body"]
    if match["kind"] == "C":
        names = [n.strip() for n in body.split(";") if n.strip()]
        codes = []
        for name in names:
            code = normalise_emotion(name)
            if code is None:
                problems.append(Problem(where.file, where.line, f"unknown label {name!r}"))
            else:
                codes.append(code)
        if not names:
            problems.append(Problem(where.file, where.line, f"no categorical vote: {line!r}"))
            return None
        return Evaluation(who, is_self, "categorical", emotions=tuple(codes), comment=comment)
    values = {}
    for name, pattern in _ATTRIBUTE.items():
        found = pattern.search(body)
        values[name] = _float(found["value"]) if found and found["value"] else None
    if all(v is None for v in values.values()):
        problems.append(Problem(where.file, where.line, f"malformed attribute line: {line!r}"))
        return None
    if missing := [name for name, v in values.items() if v is None]:  # it was silent
        problems.append(
            Problem(
                where.file, where.line,
                f"attribute line without a number for {', '.join(missing)} (the others are "
                f"kept): {line!r}",
            )
        )  # fmt: skip
    return Evaluation(
        who,
        is_self,
        "attribute",
        valence=values["val"],
        activation=values["act"],
        dominance=values["dom"],
        comment=comment,
    )


def _float(text: str | None) -> float | None:
    """A number, or None for a missing or NaN value."""
    if text is None:
        return None
    value = float(text)
    return None if value != value else value
