"""Per-frame descriptors on signals whose answers are known."""

import numpy as np
import pytest
import scipy.fft

from sercap.features import lld
from sercap.features.featureset import get_feature_set
from sercap.features.lld import (
    VOICED_ONLY,
    column_names,
    compute_frames,
    deltas,
    frame_geometry,
    frame_signal,
    n_frames,
    power_spectrum,
)
from tests.helpers import voice

SR = 16000
PARAMS = dict(get_feature_set("default").params)


def tone(freq: float, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_geometry_of_the_default_set() -> None:
    assert frame_geometry(PARAMS) == (400, 160, 512)
    assert n_frames(399, PARAMS) == 0
    assert n_frames(400, PARAMS) == 1
    assert n_frames(SR, PARAMS) == 1 + (SR - 400) // 160


@pytest.mark.parametrize("freq", [110.0, 220.0, 310.0])
def test_a_tone_is_voiced_at_its_frequency(freq: float) -> None:
    cols = compute_frames(tone(freq), PARAMS)
    f0 = cols["f0_hz"]
    assert np.isfinite(f0).mean() > 0.95
    assert np.nanmedian(f0) == pytest.approx(freq, rel=0.02)
    assert np.nanmedian(cols["hnr_db"]) > 15
    assert np.median(cols["voicing"]) > 0.9


def test_a_harmonic_voice_gets_its_fundamental_not_an_octave() -> None:
    t = np.arange(SR) / SR
    y = sum(0.2 / k * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 8)).astype(np.float32)
    f0 = compute_frames(y, PARAMS)["f0_hz"]
    assert np.nanmedian(f0) == pytest.approx(150, rel=0.02)


def test_noise_and_silence_are_unvoiced() -> None:
    noise = np.random.default_rng(0).normal(scale=0.1, size=SR).astype(np.float32)
    assert np.isnan(compute_frames(noise, PARAMS)["f0_hz"]).mean() > 0.95
    silence = np.zeros(SR, dtype=np.float32)
    cols = compute_frames(silence, PARAMS)
    assert np.isnan(cols["f0_hz"]).all()
    assert np.isnan(cols["hnr_db"]).all()
    voiced_only = {k for k in cols if k.removesuffix("_d") in VOICED_ONLY}
    assert all(np.isnan(cols[k]).all() for k in voiced_only)
    assert all(np.isfinite(v).all() for k, v in cols.items() if k not in voiced_only)


def test_columns_shapes_and_names() -> None:
    y = tone(220, 0.5)
    cols = compute_frames(y, PARAMS)
    t = n_frames(y.size, PARAMS)
    assert all(v.shape == (t,) and v.dtype == np.float32 for v in cols.values())
    names = list(cols)
    assert names == column_names(PARAMS)
    assert "logmel_001" in names and "logmel_026" in names and "logmel_027" not in names
    assert "mfcc_01" in names and "mfcc_14" in names and "mfcc_00" not in names
    assert {"f0_hz", "hnr_db", "rms_db", "zcr", "spectral_centroid"} <= set(names)
    assert {"contrast_1", "contrast_7", "band_0000_0250_db", "spectral_rolloff90"} <= set(names)
    base = [n for n in names if not n.endswith("_d")]
    assert [n for n in names if n.endswith("_d")] == [f"{n}_d" for n in base]
    assert "chroma_01" not in names
    assert "chroma_12" in column_names(get_feature_set("chroma").params)


def test_spectral_shape_of_a_tone() -> None:
    cols = compute_frames(tone(1000), PARAMS)
    assert np.median(cols["spectral_centroid"]) == pytest.approx(1000, rel=0.05)
    assert np.median(cols["spectral_rolloff50"]) == pytest.approx(1000, abs=40)
    # a full-scale sine is near 0 dB RMS - 3 dB; 0.3 amplitude is 10.5 dB lower
    assert np.median(cols["rms_db"]) == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.3)
    assert np.median(cols["zcr"]) == pytest.approx(2 * 1000 / SR, rel=0.05)
    # a tone is far less flat than white noise
    noise = np.random.default_rng(1).normal(scale=0.1, size=SR).astype(np.float32)
    flat_noise = np.median(compute_frames(noise, PARAMS)["spectral_flatness_db"])
    assert np.median(cols["spectral_flatness_db"]) < flat_noise - 20


def test_mfcc_is_the_dct_of_the_logmel() -> None:
    cols = compute_frames(tone(300, 0.3) + tone(1200, 0.3, 0.1), PARAMS)
    logmel = np.stack([cols[f"logmel_{i:03d}"] for i in range(1, 27)], axis=1)
    cep = scipy.fft.dct(logmel, type=2, norm="ortho", axis=1)
    mfcc = np.stack([cols[f"mfcc_{i:02d}"] for i in range(1, 15)], axis=1)
    np.testing.assert_allclose(mfcc, cep[:, 1:15], rtol=1e-4, atol=1e-3)


def test_power_spectrum_of_a_full_scale_sine_peaks_near_0_db() -> None:
    frames = frame_signal(tone(1000, 0.1, amp=1.0), 400, 160)
    peak_db = 10 * np.log10(power_spectrum(frames, 512).max(axis=1))
    assert np.all(np.abs(peak_db) < 1.5)


def test_deltas_of_a_ramp_are_its_slope_and_nan_propagates() -> None:
    x = np.arange(20, dtype=np.float32)[:, None] * 3.0
    d = deltas(x, width=2)
    np.testing.assert_allclose(d[2:-2, 0], 3.0, rtol=1e-6)
    assert d[0, 0] < 3.0  # edges repeat the first frame
    x[10, 0] = np.nan
    d = deltas(x, width=2)
    assert np.isnan(d[8:13, 0]).all() and np.isfinite(d[:8, 0]).all()


def test_shorter_than_one_window_gives_no_frames() -> None:
    cols = compute_frames(tone(220, 0.01), PARAMS)
    assert all(v.shape == (0,) for v in cols.values())


def test_pyin_set_uses_pyin_pitch() -> None:
    params = dict(get_feature_set("pyin").params)
    f0 = compute_frames(tone(220, 0.5), params)["f0_hz"]
    assert np.nanmedian(f0) == pytest.approx(220, rel=0.03)


def test_contrast_ignores_the_resamplers_roll_off() -> None:
    """The same audio delivered at 44.1 kHz must give the features it gives at 16 kHz: the
    top contrast band stops at 7.2 kHz, below where anti-alias filters start to cut."""
    import copy

    import soxr

    params = dict(get_feature_set("default").params)
    y = voice(1.0, 180, 0) + 0.01 * np.random.default_rng(0).normal(size=16000)
    y = y.astype(np.float32)
    y2 = soxr.resample(soxr.resample(y, 16000, 44100), 44100, 16000).astype(np.float32)
    to_nyquist = copy.deepcopy(params)
    to_nyquist["groups"]["contrast"] = {"n_bands": 6, "fmin": 200.0}
    for p, tolerance in ((params, 0.1), (to_nyquist, None)):
        a, b = compute_frames(y, p)["contrast_7"], compute_frames(y2, p)["contrast_7"]
        gap = float(np.mean(np.abs(a - b)))
        if tolerance is None:
            assert gap > 10  # up to Nyquist, the roll-off dominates the top band's valley
        else:
            assert gap < tolerance


@pytest.mark.parametrize("n_mels,fmin,fmax", [(26, 0.0, 8000.0), (64, 50.0, 7600.0)])
def test_mel_filterbank_is_librosas(n_mels: int, fmin: float, fmax: float) -> None:
    librosa = pytest.importorskip("librosa")
    ours = lld.mel_filterbank(16000, 512, n_mels, fmin, fmax)
    theirs = librosa.filters.mel(
        sr=16000, n_fft=512, n_mels=n_mels, fmin=fmin, fmax=fmax, norm=None
    ).astype(np.float32)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("top", [257, 231])
def test_spectral_contrast_is_librosas(top: int) -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(3)
    t = np.arange(16000) / 16000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    y[4000:6000] *= 1e-4  # a quiet stretch: the 80 dB floor under the maximum matters
    power = lld.power_spectrum(lld.frame_signal(y, 400, 160), 512)
    mag = np.sqrt(power)[:, :top]
    freqs = np.fft.rfftfreq(512, 1 / 16000)[:top]
    ours = lld.spectral_contrast(mag, freqs, sr=16000, n_bands=6, fmin=200.0)
    theirs = librosa.feature.spectral_contrast(
        S=mag.T, sr=16000, n_fft=512, freq=freqs, n_bands=6, fmin=200.0
    ).T
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)


def test_extraction_never_imports_librosa() -> None:
    """librosa's import costs seconds per process; the default set must not need it."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from sercap.features.featureset import get_feature_set\n"
        "from sercap.features.lld import compute_frames\n"
        "y = (0.1 * np.sin(np.arange(16000) * 0.1)).astype(np.float32)\n"
        "compute_frames(y, get_feature_set('default').params)\n"
        "print('librosa' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_frames_matrix_is_the_columns_in_order_and_follows_changes() -> None:
    cols = compute_frames(tone(220.0), PARAMS)
    m = lld.frames_matrix(cols)
    assert m.shape == (len(cols), cols["f0_hz"].size) and m.dtype == np.float32
    for i, (name, x) in enumerate(cols.items()):
        np.testing.assert_array_equal(m[i], x, err_msg=name)
    # a replaced column is seen (the shared matrix would be stale)
    cols["zcr"] = np.full(m.shape[1], 7.0, dtype=np.float32)
    assert (lld.frames_matrix(cols)[list(cols).index("zcr")] == 7.0).all()
    plain = {"a": np.arange(3.0), "b": np.ones(3)}
    np.testing.assert_array_equal(lld.frames_matrix(plain), [[0, 1, 2], [1, 1, 1]])


def test_rolloff_bins_count_like_numpy_cumsum() -> None:
    """The roll-off kernel counts exactly what the float32 numpy cumulative sum counts."""
    rng = np.random.default_rng(1)
    qs = np.array([0.25, 0.5, 0.75, 0.9, 1.0])
    for _ in range(10):
        p = (rng.random((200, 257)) ** 4).astype(np.float32) * np.float32(rng.random())
        p[::7] = 0.0  # silent frames: every threshold is above the (zero) cumulative power
        psum = p.sum(axis=1, dtype=np.float64) + 1e-10
        cum = np.cumsum(p, axis=1)
        want = np.stack([np.count_nonzero(cum < q * psum[:, None], axis=1) for q in qs], 1)
        np.testing.assert_array_equal(lld._rolloff_bins(p, psum[:, None] * qs[None, :]), want)
    assert lld._rolloff_bins(np.zeros((0, 257), np.float32), np.zeros((0, 4))).shape == (0, 4)


def test_a_dc_offset_changes_no_voice_descriptor() -> None:
    """A DC offset put the normalised autocorrelation near 1 at every lag: +0.02 on EmoDB
    files voiced 0.58 -> 0.75 of the frames (Praat: 0.545 either way), and raised F0, HNR
    and jitter. Pitch reads the frames less their mean, the waveform analyses the signal
    less its mean."""
    y = voice(1.5, 140, 3)
    plain = compute_frames(y, PARAMS)
    offset = compute_frames(y + np.float32(0.02), PARAMS)
    for name in ("f0_hz", "voicing", "hnr_db", "jitter_local", "shimmer_local", "f1_hz"):
        a, b = plain[name], offset[name]
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3, equal_nan=True, err_msg=name)
    assert 0.3 < np.isfinite(plain["f0_hz"]).mean() < 0.9  # the pauses stay unvoiced


def test_low_frequency_noise_is_mostly_unvoiced() -> None:
    """Noise low-passed by a one-pole filter (rumble, breath) was voiced in 18-45% of its
    frames (Praat: none), from the slow drift of the frames' mean."""
    import scipy.signal

    rng = np.random.default_rng(0)
    rumble = scipy.signal.lfilter([1.0], [1.0, -0.95], rng.normal(0, 0.01, SR))
    rumble = (0.1 * rumble / np.abs(rumble).max()).astype(np.float32)
    assert np.isfinite(compute_frames(rumble, PARAMS)["f0_hz"]).mean() < 0.12


def test_rolloff_of_digital_silence_is_0_hz() -> None:
    """No power to roll off: every roll-off read Nyquist (8000 Hz) in silent frames, which
    moved an utterance's roll-off means by kHz with a little silence padded on."""
    y = np.concatenate([np.zeros(SR // 2, np.float32), tone(300, 0.5)])
    cols = compute_frames(y, PARAMS)
    silent = slice(0, 40)
    for name in ("spectral_rolloff25", "spectral_rolloff90"):
        assert (cols[name][silent] == 0).all(), name
        assert (cols[name][-20:] > 0).all(), name


def test_f0_stays_inside_the_pitch_range() -> None:
    """The parabolic lag refinement stepped past the range (EmoDB: 462 Hz with fmax 450)."""
    params = {**PARAMS, "groups": {**PARAMS["groups"]}}
    params["groups"]["pitch"] = {**PARAMS["groups"]["pitch"], "fmin": 100.0, "fmax": 200.0}
    for freq in (99.8, 100.5, 199.5, 200.4, 200.8):
        f0 = compute_frames(tone(freq, 0.5), params)["f0_hz"]
        voiced = f0[np.isfinite(f0)]
        assert ((voiced >= 100.0) & (voiced <= 200.0)).all(), (freq, voiced.min(), voiced.max())


def test_pyin_frames_are_centred_where_sercaps_are() -> None:
    """pyin's centred frame k sits at k * hop, sercap's at k * hop + win / 2: pyin's F0 was
    12.5 ms early (on a 250 Hz/s glide, 2.9 Hz low)."""
    t = np.arange(int(0.8 * SR)) / SR
    f_true = 150 + 250 * t
    y = (0.3 * np.sin(2 * np.pi * np.cumsum(f_true) / SR)).astype(np.float32)
    f0 = compute_frames(y, dict(get_feature_set("pyin").params))["f0_hz"]
    centres = (np.arange(f0.size) * 160 + 200) / SR
    ok = np.isfinite(f0)
    error = f0[ok] - (150 + 250 * centres[ok])
    assert abs(np.median(error)) < 1.0, np.median(error)
