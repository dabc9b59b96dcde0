"""A feature set's frame grid in samples and seconds: pure arithmetic on its parameters.

Its own module, free of heavy imports, because the store's views (opened by every command)
need the frame times too, and ``lld`` pulls in scipy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def frame_geometry(params: Mapping[str, Any]) -> tuple[int, int, int]:
    """(window, hop, n_fft) in samples for a feature set's parameters."""
    sr = int(params["sample_rate"])
    win = int(round(params["window_ms"] * sr / 1000))
    hop = int(round(params["hop_ms"] * sr / 1000))
    n_fft = int(params.get("n_fft") or 1 << (win - 1).bit_length())
    if n_fft < win:
        raise ValueError(f"n_fft {n_fft} is shorter than the window ({win} samples)")
    return win, hop, n_fft


def frame_seconds(params: Mapping[str, Any]) -> tuple[float, float]:
    """(hop, window) in seconds as the frames really are: whole samples at the set's rate
    (22.05 kHz and a 10 ms hop give 220 samples, 9.977 ms; times from the nominal hop
    drifted 0.23 % late)."""
    win, hop, _ = frame_geometry(params)
    sr = int(params["sample_rate"])
    return hop / sr, win / sr
