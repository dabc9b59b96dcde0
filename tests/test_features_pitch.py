"""F0 path tracking: the Viterbi path over autocorrelation candidates (known answers)."""

import numpy as np
import pytest

from sercap.features.lld import frame_signal, pitch_from_power, power_spectrum
from sercap.features.pitch import acf_candidates, track_pitch, viterbi_path

SR, WIN, HOP, NFFT = 16000, 400, 160, 512


def test_the_path_ignores_single_frame_octave_jumps() -> None:
    # the true 200 Hz candidate is always present, but every 5th frame its octave (400 Hz)
    # or sub-octave (100 Hz) scores slightly higher: frame-wise picking jumps, the path not
    t = 40
    f0 = np.tile([[200.0, 400.0, 100.0]], (t, 1))
    score = np.tile([[0.80, 0.60, 0.55]], (t, 1))
    score[::5, 1] = 0.85
    score[2::5, 2] = 0.84
    framewise = f0[np.arange(t), np.argmax(score, axis=1)]
    assert (framewise != 200).sum() == 16
    path = viterbi_path(f0, score, np.full(t, 0.45))
    assert (path == 0).all()


def test_the_path_follows_a_real_octave_change_and_voicing() -> None:
    # a sustained change of the strongest candidate wins over the jump cost; weak frames
    # (below the unvoiced score) are unvoiced; absent candidates (NaN) are never chosen
    f0 = np.array([[120.0, 240.0]] * 20 + [[240.0, np.nan]] * 20 + [[300.0, np.nan]] * 5)
    score = np.array([[0.9, 0.5]] * 20 + [[0.9, 0.0]] * 20 + [[0.2, 0.0]] * 5)
    path = viterbi_path(f0, score, np.full(45, 0.45))
    chosen = np.where(path >= 0, f0[np.arange(45), np.maximum(path, 0)], np.nan)
    assert (chosen[:19] == 120).all() and (chosen[21:40] == 240).all()
    assert (path[40:] == -1).all()


def test_empty_input() -> None:
    assert viterbi_path(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)).shape == (0,)
    f0, s, h = track_pitch(np.zeros((0, NFFT // 2 + 1)), np.zeros(0), sr=SR, win=WIN, n_fft=NFFT)
    assert f0.shape == s.shape == h.shape == (0,)


def _frames(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fr = frame_signal(y.astype(np.float32), WIN, HOP)
    return power_spectrum(fr, NFFT), np.sqrt(np.mean(fr**2, axis=1))


def _octave_trap(seconds: float = 2.0) -> np.ndarray:
    """A 150 Hz voice whose odd harmonics fade in and out: in the frames where they are
    nearly gone, the autocorrelation peak at 300 Hz matches the one at 150 Hz."""
    t = np.arange(int(seconds * SR)) / SR
    odd = 0.5 + 0.5 * np.cos(2 * np.pi * 3.0 * t)  # 0..1, three dips per second
    odd = np.where(odd < 0.2, 0.02, odd)
    y = np.zeros_like(t)
    for k in range(1, 10):
        y += (odd if k % 2 else 1.0) * (0.3 / k) * np.sin(2 * np.pi * 150 * k * t)
    return y


def test_the_tracker_removes_octave_errors_of_framewise_picking() -> None:
    power, rms = _frames(_octave_trap())
    f_old, _, _ = pitch_from_power(power, rms, sr=SR, win=WIN, n_fft=NFFT)
    f_new, _, hnr = track_pitch(power, rms, sr=SR, win=WIN, n_fft=NFFT)
    wrong_old = np.nanmean(np.abs(np.log2(f_old / 150.0)) > 0.5)
    wrong_new = np.nanmean(np.abs(np.log2(f_new / 150.0)) > 0.5)
    assert wrong_old > 0.05  # the trap works on frame-wise picking
    assert wrong_new == 0.0
    assert np.isfinite(f_new).mean() > 0.95
    assert np.nanmedian(f_new) == pytest.approx(150.0, rel=0.01)
    assert np.all(np.isfinite(hnr) == np.isfinite(f_new))


def test_candidates_are_sorted_strongest_first_and_include_the_octave() -> None:
    t = np.arange(SR // 2) / SR
    y = sum(0.2 / k * np.sin(2 * np.pi * 200 * k * t) for k in range(1, 6))
    power, _ = _frames(y)
    f0, strength = acf_candidates(power, sr=SR, win=WIN, n_fft=NFFT, n_candidates=3)
    mid = len(f0) // 2
    assert f0[mid, 0] == pytest.approx(200.0, rel=0.01)
    assert np.all(np.diff(np.nan_to_num(strength[mid], nan=-1.0)) <= 0)
    assert np.any(np.abs(f0[mid] - 100.0) < 2)  # the sub-octave lag is a candidate


def test_silence_and_noise_stay_unvoiced() -> None:
    power, rms = _frames(np.zeros(SR // 2))
    assert np.isnan(track_pitch(power, rms, sr=SR, win=WIN, n_fft=NFFT)[0]).all()
    noise = np.random.default_rng(0).normal(scale=0.1, size=SR // 2)
    power, rms = _frames(noise)
    assert np.isnan(track_pitch(power, rms, sr=SR, win=WIN, n_fft=NFFT)[0]).mean() > 0.95


def _ref_viterbi_path(
    f0: np.ndarray,
    score: np.ndarray,
    unvoiced_score: np.ndarray,
    *,
    octave_jump_cost: float = 0.35,
    voiced_unvoiced_cost: float = 0.14,
) -> np.ndarray:
    """The numpy recursion the numba kernel replaced (commit f2cab18), as the reference."""
    t, k = f0.shape
    if t == 0:
        return np.zeros(0, dtype=np.int64)
    present = np.isfinite(f0)
    states = np.concatenate(
        [np.where(present, score, -np.inf), np.asarray(unvoiced_score, float)[:, None]], axis=1
    )
    logf = np.log2(np.where(present, f0, 1.0))
    # cost[t-1, i, j]: from state i in frame t-1 to state j in frame t (state k = unvoiced)
    cost = np.full((max(t - 1, 0), k + 1, k + 1), float(voiced_unvoiced_cost))
    cost[:, k, k] = 0.0
    cost[:, :k, :k] = octave_jump_cost * np.abs(logf[:-1, :, None] - logf[1:, None, :])
    back = np.zeros((t, k + 1), dtype=np.int64)
    delta = states[0].copy()
    flat = np.arange(k + 1)  # m[b, j] is m.ravel()[b * (k + 1) + j]
    m = np.empty((k + 1, k + 1))
    for i in range(1, t):
        np.subtract(delta[:, None], cost[i - 1], out=m)
        b = m.argmax(axis=0)
        back[i] = b
        delta = m.ravel()[b * (k + 1) + flat]
        delta += states[i]
    path = np.empty(t, dtype=np.int64)
    s = int(np.argmax(delta))
    for i in range(t - 1, -1, -1):
        path[i] = s
        s = int(back[i, s])
    path[path == k] = -1
    return path


def test_the_viterbi_kernel_equals_the_numpy_recursion() -> None:
    rng = np.random.default_rng(7)
    for t, k in [(1, 4), (2, 1), (300, 4), (500, 3)]:
        f0 = rng.uniform(70, 450, (t, k))
        f0[rng.random((t, k)) < 0.3] = np.nan  # absent candidates
        score = rng.uniform(0, 1, (t, k))
        if k > 1:  # a duplicated candidate: exact ties, where the first maximum must win
            f0[:, -1], score[:, -1] = f0[:, 0], score[:, 0]
        unvoiced = rng.uniform(0.3, 0.8, t)
        for costs in [(0.35, 0.14), (0.0, 0.0), (2.0, 0.5)]:
            kw = {"octave_jump_cost": costs[0], "voiced_unvoiced_cost": costs[1]}
            got = viterbi_path(f0, score, unvoiced, **kw)
            np.testing.assert_array_equal(got, _ref_viterbi_path(f0, score, unvoiced, **kw))


def _numpy_acf_peaks(acf, wacf, lo, k, min_strength):
    """The numpy code the acf_peaks kernel replaced (k argmax passes over masked peaks)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = acf[:, lo - 1 : lo - 1 + wacf.size] / (acf[:, :1] * wacf)
    r = np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)
    core = r[:, 1:-1]
    is_peak = (core >= r[:, :-2]) & (core > r[:, 2:]) & (core >= min_strength)
    masked = np.where(is_peak, core, -np.inf)
    rows = np.arange(len(r))
    idx = np.empty((len(r), k), dtype=np.int64)
    valid = np.empty((len(r), k), dtype=bool)
    for j in range(k):
        idx[:, j] = np.argmax(masked, axis=1)
        valid[:, j] = np.isfinite(masked[rows, idx[:, j]])
        masked[rows, idx[:, j]] = -np.inf
    rr = rows[:, None]
    return idx, valid, r[rr, idx], core[rr, idx], r[rr, idx + 2]


def test_acf_peaks_kernel_equals_the_numpy_argmax_passes() -> None:
    from sercap.features import numba_kernels

    rng = np.random.default_rng(3)
    acf = rng.standard_normal((300, 512)).astype(np.float32)
    acf[:, 0] = np.abs(acf[:, 0]) + 1.0
    acf[0] = 0.0  # silent frame: 0 / 0, no peak
    acf[1, 40:60] = 0.5  # plateau: ties
    acf[2] = 0.1
    acf[2, 35:240:2] = 0.9  # equal peaks (with a flat wacf): the first index wins
    acf[2, 0] = 1.0
    for wacf in (np.linspace(1.0, 0.5, 197), np.ones(197)):
        got = numba_kernels.acf_peaks(acf, wacf, 35, 4, 0.2)
        want = _numpy_acf_peaks(acf.astype(np.float64), wacf, 35, 4, 0.2)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        assert not got[1][0].any() and got[1][2].all()
    assert got[0][2].tolist() == [0, 2, 4, 6]  # ties: lag order (index 0 is lag lo)
