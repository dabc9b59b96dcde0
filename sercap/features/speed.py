"""Extraction speed, measured side by side in one process on the same audio.

Audio is decoded and resampled once, before any clock starts, so every extractor is timed
on exactly the same float32 signals and only its own computation counts. Each runs on one
thread (BLAS/OpenMP pinned) so that "× real time" means per core; the default set is then
also run in a process pool of ``jobs`` workers to show how it scales.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from sercap.features.extract import CHUNK_SIZE

#: The "notebook style" baseline: each librosa function called on the waveform.
NAIVE_FUNCTIONS = (
    "mfcc",
    "melspectrogram",
    "chroma_stft",
    "spectral_contrast",
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_rolloff",
    "spectral_flatness",
    "zero_crossing_rate",
    "rms",
    "yin",
)


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float
    audio_s: float
    dims: int
    jobs: int = 1

    @property
    def realtime(self) -> float:
        return self.audio_s / self.seconds if self.seconds > 0 else float("inf")


def naive_librosa(y: np.ndarray, sr: int) -> np.ndarray:
    """Each librosa feature function on the waveform (each recomputes its own STFT), then
    mean and std over frames: what SER notebooks typically do."""
    import librosa

    feats = [
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40),
        librosa.feature.melspectrogram(y=y, sr=sr),
        librosa.feature.chroma_stft(y=y, sr=sr),
        librosa.feature.spectral_contrast(y=y, sr=sr),
        librosa.feature.spectral_centroid(y=y, sr=sr),
        librosa.feature.spectral_bandwidth(y=y, sr=sr),
        librosa.feature.spectral_rolloff(y=y, sr=sr),
        librosa.feature.spectral_flatness(y=y),
        librosa.feature.zero_crossing_rate(y),
        librosa.feature.rms(y=y),
        librosa.yin(y, fmin=70, fmax=450, sr=sr)[None, :],
    ]
    return np.concatenate([np.r_[f.mean(axis=1), f.std(axis=1)] for f in feats])


def default_set_descriptors(y: np.ndarray, params: dict[str, Any]) -> dict[str, np.ndarray]:
    from sercap.features.lld import compute_frames

    return compute_frames(y, params)


def time_extractor(
    name: str, fn: Callable[[np.ndarray], Any], signals: Sequence[np.ndarray], sr: int
) -> tuple[Timing, list[Any]]:
    """Run ``fn`` on every signal (after one untimed warm-up call) and time the loop."""
    fn(signals[0])  # warm-up: numba compilation, filter banks, openSMILE's config parsing
    started = time.perf_counter()
    out = [fn(y) for y in signals]
    seconds = time.perf_counter() - started
    first = out[0]
    dims = len(first) if isinstance(first, dict) else int(np.asarray(first).size)
    audio_s = sum(y.size for y in signals) / sr
    return Timing(name, seconds, audio_s, dims), out


def time_functionals(
    values: list[dict[str, np.ndarray]], hop_s: float, chunk: int = CHUNK_SIZE
) -> tuple[float, int]:
    """Seconds the SQL functionals take on precomputed frames (chunks as extraction uses)."""
    from sercap.features.functionals import compute_functionals, frames_table

    started = time.perf_counter()
    dims = 0
    for i in range(0, len(values), chunk):
        part = values[i : i + chunk]
        table = frames_table([f"u{j}" for j in range(i, i + len(part))], part)
        dims = compute_functionals(table, hop_s).num_columns - 1
    return time.perf_counter() - started, dims


def _pool_chunk(args: tuple[list[np.ndarray], dict[str, Any]]) -> int:
    """Descriptors and functionals of a chunk, in a worker (what ``extract`` does)."""
    from sercap.features.functionals import compute_functionals, frames_table
    from sercap.features.lld import compute_frames

    signals, params = args
    values = [compute_frames(y, params) for y in signals]
    table = frames_table([f"u{j}" for j in range(len(values))], values)
    return compute_functionals(table, float(params["hop_ms"]) / 1000.0).num_rows


def time_pool(
    signals: Sequence[np.ndarray], params: dict[str, Any], jobs: int, chunk: int = CHUNK_SIZE
) -> float:
    """Seconds for descriptors + functionals of every signal in a pool of ``jobs`` workers
    (started and warmed up before the clock starts)."""
    import multiprocessing as mp
    import os

    from sercap._spawn import main_not_rerun
    from sercap.features.extract import SINGLE_THREAD_ENV, init_pool_worker

    chunks = [(list(signals[i : i + chunk]), params) for i in range(0, len(signals), chunk)]
    saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    os.environ.update(SINGLE_THREAD_ENV)
    try:
        spawn = mp.get_context("spawn")
        with main_not_rerun(), spawn.Pool(jobs, initializer=init_pool_worker) as pool:
            pool.map(_pool_chunk, [([s], params) for s in signals[:jobs]], chunksize=1)
            started = time.perf_counter()
            pool.map(_pool_chunk, chunks, chunksize=1)
            return time.perf_counter() - started
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def bench_extraction(
    signals: Sequence[np.ndarray],
    sr: int = 16000,
    jobs: int = 2,
    opensmile: bool | None = None,
    naive: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> pl.DataFrame:
    """One table: extractor, dims, seconds, × real time (per core, or with ``jobs`` workers)
    and speed relative to openSMILE ComParE (or to the naive loop without openSMILE)."""
    from threadpoolctl import threadpool_limits

    from sercap.features.featureset import get_feature_set
    from sercap.features.opensmile import available

    if not signals:
        raise ValueError("no signals to time")
    params = dict(get_feature_set("default").params)
    hop_s = float(params["hop_ms"]) / 1000.0
    timings: list[Timing] = []
    with threadpool_limits(1):
        say("default set: descriptors")
        desc, values = time_extractor(
            "sercap default: descriptors", lambda y: default_set_descriptors(y, params), signals, sr
        )
        say("default set: SQL functionals")
        sql_s, dims = time_functionals(values, hop_s)
        del values
        timings.append(desc)
        timings.append(Timing("sercap default: SQL functionals", sql_s, desc.audio_s, dims))
        timings.append(
            Timing("sercap default: end to end", desc.seconds + sql_s, desc.audio_s, dims)
        )
        if naive:
            say("naive librosa loop")
            timings.append(
                time_extractor(
                    "librosa, each function on the waveform",
                    lambda y: naive_librosa(y, sr),
                    signals,
                    sr,
                )[0]
            )
        if opensmile is None:
            opensmile = available()
        if opensmile:
            from sercap.features.opensmile import functionals

            for name, fs in (("ComParE_2016", "compare2016"), ("eGeMAPSv02", "egemaps02")):
                say(f"openSMILE {name}")
                p = dict(get_feature_set(fs).params)
                timings.append(
                    time_extractor(
                        f"openSMILE {name} functionals",
                        lambda y, p=p: functionals(y, p),
                        signals,
                        sr,
                    )[0]
                )
    if jobs > 1:
        say(f"default set end to end with {jobs} worker processes")
        seconds = time_pool(signals, params, jobs)
        timings.append(
            Timing(f"sercap default: end to end, {jobs} jobs", seconds, desc.audio_s, dims, jobs)
        )
    reference = next((t for t in timings if t.name.startswith("openSMILE ComParE")), None)
    reference = reference or next((t for t in timings if t.name.startswith("librosa")), None)
    return pl.DataFrame(
        {
            "extractor": [t.name for t in timings],
            "jobs": [t.jobs for t in timings],
            "dims": [t.dims for t in timings],
            "seconds": [round(t.seconds, 2) for t in timings],
            "x_realtime": [round(t.realtime, 1) for t in timings],
            "x_realtime_per_core": [round(t.realtime / t.jobs, 1) for t in timings],
            "vs_reference": [
                round(t.realtime / reference.realtime, 2) if reference else None for t in timings
            ],
        }
    ).with_columns(pl.lit(reference.name if reference else None).alias("reference"))


def load_signals(
    items: Sequence[tuple[str, str, float | None, float | None]], sr: int
) -> tuple[list[np.ndarray], list[str]]:
    """Decode (utt_id, path, start, end) items at ``sr``; unreadable ones are reported."""
    from sercap.audio import AudioError, load_audio

    signals, problems = [], []
    for utt_id, path, start, end in items:
        try:
            y = load_audio(path, sr, start, end)
        except AudioError as exc:
            problems.append(f"{utt_id}: {exc}")
            continue
        if y.size >= sr // 10:
            signals.append(y)
    return signals, problems
