"""Spectrogram images: waveform → log-mel in dB → 8-bit grayscale PNG (pure, no warehouse).

One column per hop (10 ms by default), so an image's width is proportional to the
utterance's duration: no stretching, no margins. Rows are mel bands with the LOWEST band at
the BOTTOM (row 0 is the highest band), as people read spectrograms. Power is in dB re a
full-scale sine, clipped to a fixed range [db_min, db_max] and mapped linearly to 0..255, so
pixel values mean the same level in every image.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sercap.features.lld import frame_geometry, frame_signal, mel_filterbank, power_spectrum

#: Bump when a change here changes pixels: it is part of every image-set hash.
IMAGES_VERSION = 1


def logmel_db(y: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """(n_mels, n_frames) log-mel power in dB (0 dB ≈ a full-scale sine in one band)."""
    sr = int(params["sample_rate"])
    win, hop, n_fft = frame_geometry(params)
    power = power_spectrum(frame_signal(np.asarray(y, np.float32), win, hop), n_fft)
    fb = mel_filterbank(
        sr,
        n_fft,
        int(params["n_mels"]),
        float(params.get("fmin", 0.0)),
        float(params.get("fmax", sr / 2)),
    )
    return (10 * np.log10(power @ fb.T + 1e-10)).T


def to_uint8(db: np.ndarray, db_min: float, db_max: float) -> np.ndarray:
    """dB → 0..255, clipped to [db_min, db_max], lowest band moved to the bottom row."""
    scaled = (np.clip(db, db_min, db_max) - db_min) * (255.0 / (db_max - db_min))
    return np.ascontiguousarray(np.rint(scaled)[::-1].astype(np.uint8))


def encode_png(image: np.ndarray) -> bytes:
    """A (H, W) uint8 array as grayscale PNG bytes."""
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError("encode_png wants a 2-D uint8 array")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes (as stored in the images table) → (H, W) uint8 array; row 0 = highest band."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L"), dtype=np.uint8)


def spectrogram_image(y: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Waveform → (n_mels, n_frames) uint8 image (width = number of 10 ms hops)."""
    return to_uint8(logmel_db(y, params), float(params["db_min"]), float(params["db_max"]))


@dataclass(frozen=True)
class StoredImage:
    """One row of an image table, with what is needed to draw axes."""

    utt_id: str
    png: bytes = field(repr=False)
    height: int
    width: int
    params: Mapping[str, Any]
    #: The folder of the warehouse it was read from (None when made by hand): a drawing of
    #: it is never written among that warehouse's own files.
    warehouse: Path | None = field(default=None, repr=False, compare=False)

    @property
    def pixels(self) -> np.ndarray:
        return decode_png(self.png)


def plot_image(image: StoredImage, out: Any) -> None:
    """Draw a stored spectrogram with time (s) and mel-band axes into a PNG file."""
    from sercap.plots import figure

    p = image.params
    seconds = image.width * float(p["hop_ms"]) / 1000.0
    fig = figure(figsize=(max(4.0, min(16.0, 1.5 + seconds * 2.0)), 3.2))
    ax = fig.subplots()
    shown = ax.imshow(
        image.pixels,
        aspect="auto",
        cmap="magma",
        extent=(0.0, seconds, 0.5, image.height + 0.5),
        vmin=0,
        vmax=255,
        interpolation="nearest",
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"mel band ({p.get('fmin', 0):.0f}–{p.get('fmax', 8000):.0f} Hz)")
    ax.set_title(f"{image.utt_id}: log-mel, {p['db_min']:.0f}..{p['db_max']:.0f} dB")
    bar = fig.colorbar(shown, ax=ax, pad=0.01)
    ticks = np.linspace(0, 255, 4)
    bar.set_ticks(ticks)
    db_range = float(p["db_max"]) - float(p["db_min"])
    bar.set_ticklabels([f"{float(p['db_min']) + t / 255 * db_range:.0f} dB" for t in ticks])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
