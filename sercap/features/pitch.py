"""F0 path tracking: per-frame autocorrelation candidates joined by a Viterbi path (pure).

Picking each frame's best autocorrelation peak on its own leaves octave jumps and edge
errors (a frame at a voicing boundary that locks onto half or twice the pitch). Praat's
"To Pitch (ac)" (Boersma 1993) and pYIN instead keep several candidates per frame, plus an
"unvoiced" candidate, and choose the path through them that maximises the candidates'
strengths minus transition costs: an octave-jump cost proportional to |log2(F0 ratio)|
between voiced frames and a fixed cost for each voiced/unvoiced switch. This module does
that on the candidates of the normalised autocorrelation sercap already computes from the
power spectrum (see :func:`sercap.features.lld.pitch_from_power`).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft


@functools.lru_cache(maxsize=16)
def _window_acf(win: int, n_fft: int) -> np.ndarray:
    n = np.arange(win)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * n / win)  # periodic Hann, as lld's STFT window
    acf = np.fft.irfft(np.abs(np.fft.rfft(w, n=n_fft)) ** 2, n=n_fft)
    return acf / acf[0]


def acf_candidates(
    power: np.ndarray,
    *,
    sr: int,
    win: int,
    n_fft: int,
    fmin: float = 70.0,
    fmax: float = 450.0,
    n_candidates: int = 4,
    min_strength: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """The strongest local maxima of each frame's normalised autocorrelation.

    Parameters
    ----------
    power : ndarray, shape (T, n_fft // 2 + 1)
        Power spectra of Hann-windowed frames.
    sr, win, n_fft : int
        Sample rate, window length and FFT length in samples.
    fmin, fmax : float
        Pitch range in Hz (lags ``sr / fmax`` .. ``sr / fmin``).
    n_candidates : int
        How many peaks to keep per frame.
    min_strength : float
        Peaks whose normalised autocorrelation is below this are dropped.

    Returns
    -------
    f0 : ndarray, shape (T, n_candidates)
        Candidate frequencies in Hz (parabolically interpolated lags), NaN where a frame has
        fewer candidates.
    strength : ndarray, shape (T, n_candidates)
        Normalised autocorrelation at each candidate (0..1), NaN where absent.
    """
    t = power.shape[0]
    k_out = int(n_candidates)
    if t == 0:
        return np.zeros((0, k_out)), np.zeros((0, k_out))
    acf = scipy.fft.irfft(np.asarray(power, np.float32), n=n_fft, axis=1, workers=1)
    lo = max(2, int(np.floor(sr / fmax)))
    hi = min(int(np.ceil(sr / fmin)), n_fft // 2 - 1)
    wacf = _window_acf(win, n_fft)
    k = min(k_out, hi - lo + 1)
    from sercap.features import numba_kernels  # one pass per frame over its lags

    idx, valid, left, peak, right = numba_kernels.acf_peaks(
        np.ascontiguousarray(acf, dtype=np.float32),
        np.ascontiguousarray(wacf[lo - 1 : hi + 2], dtype=np.float64),
        int(lo),
        int(k),
        float(min_strength),
    )
    denom = left - 2 * peak + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / denom, 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    lag = lo + idx + shift
    strength = np.clip(peak - 0.25 * (left - right) * shift, 0.0, 1.0)
    f0 = np.full((t, k_out), np.nan)
    st = np.full((t, k_out), np.nan)
    f0[:, :k] = np.where(valid, sr / lag, np.nan)
    st[:, :k] = np.where(valid, strength, np.nan)
    return f0, st


def viterbi_path(
    f0: np.ndarray,
    score: np.ndarray,
    unvoiced_score: np.ndarray,
    *,
    octave_jump_cost: float = 0.35,
    voiced_unvoiced_cost: float = 0.14,
) -> np.ndarray:
    """The best path through per-frame candidates: which candidate each frame takes.

    Maximises the sum of the chosen candidates' scores minus transition costs:
    ``octave_jump_cost * |log2(f_prev / f_next)|`` between two voiced candidates,
    ``voiced_unvoiced_cost`` for a switch between voiced and unvoiced, nothing between two
    unvoiced frames (Boersma 1993, as Praat's "To Pitch").

    Parameters
    ----------
    f0 : ndarray, shape (T, K)
        Candidate frequencies (Hz); NaN marks an absent candidate.
    score : ndarray, shape (T, K)
        Candidate scores (higher is better); ignored where ``f0`` is NaN.
    unvoiced_score : ndarray, shape (T,)
        Score of the unvoiced choice in each frame.
    octave_jump_cost, voiced_unvoiced_cost : float
        Transition costs (per frame step).

    Returns
    -------
    ndarray of int, shape (T,)
        The chosen candidate's column in ``f0``, or -1 where the frame is unvoiced.
    """
    t, k = f0.shape
    if t == 0:
        return np.zeros(0, dtype=np.int64)
    present = np.isfinite(f0)
    states = np.concatenate(
        [np.where(present, score, -np.inf), np.asarray(unvoiced_score, float)[:, None]], axis=1
    )
    logf = np.log2(np.where(present, f0, 1.0))
    from sercap.features import numba_kernels

    return numba_kernels.viterbi(
        np.ascontiguousarray(states, dtype=np.float64),
        np.ascontiguousarray(logf, dtype=np.float64),
        float(octave_jump_cost),
        float(voiced_unvoiced_cost),
    )


def track_pitch(
    power: np.ndarray,
    rms: np.ndarray,
    *,
    sr: int,
    win: int,
    n_fft: int,
    fmin: float = 70.0,
    fmax: float = 450.0,
    threshold: float = 0.45,
    octave_cost: float = 0.02,
    silence_db: float = -45.0,
    octave_jump_cost: float = 0.35,
    voiced_unvoiced_cost: float = 0.14,
    n_candidates: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F0 (Hz, NaN when unvoiced), voicing strength (0..1) and HNR (dB, NaN when unvoiced).

    Same outputs and meaning as :func:`sercap.features.lld.pitch_from_power`, with the F0
    chosen by :func:`viterbi_path` over :func:`acf_candidates`. A voiced candidate scores
    ``r - octave_cost * log2(fmin / f)`` (a small bonus for high candidates against
    octave-down errors); the unvoiced choice scores ``threshold`` in loud frames, rising to
    ``threshold + 2`` as a frame's RMS falls toward ``silence_db`` below the loudest
    frame's (Praat's formula with its silence threshold as a level).

    Parameters
    ----------
    power : ndarray, shape (T, n_fft // 2 + 1)
        Power spectra of Hann-windowed frames.
    rms : ndarray, shape (T,)
        RMS of each frame.
    sr, win, n_fft : int
        Sample rate, window and FFT length in samples.
    fmin, fmax, threshold, octave_cost, silence_db : float
        As in Praat: pitch range, voicing threshold, octave cost, silence level (dB).
    octave_jump_cost, voiced_unvoiced_cost : float
        Transition costs of the path (see :func:`viterbi_path`).
    n_candidates : int
        Candidates per frame.

    Returns
    -------
    f0, strength, hnr : ndarray of float32, shape (T,)
    """
    t = power.shape[0]
    if t == 0:
        empty = np.zeros(0, dtype=np.float32)
        return empty, empty, empty
    f0c, rc = acf_candidates(
        power,
        sr=sr,
        win=win,
        n_fft=n_fft,
        fmin=fmin,
        fmax=fmax,
        n_candidates=n_candidates,
        min_strength=0.5 * threshold,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        score = rc - octave_cost * np.log2(fmin / f0c)
    rms = np.asarray(rms, dtype=np.float64)
    rel = rms / (rms.max() + 1e-20)
    silence = 10 ** (silence_db / 20)
    unvoiced = threshold + np.maximum(0.0, 2.0 - rel / (silence / (1.0 + threshold)))
    unvoiced = np.where(rms > 1e-5, unvoiced, threshold + 10.0)  # digital silence: unvoiced
    path = viterbi_path(
        f0c,
        score,
        unvoiced,
        octave_jump_cost=octave_jump_cost,
        voiced_unvoiced_cost=voiced_unvoiced_cost,
    )
    rows = np.arange(t)
    voiced = path >= 0
    pick = np.where(voiced, path, 0)
    f0 = np.where(voiced, f0c[rows, pick], np.nan)
    best = np.nan_to_num(np.nanmax(np.where(np.isfinite(rc), rc, -1.0), axis=1), nan=0.0)
    strength = np.where(voiced, rc[rows, pick], np.clip(best, 0.0, 1.0))
    rr = np.clip(strength, 1e-4, 1 - 1e-4)
    hnr = np.where(voiced, 10 * np.log10(rr / (1 - rr)), np.nan)
    return f0.astype(np.float32), strength.astype(np.float32), hnr.astype(np.float32)
