"""numba kernels of the tracked F0 and the voice-quality descriptors (imported lazily).

The sequential parts of :mod:`sercap.features.pitch` and :mod:`sercap.features.voice`: the
Viterbi recursion, the cycle-by-cycle glottal pulse walk, and the per-frame resampling, LPC
and polynomial roots of the formant analysis. Each computes what the numpy code it replaced
computed, in the same order of operations where that order decides a result (a pulse's
cross-correlation sums, the Viterbi argmax ties), so that the descriptors stay the same
(tests/test_features_voice.py and tests/test_features_pitch.py compare them with the numpy
versions).

Every public kernel has one explicit signature (one entry per kernel in numba's cache
index, see :mod:`sercap.numba_cache`), so importing this module loads them from the on-disk
cache (``NUMBA_CACHE_DIR``, set by :func:`sercap.numba_cache.use_cache_dir` unless the user
set it), or compiles them the first time (about 20 s, once per set of library versions).
The pitch and voice modules import it only when a feature set tracks F0 or asks for voice
quality.
"""

from __future__ import annotations

from sercap.numba_cache import use_cache_dir

use_cache_dir()

import math  # noqa: E402

import numba  # noqa: E402  (after the cache folder is chosen)
import numpy as np  # noqa: E402


@numba.njit(
    "Tuple((int64[:, :], boolean[:, :], float64[:, :], float64[:, :], float64[:, :]))"
    "(float32[:, :], float64[:], int64, int64, float64)",
    cache=True,
    nogil=True,
    error_model="numpy",  # x / 0 is inf or NaN (then 0), as in numpy, not an exception
)
def acf_peaks(
    acf: np.ndarray, wacf: np.ndarray, lo: int, k: int, min_strength: float
) -> tuple:  # pragma: no cover - numba
    """The ``k`` highest local maxima of each frame's normalised autocorrelation.

    ``r[j] = acf[i, lo - 1 + j] / (acf[i, 0] * wacf[j])`` (0 where not finite) over
    ``j < wacf.size``; a peak is an inner ``r[j] >= r[j - 1]``, ``> r[j + 1]`` and
    ``>= min_strength``. Peaks are taken highest first, the first index on ties, as ``k``
    passes of ``np.argmax`` over the masked row take them. Returns, per frame and rank, the
    peak's index ``j - 1`` into the inner lags, whether there is one, and ``r`` left of, at
    and right of it (index 0 and ``valid`` False where a frame has fewer peaks).
    """
    t = acf.shape[0]
    m = wacf.size
    idx = np.zeros((t, k), dtype=np.int64)
    valid = np.zeros((t, k), dtype=np.bool_)
    left = np.zeros((t, k))
    peak = np.zeros((t, k))
    right = np.zeros((t, k))
    r = np.empty(m)
    peaks = np.empty(m, dtype=np.int64)
    for i in range(t):
        a0 = np.float64(acf[i, 0])
        for j in range(m):
            v = np.float64(acf[i, lo - 1 + j]) / (a0 * wacf[j])
            r[j] = v if np.isfinite(v) else 0.0
        n = 0  # the peaks, in lag order
        for j in range(1, m - 1):
            c = r[j]
            if c >= r[j - 1] and c > r[j + 1] and c >= min_strength:
                peaks[n] = j
                n += 1
        for rank in range(k):
            best = -1  # position in peaks of the highest left, the first on ties
            for q in range(n):
                if peaks[q] >= 0 and (best < 0 or r[peaks[q]] > r[peaks[best]]):
                    best = q
            if best < 0:  # argmax of an all -inf row: index 0, not valid
                left[i, rank] = r[0]
                peak[i, rank] = r[1]
                right[i, rank] = r[2]
                continue
            j = peaks[best]
            peaks[best] = -1
            idx[i, rank] = j - 1
            valid[i, rank] = True
            left[i, rank] = r[j - 1]
            peak[i, rank] = r[j]
            right[i, rank] = r[j + 1]
    return idx, valid, left, peak, right


@numba.njit("int64[:, :](float32[:, :], float64[:, :])", cache=True, nogil=True)
def rolloff_bins(power: np.ndarray, thresholds: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Per frame and threshold, how many bins' cumulative power stays below the threshold.

    ``power`` is (T, F) float32, ``thresholds`` (T, Q). The cumulative sum runs in float32
    bin by bin, as ``np.cumsum`` of float32 does, and is compared as float64, so the counts
    equal ``np.count_nonzero(np.cumsum(power, axis=1) < thresholds[:, [q]], axis=1)``.
    """
    t, f = power.shape
    out = np.zeros((t, thresholds.shape[1]), dtype=np.int64)
    for i in range(t):
        for q in range(thresholds.shape[1]):
            acc = np.float32(0.0)
            thr = thresholds[i, q]
            n = 0
            for j in range(f):  # cumulative power never decreases: stop at the first >=
                acc = np.float32(acc + power[i, j])
                if not (np.float64(acc) < thr):
                    break
                n += 1
            out[i, q] = n
    return out


@numba.njit(
    "int64[:](float64[:, :], float64[:, :], float64, float64)",
    cache=True,
    nogil=True,
)
def viterbi(
    states: np.ndarray, logf: np.ndarray, octave_jump_cost: float, voiced_unvoiced_cost: float
) -> np.ndarray:  # pragma: no cover - numba
    """The recursion and backtrace of :func:`viterbi_path` (state ``k`` = unvoiced)."""
    t, k1 = states.shape
    k = k1 - 1
    back = np.zeros((t, k1), dtype=np.int64)
    delta = states[0].copy()
    new = np.empty(k1)
    for i in range(1, t):
        for j in range(k1):
            best = -np.inf
            arg = 0
            for b in range(k1):
                if b == k and j == k:
                    c = 0.0
                elif b == k or j == k:
                    c = voiced_unvoiced_cost
                else:
                    c = octave_jump_cost * abs(logf[i - 1, b] - logf[i, j])
                v = delta[b] - c
                if v > best or b == 0:  # the first maximum, as argmax
                    best = v
                    arg = b
            back[i, j] = arg
            new[j] = best + states[i, j]
        delta[:] = new
    path = np.empty(t, dtype=np.int64)
    s = 0
    for j in range(1, k1):
        if delta[j] > delta[s]:
            s = j
    for i in range(t - 1, -1, -1):
        path[i] = -1 if s == k else s
        s = back[i, s]
    return path


@numba.njit(
    (
        "Tuple((float64[:], float64[:]))"
        "(float64[:], float64[:], int64[:, :], int64, int64, int64, float64, float64)"
    ),
    cache=True,
    nogil=True,
)
def pulse_walk(
    y: np.ndarray,
    f0: np.ndarray,
    runs: np.ndarray,
    sr: int,
    hop: int,
    win: int,
    lo_f: float,
    hi_f: float,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    """The cycle-by-cycle walk of :func:`glottal_pulses` over its voiced runs."""
    cap = y.size + 2 * runs.shape[0] + 2  # a step advances >= 1 sample; a separator per run
    times = np.empty(cap)
    amps = np.empty(cap)
    count = 0
    centres = np.arange(f0.size) * hop + win / 2.0
    for r in range(runs.shape[0]):
        a, b = runs[r, 0], runs[r, 1]
        s0 = a * hop
        s1 = min(y.size, (b - 1) * hop + win)
        if s1 - s0 < 3:
            continue
        seg = y[s0:s1]
        sign = 1.0 if seg.max() >= -seg.min() else -1.0
        xs = sign * seg
        n = xs.size
        period = sr / f0[a:b]
        xp = centres[a:b] - s0
        last = xp.size - 1
        t0 = period[0]  # the period at sample 0, before the first frame centre
        h = int(t0 / 2)
        if n < 3 * t0:
            continue
        p = h + int(np.argmax(xs[h : h + int(t0) + 1]))  # the first pulse: a peak
        tp = float(p)
        # sqrt of the energy of each window of one (median) period, centred on each sample
        w = 2 * int(np.median(period) / 2) + 1
        half = w // 2
        sq = np.zeros(n + 2 * half + 1)
        acc = 0.0
        for i in range(n + 2 * half):
            v = xs[i - half] if half <= i < n + half else 0.0
            acc += v * v
            sq[i + 1] = acc
        norm = np.sqrt(sq[w:] - sq[: sq.size - w] + 1e-30)
        first = count
        while True:
            # the period at p: np.interp(p, xp, period), on the evenly spaced frame centres
            x = float(p)
            if x <= xp[0]:
                t0 = period[0]
            elif x >= xp[last]:
                t0 = period[last]
            else:
                k = min(int((x - xp[0]) / hop), last - 1)
                while xp[k] > x:  # (exact centres: these loops never run, but stay safe)
                    k -= 1
                while xp[k + 1] <= x:
                    k += 1
                if x == xp[k]:
                    t0 = period[k]
                else:
                    t0 = (period[k + 1] - period[k]) / (xp[k + 1] - xp[k]) * (x - xp[k]) + period[k]
            h = int(t0 / 2)
            if count >= cap - 1:
                break
            times[count] = s0 + tp
            # peak-to-peak amplitude over one period around the pulse
            lo_i, hi_i = max(p - h, 0), min(p + h, n - 1)
            amps[count] = xs[lo_i : hi_i + 1].max() - xs[lo_i : hi_i + 1].min()
            count += 1
            lo, hi = int(lo_f * t0), int(hi_f * t0) + 1
            if p + hi + h + 2 > n:
                break
            a0 = p + lo - h
            m = hi - lo + 1
            # normalised cross-correlation of this cycle with the candidates for the next one
            # (lags in the inner loop, unsigned indices that spare numba's negative-index
            # wrap-around: the loop is SIMD, and each lag still sums in np.correlate's order)
            cc = np.zeros(m)
            for i in range(2 * h + 1):
                v = xs[p - h + i]
                for q in range(m):
                    cc[q] += xs[np.uint64(a0 + q + i)] * v
            j = 0
            for q in range(m):
                cc[q] /= norm[a0 + h + q]
                if cc[q] > cc[j]:
                    j = q
            d = 0.0
            if 0 < j < m - 1:
                c_prev, c_best, c_next = cc[j - 1], cc[j], cc[j + 1]
                den = c_prev - 2 * c_best + c_next
                if den < 0:
                    d = min(max(0.5 * (c_prev - c_next) / den, -0.5), 0.5)
            tp += lo + j + d
            p = int(round(tp))
        if count > first:
            times[count] = np.nan
            amps[count] = np.nan
            count += 1
    return times[:count].copy(), amps[:count].copy()


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def dot(x: np.ndarray, i: int, z: np.ndarray, j: int, n: int) -> float:  # pragma: no cover
    """``x[i:i+n] @ z[j:j+n]`` (``i, j >= 0``), summed in any order (so that it vectorises).

    The unsigned indices spare numba's negative-index wrap-around, which blocks SIMD.
    """
    acc = 0.0
    for k in range(n):
        acc += x[np.uint64(i + k)] * z[np.uint64(j + k)]
    return acc


@numba.njit(cache=True, nogil=True)
def lpc_of_frames(
    y: np.ndarray,
    h: np.ndarray,
    up: int,
    down: int,
    half_len: int,
    starts: np.ndarray,
    window: np.ndarray,
    alpha: float,
    order: int,
) -> np.ndarray:  # pragma: no cover - numba
    """Resample, pre-emphasise, window and LPC-analyse the frames starting at ``starts``.

    The resampled signal (``resample_poly(y, up, down)``) is computed only where a frame
    needs it; ``starts`` are in resampled samples, increasing; frames reach past the
    signal's ends with zeros. Returns each frame's ``[1, a1, ..., ap]`` as
    :func:`lpc_autocorrelation` does.
    """
    n_in = y.size
    n_out = -(-(n_in * up) // down)
    length = window.size
    xr = np.zeros(n_out)
    done = 0  # xr[:done] holds every sample any earlier frame needed
    nf = starts.size
    a_out = np.zeros((nf, order + 1))
    frame = np.empty(length)
    r = np.empty(order + 1)
    a = np.empty(order + 1)
    prev = np.empty(order + 1)
    # the filter's polyphase components, each reversed: phases[q, taps - 1 - t] = h[q + t*up],
    # zero-padded to a multiple of 8 taps (whole SIMD blocks); the signal is padded with
    # zeros by as many samples on each side, so that no sum needs clipping at the ends
    taps = -(-h.size // up)
    taps = 8 * -(-taps // 8)
    phases = np.zeros((up, taps))
    for q in range(up):
        for t in range(taps):
            if q + t * up < h.size:
                phases[q, taps - 1 - t] = h[q + t * up]
    ypad = np.zeros(n_in + 2 * taps)
    ypad[taps : taps + n_in] = y
    for f in range(nf):
        s = starts[f]
        lo = max(s - 1, 0, done)
        hi = min(s + length, n_out)
        for n in range(lo, hi):  # polyphase FIR: y[j] meets h[half_len + n*down - j*up]
            c = n * down + half_len
            # h[c - j*up] = phases[c % up, taps - 1 - c // up + j] for j = c//up - taps + 1
            # .. c//up (ypad[j + taps] = y[j], zero outside the signal)
            xr[n] = dot(ypad, c // up + 1, phases[c % up], 0, taps)
        done = max(done, hi)
        for k in range(length):
            i = s + k
            if i < 0 or i >= n_out:
                frame[k] = 0.0
            elif i == 0:
                frame[k] = xr[0] * window[k]
            else:
                frame[k] = (xr[i] - alpha * xr[i - 1]) * window[k]
        for lag in range(order + 1):
            r[lag] = dot(frame, 0, frame, lag, length - lag)
        r[0] = r[0] * (1 + 1e-9) + 1e-12  # white-noise floor keeps silent frames stable
        a[:] = 0.0
        a[0] = 1.0
        err = r[0]
        for i in range(1, order + 1):  # Levinson-Durbin, as lpc_autocorrelation
            acc = r[i]
            for q in range(1, i):
                acc += a[q] * r[i - q]
            k = -acc / err
            prev[:] = a
            for q in range(1, i):
                a[q] = prev[q] + k * prev[i - q]
            a[i] = k
            err = err * (1 - k * k)
        a_out[f] = a
    return a_out


@numba.njit(cache=True, nogil=True)
def poly_roots(a: np.ndarray, roots: np.ndarray) -> bool:  # pragma: no cover - numba
    """Roots of ``a[0] z^p + ... + a[p]`` (``a[0] == 1``) into ``roots``; False on failure.

    The eigenvalues of the companion matrix, balanced and reduced by the shifted QR
    algorithm for upper Hessenberg matrices (EISPACK's ``balanc`` and ``hqr``, as in
    Numerical Recipes' ``zrhqr``): what ``np.linalg.eigvals`` (LAPACK ``geev``) computes,
    without its per-matrix overhead.
    """
    n = a.size - 1
    m_ = np.zeros((n, n))
    for j in range(n):
        m_[0, j] = -a[j + 1] / a[0]
    for i in range(1, n):
        m_[i, i - 1] = 1.0
    # balance: scale rows and columns by powers of 2 until their norms are comparable
    done = False
    while not done:
        done = True
        for i in range(n):
            c = 0.0
            rr = 0.0
            for j in range(n):
                if j != i:
                    c += abs(m_[j, i])
                    rr += abs(m_[i, j])
            if c != 0.0 and rr != 0.0:
                g = rr / 2.0
                f = 1.0
                s = c + rr
                while c < g:
                    f *= 2.0
                    c *= 4.0
                g = rr * 2.0
                while c > g:
                    f /= 2.0
                    c /= 4.0
                if (c + rr) / f < 0.95 * s:
                    done = False
                    g = 1.0 / f
                    for j in range(n):
                        m_[i, j] *= g
                    for j in range(n):
                        m_[j, i] *= f
    # hqr (0-based): all eigenvalues of the upper Hessenberg m_
    anorm = 0.0
    for i in range(n):
        for j in range(max(i - 1, 0), n):
            anorm += abs(m_[i, j])
    nn = n - 1
    t = 0.0
    p = q = r = x = y = z = w = 0.0
    while nn >= 0:
        its = 0
        while True:
            ll = 0
            for l_ in range(nn, 0, -1):
                s = abs(m_[l_ - 1, l_ - 1]) + abs(m_[l_, l_])
                if s == 0.0:
                    s = anorm
                if abs(m_[l_, l_ - 1]) + s == s:
                    m_[l_, l_ - 1] = 0.0
                    ll = l_
                    break
            x = m_[nn, nn]
            if ll == nn:  # one root found
                roots[nn] = complex(x + t, 0.0)
                nn -= 1
            else:
                y = m_[nn - 1, nn - 1]
                w = m_[nn, nn - 1] * m_[nn - 1, nn]
                if ll == nn - 1:  # two roots found
                    p = 0.5 * (y - x)
                    q = p * p + w
                    z = np.sqrt(abs(q))
                    x += t
                    if q >= 0.0:
                        z = p + (z if p >= 0.0 else -z)
                        roots[nn - 1] = complex(x + z, 0.0)
                        roots[nn] = complex(x + z, 0.0)
                        if z != 0.0:
                            roots[nn] = complex(x - w / z, 0.0)
                    else:
                        roots[nn - 1] = complex(x + p, -z)
                        roots[nn] = complex(x + p, z)
                    nn -= 2
                else:
                    if its == 30 * max(n, 10):  # LAPACK's limit (dlahqr's ITMAX)
                        return False
                    if its > 0 and its % 10 == 0:  # exceptional shift, as dlahqr's
                        t += x
                        for i in range(nn + 1):
                            m_[i, i] -= x
                        s = abs(m_[nn, nn - 1]) + abs(m_[nn - 1, nn - 2])
                        x = 0.75 * s
                        y = x
                        w = -0.4375 * s * s
                    its += 1
                    mm = nn - 2
                    while mm >= ll:
                        z = m_[mm, mm]
                        r = x - z
                        s = y - z
                        p = (r * s - w) / m_[mm + 1, mm] + m_[mm, mm + 1]
                        q = m_[mm + 1, mm + 1] - z - r - s
                        r = m_[mm + 2, mm + 1]
                        s = abs(p) + abs(q) + abs(r)
                        p /= s
                        q /= s
                        r /= s
                        if mm == ll:
                            break
                        u = abs(m_[mm, mm - 1]) * (abs(q) + abs(r))
                        v = abs(p) * (abs(m_[mm - 1, mm - 1]) + abs(z) + abs(m_[mm + 1, mm + 1]))
                        if u + v == v:
                            break
                        mm -= 1
                    for i in range(mm + 2, nn + 1):
                        m_[i, i - 2] = 0.0
                        if i != mm + 2:
                            m_[i, i - 3] = 0.0
                    for k in range(mm, nn):
                        if k != mm:
                            p = m_[k, k - 1]
                            q = m_[k + 1, k - 1]
                            r = 0.0
                            if k != nn - 1:
                                r = m_[k + 2, k - 1]
                            x = abs(p) + abs(q) + abs(r)
                            if x != 0.0:
                                p /= x
                                q /= x
                                r /= x
                        s = np.sqrt(p * p + q * q + r * r)
                        if p < 0.0:
                            s = -s
                        if s != 0.0:
                            if k == mm:
                                if ll != mm:
                                    m_[k, k - 1] = -m_[k, k - 1]
                            else:
                                m_[k, k - 1] = -s * x
                            p += s
                            x = p / s
                            y = q / s
                            z = r / s
                            q /= p
                            r /= p
                            for j in range(k, nn + 1):
                                p = m_[k, j] + q * m_[k + 1, j]
                                if k != nn - 1:
                                    p += r * m_[k + 2, j]
                                    m_[k + 2, j] -= p * z
                                m_[k + 1, j] -= p * y
                                m_[k, j] -= p * x
                            mmin = nn if nn < k + 3 else k + 3
                            for i in range(ll, mmin + 1):
                                p = x * m_[i, k] + y * m_[i, k + 1]
                                if k != nn - 1:
                                    p += z * m_[i, k + 2]
                                    m_[i, k + 2] -= p * r
                                m_[i, k + 1] -= p * q
                                m_[i, k] -= p
            if nn < 0 or ll >= nn - 1:
                break
    return True


@numba.njit(
    (
        "Tuple((float64[:, :], complex128[:, :], boolean[:]))"
        "(float64[:], float64[:], int64, int64, int64, int64[:], float64[:], float64, int64)"
    ),
    cache=True,
    nogil=True,
)
def lpc_roots(
    y: np.ndarray,
    h: np.ndarray,
    up: int,
    down: int,
    half_len: int,
    starts: np.ndarray,
    window: np.ndarray,
    alpha: float,
    order: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - numba
    """:func:`lpc_of_frames`, then each predictor's roots (``ok`` False where QR failed)."""
    a = lpc_of_frames(y, h, up, down, half_len, starts, window, alpha, order)
    roots = np.zeros((a.shape[0], order), dtype=np.complex128)
    ok = np.ones(a.shape[0], dtype=np.bool_)
    for f in range(a.shape[0]):
        ok[f] = poly_roots(a[f], roots[f])
    return a, roots, ok


@numba.njit(
    "Tuple((float64[:, :], float64[:, :]))(complex128[:, :], float64, float64, int64)",
    cache=True,
    nogil=True,
)
def pick_formants(
    roots: np.ndarray, fs: float, max_formant: float, n_formants: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    """The ``n_formants`` lowest formants (Hz) and their bandwidths among each row's roots.

    A root in the upper half plane whose frequency ``angle * fs / 2pi`` lies between 50 Hz
    and ``max_formant - 50`` is a formant, its bandwidth ``-ln|z| * fs / pi``; NaN where a
    row has fewer.
    """
    n, p = roots.shape
    freqs = np.full((n, n_formants), np.nan)
    bws = np.full((n, n_formants), np.nan)
    f = np.empty(p)
    for i in range(n):
        for j in range(p):
            z = roots[i, j]
            f[j] = np.arctan2(z.imag, z.real) * fs / (2 * np.pi)
            if not (z.imag > 0 and f[j] > 50.0 and f[j] < max_formant - 50.0):
                f[j] = np.inf
        for m in range(n_formants):  # selection of the lowest, first index on ties
            best = -1
            for j in range(p):
                if f[j] < np.inf and (best < 0 or f[j] < f[best]):
                    best = j
            if best < 0:
                break
            freqs[i, m] = f[best]
            bws[i, m] = -np.log(abs(roots[i, best]) + 1e-300) * fs / np.pi
            f[best] = np.inf
    return freqs, bws


@numba.njit(
    "Tuple((float32[:], float32[:]))"
    "(float64[:], float64[:], int64, float64, float64, float64, float64, int64, int64)",
    cache=True,
    nogil=True,
)
def jitter_shimmer(
    times: np.ndarray,
    amps: np.ndarray,
    n_frames: int,
    min_period: float,
    max_period: float,
    max_period_factor: float,
    max_amplitude_factor: float,
    hop: int,
    win: int,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    """Per-frame local jitter and shimmer of :func:`sercap.features.voice.jitter_shimmer`.

    The sums run in the order of the numpy code's ``np.add.at`` passes (frame offset
    outer, periods inner), so that the values are the same.
    """
    n = times.size
    n_span = -(-win // hop)
    sum_dt = np.zeros(n_frames)
    sum_t = np.zeros(n_frames)
    sum_da = np.zeros(n_frames)
    sum_a = np.zeros(n_frames)
    cnt_t = np.zeros(n_frames)
    cnt_a = np.zeros(n_frames)
    for k in range(n_span):
        for i in range(n - 2):
            p1 = times[i + 1] - times[i]
            p2 = times[i + 2] - times[i + 1]
            if not (np.isfinite(p1) and min_period <= p1 <= max_period):
                continue
            if not (np.isfinite(p2) and min_period <= p2 <= max_period):
                continue
            if not (max(p1, p2) / min(p1, p2) < max_period_factor):
                continue
            end = times[i + 2]  # the pulse that ends the second period
            f = np.int64(np.floor(end / hop)) - k
            if f < 0 or f >= n_frames or not (end < f * hop + win):
                continue
            a1, a2 = amps[i], amps[i + 1]  # the pulses that start the two periods
            ar = a1 > 0 and a2 > 0 and max(a1, a2) / min(a1, a2) < max_amplitude_factor
            sum_dt[f] += abs(p2 - p1)
            sum_t[f] += 0.5 * (p1 + p2)
            cnt_t[f] += 1.0
            sum_da[f] += abs(a2 - a1) if ar else 0.0
            sum_a[f] += 0.5 * (a1 + a2) if ar else 0.0
            cnt_a[f] += 1.0 if ar else 0.0
    jit = np.full(n_frames, np.nan, dtype=np.float32)
    shim = np.full(n_frames, np.nan, dtype=np.float32)
    for f in range(n_frames):
        if cnt_t[f] > 0:
            jit[f] = np.float32(sum_dt[f] / sum_t[f])
        if cnt_a[f] > 0:
            shim[f] = np.float32(sum_da[f] / sum_a[f])
    return jit, shim


@numba.njit(
    "float32[:](float64[:], float64[:], int64, int64, int64, int64)",
    cache=True,
    nogil=True,
)
def cc_harmonicity(
    y: np.ndarray, period: np.ndarray, hop: int, center: int, window: int, search: int
) -> np.ndarray:  # pragma: no cover - numba
    """Per-frame HNR (dB) of :func:`sercap.features.voice.harmonicity_cc`.

    For each frame with a finite ``period`` (samples): the best normalised
    cross-correlation between ``window`` samples and the same span ``k`` samples later,
    ``k`` within ``search`` samples of the rounded period, the span centred on the frame
    (``t * hop + center``) and moved inside the signal at its edges; the best lag's value
    refined by a parabola through it and its neighbours; then ``10 log10(r / (1 - r))``
    with ``r`` clipped to [1e-4, 1 - 1e-4]. NaN elsewhere, and
    where the signal is shorter than ``window`` plus the longest lag.
    """
    n_frames = period.size
    n = y.size
    out = np.full(n_frames, np.nan, dtype=np.float32)
    for t in range(n_frames):
        p = period[t]
        if not np.isfinite(p):
            continue
        lag = np.int64(np.floor(p + 0.5))
        lo = max(np.int64(2), lag - search)
        hi = lag + search
        s = t * hop + center - (window + hi) // 2
        s = min(max(s, np.int64(0)), n - window - hi)
        if s < 0:
            continue
        e0 = dot(y, s, y, s, window)
        rs = np.full(hi - lo + 1, -1.0)
        best = 0
        for k in range(lo, hi + 1):
            d = math.sqrt(e0 * dot(y, s + k, y, s + k, window))
            if d > 0.0:
                rs[k - lo] = dot(y, s, y, s + k, window) / d
            if rs[k - lo] > rs[best]:
                best = k - lo
        r = rs[best]
        if 0 < best < rs.size - 1:  # the peak between samples: a parabola through three
            left, right = rs[best - 1], rs[best + 1]
            denom = left - 2.0 * r + right
            if denom < -1e-12:
                shift = min(max(0.5 * (left - right) / denom, -0.5), 0.5)
                r = r - 0.25 * (left - right) * shift
        r = min(max(r, 1e-4), 1.0 - 1e-4)
        out[t] = np.float32(10.0 * math.log10(r / (1.0 - r)))
    return out
