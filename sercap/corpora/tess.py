"""TESS reader: ``OAF_angry/OAF_back_angry.wav`` … (speaker, word, emotion), two women.

Folder names vary in case between copies (``OAF_Fear``, ``YAF_pleasant_surprised``), so the
emotion is read from the file name (``ps`` is pleasant surprise → sur). Nested copies (one
extra folder level) are found as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sercap.corpora.records import (
    Problem,
    UtteranceRecord,
    corpus_dir,
    normalise_emotion,
    wav_files,
)
from sercap.errors import SercapError

SPEAKERS = ("OAF", "YAF")  # older and younger adult female


def read(root: Path, problems: list[Problem]) -> Iterator[UtteranceRecord]:
    """Records of every ``SPEAKER_word_emotion.wav`` under ``root``."""
    root = corpus_dir(root)
    files = wav_files(root, problems)
    if not files:
        raise SercapError(f"{root}: no .wav files (expected OAF_angry/OAF_back_angry.wav)")
    return _records(files, problems)


def _records(files: list[Path], problems: list[Problem]) -> Iterator[UtteranceRecord]:
    for path in files:
        parts = path.stem.split("_")
        speaker = parts[0].upper()
        if len(parts) < 3 or speaker not in SPEAKERS:
            problems.append(Problem(str(path), None, "name is not TESS's OAF|YAF_word_emotion"))
            continue
        raw = "_".join(parts[2:])
        emotion = normalise_emotion(raw)
        if emotion is None:
            problems.append(Problem(str(path), None, f"unknown emotion {raw!r}"))
            continue
        yield UtteranceRecord(
            utt_id=f"{speaker}_{parts[1]}_{raw}",
            speaker=speaker,
            path=path.absolute(),
            emotion=emotion,
            emotion_raw=raw,
            gender="F",
            text_id=parts[1].lower(),
        )
