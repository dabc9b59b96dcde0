"""Audio in: headers, mono float32 at a chosen rate, segments, why a file is unusable."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sercap.audio import (
    AudioError,
    audio_problem,
    clipped_fraction,
    load_audio,
    probe_audio,
    wav_shortfall,
)


def tone(freq: float, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_probe_reads_the_header(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, np.stack([tone(220, 1.5, 44100)] * 2, axis=1), 44100)
    info = probe_audio(path)
    assert (info.sample_rate, info.channels, info.frames) == (44100, 2, 66150)
    assert info.duration_s == pytest.approx(1.5)


def test_stereo_44k_becomes_mono_16k_with_the_same_pitch(tmp_path: Path) -> None:
    left, right = tone(440, 1.0, 44100), 0.5 * tone(440, 1.0, 44100)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100)
    y = load_audio(path, sample_rate=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - 16000) <= 1
    # Channels are averaged: amplitude 0.375, and the tone is still at 440 Hz.
    assert np.max(np.abs(y[1000:-1000])) == pytest.approx(0.375, abs=0.01)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * 16000 / y.size == pytest.approx(440, abs=2)


def test_segment_is_cut_in_the_file_rate(tmp_path: Path) -> None:
    sr = 16000
    ramp = np.linspace(0, 1, 3 * sr, endpoint=False, dtype=np.float32)
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, sr, subtype="FLOAT")
    y = load_audio(path, sample_rate=sr, start_s=1.0, end_s=2.0)
    assert y.size == sr
    np.testing.assert_allclose(y, ramp[sr : 2 * sr])
    # A segment past the end is empty, not a crash.
    with pytest.raises(AudioError, match="empty audio"):
        load_audio(path, sample_rate=sr, start_s=5.0, end_s=6.0)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "audio file not found"),
        (lambda p: p.write_bytes(b"RIFF not really a wav"), "unreadable audio"),
        (lambda p: p.write_bytes(b"hello"), r"unreadable audio \(not a recognised audio format"),
        (lambda p: p.write_bytes(b""), r"empty file \(0 bytes\)"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "empty audio"),
        (
            lambda p: sf.write(p, np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT"),
            "NaN or infinite",
        ),
        # a header claiming 1 Hz: 16000 samples read as 4.4 hours, resampled before any check
        (lambda p: sf.write(p, np.zeros(16000, np.float32), 1), r"sample rate 1 Hz in the header"),
    ],
)
def test_unusable_files_raise_a_short_reason(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason) as caught:
        load_audio(path)
    assert "\n" not in str(caught.value)
    if "sample rate" in reason:  # ingest reads only the header: it must refuse there too
        with pytest.raises(AudioError, match=reason):
            probe_audio(path)


def test_audio_problem_names_what_is_wrong() -> None:
    sr = 16000
    assert audio_problem(tone(200, 0.5, sr), sr, min_samples=400) is None
    assert audio_problem(np.zeros(0, np.float32), sr, 400) == "empty audio (no samples)"
    assert audio_problem(tone(200, 0.01, sr), sr, 400).startswith("shorter than one")
    assert audio_problem(np.zeros(sr, np.float32), sr, 400).startswith("silent")
    noisy = tone(200, 0.5, sr)
    noisy[10] = np.inf
    assert "NaN or infinite" in audio_problem(noisy, sr, 400)


def test_clipped_fraction_counts_full_scale_samples() -> None:
    y = np.array([0.1, 1.0, -1.0, 0.5], dtype=np.float32)
    assert clipped_fraction(y) == pytest.approx(0.5)
    assert clipped_fraction(np.zeros(0, np.float32)) == 0.0


def test_a_damaged_mp3_is_one_line_and_the_decoder_prints_nothing(tmp_path: Path, capfd) -> None:
    """libmpg123 wrote "Note: Illegal Audio-MPEG-Header…" lines on stderr around sercap's
    error, and libsndfile called the (existing) file one that "does not exist"."""
    path = tmp_path / "damaged.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AudioError, match=r"not a recognised audio format, or damaged"):
        load_audio(path)
    assert capfd.readouterr().err == ""
    # libsndfile sniffs content: these random bytes named .wav reach the MPEG decoder too
    # (it printed "[src/libmpg123/parse.c:…] warning: Cannot read next header…")
    path = tmp_path / "damaged.wav"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(AudioError, match=r"unreadable audio"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"unreadable audio"):
        probe_audio(path)  # what ingest reads
    assert capfd.readouterr().err == ""
    print("stderr", file=sys.stderr)  # and stderr works again afterwards
    assert capfd.readouterr().err == "stderr\n"


def test_only_the_decoders_lines_are_dropped_from_stderr(capfd) -> None:
    """While a file decodes, whatever else reaches stderr (another thread's warning) is
    written out afterwards; nested decodes restore stderr once, at the end."""
    from sercap.audio import _quiet_decoder_notes

    with _quiet_decoder_notes():
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 4996.\n")
        with _quiet_decoder_notes():
            os.write(2, b"[src/libmpg123/parse.c:do_readahead():1083] warning: Duh...\n")
            os.write(2, b"another thread's warning\n")
        os.write(2, b"a progress line\n")
        assert capfd.readouterr().err == ""  # held back until the last decode is done
    assert capfd.readouterr().err == "another thread's warning\na progress line\n"
    os.write(2, b"plain\n")
    assert capfd.readouterr().err == "plain\n"


def test_a_truncated_wav_is_refused_not_read_as_a_shorter_recording(tmp_path: Path) -> None:
    """libsndfile reads the part of an interrupted copy that is there, without a word."""
    full = tmp_path / "full.wav"
    sf.write(full, tone(220, 2.0, 16000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 16000])  # header and half a second
    assert sf.info(str(cut)).frames == 8000  # what sercap would otherwise have used
    assert wav_shortfall(cut) == (2.0, 0.5)
    for read in (probe_audio, load_audio):
        with pytest.raises(AudioError, match=r"truncated WAV: the header declares 2.00 s"):
            read(cut)
    # whole files, streaming writers' placeholder sizes, one odd byte short and trailing
    # bytes after the data are not damage
    assert wav_shortfall(full) is None and load_audio(full).size == 32000
    data = bytearray(full.read_bytes())
    for placeholder in (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"):
        data[40:44] = placeholder
        (tmp_path / "stream.wav").write_bytes(bytes(data))
        assert wav_shortfall(tmp_path / "stream.wav") is None
    (tmp_path / "odd.wav").write_bytes(full.read_bytes()[:-1])
    assert wav_shortfall(tmp_path / "odd.wav") is None
    (tmp_path / "tail.wav").write_bytes(full.read_bytes() + b"LIST" + bytes(12))
    assert wav_shortfall(tmp_path / "tail.wav") is None


def test_two_misleading_diagnoses_say_what_is_wrong(tmp_path: Path) -> None:
    """Loud channels in opposite phase were "silent (peak below -80 dBFS)", blaming the
    recording; a header that never got its data size (0) over 2 s of samples was "empty
    audio (no samples)"."""
    y = tone(220, 2.0, 16000)
    sf.write(tmp_path / "anti.wav", np.stack([y, -y], axis=1), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="its 2 channels cancel when mixed to mono"):
        load_audio(tmp_path / "anti.wav")
    three = np.stack([y, -y, np.zeros_like(y)], axis=1)  # and a silent third beside them
    sf.write(tmp_path / "three.wav", three, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="its 3 channels cancel when mixed to mono"):
        load_audio(tmp_path / "three.wav")
    # one faint channel beside a silent one does not cancel: it is (nearly) silent
    faint = np.stack([1.5e-4 * y / np.abs(y).max(), np.zeros_like(y)], axis=1)
    sf.write(tmp_path / "faint.wav", faint, 16000, subtype="FLOAT")
    assert np.abs(load_audio(tmp_path / "faint.wav")).max() < 1e-4
    sf.write(tmp_path / "full.wav", y, 16000, subtype="PCM_16")
    data = bytearray((tmp_path / "full.wav").read_bytes())
    data[40:44] = b"\x00\x00\x00\x00"
    (tmp_path / "open.wav").write_bytes(bytes(data))
    with pytest.raises(AudioError, match="header declares no samples, yet 64,000 bytes of"):
        load_audio(tmp_path / "open.wav")
    # a finished empty WAV with a large chunk beside its data is empty, not unfinished
    sf.write(tmp_path / "empty.wav", np.zeros(0, "float32"), 16000, subtype="PCM_16")
    listed = (tmp_path / "empty.wav").read_bytes()
    listed = listed[:12] + b"LIST" + (6000).to_bytes(4, "little") + bytes(6000) + listed[12:]
    (tmp_path / "listed.wav").write_bytes(listed)
    with pytest.raises(AudioError, match=r"^empty audio \(no samples\)$"):
        load_audio(tmp_path / "listed.wav")
    # ... and after it
    after = (tmp_path / "empty.wav").read_bytes() + b"LIST" + (26).to_bytes(4, "little")
    (tmp_path / "after.wav").write_bytes(after + b"INFOISFT" + bytes(18))
    with pytest.raises(AudioError, match=r"^empty audio \(no samples\)$"):
        load_audio(tmp_path / "after.wav")
    (tmp_path / "none.wav").write_bytes(bytes(data[:44]))
    with pytest.raises(AudioError, match=r"^empty audio \(no samples\)$"):
        load_audio(tmp_path / "none.wav")


def test_a_file_that_cannot_be_opened_says_why(tmp_path: Path, monkeypatch) -> None:
    """libsndfile answers "System error." for a file it may not open (permissions, a dead
    network mount); the reason given is the operating system's."""
    path = tmp_path / "locked.wav"
    sf.write(path, np.zeros(1600, dtype=np.float32), 16000)
    real_open = os.open

    def refuse(file, flags, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    for read in (probe_audio, load_audio):
        with pytest.raises(AudioError, match=r"^cannot open the file \(Permission denied\)$"):
            read(path)
