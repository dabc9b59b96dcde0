"""EmoDB reader: ``wav/SSTTTEV.wav`` (speaker, text, emotion letter, version).

Genders come from the speaker table in the corpus README (``03 m, 08 f, …``); the table
below is the fallback when the README is not shipped with the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sercap.corpora.records import Problem, UtteranceRecord, corpus_dir, wav_files
from sercap.errors import SercapError

#: Emotion letter (German initial) to code.
EMOTION_LETTERS = {
    "W": "ang",  # Wut
    "L": "bor",  # Langeweile
    "E": "dis",  # Ekel
    "A": "fea",  # Angst
    "F": "hap",  # Freude
    "T": "sad",  # Trauer
    "N": "neu",  # Neutral
}
SPEAKER_GENDERS = {
    "03": "M",
    "08": "F",
    "09": "F",
    "10": "M",
    "11": "M",
    "12": "M",
    "13": "F",
    "14": "F",
    "15": "M",
    "16": "F",
}
_NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[a-z]\d\d)(?P<emotion>[A-Z])(?P<version>[a-z]?)$")
_README_GENDER = re.compile(r"\b(\d\d) ([mfMF])\b")


def read(root: Path, problems: list[Problem]) -> Iterator[UtteranceRecord]:
    """Records of ``root/wav/*.wav`` (or ``root/*.wav``)."""
    root = corpus_dir(root)
    wav_dir = root / "wav" if (root / "wav").is_dir() else root
    files = wav_files(wav_dir, problems)
    if not files:
        raise SercapError(f"{wav_dir}: no .wav files (expected EmoDB's wav/03a01Fa.wav …)")
    # the README's genders win, the ten known ones fill in (a speaker list that wraps onto
    # a second line gave six, and the other four speakers' files were refused)
    genders = {**SPEAKER_GENDERS, **readme_genders(root)}
    return _records(files, genders, problems)


def readme_genders(root: Path) -> dict[str, str]:
    """Speaker → 'F'/'M' from the README's speaker row, or {} when there is none."""
    for readme in sorted(root.glob("README*")):
        try:
            lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if "speaker" in line.lower():
                pairs = _README_GENDER.findall(line)
                if len(pairs) >= 2:
                    return {speaker: letter.upper() for speaker, letter in pairs}
    return {}


def _records(
    files: list[Path], genders: dict[str, str], problems: list[Problem]
) -> Iterator[UtteranceRecord]:
    for path in files:
        name = _NAME.fullmatch(path.stem)
        if name is None or name["emotion"] not in EMOTION_LETTERS:
            problems.append(Problem(str(path), None, "name is not EmoDB's SSTTTEV.wav"))
            continue
        if name["speaker"] not in genders:  # (a speaker of their own, a fold of their own)
            problems.append(
                Problem(
                    str(path),
                    None,
                    f"speaker {name['speaker']} is not one of EmoDB's ten "
                    f"({', '.join(genders)}): a copy or a misnamed file?",
                )
            )
            continue
        yield UtteranceRecord(
            utt_id=path.stem,
            speaker=name["speaker"],
            path=path.absolute(),
            emotion=EMOTION_LETTERS[name["emotion"]],
            emotion_raw=name["emotion"],
            gender=genders.get(name["speaker"]),
            text_id=name["text"],
        )
