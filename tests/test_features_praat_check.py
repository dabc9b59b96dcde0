"""The Praat reference check: its command-line errors, and agreement on synthetic vowels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sercap.features import praat_check
from tests.test_features_voice import SR, _noisy, vowel


def _error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as code:
        praat_check.main(argv)
    assert code.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1]


def test_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    assert _error(capsys, [str(tmp_path)]).endswith(f"{tmp_path}: no .wav files here")
    assert "--n must be at least 3" in _error(capsys, [str(tmp_path), "--n", "0"])
    assert "unknown feature set 'nope'" in _error(capsys, [str(tmp_path), "--feature-set", "nope"])


def test_a_corpus_root_is_taken_as_every_command_takes_it(tmp_path: Path) -> None:
    (tmp_path / "wav").mkdir()  # EmoDB's layout: the root holds wav/
    (tmp_path / "wav" / "a.wav").touch()
    assert praat_check.wav_files(tmp_path) == [tmp_path / "wav" / "a.wav"]
    assert praat_check.wav_files(tmp_path / "wav") == [tmp_path / "wav" / "a.wav"]


def test_sercap_follows_praat_across_voices_and_skips_unusable_files(tmp_path: Path, capsys):
    pytest.importorskip("parselmouth")
    # Five vowels whose F0 and HNR differ: both tools must rank them alike.
    for i, (f0, hnr) in enumerate([(100, 5), (140, 10), (180, 15), (220, 20), (260, 8)]):
        sf.write(tmp_path / f"v{i}.wav", _noisy(vowel(f0=f0, seconds=0.8, seed=i), hnr), SR)
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    files = sorted(tmp_path.glob("*.wav"))
    result = praat_check.compare(files)
    assert "skipped" in capsys.readouterr().err  # the broken file, in one line
    assert result["f0_hz"][1] == 5 and result["f0_hz"][0] > 0.99
    assert result["hnr_db"][0] > 0.9, result["hnr_db"]
    assert abs(result["hnr_db"][2] - result["hnr_db"][3]) < 3  # medians within 3 dB
    assert np.isfinite([r for r, *_ in result.values()]).all()
