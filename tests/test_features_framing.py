"""A feature set's frame grid: whole samples, and the seconds they really span."""

import pytest

from sercap.features.framing import frame_geometry, frame_seconds

PARAMS = {"sample_rate": 16000, "window_ms": 25.0, "hop_ms": 10.0, "n_fft": 512}


def test_16_khz_frames_are_exactly_the_nominal_hop_and_window() -> None:
    assert frame_geometry(PARAMS) == (400, 160, 512)
    assert frame_seconds(PARAMS) == (0.01, 0.025)  # bit-identical to 10 / 1000 and 25 / 1000


def test_other_rates_round_to_whole_samples() -> None:
    params = {**PARAMS, "sample_rate": 22050, "n_fft": 1024}
    assert frame_geometry(params) == (551, 220, 1024)  # 551.25 and 220.5 samples, rounded
    hop, window = frame_seconds(params)
    assert hop == pytest.approx(220 / 22050) and hop < 0.01  # 9.977 ms, not 10
    assert window == pytest.approx(551 / 22050)


def test_an_fft_shorter_than_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than the window"):
        frame_geometry({**PARAMS, "n_fft": 256})
