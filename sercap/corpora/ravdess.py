"""RAVDESS reader: ``Actor_NN/03-01-EE-II-SS-RR-AA.wav``, speech files only.

Fields: modality (03 audio-only), vocal channel (01 speech, 02 song), emotion, intensity
(01 normal, 02 strong), statement, repetition, actor (odd male, even female). Song and
video files are skipped silently: they are another corpus.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sercap.corpora.records import Problem, UtteranceRecord, corpus_dir, wav_files
from sercap.errors import SercapError

EMOTIONS = {
    "01": "neu",
    "02": "cal",
    "03": "hap",
    "04": "sad",
    "05": "ang",
    "06": "fea",
    "07": "dis",
    "08": "sur",
}
INTENSITIES = {"01": "normal", "02": "strong"}
_NAME = re.compile(
    r"^(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<emotion>\d\d)-(?P<intensity>\d\d)"
    r"-(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)$"
)


def read(root: Path, problems: list[Problem]) -> Iterator[UtteranceRecord]:
    """Records of every speech wav under ``root`` (Actor_01 … Actor_24)."""
    root = corpus_dir(root)
    files = wav_files(root, problems)
    if not files:
        raise SercapError(f"{root}: no .wav files (expected Actor_NN/03-01-EE-II-SS-RR-AA.wav)")
    names = [_NAME.fullmatch(path.stem) for path in files]
    other = [n for n in names if n is not None and (n["modality"], n["channel"]) != ("03", "01")]
    if other and len(other) == len(files):
        raise SercapError(
            f"{root}: all {len(files)} .wav files are RAVDESS song or video recordings "
            "(names not starting 03-01-); sercap reads the speech audio "
            "(Audio_Speech_Actors_01-24: Actor_NN/03-01-EE-II-SS-RR-AA.wav)"
        )
    return _records(files, names, problems)


def _records(
    files: list[Path], names: list[re.Match | None], problems: list[Problem]
) -> Iterator[UtteranceRecord]:
    for path, name in zip(files, names, strict=True):
        if name is None:
            problems.append(Problem(str(path), None, "name is not RAVDESS's MM-CC-EE-II-SS-RR-AA"))
            continue
        if (name["modality"], name["channel"]) != ("03", "01"):
            continue  # song or video: not this corpus
        if name["emotion"] not in EMOTIONS or name["intensity"] not in INTENSITIES:
            problems.append(Problem(str(path), None, "unknown emotion or intensity code"))
            continue
        actor = name["actor"]
        folder = re.fullmatch(r"Actor_(\d+)", path.parent.name)
        if not 1 <= int(actor) <= 24:
            problems.append(Problem(str(path), None, f"actor {actor} is not one of 01..24"))
            continue
        if folder is not None and int(folder[1]) != int(actor):
            problems.append(
                Problem(str(path), None, f"a file of actor {actor} in {path.parent.name}/")
            )
            continue
        yield UtteranceRecord(
            utt_id=path.stem,
            speaker=actor,
            path=path.absolute(),
            emotion=EMOTIONS[name["emotion"]],
            emotion_raw=name["emotion"],
            gender="M" if int(actor) % 2 else "F",
            intensity=INTENSITIES[name["intensity"]],
            text_id=name["statement"],
        )
