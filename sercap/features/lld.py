"""Per-frame low-level descriptors: waveform in, frame table out (pure, no warehouse).

Everything spectral comes from ONE short-time Fourier transform per utterance: log-mel bands
and MFCC, spectral shape, band energies, contrast, chroma, and pitch, voicing and
harmonicity from the autocorrelation (the inverse FFT of the same power spectrum, divided by
the window's own autocorrelation as in Boersma 1993). Calling each librosa function on the
waveform would recompute the STFT a dozen times; here it is computed once, which is what
makes extraction run over a thousand times faster than real time.

Unvoiced frames hold NaN for F0 and the other voiced-only descriptors; writers turn NaN into
NULL so that SQL aggregates are voiced-only for free.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.fft

from sercap.features.framing import frame_geometry
from sercap.features.versions import LLD_VERSION  # noqa: F401 - bump it there
from sercap.features.voice import VOICE_COLUMNS

_EPS = 1e-10

#: Columns that are NULL (NaN) in unvoiced frames.
VOICED_ONLY = ("f0_hz", "hnr_db", *VOICE_COLUMNS)


def n_frames(n_samples: int, params: Mapping[str, Any]) -> int:
    """How many frames a signal of ``n_samples`` gives (0 when shorter than one window)."""
    win, hop, _ = frame_geometry(params)
    return 0 if n_samples < win else 1 + (n_samples - win) // hop


# ----------------------------------------------------------------------------- STFT
@functools.lru_cache(maxsize=16)
def _window(win: int) -> np.ndarray:
    n = np.arange(win)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / win)).astype(np.float32)  # periodic Hann


def frame_signal(y: np.ndarray, win: int, hop: int) -> np.ndarray:
    """(T, win) view of the frames of ``y`` (no padding: a frame is a whole window)."""
    if y.size < win:
        return np.zeros((0, win), dtype=y.dtype)
    return np.lib.stride_tricks.sliding_window_view(y, win)[::hop]


def power_spectrum(frames: np.ndarray, n_fft: int) -> np.ndarray:
    """|FFT|^2 of Hann-windowed frames, (T, n_fft//2+1) float32, scaled so that a
    full-scale sine has a peak bin near 1 (0 dB)."""
    return power_spectra(frames, n_fft, dc_free=False)[0]


def power_spectra(
    frames: np.ndarray, n_fft: int, *, dc_free: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`power_spectrum`, and (``dc_free``) that of the frames less their own mean.

    The pitch analysis needs the second: a DC offset puts the normalised autocorrelation
    near 1 at every lag, so silent or noisy frames read as voiced (Praat takes the mean out
    too). Windowing is linear, so ``(x - m)·w`` transforms to ``X_w - m·W``: one FFT gives
    both.

    Examples
    --------
    >>> import numpy as np
    >>> frames = np.random.default_rng(0).normal(size=(3, 400)).astype(np.float32)
    >>> plain, dc_free = power_spectra(frames + 0.5, 512)
    >>> bool(np.allclose(dc_free, power_spectrum(frames - frames.mean(1, keepdims=True), 512),
    ...                  rtol=1e-3, atol=1e-6))
    True
    """
    win = frames.shape[1]
    w = _window(win)
    spec = scipy.fft.rfft(frames * w, n=n_fft, axis=1, workers=1)
    scale = 4.0 / float(w.sum()) ** 2
    power = ((spec.real**2 + spec.imag**2) * scale).astype(np.float32, copy=False)
    if not dc_free:
        return power, None
    mean = frames.mean(axis=1, dtype=np.float64).astype(spec.real.dtype)
    spec -= mean[:, None] * _window_spectrum(win, n_fft).astype(spec.dtype)
    return power, ((spec.real**2 + spec.imag**2) * scale).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=16)
def _window_spectrum(win: int, n_fft: int) -> np.ndarray:
    """The rfft of the Hann window itself: what a constant becomes after windowing."""
    return scipy.fft.rfft(_window(win).astype(np.float64), n=n_fft)


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``): linear below 1 kHz, log above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    with np.errstate(divide="ignore"):
        log_part = min_log_mel + np.log(np.maximum(hz, 1e-300) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log_part, hz / f_sp)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(
        mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel
    )


@functools.lru_cache(maxsize=16)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular filters on Slaney's mel scale, (n_mels, n_fft//2+1) float32, unnormalised.

    The same matrix as ``librosa.filters.mel(..., norm=None)`` (a test compares them), built
    in numpy so that extraction never imports librosa (its import costs seconds per process).
    """
    fft_hz = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    return np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)


def spectral_contrast(
    magnitude: np.ndarray,
    freqs: np.ndarray,
    *,
    sr: int,
    n_bands: int = 6,
    fmin: float = 200.0,
    quantile: float = 0.02,
) -> np.ndarray:
    """Octave-band spectral contrast (Jiang et al. 2002) as librosa computes it, (T, n_bands+1).

    Band k spans ``fmin·2^(k-1)`` to ``fmin·2^k`` Hz (band 0 is everything below ``fmin``,
    the last band everything above its lower edge, up to the last of ``freqs``); in each
    frame the band's peak and valley are the means of its top and bottom ``quantile`` of
    bins (at least one), and the contrast is their difference in dB (librosa's
    ``power_to_db`` of the magnitudes: floor 1e-10, and each of peaks and valleys clipped at
    80 dB under its maximum over the utterance). Equal to
    ``librosa.feature.spectral_contrast(S=magnitude.T, freq=freqs, ...)`` (a test compares).

    Parameters
    ----------
    magnitude : ndarray, shape (T, F)
        Magnitude spectra, one row per frame.
    freqs : ndarray, shape (F,)
        Centre frequency of each column in Hz.
    sr : int
        Sample rate (bands must start below Nyquist).
    n_bands, fmin, quantile : int, float, float
        As librosa's.
    """
    t = magnitude.shape[0]
    edges = np.zeros(n_bands + 2)
    edges[1:] = fmin * 2.0 ** np.arange(n_bands + 1)
    if np.any(edges[:-1] >= 0.5 * sr):
        raise ValueError("spectral contrast: a band starts above Nyquist; lower fmin or n_bands")
    valley = np.zeros((t, n_bands + 1))
    peak = np.zeros((t, n_bands + 1))
    for k, (f_low, f_high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        band = (freqs >= f_low) & (freqs <= f_high)
        idx = np.flatnonzero(band)
        if k > 0:
            band[idx[0] - 1] = True
        if k == n_bands:
            band[idx[-1] + 1 :] = True
        cols = np.flatnonzero(band)
        n_take = max(int(np.rint(quantile * cols.size)), 1)
        if k < n_bands:
            cols = cols[:-1]
        sub = magnitude[:, cols[0] : cols[-1] + 1]
        if n_take == 1:
            valley[:, k] = sub.min(axis=1)
            peak[:, k] = sub.max(axis=1)
        else:
            # numpy's vectorised sort of short rows is ~3x faster than np.partition here
            part = np.sort(sub, axis=1)
            valley[:, k] = part[:, :n_take].mean(axis=1)
            peak[:, k] = part[:, -n_take:].mean(axis=1)

    def to_db(x: np.ndarray) -> np.ndarray:
        db = 10.0 * np.log10(np.maximum(x, 1e-10))
        return np.maximum(db, db.max() - 80.0) if db.size else db

    return (to_db(peak) - to_db(valley)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _chroma_filterbank(sr: int, n_fft: int) -> np.ndarray:
    import librosa

    return librosa.filters.chroma(sr=sr, n_fft=n_fft).astype(np.float32)


# ----------------------------------------------------------------------------- pitch
@functools.lru_cache(maxsize=16)
def _window_acf(win: int, n_fft: int) -> np.ndarray:
    w = _window(win).astype(np.float64)
    spec = np.fft.rfft(w, n=n_fft)
    acf = np.fft.irfft(np.abs(spec) ** 2, n=n_fft)
    return acf / acf[0]


def pitch_from_power(
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F0 (Hz, NaN when unvoiced), voicing strength (0..1) and HNR (dB, NaN when unvoiced).

    The normalised autocorrelation r(τ) of each frame is the inverse FFT of its power
    spectrum divided by that of the window. The best lag maximises
    r(τ) + octave_cost·log2(fmax·τ/sr)·(-1) (a small bonus for short lags against octave
    errors); a frame is voiced when r at that lag exceeds ``threshold`` and the frame is
    within ``silence_db`` of the loudest frame. HNR = 10·log10(r / (1 - r)).
    """
    t = power.shape[0]
    if t == 0:
        empty = np.zeros(0, dtype=np.float32)
        return empty, empty, empty
    acf = scipy.fft.irfft(power, n=n_fft, axis=1, workers=1)
    lo = max(2, int(np.floor(sr / fmax)))
    hi = min(int(np.ceil(sr / fmin)), n_fft // 2 - 1)
    r0 = acf[:, :1]
    wacf = _window_acf(win, n_fft)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = acf[:, lo - 1 : hi + 2] / (r0 * wacf[lo - 1 : hi + 2])
    r = np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)
    lags = np.arange(lo - 1, hi + 2, dtype=np.float64)
    bonus = -octave_cost * np.log2(lags * fmin / sr)
    core = r[:, 1:-1]
    score = core + bonus[1:-1]
    # only local maxima count as candidates
    is_peak = (core >= r[:, :-2]) & (core >= r[:, 2:])
    score = np.where(is_peak, score, -np.inf)
    k = np.argmax(score, axis=1)
    rows = np.arange(t)
    peak = core[rows, k]
    left = r[rows, k]
    right = r[rows, k + 2]
    denom = left - 2 * peak + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / denom, 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    lag = lags[1:-1][k] + shift
    strength = np.clip(peak - 0.25 * (left - right) * shift, 0.0, 1.0)
    has_peak = np.isfinite(score[rows, k])
    strength = np.where(has_peak, strength, 0.0)
    rms_db = 20 * np.log10(rms + _EPS)
    loud = rms_db > (rms_db.max() + silence_db)
    voiced = has_peak & (strength > threshold) & loud & (rms > 1e-5)
    f0 = np.where(voiced, sr / lag, np.nan)
    rr = np.clip(strength, 1e-4, 1 - 1e-4)
    hnr = np.where(voiced, 10 * np.log10(rr / (1 - rr)), np.nan)
    return f0.astype(np.float32), strength.astype(np.float32), hnr.astype(np.float32)


def pyin_pitch(
    y: np.ndarray, t: int, sr: int, hop: int, fmin: float, fmax: float, *, win: int = 0
) -> np.ndarray:
    """F0 by probabilistic YIN (librosa.pyin), aligned to ``t`` frames; NaN when unvoiced.

    pyin's centred frame k is centred on sample ``k * hop``, sercap's frame k on
    ``k * hop + win / 2``: the signal is read from ``win // 2`` on, so that the two agree.
    About 50× slower than the autocorrelation; kept as an option for comparisons.
    """
    import librosa

    frame_length = 1 << int(np.ceil(np.log2(2.5 * sr / fmin)))
    f0, _, _ = librosa.pyin(
        y[win // 2 :].astype(np.float32),
        fmin=fmin,
        fmax=fmax,
        sr=sr,
        frame_length=frame_length,
        hop_length=hop,
        center=True,
    )
    out = np.full(t, np.nan, dtype=np.float32)
    n = min(t, f0.size)
    out[:n] = f0[:n]
    return out


# ----------------------------------------------------------------------------- deltas
def deltas(x: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over ±``width`` frames along axis 0 (HTK formula, edges repeated).

    A NaN (unvoiced) frame, or a NaN neighbour, makes the delta NaN, so voiced-only
    descriptors stay voiced-only.
    """
    if x.shape[0] == 0:
        return x.copy()
    pad = np.concatenate([np.repeat(x[:1], width, 0), x, np.repeat(x[-1:], width, 0)])
    t = x.shape[0]
    out = np.zeros_like(x, dtype=np.float32)
    for n in range(1, width + 1):
        out += n * (pad[width + n : width + n + t] - pad[width - n : width - n + t])
    out /= 2 * sum(n * n for n in range(1, width + 1))
    out[np.isnan(x)] = np.nan
    return out


# ----------------------------------------------------------------------------- main
def _bins(freqs: np.ndarray, lo_hz: float, hi_hz: float, closed: bool = False) -> slice:
    """The contiguous bins with ``lo_hz <= f < hi_hz`` (``<= hi_hz`` when ``closed``)."""
    first = int(np.searchsorted(freqs, lo_hz, side="left"))
    last = int(np.searchsorted(freqs, hi_hz, side="right" if closed else "left"))
    return slice(first, last)


def _rolloff_bins(power: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(T, Q) count of bins whose cumulative power (float32) is below each threshold."""
    if power.shape[0] == 0 or thresholds.shape[1] == 0:
        return np.zeros(thresholds.shape, dtype=np.int64)
    from sercap.features import numba_kernels  # one pass per frame, stopping at the roll-off

    return numba_kernels.rolloff_bins(
        np.ascontiguousarray(power, dtype=np.float32),
        np.ascontiguousarray(thresholds, dtype=np.float64),
    )


class FrameColumns(dict):
    """:func:`compute_frames`' result: name → column, each column a row of ``self.matrix``."""

    def __init__(self, names: list[str], matrix: np.ndarray) -> None:
        super().__init__(zip(names, matrix, strict=True))
        self.matrix = matrix
        self._rows = tuple(self.values())


def compute_frames(y: np.ndarray, params: Mapping[str, Any]) -> FrameColumns:
    """Descriptors of every frame of ``y`` (float32 mono at ``params['sample_rate']``).

    Returns an ordered dict of float32 columns of equal length (the number of frames),
    named ``<descriptor>[_<index>]`` (``logmel_017``, ``mfcc_01``, ``f0_hz``…) with a ``_d``
    suffix for deltas. Which groups appear is set by ``params['groups']``.
    """
    sr = int(params["sample_rate"])
    win, hop, n_fft = frame_geometry(params)
    groups: Mapping[str, Any] = params["groups"]
    y = np.asarray(y, dtype=np.float32)
    frames = frame_signal(y, win, hop)
    t = frames.shape[0]
    power, pitch_power = power_spectra(frames, n_fft, dc_free="pitch" in groups)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1, dtype=np.float32)
    cols: dict[str, np.ndarray] = {}

    def put(prefix: str, matrix: np.ndarray, digits: int, start: int = 1) -> None:
        for i in range(matrix.shape[1]):
            cols[f"{prefix}_{i + start:0{digits}d}"] = matrix[:, i]

    logmel = None
    if "logmel" in groups or "mfcc" in groups:
        g = groups.get("logmel", {})
        n_mels = int(g.get("n_mels", 26))
        fb = mel_filterbank(
            sr, n_fft, n_mels, float(g.get("fmin", 0.0)), float(g.get("fmax", sr / 2))
        )
        mel = power @ fb.T
        logmel = 10 * np.log10(mel + _EPS)
        if "logmel" in groups:
            put("logmel", logmel, 3)
    if "mfcc" in groups:
        n_mfcc = int(groups["mfcc"].get("n_mfcc", 14))
        cep = scipy.fft.dct(logmel, type=2, norm="ortho", axis=1, workers=1)
        first = 0 if groups["mfcc"].get("c0", False) else 1
        put("mfcc", cep[:, first : first + n_mfcc], 2, start=first)

    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=1)) if t else np.zeros(0)
    if "energy" in groups:
        cols["rms_db"] = 20 * np.log10(rms + 1e-5)
        if logmel is not None:
            cols["loudness"] = np.sum(np.power(10 ** (logmel / 10), 0.3), axis=1)
        sign = np.signbit(frames)
        cols["zcr"] = np.mean(sign[:, 1:] != sign[:, :-1], axis=1) if t else np.zeros(0)

    mag = None
    if "spectral" in groups:
        g = groups["spectral"]
        mag = np.sqrt(power)
        msum = mag.sum(axis=1) + _EPS
        centroid = (mag @ freqs) / msum
        cols["spectral_centroid"] = centroid
        spread = (mag @ (freqs**2)) / msum - centroid**2
        cols["spectral_bandwidth"] = np.sqrt(np.maximum(spread, 0))
        psum = power.sum(axis=1, dtype=np.float64) + _EPS
        # roll-off: the first bin where the cumulative power reaches q of the total
        qs = [float(q) for q in g.get("rolloffs", [0.25, 0.5, 0.75, 0.9])]
        idx = _rolloff_bins(power, psum[:, None] * np.asarray(qs)[None, :])
        silent = psum <= 2 * _EPS  # digital silence: no power to roll off (0 Hz, as librosa)
        for k, q in enumerate(qs):
            cols[f"spectral_rolloff{int(round(q * 100)):02d}"] = np.where(
                silent, np.float32(0.0), freqs[idx[:, k].clip(0, freqs.size - 1)]
            )
        logp = np.log(power + _EPS)
        mean_logp = logp.mean(axis=1)
        cols["spectral_flatness_db"] = (10 / np.log(10)) * (
            mean_logp - np.log(psum / freqs.size + _EPS)
        )
        # entropy of the power distribution p = power / psum, in bits, normalised by
        # log2(bins): -sum p log2 p = (ln psum - sum(power · ln power) / psum) / ln 2
        plogp = np.einsum("ij,ij->i", power, logp, dtype=np.float64) / psum
        entropy = (np.log(psum) - plogp) / np.log(2) / np.log2(freqs.size)
        cols["spectral_entropy"] = np.clip(entropy, 0.0, 1.0)  # 0 for a silent frame
        nm = mag / msum[:, None]
        flux = np.zeros(t, dtype=np.float32)
        if t > 1:
            flux[1:] = np.sum((nm[1:] - nm[:-1]) ** 2, axis=1)
        cols["spectral_flux"] = flux
        fc = freqs - freqs.mean()
        cols["spectral_slope"] = (logp @ fc) / float(fc @ fc) * 1000.0  # per kHz, log power
        # alpha ratio and Hammarberg index (eGeMAPS voice-quality measures)
        cols["spectral_alpha_ratio"] = 10 * np.log10(
            (power[:, _bins(freqs, 50, 1000)].sum(1) + _EPS)
            / (power[:, _bins(freqs, 1000, 5000)].sum(1) + _EPS)
        )
        cols["spectral_hammarberg"] = 10 * np.log10(
            (power[:, _bins(freqs, 0, 2000)].max(1) + _EPS)
            / (power[:, _bins(freqs, 2000, 5000)].max(1) + _EPS)
        )

    if "bands" in groups:
        edges = groups["bands"].get("edges_hz", [0, 250, 650, 1000, 2000, 4000, 8000])
        total = power.sum(axis=1) + _EPS
        for lo_hz, hi_hz in zip(edges[:-1], edges[1:], strict=False):
            sel = _bins(freqs, lo_hz, hi_hz, closed=hi_hz >= sr / 2)
            cols[f"band_{int(lo_hz):04d}_{int(hi_hz):04d}_db"] = 10 * np.log10(
                (power[:, sel].sum(1) + _EPS) / total
            )

    if "contrast" in groups and t:
        g = groups["contrast"]
        # The top band's valley is its quietest bins, i.e. wherever a resampler's anti-alias
        # roll-off starts: stopping below it keeps audio recorded at 44.1 or 48 kHz
        # comparable with 16 kHz training data.
        top = freqs.size if g.get("fmax") is None else int(np.sum(freqs <= float(g["fmax"])))
        if mag is None:
            mag = np.sqrt(power)
        contrast = spectral_contrast(
            mag[:, :top],
            freqs[:top].astype(np.float64),
            sr=sr,
            n_bands=int(g.get("n_bands", 6)),
            fmin=float(g.get("fmin", 200.0)),
        )
        put("contrast", contrast, 1)
    elif "contrast" in groups:
        put("contrast", np.zeros((0, int(groups["contrast"].get("n_bands", 6)) + 1)), 1)

    if "chroma" in groups:
        cfb = _chroma_filterbank(sr, n_fft)
        chroma = power @ cfb.T
        chroma = chroma / (chroma.max(axis=1, keepdims=True) + _EPS)
        put("chroma", chroma, 2)

    # the waveform analyses (HNR one period apart, glottal pulses, formants) read the
    # signal less its mean: an offset adds to every correlation as if it were periodic
    centred = y - np.float32(y.mean()) if y.size else y
    if "pitch" in groups:
        g = groups["pitch"]
        pitch_fn = pitch_from_power
        extra: dict[str, Any] = {}
        if g.get("tracking") == "viterbi":  # F0 path over candidates (sercap.features.pitch)
            from sercap.features.pitch import track_pitch

            pitch_fn = track_pitch
            extra = {
                "octave_jump_cost": float(g.get("octave_jump_cost", 0.35)),
                "voiced_unvoiced_cost": float(g.get("voiced_unvoiced_cost", 0.14)),
            }
        # the frames less their own mean (a DC offset is no voice), and their level
        level = np.sqrt(np.maximum(rms**2 - frames.mean(axis=1) ** 2, 0.0)) if t else rms
        fmin, fmax = float(g.get("fmin", 70.0)), float(g.get("fmax", 450.0))
        f0, strength, hnr = pitch_fn(
            pitch_power,
            level,
            sr=sr,
            win=win,
            n_fft=n_fft,
            fmin=fmin,
            fmax=fmax,
            threshold=float(g.get("threshold", 0.45)),
            octave_cost=float(g.get("octave_cost", 0.02)),
            silence_db=float(g.get("silence_db", -45.0)),
            **extra,
        )
        if g.get("method", "acf") == "pyin":
            f0 = pyin_pitch(y, t, sr, hop, fmin, fmax, win=win)
            hnr = np.where(np.isnan(f0), np.nan, hnr).astype(np.float32)
        # the interpolated lag can step past the range by a fraction of a sample
        f0 = np.clip(f0, fmin, fmax).astype(np.float32, copy=False)
        if g.get("hnr", "acf") == "cc":  # from the waveform, one period apart (features.voice)
            from sercap.features.voice import harmonicity_cc

            hnr = harmonicity_cc(centred, f0, sr=sr, hop=hop, win=win, fmin=fmin)
        cols["f0_hz"] = f0
        cols["voicing"] = strength
        cols["hnr_db"] = hnr

    if "voice" in groups and "f0_hz" in cols:  # jitter, shimmer, formants (features.voice)
        from sercap.features.voice import voice_columns

        cols.update(
            voice_columns(centred, cols["f0_hz"], sr=sr, hop=hop, win=win, **groups["voice"])
        )

    names = list(cols)
    d = params.get("deltas")
    n_out = 2 * len(names) if d else len(names)
    # One (columns, frames) matrix holds every column, each a contiguous row: callers that
    # handle many columns at once (the finite check, the frames table) use it via
    # frames_matrix() instead of visiting 158 small arrays per utterance.
    matrix = np.empty((n_out, t), dtype=np.float32)
    for i, n in enumerate(names):
        matrix[i] = cols[n]
    if d:
        width = int(d.get("width", 2)) if isinstance(d, Mapping) else 2
        matrix[len(names) :] = deltas(matrix[: len(names)].T, width).T
        names += [f"{n}_d" for n in names]
    return FrameColumns(names, matrix)


def frames_matrix(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The (columns, frames) float32 matrix of descriptor columns, in their order.

    No copy for an unchanged result of :func:`compute_frames` (its columns are the matrix's
    rows); otherwise the columns stacked.
    """
    if (
        isinstance(columns, FrameColumns)
        and len(columns) == len(columns._rows)
        and all(a is b for a, b in zip(columns.values(), columns._rows, strict=True))
    ):
        return columns.matrix
    if not columns:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.asarray(v, dtype=np.float32) for v in columns.values()])


def column_names(params: Mapping[str, Any]) -> list[str]:
    """The descriptor columns a feature set produces, in order (computed on a test tone)."""
    sr = int(params["sample_rate"])
    t = np.arange(sr // 2) / sr
    y = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    return list(compute_frames(y, params))
