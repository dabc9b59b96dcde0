"""What every corpus reader yields: corpus-independent utterance records and problems.

Readers are pure (a directory in, records out) so they can be tested on generated files
without a warehouse; :mod:`sercap.corpora.ingest` is the only writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sercap.errors import printable

#: Normalised emotion codes stored in ``labels.emotion``.
EMOTION_CODES = (
    "neu",
    "ang",
    "sad",
    "hap",
    "exc",
    "fru",
    "sur",
    "fea",
    "dis",
    "bor",
    "cal",
    "oth",
    "xxx",
)

#: Emotion names and abbreviations seen in corpora, lowercased, to normalised codes.
EMOTION_NAMES: dict[str, str] = {
    **{code: code for code in EMOTION_CODES},
    "neutral": "neu",
    "neutral state": "neu",
    "anger": "ang",
    "angry": "ang",
    "sadness": "sad",
    "happiness": "hap",
    "happy": "hap",
    "joy": "hap",
    "excited": "exc",
    "excitement": "exc",
    "frustration": "fru",
    "frustrated": "fru",
    "surprise": "sur",
    "surprised": "sur",
    "pleasant surprise": "sur",
    "pleasant_surprise": "sur",
    "pleasant_surprised": "sur",
    "ps": "sur",
    "fear": "fea",
    "fearful": "fea",
    "disgust": "dis",
    "disgusted": "dis",
    "boredom": "bor",
    "bored": "bor",
    "calm": "cal",
    "other": "oth",
}


def normalise_emotion(name: str) -> str | None:
    """The code for an emotion name (any case, ``Other:…`` style qualifiers dropped), or None."""
    key = name.strip().lower().split(":", 1)[0].strip()
    return EMOTION_NAMES.get(key)


@dataclass(frozen=True)
class Problem:
    """Something wrong with the input: which file, which line (1-based) and what."""

    file: str | None
    line: int | None
    message: str

    def __post_init__(self) -> None:
        # a file name that is not valid UTF-8 can be neither printed nor stored as is
        if self.file is not None:
            object.__setattr__(self, "file", printable(str(self.file)))
        object.__setattr__(self, "message", printable(self.message))

    def __str__(self) -> str:
        where = self.file or "?"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Evaluation:
    """One evaluator line: categorical votes (``C-E2``) or attributes (``A-E3``)."""

    evaluator: str
    is_self: bool
    kind: str  # categorical | attribute
    emotions: tuple[str, ...] | None = None
    valence: float | None = None
    activation: float | None = None
    dominance: float | None = None
    comment: str | None = None


@dataclass
class UtteranceRecord:
    """One utterance as any corpus describes it; ``origin`` says where it was declared.

    Its audio source is ``(path, start_s, end_s)``: ingest stores one utterance per source.
    """

    utt_id: str
    speaker: str
    path: Path
    emotion: str
    emotion_raw: str | None = None
    session: str | None = None
    gender: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    source_start_s: float | None = None
    source_end_s: float | None = None
    votes: tuple[str, ...] | None = None
    valence: float | None = None
    activation: float | None = None
    dominance: float | None = None
    intensity: str | None = None
    text_id: str | None = None
    text: str | None = None  # the words, where the corpus has a transcript (issue 17)
    evaluations: tuple[Evaluation, ...] = ()
    origin: tuple[str, int | None] | None = field(default=None, repr=False)
    #: True when the reader made ``utt_id`` up from the file's name (a manifest without an
    #: ``utt_id`` column): ingest may then replace it by the id already stored for the same
    #: audio, so that an utterance keeps its id whatever else the next manifest lists.
    derived_id: bool = field(default=False, repr=False)

    def problem(self, message: str) -> Problem:
        """A problem located where this utterance was declared (annotation line or its file)."""
        file, line = self.origin if self.origin else (str(self.path), None)
        return Problem(file, line, f"{self.utt_id}: {message}")


#: A reader: validate ``root`` eagerly (raise SercapError when nothing can be read), then
#: yield records, appending non-fatal problems to the list it is given.
Reader = Callable[[Path, list[Problem]], Iterator[UtteranceRecord]]


@dataclass(frozen=True)
class CorpusKind:
    """A corpus format: its reader and the defaults stored in ``corpora``."""

    name: str
    reader: Reader
    label_map: str
    protocol: str
    layout: str  # one line for --help: what the directory looks like


def wav_files(root: Path, problems: list[Problem] | None = None) -> list[Path]:
    """Every ``*.wav`` under ``root`` (any case), sorted, without macOS ``._*`` shadow files.

    Entries that are not regular files (a broken link, a folder named ``x.wav``) are kept,
    so that reading them is listed as a problem instead of passing them over in silence.
    Folders linked in (``Actor_02 -> /elsewhere``) are followed, each real folder once (a
    link loop ends); a folder that cannot be listed is a problem in ``problems``.
    ``Path.rglob`` passed over both in silence: a linked actor's recordings were missing
    from the corpus with "0 problems".
    """
    import os

    found: list[Path] = []
    seen: set[tuple[int, int]] = set()

    def unreadable(exc: OSError) -> None:
        if problems is not None:
            problems.append(Problem(exc.filename, None, f"cannot list ({exc.strerror})"))

    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # reached again through a link: a loop
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        names = files + [d for d in dirs if d.lower().endswith(".wav")]  # x.wav/: listed
        for name in names:
            if not name.lower().endswith(".wav") or name.startswith("._"):
                continue
            if problems is not None and any(ord(c) < 32 or ord(c) == 127 for c in name):
                # "12a01Fa\n.wav" matched a name pattern ending in $ and became an id with a
                # line break in it
                problems.append(
                    Problem(
                        repr(str(Path(folder) / name))[1:-1], None,
                        "the file name holds a control character (a line break?); rename it",
                    )
                )  # fmt: skip
                continue
            found.append(Path(folder) / name)
    return sorted(found)


def corpus_dir(root: str | Path) -> Path:
    """``root`` as a Path, or a one-line error saying why it is not a corpus folder."""
    from sercap.errors import NotFoundError, SercapError

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise SercapError(f"{root}: a file, not a directory")
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such directory")
    return root
