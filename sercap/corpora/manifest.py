"""Manifest reader: a CSV or Parquet table of ``path, label, speaker`` for any other corpus.

Optional columns: ``utt_id``, ``gender``, ``session``, ``start``/``end`` (seconds, a segment
of the file), ``text_id``, ``valence``/``activation``/``dominance``, ``text`` (the words
said, stored in ``transcripts``). Relative paths are relative to the manifest file. Labels
are normalised where they are known emotion names (``angry`` → ang) and kept as given
(lowercased) otherwise; ``emotion_raw`` keeps the text.
Without ``utt_id`` the id is the file stem (the path without suffix when stems collide,
with it when two files differ only in their suffix),
plus ``@start`` for segments; an audio source (file and segment) already stored in the
corpus keeps its stored id whatever the rest of the manifest lists (see
:mod:`sercap.corpora.ingest`), and a second row naming the same audio is a duplicate.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sercap._lazy import pl
from sercap.corpora.records import Problem, UtteranceRecord, normalise_emotion
from sercap.errors import NotFoundError, SercapError

REQUIRED = ("path", "label", "speaker")
_ALIASES = {"start_s": "start", "end_s": "end", "id": "utt_id", "emotion": "label"}


def read(root: Path, problems: list[Problem]) -> Iterator[UtteranceRecord]:
    """Records of the manifest ``root`` (a .csv/.parquet file, or a folder holding one)."""
    path = manifest_file(Path(root))
    table = _load(path)
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        separator = next((s for s in (";", "\t", "|") if s in "".join(table.columns)), None)
        hint = (
            f"; it must be comma-separated, this one seems to use {separator!r}"
            if separator
            else ""
        )
        raise SercapError(
            f"{path}: missing column(s) {', '.join(missing)} (a manifest needs path, label, "
            f"speaker; optional utt_id, gender, session, start, end, text, valence, "
            f"activation, dominance){hint}"
        )
    if table.is_empty():
        raise SercapError(f"{path}: the manifest has no rows, only its header")
    return _records(path, table, problems)


def manifest_file(root: Path) -> Path:
    """The manifest itself: ``root`` when it is a file, else the one manifest.* inside it."""
    if root.is_file():
        if root.suffix.lower() in (".tsv", ".txt"):
            raise SercapError(
                f"{root}: a manifest is a comma-separated .csv (or .parquet); save this "
                "table as .csv with columns path,label,speaker"
            )
        if root.suffix.lower() not in (".csv", ".parquet"):
            raise SercapError(
                f"{root}: not a manifest; give a .csv or .parquet file (columns path,label,speaker)"
            )
        return root
    if root.exists() and not root.is_dir():
        raise SercapError(f"{root}: not a regular file; give a .csv or .parquet manifest")
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such file or directory")
    found = sorted(
        p for p in root.iterdir() if p.suffix.lower() in (".csv", ".parquet") and p.is_file()
    )
    named = [p for p in found if p.stem.lower() == "manifest"]
    if len(named) == 1 or len(found) == 1:
        return (named or found)[0]
    raise SercapError(f"{root}: give the manifest file itself (.csv or .parquet)")


def _load(path: Path) -> pl.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            table = pl.read_parquet(path)
        else:
            table = pl.read_csv(path, infer_schema=False)
    except Exception as exc:  # polars raises many kinds; all mean "cannot read"
        reason = str(exc).splitlines()[0]
        hint = next((h for key, h in _READ_HINTS if key in reason), "")
        raise SercapError(f"{path}: cannot read the manifest ({reason}){hint}") from exc
    import re

    twice = sorted({m[1] for c in table.columns if (m := re.fullmatch(r"(.*)_duplicated_\d+", c))
                    and m[1] in table.columns})  # fmt: skip
    if twice:  # polars renames a repeated header: the first column was used without a word
        raise SercapError(
            f"{path}: the header names {', '.join(map(repr, twice))} more than once; keep one "
            "column of each name"
        )
    renamed = {c: _ALIASES.get(c.strip().lower(), c.strip().lower()) for c in table.columns}
    sources: dict[str, list[str]] = {}
    for column, name in renamed.items():
        sources.setdefault(name, []).append(column)
    clashes = [f"{' and '.join(map(repr, cols))} (both {name!r})" for name, cols in sources.items()
               if len(cols) > 1]  # fmt: skip
    if clashes:
        raise SercapError(
            f"{path}: columns that mean the same: {'; '.join(clashes)}; keep one of each "
            "(emotion is label, id is utt_id, start_s is start, end_s is end)"
        )
    return table.rename(renamed)


#: What to do about the CSV reader's commonest complaints.
_READ_HINTS = (
    ("invalid utf-8", "; save the file as UTF-8"),
    ("more fields than defined", "; every row needs as many fields as the header (quote a "
     "field that holds a comma)"),
)  # fmt: skip


def _records(path: Path, table: pl.DataFrame, problems: list[Problem]) -> Iterator[UtteranceRecord]:
    first_row = 2 if path.suffix.lower() == ".csv" else 1  # CSV line numbers count the header
    base = path.parent
    rows = table.to_dicts()
    files = [_resolve(base, row.get("path")) for row in rows]
    distinct = {f for f in files if f is not None}
    # How many distinct files share each stem, and each path without suffix (a.wav and
    # a.flac in one folder: two recordings, one stem, one suffix-less path).
    stems = Counter(("stem", f.stem) for f in distinct) + Counter(
        ("path", f.with_suffix("")) for f in distinct
    )
    number = first_row
    genders: dict[str, tuple[str, int]] = {}  # speaker → the gender first given, its line
    for row, file in zip(rows, files, strict=True):
        record = _record(row, file, base, stems, Problem(str(path), number, ""), problems)
        if record is not None and record.gender is not None:
            first, line = genders.setdefault(record.speaker, (record.gender, number))
            if record.gender != first:  # (the summary showed one; fairness split the speaker)
                problems.append(
                    Problem(
                        str(path),
                        number,
                        f"gender {record.gender} contradicts speaker {record.speaker}'s "
                        f"{first} (line {line}); stored as {first}",
                    )
                )
                record = replace(record, gender=first)
        # a quoted cell's line breaks (a transcript's) are lines of the file too
        number += 1 + (sum(v.count("\n") for v in row.values() if isinstance(v, str))
                       if first_row == 2 else 0)  # fmt: skip
        if record is not None:
            yield record


def _record(
    row: dict[str, Any],
    file: Path | None,
    base: Path,
    stems: Counter,
    where: Problem,
    problems: list[Problem],
) -> UtteranceRecord | None:
    label = _text(row.get("label"))
    speaker = _text(row.get("speaker"))
    if file is None or label is None or speaker is None:
        problems.append(Problem(where.file, where.line, "empty path, label or speaker"))
        return None
    for name, value in (("label", label), ("speaker", speaker)):
        if _given(value) is None:
            problems.append(
                Problem(
                    where.file,
                    where.line,
                    f"{name} {value!r} is a missing-value marker, not a {name}: fill it in "
                    "or leave the row out",
                )
            )
            return None
    for name in ("label", "speaker", "utt_id", "session"):  # they broke every table printed
        if any(unicodedata.category(c) == "Cc" for c in _text(row.get(name)) or ""):
            problems.append(
                Problem(
                    where.file, where.line, f"the {name} holds a line break or control character"
                )
            )
            return None
    try:
        start, end = _number(row.get("start")), _number(row.get("end"))
    except ValueError:
        problems.append(Problem(where.file, where.line, "start/end is not a finite number"))
        return None
    ratings = {}
    for name in ("valence", "activation", "dominance"):
        try:
            ratings[name] = _number(row.get(name))
        except ValueError:
            ratings[name] = None
            problems.append(
                Problem(
                    where.file, where.line,
                    f"{name} {_text(row.get(name))!r} is not a finite number (stored without it)",
                )
            )  # fmt: skip
    given = _text(row.get("utt_id"))
    utt_id = given or _derived_id(file, base, stems, start)
    gender = (_given(row.get("gender")) or "").upper()[:1] or None
    return UtteranceRecord(
        utt_id=utt_id,
        speaker=speaker,
        path=file,
        emotion=normalise_emotion(label) or label.lower(),
        emotion_raw=label,
        session=_given(row.get("session")),
        gender=gender if gender in ("F", "M") else None,
        start_s=start,
        end_s=end,
        valence=ratings["valence"],
        activation=ratings["activation"],
        dominance=ratings["dominance"],
        text_id=_text(row.get("text_id")),
        text=_words(row.get("text")),
        origin=(where.file or "", where.line),
        derived_id=given is None,
    )


def _derived_id(file: Path, base: Path, stems: Counter, start: float | None) -> str:
    if stems["stem", file.stem] > 1:  # a shared stem: the relative path tells them apart
        # ... and its suffix, when two files differ only in it (a.wav, a.flac)
        keep = stems["path", file.with_suffix("")] > 1
        try:
            relative = file.relative_to(base.absolute())
        except ValueError:
            relative = Path(file.as_posix().lstrip("/"))
        utt_id = (relative if keep else relative.with_suffix("")).as_posix()
    else:
        utt_id = file.stem
    return utt_id if start is None else f"{utt_id}@{start:.3f}"


def _resolve(base: Path, value: Any) -> Path | None:
    text = _text(value)
    if text is None:
        return None
    path = Path(text).expanduser()
    return (path if path.is_absolute() else base / path).absolute()


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # Parquet's null
        return None  # in a float column: it was stored as the speaker "nan"
    text = str(value).strip()
    return text or None


#: What spreadsheet and data-frame exports write for a missing value: R's write.csv (NA),
#: pandas after astype(str) (nan, None, <NA>), Excel (#N/A), SQL dumps (NULL). Each was
#: stored as a speaker of its own, or a class.
#: Spelled as those tools write them: "Nan" or "Na" is a name, not a marker.
MISSING_MARKERS = frozenset(
    {"NA", "N/A", "n/a", "#N/A", "nan", "NaN", "NAN", "None", "null", "NULL", "<NA>"}
)


def _given(value: Any) -> str | None:
    """:func:`_text`, with a missing-value marker (:data:`MISSING_MARKERS`) read as missing.

    >>> _given("NA"), _given(" nan "), _given("Ses01"), _given("Nan")
    (None, None, 'Ses01', 'Nan')
    """
    text = _text(value)
    return None if text is None or text in MISSING_MARKERS else text


def _words(value: Any) -> str | None:
    r"""A transcript as IEMOCAP's are stored: its whitespace collapsed to single spaces (a
    line break kept from a manifest cell broke every table that printed it).

    >>> _words("  so\n sad,\tI  miss her "), _words("  ")
    ('so sad, I miss her', None)
    """
    text = _text(value)
    return None if text is None else " ".join(text.split())


def _number(value: Any) -> float | None:
    """A finite number, or None for an empty cell; "nan" or "inf" raise ValueError (every
    segment bound compared with NaN is false, so NaN passed the checks and broke extract)."""
    text = _text(value)
    if text is None:
        return None
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {text!r}")
    return number
