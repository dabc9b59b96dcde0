"""Voice quality per frame: jitter, shimmer and formants on signals with known answers."""

import numpy as np
import pytest
import scipy.signal

from sercap.features.featureset import get_feature_set
from sercap.features.lld import compute_frames
from sercap.features.voice import (
    VOICE_COLUMNS,
    formants,
    glottal_pulses,
    jitter_shimmer,
    lpc_autocorrelation,
    voice_columns,
)

SR, WIN, HOP = 16000, 400, 160
FORMANTS = (700.0, 1200.0, 2600.0, 3500.0, 4500.0)
BANDWIDTHS = (80.0, 90.0, 120.0, 150.0, 200.0)


def vowel(
    f0: float = 140.0,
    seconds: float = 1.0,
    jitter: float = 0.0,
    shimmer: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A pulse train through five resonators. Each period is T0·(1 ± jitter) and each pulse
    1 ± shimmer with random signs, so mean |ΔT|/T = jitter and mean |ΔA|/A = shimmer."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = np.zeros(n + 2)
    t = 0.0
    while t < n:
        i, frac = int(t), t - int(t)
        a = 1.0 + shimmer * rng.choice([-1.0, 1.0])
        x[i] += a * (1 - frac)  # a pulse between two samples, split linearly
        x[i + 1] += a * frac
        t += SR / f0 * (1.0 + jitter * rng.choice([-1.0, 1.0]))
    for f, b in zip(FORMANTS, BANDWIDTHS, strict=True):
        r = np.exp(-np.pi * b / SR)
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r], x)
    x = x[:n]
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _measure(y: np.ndarray, f0_hz: float) -> tuple[np.ndarray, np.ndarray]:
    n = 1 + (y.size - WIN) // HOP
    f0 = np.full(n, f0_hz)
    times, amps = glottal_pulses(y, f0, sr=SR, hop=HOP, win=WIN)
    return jitter_shimmer(times, amps, n, sr=SR, hop=HOP, win=WIN)


@pytest.mark.parametrize(("jit", "shim"), [(0.0, 0.0), (0.01, 0.0), (0.0, 0.08), (0.02, 0.04)])
def test_jitter_and_shimmer_of_a_pulse_train(jit: float, shim: float) -> None:
    jitter, shimmer = _measure(vowel(jitter=jit, shimmer=shim), 140.0)
    assert np.isfinite(jitter).mean() > 0.9
    assert np.nanmean(jitter) == pytest.approx(jit, abs=0.002 + 0.15 * jit)
    # jitter moves where one cycle's formant ringing meets the next pulse: a little shimmer
    assert np.nanmean(shimmer) == pytest.approx(shim, abs=0.03 + 0.15 * shim)


def test_pulses_are_one_period_apart_and_not_across_unvoiced_gaps() -> None:
    y = vowel(f0=200.0)
    n = 1 + (y.size - WIN) // HOP
    f0 = np.full(n, 200.0)
    f0[40:50] = np.nan
    times, amps = glottal_pulses(y, f0, sr=SR, hop=HOP, win=WIN)
    period = np.diff(times)
    assert np.isnan(times).sum() == 2  # one separator after each voiced run
    assert np.nanmedian(period) == pytest.approx(SR / 200.0, rel=0.01)
    assert np.nanmax(period) < 1.1 * SR / 200.0
    jitter, _ = jitter_shimmer(times, amps, n, sr=SR, hop=HOP, win=WIN)
    assert np.isnan(jitter[42:48]).all()


def test_formants_of_a_source_filter_vowel() -> None:
    y = vowel(f0=120.0)
    voiced = np.ones(1 + (y.size - WIN) // HOP, dtype=bool)
    voiced[:3] = False
    freqs, bws = formants(y, voiced, sr=SR, hop=HOP, win=WIN)
    assert np.isnan(freqs[:3]).all() and np.isnan(bws[:3]).all()
    med = np.nanmedian(freqs[3:], axis=0)
    # harmonics pull LPC's F1 up by ~7% at 120 Hz; Praat's Burg gives 752/1226/2580 Hz too
    np.testing.assert_allclose(med, FORMANTS[:3], rtol=0.08)
    bw = np.nanmedian(bws[3:], axis=0)
    assert np.all(bw > 0) and np.all(bw < 400)


def test_lpc_recovers_an_all_pole_filter() -> None:
    a_true = np.array([1.0, -1.3, 0.8, -0.2])
    e = np.random.default_rng(1).normal(size=20000)
    x = scipy.signal.lfilter([1.0], a_true, e)
    a = lpc_autocorrelation(x[None, :], 3)
    np.testing.assert_allclose(a[0], a_true, atol=0.03)


def test_voice_columns_are_null_when_unvoiced_and_only_in_the_voice_set() -> None:
    y = np.concatenate([vowel(seconds=0.5), np.zeros(SR // 4, np.float32)])
    cols = compute_frames(y, get_feature_set("voice").params)
    for name in VOICE_COLUMNS:
        assert name in cols and f"{name}_d" in cols
        assert np.isnan(cols[name][np.isnan(cols["f0_hz"])]).all()
        assert np.isfinite(cols[name][10:35]).all(), name
    silent = voice_columns(np.zeros(SR // 2), np.full(48, np.nan), sr=SR, hop=HOP, win=WIN)
    assert all(np.isnan(v).all() and v.shape == (48,) for v in silent.values())
    assert "jitter_local" not in compute_frames(y, get_feature_set("default").params)
    assert "jitter_local" not in compute_frames(y, get_feature_set("tracked").params)


def test_pulses_survive_a_pitch_change_within_one_run() -> None:
    # 400 Hz for 60 ms then 80 Hz in one voiced run: the median period is five times the
    # first one (a window of the median period must not run past the start of the run)
    n = 1 + (SR - WIN) // HOP
    f0 = np.where(np.arange(n) < 6, 400.0, 80.0)
    f_inst = np.interp(np.arange(SR), np.arange(n) * HOP + WIN / 2, f0)
    y = np.sin(2 * np.pi * np.cumsum(f_inst) / SR).astype(np.float32)
    times, amps = glottal_pulses(y, f0, sr=SR, hop=HOP, win=WIN)
    assert np.isfinite(times).sum() > 70
    jitter, shimmer = jitter_shimmer(times, amps, n, sr=SR, hop=HOP, win=WIN)
    assert np.nanmedian(jitter) < 0.01 and np.nanmedian(shimmer) < 0.01
