"""sercap's voice descriptors against Praat's (via praat-parselmouth), per utterance.

A validation tool, not part of extraction: for each file it computes the utterance-level
F0 mean, local jitter, local shimmer, HNR mean and F1-F3 means both ways and reports the
Pearson correlation per descriptor over the files::

    python -m sercap.features.praat_check ../shared/data/emodb/wav --n 40

sercap's values are the means over voiced frames of the default set's per-frame columns
(what ``<descriptor>_mean`` in ``utterance_features`` holds); Praat's come from "To Pitch
(ac)" (70-450 Hz), "To PointProcess (cc)" with "Get jitter/shimmer (local)" (Praat's
defaults 0.0001, 0.02, 1.3, 1.6), "To Harmonicity (cc)" and "To Formant (burg)" (5 formants
up to 5500 Hz, 25 ms), formants averaged over Praat's voiced frames.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Descriptor → sercap's per-frame column.
DESCRIPTORS = {
    "f0_hz": "f0_hz",
    "jitter": "jitter_local",
    "shimmer": "shimmer_local",
    "hnr_db": "hnr_db",
    "f1_hz": "f1_hz",
    "f2_hz": "f2_hz",
    "f3_hz": "f3_hz",
}


def sercap_values(y: np.ndarray, params: Mapping[str, Any]) -> dict[str, float]:
    """Utterance means over voiced frames of sercap's voice descriptors."""
    from sercap.features.lld import compute_frames

    cols = compute_frames(y, params)
    out = {}
    for name, col in DESCRIPTORS.items():
        v = cols[col]
        out[name] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
    return out


def praat_values(y: np.ndarray, sr: int, fmin: float = 70.0, fmax: float = 450.0) -> dict:
    """The same descriptors by Praat (needs praat-parselmouth)."""
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(np.asarray(y, dtype=np.float64), sampling_frequency=sr)
    pitch = snd.to_pitch_ac(time_step=0.01, pitch_floor=fmin, pitch_ceiling=fmax)
    pp = call([snd, pitch], "To PointProcess (cc)")
    harm = snd.to_harmonicity_cc(time_step=0.01, minimum_pitch=fmin)
    formant = snd.to_formant_burg(
        time_step=0.01,
        max_number_of_formants=5,
        maximum_formant=5500.0,
        window_length=0.025,
        pre_emphasis_from=50.0,
    )
    f0 = pitch.selected_array["frequency"]
    times = pitch.xs()
    voiced = f0 > 0
    out = {
        "f0_hz": float(np.mean(f0[voiced])) if voiced.any() else float("nan"),
        "jitter": float(call(pp, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)),
        "shimmer": float(call([snd, pp], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)),
        "hnr_db": float(call(harm, "Get mean", 0, 0)),
    }
    for i in (1, 2, 3):
        vals = [formant.get_value_at_time(i, t) for t in times[voiced]]
        out[f"f{i}_hz"] = float(np.nanmean(vals)) if vals else float("nan")
    return out


def compare(paths: Sequence[str | Path], params: Mapping[str, Any] | None = None) -> dict:
    """Per-descriptor Pearson r between sercap and Praat over ``paths``.

    Returns
    -------
    dict
        descriptor → (r, n_files, sercap median, Praat median).
    """
    from sercap.audio import load_audio
    from sercap.features.featureset import get_feature_set

    params = params or get_feature_set("default").params
    sr = int(params["sample_rate"])
    pitch = params["groups"]["pitch"]
    from sercap.audio import audio_problem
    from sercap.errors import AudioError

    ours, theirs = [], []
    for p in paths:
        try:
            y = load_audio(p, sr)
            problem = audio_problem(y, sr, int(sr * 0.1))
        except AudioError as exc:
            problem = exc.message
        if problem:  # as extraction does: such a file has no descriptors to compare
            print(f"skipped {p}: {problem}", file=sys.stderr)
            continue
        ours.append(sercap_values(y, params))
        theirs.append(praat_values(y, sr, float(pitch["fmin"]), float(pitch["fmax"])))
    result = {}
    for name in DESCRIPTORS:
        a = np.array([o[name] for o in ours])
        b = np.array([t[name] for t in theirs])
        ok = np.isfinite(a) & np.isfinite(b)
        r = float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else float("nan")
        result[name] = (r, int(ok.sum()), float(np.median(a[ok])), float(np.median(b[ok])))
    return result


def wav_files(folder: Path) -> list[Path]:
    """The ``*.wav`` files of ``folder``, or of its ``wav/`` folder: a corpus root (EmoDB's
    layout) is what every sercap command takes."""
    if not any(folder.glob("*.wav")) and (folder / "wav").is_dir():
        folder = folder / "wav"
    return sorted(folder.glob("*.wav"))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wav_dir")
    ap.add_argument("--n", type=int, default=40, help="every k-th file so that n are used")
    ap.add_argument("--feature-set", default="default")
    args = ap.parse_args(argv)
    from sercap.errors import SercapError
    from sercap.features.featureset import get_feature_set

    if args.n < 3:
        ap.error("--n must be at least 3 (a correlation needs three files)")
    try:
        params = get_feature_set(args.feature_set, "lld").params
    except SercapError as exc:
        ap.error(str(exc))
    files = wav_files(Path(args.wav_dir))
    if not files:
        ap.error(f"{args.wav_dir}: no .wav files here")
    try:
        import parselmouth  # noqa: F401
    except ImportError:
        ap.error("needs praat-parselmouth: python -m pip install praat-parselmouth")
    step = max(1, len(files) // args.n)
    files = files[::step][: args.n]
    res = compare(files, params)
    print(f"| descriptor | r vs Praat ({len(files)} files) | sercap median | Praat median |")
    print("| --- | --- | --- | --- |")
    for name, (r, _n, a, b) in res.items():
        print(f"| {name} | {r:.3f} | {a:.4g} | {b:.4g} |")


if __name__ == "__main__":
    main()
