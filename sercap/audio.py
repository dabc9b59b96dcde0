"""Audio in: probe files, load them as float32 mono at a chosen rate, say what is wrong.

Pure I/O at the edge: nothing here knows about the warehouse. Problems are returned as short
reasons (``"silent"``, ``"shorter than one window"``…) so that callers record them per
utterance instead of crashing a whole run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from sercap.errors import AudioError, printable

__all__ = ["AudioError", "AudioInfo", "audio_problem", "load_audio", "probe_audio", "wav_shortfall"]

#: Peak amplitude below which a signal counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4
#: Fraction of samples at full scale above which a recording counts as clipped.
CLIPPED_FRACTION = 0.01
#: Peak amplitude above which a signal is not audio but garbage (+60 dBFS). Integer formats
#: read as floats lie within ±1; float files may overshoot 1.0 a little (inter-sample peaks,
#: unnormalised mixes), never by a thousand times. Beyond it, powers overflow float32 and
#: every descriptor and SQL functional turns into inf/NaN or an out-of-range error.
MAX_PEAK = 1e3


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


#: Sample rates a recording of speech can have: a header outside them is damage (a 48 KB
#: file claiming 1 Hz read as 6.7 hours, and resampling it took 23 GB before any check).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768000


def _check_rate(rate: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"sample rate {rate} Hz in the header is not one of audio "
            f"({MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz): a damaged or mislabelled file"
        )


def probe_audio(path: str | Path) -> AudioInfo:
    """Read only the header of an audio file."""
    _require_file(path)
    quiet = _quiet_decoder_notes() if _may_reach_mpeg_decoder(path) else contextlib.nullcontext()
    try:
        with quiet:
            info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"unreadable audio ({_reason(exc)})") from exc
    _refuse_truncated_wav(path)
    _check_rate(int(info.samplerate))
    return AudioInfo(
        sample_rate=int(info.samplerate), channels=int(info.channels), frames=int(info.frames)
    )


def load_audio(
    path: str | Path,
    sample_rate: int = 16000,
    start_s: float | None = None,
    end_s: float | None = None,
) -> np.ndarray:
    """Load ``path`` (or its ``[start_s, end_s)`` segment) as float32 mono at ``sample_rate``.

    Channels are averaged; other rates are resampled with soxr (high quality). Raises
    :class:`AudioError` for unreadable, truncated or empty audio and for NaN/inf samples.
    """
    _require_file(path)
    _refuse_truncated_wav(path)
    quiet = _quiet_decoder_notes() if _may_reach_mpeg_decoder(path) else contextlib.nullcontext()
    try:
        with quiet, sf.SoundFile(str(path)) as f:
            native = int(f.samplerate)
            _check_rate(native)
            if start_s is not None:
                f.seek(min(int(round(start_s * native)), f.frames))
            n = -1 if end_s is None else max(0, int(round((end_s - (start_s or 0.0)) * native)))
            data = f.read(frames=n, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"unreadable audio ({_reason(exc)})") from exc
    if data.size == 0:
        raise AudioError(empty_audio_reason(path))
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(y)):
        raise AudioError("audio contains NaN or infinite samples")
    peaks = np.max(np.abs(data), axis=0)
    loud = int(np.sum(peaks >= SILENCE_PEAK))  # channels that are not silent on their own
    if loud >= 2 and np.max(np.abs(y)) < SILENCE_PEAK:
        raise AudioError(  # "silent" blamed the recording
            f"its {data.shape[1]} channels cancel when mixed to mono (one is the other with "
            "its sign flipped): keep one channel, e.g. `sox IN OUT remix 1`"
        )
    if native != sample_rate:
        import soxr

        y = soxr.resample(y, native, sample_rate, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(y, dtype=np.float32)


def audio_problem(y: np.ndarray, sample_rate: int, min_samples: int) -> str | None:
    """Why a loaded signal cannot give features, or None when it can.

    Clipping is not fatal (emotional speech is often loud); only unusable signals are.
    """
    if y.size == 0:
        return "empty audio (no samples)"
    if y.size < min_samples:
        return f"shorter than one analysis window ({y.size / sample_rate * 1000:.1f} ms)"
    if not np.all(np.isfinite(y)):
        return "audio contains NaN or infinite samples"
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_PEAK:
        return "silent (peak below -80 dBFS)"
    if peak > MAX_PEAK:
        return f"samples exceed ±{MAX_PEAK:g} (absurd amplitude)"
    return None


def clipped_fraction(y: np.ndarray, threshold: float = 0.999) -> float:
    """Share of samples at (or beyond) full scale: a warning sign, reported not rejected."""
    return float(np.mean(np.abs(y) >= threshold)) if y.size else 0.0


#: How the errors of a file that could not be reached begin (missing, or not openable):
#: the same audio may be readable later, so an extraction that failed this way is tried
#: again once ingest finds the file readable (see :func:`unreachable`).
NOT_FOUND = "audio file not found"
CANNOT_OPEN = "cannot open the file"


def unreachable(error: str | None) -> bool:
    """Whether an audio error says the file could not be reached (rather than its content
    being unusable), so that the same file may read fine later.

    Examples
    --------
    >>> unreachable("audio file not found"), unreachable("cannot open the file (Permission denied)")
    (True, True)
    >>> unreachable("silent (peak below 1e-05)")
    False
    """
    return bool(error) and str(error).startswith((NOT_FOUND, CANNOT_OPEN))


def _require_file(path: str | Path) -> None:
    if printable(str(path)) != str(path):  # libsndfile takes UTF-8 paths only
        name = Path(path).name
        where = "file name" if printable(name) != name else "file's folder"
        raise AudioError(f"the {where} is not valid UTF-8; rename it")
    p = Path(path)
    if p.is_file():
        if p.stat().st_size == 0:
            raise AudioError("empty file (0 bytes)")
        try:  # libsndfile says "System error." for every failure to open
            os.close(os.open(p, os.O_RDONLY))
        except OSError as exc:
            raise AudioError(f"{CANNOT_OPEN} ({exc.strerror})") from exc
        return
    if not p.exists():
        raise AudioError(NOT_FOUND)
    raise AudioError("not an audio file (a directory)" if p.is_dir() else "not an audio file")


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be opened as an audio file, or None: missing, a folder, empty,
    not readable, or a name libsndfile cannot take. Only the file system is asked; whether
    the bytes are audio shows when they are decoded.

    Examples
    --------
    >>> file_problem("/no/such/file.wav")
    'audio file not found'
    >>> import tempfile
    >>> file_problem(tempfile.mkdtemp())
    'not an audio file (a directory)'
    """
    try:
        _require_file(path)
    except AudioError as exc:
        return str(exc)
    return None


def wav_shortfall(path: str | Path) -> tuple[float, float] | None:
    """``(declared_s, held_s)`` when ``path`` is a RIFF WAV file whose data chunk is shorter
    than its header declares (an interrupted copy or download), else None.

    libsndfile reads such a file without a word, as if it were a shorter recording, so
    features would describe part of an utterance. Only the chunk headers are read. A data
    size of 0 or 0xFFFFFFFF (what streaming writers leave) declares nothing, and a
    shortfall of less than one sample frame is padding, not damage.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> sf.write(path, np.zeros(16000, "float32"), 16000, subtype="PCM_16")
    >>> wav_shortfall(path) is None
    True
    >>> _ = os.truncate(path, 44 + 8000)  # keep the header and a quarter second
    >>> wav_shortfall(path)
    (1.0, 0.25)
    """
    found = _wav_data_chunk(path)
    if found is None:
        return None
    length, held, byte_rate, block_align = found
    if length in (0, 0xFFFFFFFF) or byte_rate <= 0:
        return None
    if length - held < max(block_align, 1):
        return None
    return length / byte_rate, max(held, 0) / byte_rate


def unfinished_wav(path: str | Path) -> int | None:
    """The bytes a RIFF WAV file holds after a data chunk header that declares none (a
    recorder or writer that never came back to fill in the size), or None: libsndfile reads
    such a file as empty.

    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> sf.write(path, np.zeros(16000, "float32"), 16000, subtype="PCM_16")
    >>> unfinished_wav(path) is None
    True
    >>> with open(path, "r+b") as f:
    ...     _ = f.seek(40); _ = f.write(bytes(4))  # the data size, as left unfinished
    >>> unfinished_wav(path)
    32000
    """
    found = _wav_data_chunk(path)
    if found is None:
        return None
    length, held, _byte_rate, block_align = found
    if length != 0 or held < max(block_align, 1):
        return None
    try:  # a chunk after an empty data chunk (LIST, id3…) is metadata, not samples
        with open(path, "rb") as f:
            f.seek(os.path.getsize(path) - held)
            head = f.read(8)
    except OSError:
        return None
    name, size = head[:4], int.from_bytes(head[4:8], "little") if len(head) == 8 else -1
    if len(head) == 8 and all(32 <= c < 127 for c in name) and 0 <= size <= held - 8:
        return None
    return held


def empty_audio_reason(path: str | Path) -> str:
    """Why a file decodes to no samples, in words: an unfinished WAV header says so."""
    held = unfinished_wav(path)
    if held is None:
        return "empty audio (no samples)"
    return (
        f"its header declares no samples, yet {held:,} bytes of them follow: a recording "
        "whose header was never finished? (repair it, e.g. `sox --ignore-length IN OUT`)"
    )


def _wav_data_chunk(path: str | Path) -> tuple[int, int, int, int] | None:
    """A RIFF WAV file's data chunk: (declared length, bytes held after its header, byte
    rate, block align) from the chunk headers only; None for another file or no data."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:] != b"WAVE":
                return None
            order = "little" if head[:4] == b"RIFF" else "big"
            byte_rate = block_align = 0
            for _ in range(256):  # chunk headers; real files have a handful
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                name, length = chunk[:4], int.from_bytes(chunk[4:], order)
                if name == b"fmt " and length >= 14:
                    fmt = f.read(14)
                    byte_rate = int.from_bytes(fmt[8:12], order)
                    block_align = int.from_bytes(fmt[12:14], order)
                    f.seek(length - 14 + (length & 1), os.SEEK_CUR)
                elif name == b"data":
                    return length, size - f.tell(), byte_rate, block_align
                else:
                    f.seek(length + (length & 1), os.SEEK_CUR)
    except OSError:
        return None
    return None


def _refuse_truncated_wav(path: str | Path) -> None:
    short = wav_shortfall(path)
    if short is not None:
        declared, held = short
        raise AudioError(
            f"truncated WAV: the header declares {declared:.2f} s of audio, the file holds "
            f"{held:.2f} s (an interrupted copy? copy the file again)"
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.split(": ", 1)[-1] if text.startswith("Error opening") else text
    if "does not exist or is not a regular file" in text or text == "Format not recognised.":
        # the first: libsndfile's words when its MPEG decoder gives up (the file was found
        # just before); both mean the same to a user, so they read the same
        return "not a recognised audio format, or damaged"
    return text


#: First bytes of the containers libsndfile reads without its MPEG decoder.
_CONTAINER_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM", b"caff", b"riff")


def _may_reach_mpeg_decoder(path: str | Path) -> bool:
    """Whether libsndfile may hand ``path`` to libmpg123: an MP3, or any file whose first
    bytes are not a container it recognises (it sniffs content, so random bytes named
    .wav can reach the MPEG decoder too)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) not in _CONTAINER_MAGIC
    except OSError:
        return True


_STDERR_LOCK = threading.Lock()
_stderr_state: dict[str, Any] = {"depth": 0, "saved": None, "capture": None}


def _is_decoder_note(line: bytes) -> bool:
    return line.startswith(b"Note: ") or b"libmpg123" in line


@contextlib.contextmanager
def _quiet_decoder_notes() -> Iterator[None]:
    """Keep libmpg123's own lines off the process' stderr meanwhile.

    libsndfile's MPEG decoder prints "Note: Illegal Audio-MPEG-Header…" and
    "[src/libmpg123/…] warning" lines straight to file descriptor 2 for damaged or non-MP3
    data, around sercap's one-line error. File descriptor 2 goes to a temporary file while
    any thread decodes such a file; when the last one is done it is restored and whatever
    else was written meanwhile (another thread's warning, a progress line) is written out,
    only the decoder's lines dropped.
    """
    with _STDERR_LOCK:
        state = _stderr_state
        if state["depth"] == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError):  # no usable stderr: nothing to keep clean
                saved = None
            if saved is not None:
                capture = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the last one out
                os.dup2(capture.fileno(), 2)
                state["saved"], state["capture"] = saved, capture
        state["depth"] += 1
    try:
        yield
    finally:
        with _STDERR_LOCK:
            state["depth"] -= 1
            if state["depth"] == 0 and state["saved"] is not None:
                saved, capture = state["saved"], state["capture"]
                state["saved"] = state["capture"] = None
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                kept = [x for x in capture.read().splitlines(True) if not _is_decoder_note(x)]
                capture.close()
                if kept:
                    os.write(2, b"".join(kept))
