"""CREMA-D reader: ``AudioWAV/1001_DFA_ANG_XX.wav`` (actor, sentence, emotion, intensity).

The name carries no gender: it comes from ``VideoDemographics.csv`` (ActorID, Sex) when
that file is beside ``AudioWAV/``, else it stays NULL.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from sercap.corpora.records import Problem, UtteranceRecord, corpus_dir, wav_files
from sercap.errors import SercapError

EMOTIONS = {"ANG": "ang", "DIS": "dis", "FEA": "fea", "HAP": "hap", "NEU": "neu", "SAD": "sad"}
INTENSITIES = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_NAME = re.compile(
    r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<intensity>[A-Z]{2})$"
)


def read(root: Path, problems: list[Problem]) -> Iterator[UtteranceRecord]:
    """Records of ``root/AudioWAV/*.wav`` (or ``root/*.wav``)."""
    root = corpus_dir(root)
    wav_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    files = wav_files(wav_dir, problems)
    if not files:
        raise SercapError(f"{wav_dir}: no .wav files (expected AudioWAV/1001_DFA_ANG_XX.wav)")
    genders = demographics_genders([root, wav_dir.parent], problems)
    return _records(files, genders, problems)


def demographics_genders(folders: list[Path], problems: list[Problem]) -> dict[str, str]:
    """ActorID → 'F'/'M' from the first ``VideoDemographics.csv`` found, else {}."""
    for folder in folders:
        path = folder / "VideoDemographics.csv"
        if not path.is_file():
            continue
        genders: dict[str, str] = {}
        lines: dict[str, int] = {}
        try:
            # utf-8-sig: Excel's "CSV UTF-8" starts with a BOM, which hid the ActorID column
            with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
                for number, row in enumerate(csv.DictReader(handle), start=2):
                    sex = (row.get("Sex") or "").strip().lower()
                    actor = (row.get("ActorID") or "").strip()
                    if not (sex in ("male", "female") and actor):
                        problems.append(Problem(str(path), number, "no ActorID or Sex"))
                        continue
                    gender = "M" if sex == "male" else "F"
                    if actor in genders and genders[actor] != gender:  # (the last row won)
                        problems.append(
                            Problem(
                                str(path),
                                number,
                                f"actor {actor} is {genders[actor]} on line {lines[actor]} "
                                f"and {gender} here; the first is kept",
                            )
                        )
                        continue
                    genders.setdefault(actor, gender)
                    lines.setdefault(actor, number)
        except OSError as exc:
            problems.append(Problem(str(path), None, f"cannot read ({exc.strerror})"))
        except csv.Error as exc:  # e.g. a field over the csv module's limit: not a traceback
            problems.append(Problem(str(path), None, f"malformed CSV ({exc})"))
        return genders
    return {}


def _records(
    files: list[Path], genders: dict[str, str], problems: list[Problem]
) -> Iterator[UtteranceRecord]:
    unlisted: set[str] = set()  # actors VideoDemographics.csv has no row for (said once)
    for path in files:
        name = _NAME.fullmatch(path.stem)
        if name is None:
            problems.append(Problem(str(path), None, "name is not CREMA-D's 1001_DFA_ANG_XX"))
            continue
        if name["emotion"] not in EMOTIONS or name["intensity"] not in INTENSITIES:
            problems.append(Problem(str(path), None, "unknown emotion or intensity code"))
            continue
        if genders and name["actor"] not in genders and name["actor"] not in unlisted:
            unlisted.add(name["actor"])
            problems.append(
                Problem(
                    str(path),
                    None,
                    f"actor {name['actor']} has no row in VideoDemographics.csv: their "
                    "utterances are stored without a gender",
                )
            )
        yield UtteranceRecord(
            utt_id=path.stem,
            speaker=name["actor"],
            path=path.absolute(),
            emotion=EMOTIONS[name["emotion"]],
            emotion_raw=name["emotion"],
            gender=genders.get(name["actor"]),
            intensity=INTENSITIES[name["intensity"]],
            text_id=name["sentence"],
        )
