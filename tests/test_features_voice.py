"""Voice quality per frame: jitter, shimmer and formants on signals with known answers."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

from sercap.features import voice
from sercap.features.featureset import get_feature_set
from sercap.features.lld import compute_frames
from sercap.features.voice import (
    VOICE_COLUMNS,
    formants,
    glottal_pulses,
    harmonicity_cc,
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


def test_voice_columns_are_null_when_unvoiced_and_in_the_default_set() -> None:
    y = np.concatenate([vowel(seconds=0.5), np.zeros(SR // 4, np.float32)])
    cols = compute_frames(y, get_feature_set("default").params)
    for name in VOICE_COLUMNS:
        assert name in cols and f"{name}_d" in cols
        assert np.isnan(cols[name][np.isnan(cols["f0_hz"])]).all()
        assert np.isfinite(cols[name][10:35]).all(), name
    silent = voice_columns(np.zeros(SR // 2), np.full(48, np.nan), sr=SR, hop=HOP, win=WIN)
    assert all(np.isnan(v).all() and v.shape == (48,) for v in silent.values())
    assert "jitter_local" not in compute_frames(y, get_feature_set("basic").params)
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


# --- the numpy implementations the numba kernels replaced (commit f2cab18), as references --


def _ref_glottal_pulses(
    y: np.ndarray, f0: np.ndarray, *, sr: int, hop: int, win: int, search=(0.8, 1.25)
) -> tuple[np.ndarray, np.ndarray]:
    from sercap.features.voice import _voiced_runs

    y = np.asarray(y, dtype=np.float64)
    f0 = np.asarray(f0, dtype=np.float64)
    times: list[float] = []
    amps: list[float] = []
    centres = np.arange(f0.size) * hop + win / 2.0
    for a, b in _voiced_runs(np.isfinite(f0)):
        s0, s1 = a * hop, min(y.size, (b - 1) * hop + win)
        seg = y[s0:s1]
        if seg.size < 3:
            continue
        sign = 1.0 if seg.max() >= -seg.min() else -1.0
        xs = sign * seg
        n = xs.size
        # the expected period at every sample of the run (F0 track interpolated)
        period = sr / f0[a:b]
        per = np.interp(np.arange(n), centres[a:b] - s0, period).tolist()
        t0 = per[0]
        h = int(t0 / 2)
        if n < 3 * t0:
            continue
        p = h + int(np.argmax(xs[h : h + int(t0) + 1]))  # the first pulse: a peak
        tp = float(p)
        run_t: list[float] = []
        run_p: list[int] = []
        run_h: list[int] = []
        # sqrt of the energy of each window of one (median) period: normalises the
        # cross-correlation so that a louder next cycle does not pull the match
        w = 2 * int(np.median(period) / 2) + 1
        sq = np.concatenate([[0.0], np.cumsum(np.pad(xs, w // 2) ** 2)])
        norm = np.sqrt(sq[w:] - sq[:-w] + 1e-30)  # norm[c]: window centred on sample c
        lo_f, hi_f = search
        while True:
            t0 = per[p]
            h = int(t0 / 2)
            run_t.append(s0 + tp)
            run_p.append(p)
            run_h.append(h)
            lo, hi = int(lo_f * t0), int(hi_f * t0) + 1
            if p + hi + h + 2 > n:
                break
            a0 = p + lo - h
            m = hi - lo + 1
            # cross-correlation of this cycle with the candidates for the next one
            cc = np.correlate(xs[a0 : a0 + m + 2 * h], xs[p - h : p + h + 1], "valid")
            cc /= norm[a0 + h : a0 + h + m]
            j = int(cc.argmax())
            d = 0.0
            if 0 < j < m - 1:
                c0, c1, c2 = cc[j - 1], cc[j], cc[j + 1]
                den = c0 - 2 * c1 + c2
                if den < 0:
                    d = min(max(0.5 * (c0 - c2) / den, -0.5), 0.5)
            tp += lo + j + d
            p = int(round(tp))
        # peak-to-peak amplitude over one period around each pulse, all at once
        pp, hh = np.asarray(run_p), np.asarray(run_h)
        off = np.arange(-hh.max(), hh.max() + 1)
        idx = np.clip(pp[:, None] + off, 0, n - 1)
        inside = np.abs(off)[None, :] <= hh[:, None]
        vals = xs[idx]
        run_a = (
            np.where(inside, vals, -np.inf).max(axis=1) - np.where(inside, vals, np.inf).min(axis=1)
        ).tolist()
        times += run_t
        amps += run_a
        times.append(np.nan)
        amps.append(np.nan)
    return np.asarray(times, dtype=np.float64), np.asarray(amps, dtype=np.float64)


def _ref_jitter_shimmer(
    times: np.ndarray,
    amplitudes: np.ndarray,
    n_frames: int,
    *,
    sr: int,
    hop: int,
    win: int,
    fmin: float = 70.0,
    fmax: float = 450.0,
    max_period_factor: float = 1.3,
    max_amplitude_factor: float = 1.6,
) -> tuple[np.ndarray, np.ndarray]:
    jit = np.full(n_frames, np.nan, dtype=np.float32)
    shim = np.full(n_frames, np.nan, dtype=np.float32)
    if times.size < 3 or n_frames == 0:
        return jit, shim
    period = np.diff(times)  # NaN across run separators
    amp = amplitudes
    ok_t = np.isfinite(period) & (period >= sr / fmax / 1.25) & (period <= sr / fmin * 1.25)
    p1, p2 = period[:-1], period[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        pair = ok_t[:-1] & ok_t[1:] & (np.maximum(p1, p2) / np.minimum(p1, p2) < max_period_factor)
        # amplitudes of the pulses that start the two periods: amp[i], amp[i+1]
        a1, a2 = amp[:-2], amp[1:-1]
        a_ratio = np.maximum(a1, a2) / np.minimum(a1, a2)
        apair = pair & (a1 > 0) & (a2 > 0) & (a_ratio < max_amplitude_factor)
    end = times[2:]  # the pulse that ends the second period
    rows = np.flatnonzero(pair)
    if rows.size == 0:
        return jit, shim
    n_span = -(-win // hop)
    sum_dt = np.zeros(n_frames)
    sum_t = np.zeros(n_frames)
    sum_da = np.zeros(n_frames)
    sum_a = np.zeros(n_frames)
    cnt_t = np.zeros(n_frames)
    cnt_a = np.zeros(n_frames)
    last = np.floor(end[rows] / hop).astype(np.int64)
    dt = np.abs(p2[rows] - p1[rows])
    mt = 0.5 * (p1[rows] + p2[rows])
    ar = apair[rows]
    da = np.where(ar, np.abs(a2[rows] - a1[rows]), 0.0)
    ma = np.where(ar, 0.5 * (a1[rows] + a2[rows]), 0.0)
    for k in range(n_span):
        f = last - k
        inside = (f >= 0) & (f < n_frames) & (end[rows] < f * hop + win)
        fi = f[inside]
        np.add.at(sum_dt, fi, dt[inside])
        np.add.at(sum_t, fi, mt[inside])
        np.add.at(cnt_t, fi, 1.0)
        np.add.at(sum_da, fi, da[inside])
        np.add.at(sum_a, fi, ma[inside])
        np.add.at(cnt_a, fi, ar[inside].astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        jit[:] = np.where(cnt_t > 0, sum_dt / sum_t, np.nan)
        shim[:] = np.where(cnt_a > 0, sum_da / sum_a, np.nan)
    return jit, shim


def _ref_formants(
    y: np.ndarray,
    voiced: np.ndarray,
    *,
    sr: int,
    hop: int,
    win: int,
    n_formants: int = 3,
    max_formant: float = 5500.0,
    order: int = 10,
    window_ms: float = 25.0,
    preemphasis_hz: float = 50.0,
) -> tuple[np.ndarray, np.ndarray]:
    voiced = np.asarray(voiced, dtype=bool)
    t = voiced.size
    freqs = np.full((t, n_formants), np.nan, dtype=np.float32)
    bws = np.full((t, n_formants), np.nan, dtype=np.float32)
    idx = np.flatnonzero(voiced)
    if idx.size == 0:
        return freqs, bws
    up, down = voice._resample_ratio(sr, int(round(2 * max_formant)))
    x = scipy.signal.resample_poly(np.asarray(y, dtype=np.float64), up, down)
    fs = sr * up / down
    alpha = np.exp(-2 * np.pi * preemphasis_hz / fs)
    x = np.concatenate([x[:1], x[1:] - alpha * x[:-1]])
    length = int(round(window_ms * fs / 1000))
    centre = np.round((idx * hop + win / 2.0) * fs / sr).astype(np.int64)
    start = centre - length // 2
    padded = np.concatenate([np.zeros(length), x, np.zeros(length)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, length)[start + length]
    frames = frames * np.hamming(length)
    a = lpc_autocorrelation(frames, order)
    comp = np.zeros((idx.size, order, order))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(comp)
    ang = np.angle(roots)
    f = ang * fs / (2 * np.pi)
    with np.errstate(divide="ignore"):
        bw = -np.log(np.abs(roots) + 1e-300) * fs / np.pi
    keep = (roots.imag > 0) & (f > 50.0) & (f < max_formant - 50.0)
    f = np.where(keep, f, np.inf)
    order_idx = np.argsort(f, axis=1)[:, :n_formants]
    fs_sorted = np.take_along_axis(f, order_idx, axis=1)
    bw_sorted = np.take_along_axis(bw, order_idx, axis=1)
    found = np.isfinite(fs_sorted)
    freqs[idx] = np.where(found, fs_sorted, np.nan)
    bws[idx] = np.where(found, bw_sorted, np.nan)
    return freqs, bws


def _equivalence_signals() -> list[tuple[np.ndarray, np.ndarray]]:
    """(signal, F0 track) pairs: jittery vowels with unvoiced gaps, a glide, noise."""
    out = []
    for seed, (f0_hz, jit, shim) in enumerate([(110.0, 0.02, 0.05), (230.0, 0.01, 0.1)]):
        y = vowel(f0=f0_hz, seconds=0.8, jitter=jit, shimmer=shim, seed=seed)
        n = 1 + (y.size - WIN) // HOP
        f0 = np.full(n, f0_hz)
        f0[20:26] = np.nan
        f0[-3:] = np.nan
        out.append((y, f0 * (1 + 0.05 * np.sin(np.arange(n) / 7.0))))
    n = 1 + (SR - WIN) // HOP
    f0 = np.linspace(90.0, 380.0, n)
    f_inst = np.interp(np.arange(SR), np.arange(n) * HOP + WIN / 2, f0)
    out.append((np.sin(2 * np.pi * np.cumsum(f_inst) / SR).astype(np.float32), f0))
    noise = np.random.default_rng(3).normal(scale=0.1, size=SR // 2).astype(np.float32)
    out.append((noise, np.full(1 + (noise.size - WIN) // HOP, 150.0)))
    return out


def test_the_pulse_kernel_equals_the_numpy_walk() -> None:
    # numba's walk sums each cross-correlation in np.correlate's order: same pulses
    for y, f0 in _equivalence_signals():
        times, amps = glottal_pulses(y, f0, sr=SR, hop=HOP, win=WIN)
        ref_t, ref_a = _ref_glottal_pulses(y, f0, sr=SR, hop=HOP, win=WIN)
        assert times.size == ref_t.size > 50
        np.testing.assert_allclose(times, ref_t, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(amps, ref_a, rtol=1e-12, atol=1e-12)
        n = f0.size  # the numba sums run in np.add.at's order: the same float32 values
        got = jitter_shimmer(ref_t, ref_a, n, sr=SR, hop=HOP, win=WIN)
        want = _ref_jitter_shimmer(ref_t, ref_a, n, sr=SR, hop=HOP, win=WIN)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_the_formant_kernel_equals_resample_poly_and_eigvals() -> None:
    # numpy-designed resampling filter, LPC and QR roots in numba vs scipy + LAPACK
    for y, f0 in _equivalence_signals():
        voiced = np.isfinite(f0)
        freqs, bws = formants(y, voiced, sr=SR, hop=HOP, win=WIN)
        ref_f, ref_b = _ref_formants(y, voiced, sr=SR, hop=HOP, win=WIN)
        assert np.isfinite(ref_f).sum() > 100
        np.testing.assert_array_equal(np.isnan(freqs), np.isnan(ref_f))
        np.testing.assert_allclose(freqs, ref_f, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(bws, ref_b, rtol=1e-5, atol=1e-3)


def test_voice_columns_equal_the_numpy_implementation() -> None:
    for y, f0 in _equivalence_signals():
        cols = voice_columns(y, f0, sr=SR, hop=HOP, win=WIN)
        times, amps = _ref_glottal_pulses(y, f0, sr=SR, hop=HOP, win=WIN)
        ref = _ref_jitter_shimmer(times, amps, f0.size, sr=SR, hop=HOP, win=WIN)
        ref_f, ref_b = _ref_formants(y, np.isfinite(f0), sr=SR, hop=HOP, win=WIN)
        for name, want in [
            ("jitter_local", ref[0]),
            ("shimmer_local", ref[1]),
            ("f1_hz", ref_f[:, 0]),
            ("f3_hz", ref_f[:, 2]),
            ("f2_bw_hz", ref_b[:, 1]),
        ]:
            want = np.where(np.isfinite(f0), want, np.nan)
            assert np.isfinite(want).sum() > 10, name
            np.testing.assert_allclose(cols[name], want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_resampling_filter_is_resample_polys() -> None:
    up, down = voice._resample_ratio(SR, 11000)
    h, half_len = voice._resample_filter(up, down)
    ref = scipy.signal.firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0))
    np.testing.assert_allclose(h, ref * up, rtol=1e-12, atol=1e-15)


def test_polynomial_roots_match_lapack() -> None:
    from sercap.features import numba_kernels

    rng = np.random.default_rng(5)
    for _ in range(200):  # stable all-pole predictors, as LPC yields, and a few random ones
        poles = rng.uniform(0.3, 0.999, 5) * np.exp(1j * rng.uniform(0.05, 3.1, 5))
        a = np.real(np.poly(np.concatenate([poles, poles.conj()])))
        for coef in (a, np.concatenate([[1.0], rng.normal(size=10)])):
            roots = np.zeros(10, dtype=np.complex128)
            assert numba_kernels.poly_roots(coef, roots)
            comp = np.zeros((10, 10))
            comp[0] = -coef[1:]
            comp[np.arange(1, 10), np.arange(9)] = 1.0
            ref = np.linalg.eigvals(comp)
            nearest = np.abs(ref[:, None] - roots[None, :]).min(axis=1)
            assert nearest.max() < 1e-9 * max(1.0, np.abs(ref).max())


def test_the_voice_path_imports_neither_scipy_signal_nor_librosa() -> None:
    # scipy.signal costs ~1 s to import and librosa ~4 s: the voice descriptors use neither
    code = (
        "import sys, numpy as np\n"
        "from sercap.features.pitch import track_pitch\n"
        "from sercap.features.voice import voice_columns\n"
        "p = np.abs(np.random.default_rng(0).normal(size=(30, 257))) ** 2\n"
        "f0 = track_pitch(p, np.ones(30), sr=16000, win=400, n_fft=512)[0]\n"
        "y = np.sin(np.arange(5200) * 0.06)\n"
        "voice_columns(y, np.full(31, 150.0), sr=16000, hop=160, win=400)\n"
        "print(sorted(m for m in ('scipy.signal', 'librosa') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "[]"


def _noisy(y: np.ndarray, hnr_db: float, seed: int = 1) -> np.ndarray:
    """``y`` plus white noise ``hnr_db`` below its power."""
    power = float(np.mean(np.asarray(y, np.float64) ** 2))
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (hnr_db / 10)), y.size)
    return (y + noise).astype(np.float32)


@pytest.mark.parametrize("f0", [100.0, 220.0])
@pytest.mark.parametrize("hnr_db", [0.0, 10.0, 20.0])
def test_hnr_of_a_vowel_in_noise_is_its_harmonics_to_noise_ratio(f0: float, hnr_db: float) -> None:
    # The default set's hnr_db column, through compute_frames with the F0 it tracks itself.
    # The frame autocorrelation it replaced read 4.1 and 5.6 dB for the 100 Hz vowel at 10
    # and 20 dB (lags beyond 112 samples wrapped in the 512-point FFT).
    y = _noisy(vowel(f0=f0, seconds=1.0), hnr_db)
    if hnr_db == 0.0:  # too noisy to be tracked as voiced everywhere: give the true F0
        cols = compute_frames(y, get_feature_set("basic").params)
        n = cols["f0_hz"].size
        hnr = harmonicity_cc(y, np.full(n, f0), sr=SR, hop=HOP, win=WIN)
    else:
        cols = compute_frames(y, get_feature_set("default").params)
        assert np.isfinite(cols["f0_hz"]).mean() > 0.9
        hnr = cols["hnr_db"]
    assert abs(float(np.nanmedian(hnr)) - hnr_db) < 1.5


def test_hnr_is_null_when_unvoiced_and_when_the_signal_is_too_short() -> None:
    y = vowel(f0=150.0, seconds=0.5)
    f0 = np.full(48, 150.0)
    f0[10:20] = np.nan
    hnr = harmonicity_cc(y, f0, sr=SR, hop=HOP, win=WIN)
    assert hnr.dtype == np.float32 and hnr.shape == (48,)
    assert np.isnan(hnr[10:20]).all() and np.isfinite(np.delete(hnr, range(10, 20))).all()
    assert hnr[30] > 25  # a noiseless vowel: near the 40 dB cap
    # one period of the 70 Hz floor (229 samples) plus a 110-sample lag do not fit in 300
    assert np.isnan(harmonicity_cc(y[:300], np.full(1, 150.0), sr=SR, hop=HOP, win=WIN)).all()


def _ref_harmonicity(y, f0, hop, win, window, search):
    """The same computation in numpy: best normalised cross-correlation, parabola, dB."""
    y = np.asarray(y, np.float64)
    out = np.full(f0.size, np.nan)
    for t in np.flatnonzero(np.isfinite(f0)):
        lag = int(np.floor(SR / f0[t] + 0.5))
        lo, hi = max(2, lag - search), lag + search
        s = min(max(t * hop + win // 2 - (window + hi) // 2, 0), y.size - window - hi)
        if s < 0:
            continue
        x = y[s : s + window]
        spans = [y[s + k : s + k + window] for k in range(lo, hi + 1)]
        rs = np.array([x @ z / np.sqrt((x @ x) * (z @ z)) for z in spans])
        b = int(np.argmax(rs))
        r = rs[b]
        if 0 < b < rs.size - 1 and rs[b - 1] - 2 * r + rs[b + 1] < -1e-12:
            d = rs[b - 1] - 2 * r + rs[b + 1]
            shift = np.clip(0.5 * (rs[b - 1] - rs[b + 1]) / d, -0.5, 0.5)
            r = r - 0.25 * (rs[b - 1] - rs[b + 1]) * shift
        r = np.clip(r, 1e-4, 1 - 1e-4)
        out[t] = 10 * np.log10(r / (1 - r))
    return out


def test_the_hnr_kernel_equals_the_numpy_computation() -> None:
    rng = np.random.default_rng(3)
    y = _noisy(vowel(f0=130.0, seconds=0.6, jitter=0.01, seed=2), 12.0)
    f0 = 130.0 * np.exp(rng.normal(0, 0.05, 58))
    f0[rng.random(58) < 0.2] = np.nan
    got = harmonicity_cc(y, f0, sr=SR, hop=HOP, win=WIN, fmin=70.0, search=3)
    want = _ref_harmonicity(y, f0, HOP, WIN, round(SR / 70.0), 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.isfinite(want).sum() > 30
