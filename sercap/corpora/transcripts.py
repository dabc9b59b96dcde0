"""Transcripts: the IEMOCAP transcription format, and storing the words of a corpus.

``SessionN/dialog/transcriptions/<dialog>.txt`` holds one line per turn::

    Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.

(turn id, start-end in seconds with zero-padded integer parts, a colon, the words). Turns
without an annotation (ids ending in ``XX`` plus a digit, e.g. ``Ses01F_impro01_FXX0``) are
skipped; blank lines are ignored; any other line that does not fit is one problem.
"""

from __future__ import annotations

import re
from pathlib import Path

from sercap._lazy import pl
from sercap.corpora.records import Problem

_NUMBER = r"\d+(?:\.\d*)?"
_TURN = re.compile(
    rf"^(?P<utt>\S+)\s+\[\s*(?P<start>{_NUMBER})\s*-\s*(?P<end>{_NUMBER})\s*\]\s*:\s*(?P<text>.*)$"
)
_ANNOTATED = re.compile(r"_[FM]\d+$")
_UNANNOTATED = re.compile(r"_[FM]?XX\d*$", re.IGNORECASE)


def parse_transcription(
    text: str, file: str, problems: list[Problem], rejected: set[str] | None = None
) -> dict[str, str]:
    """``{utt_id: words}`` of one transcription file's text; bad lines become problems.

    Parameters
    ----------
    text : str
        The file's content (any line ending: LF, CRLF or CR).
    file : str
        Where it came from, for problems.
    problems : list of Problem
        Appended to: one entry per malformed line or repeated turn id.
    rejected : set of str, optional
        Gets the ids of annotated turns whose line was a problem (they are said once).

    Returns
    -------
    dict
        Words of each annotated turn (whitespace collapsed), in file order.
    """
    turns: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped:
            continue
        match = _TURN.match(stripped)
        if match is None:
            problems.append(Problem(file, number, f"malformed transcription line: {line!r}"))
            continue
        utt_id = match["utt"]
        if _UNANNOTATED.search(utt_id):
            continue
        if not _ANNOTATED.search(utt_id):
            problems.append(Problem(file, number, f"unexpected turn id {utt_id!r}"))
            continue
        if float(match["end"]) < float(match["start"]):
            problems.append(Problem(file, number, f"{utt_id}: turn ends before it starts"))
            if rejected is not None:
                rejected.add(utt_id)
            continue
        if utt_id in turns:
            problems.append(Problem(file, number, f"{utt_id}: second line (first one kept)"))
            continue
        words = " ".join(match["text"].split())
        if not words:  # a text model would learn from, and be scored on, nothing
            problems.append(Problem(file, number, f"{utt_id}: a turn without words"))
            if rejected is not None:
                rejected.add(utt_id)
            continue
        turns[utt_id] = words
    return turns


def read_transcription(
    path: Path, problems: list[Problem], rejected: set[str] | None = None
) -> dict[str, str]:
    """:func:`parse_transcription` of the file ``path``; an unreadable file is one problem,
    and so is one that is not UTF-8 (read as Latin-1, each byte one character: decoding it
    with replacements stored 'caf\ufffd' without a word)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        problems.append(Problem(str(path), None, f"cannot read ({exc.strerror})"))
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        problems.append(
            Problem(
                str(path),
                None,
                f"not UTF-8 text (byte 0x{bad:02X} at offset {exc.start}); "
                "read as Latin-1: save it as UTF-8 if its words look wrong",
            )
        )
        text = data.decode("latin-1")
    return parse_transcription(text, str(path), problems, rejected)


def transcript_frame(records, stored_ids) -> pl.DataFrame:
    """``utt_id, text`` of the records that carry words and whose utterance is stored."""
    keep = set(stored_ids)
    rows = [
        (r.utt_id, r.text)
        for r in records
        if getattr(r, "text", None) is not None and r.utt_id in keep
    ]
    return pl.DataFrame(rows, schema={"utt_id": pl.String, "text": pl.String}, orient="row")
