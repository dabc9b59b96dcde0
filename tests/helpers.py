"""Small builders shared by tests: catalog rows and registered feature parts, by hand."""

from __future__ import annotations

import numpy as np
import polars as pl

from sercap.warehouse import Warehouse


def add_corpus(
    wh: Warehouse,
    name: str = "toy",
    kind: str = "emodb",
    protocol: str = "leave-one-speaker-out",
    n_speakers: int = 4,
    per_class: int = 3,
    classes: tuple[str, ...] = ("ang", "neu", "sad"),
) -> pl.DataFrame:
    """Insert a corpus with ``n_speakers`` × classes × ``per_class`` utterances (no audio)."""
    label_map = {"emodb": "emodb7", "iemocap": "iemocap4", "ravdess": "ravdess8"}.get(kind, kind)
    wh.execute(
        "INSERT INTO corpora VALUES (?, ?, '/nowhere', ?, ?, now())",
        [name, kind, label_map, protocol],
    )
    rows = []
    for s in range(n_speakers):
        speaker = f"{s + 1:02d}"
        for c in classes:
            for k in range(per_class):
                rows.append(
                    {
                        "utt_id": f"{name}_{speaker}_{c}_{k}",
                        "speaker": speaker,
                        "session": f"Ses{s // 2 + 1:02d}",
                        "emotion": c,
                    }
                )
    frame = pl.DataFrame(rows)
    for r in frame.iter_rows(named=True):
        wh.execute(
            "INSERT INTO utterances (utt_id, corpus, session, speaker, path, duration_s) "
            "VALUES (?, ?, ?, ?, '/nowhere.wav', 1.0)",
            [r["utt_id"], name, r["session"], r["speaker"]],
        )
        wh.execute(
            "INSERT INTO labels (utt_id, emotion) VALUES (?, ?)", [r["utt_id"], r["emotion"]]
        )
    return frame


def add_features(
    wh: Warehouse,
    utterances: pl.DataFrame,
    name: str = "default",
    digest: str = "abc123",
    n_features: int = 6,
    seed: int = 0,
    corpus: str = "toy",
) -> pl.DataFrame:
    """Register a features part whose first columns depend on the emotion (learnable)."""
    rng = np.random.default_rng(seed)
    codes = {c: i for i, c in enumerate(sorted(utterances["emotion"].unique()))}
    signal = np.array([codes[e] for e in utterances["emotion"]], dtype=np.float32)
    cols = {"utt_id": utterances["utt_id"]}
    for j in range(n_features):
        noise = rng.normal(size=utterances.height).astype(np.float32)
        family = "mfcc" if j % 2 == 0 else "f0"
        cols[f"{family}_{j:02d}_mean"] = (signal * (2.0 if j < 2 else 0.0) + noise).astype(
            np.float32
        )
    frame = pl.DataFrame(cols)
    _register(wh, "features", name, digest, corpus, frame)
    return frame


def _register(wh: Warehouse, kind: str, name: str, digest: str, corpus: str, frame) -> None:
    set_kind = {"frames": "lld", "features": "lld", "images": "image"}[kind]
    wh.execute(
        "INSERT OR REPLACE INTO feature_sets VALUES (?, ?, ?, '{}', '{}', now())",
        [digest, name, set_kind],
    )
    path = wh.part_dir(kind, digest, corpus) / "part-0.parquet"
    frame.write_parquet(path)
    wh.register_part(kind, digest, corpus, path, frame.height)
    wh.refresh_views()


def add_frames(
    wh: Warehouse,
    utterances: pl.DataFrame,
    name: str = "default",
    digest: str = "abc123",
    n_descriptors: int = 4,
    seed: int = 0,
    corpus: str = "toy",
) -> None:
    """Register a frames part: 20–40 frames per utterance, the first descriptor class-dependent."""
    rng = np.random.default_rng(seed)
    codes = {c: i for i, c in enumerate(sorted(utterances["emotion"].unique()))}
    parts = []
    for utt, emotion in zip(utterances["utt_id"], utterances["emotion"], strict=True):
        n = int(rng.integers(20, 41))
        cols = {"utt_id": [utt] * n, "frame": np.arange(n, dtype=np.int32)}
        for j in range(n_descriptors):
            shift = 2.0 * codes[emotion] if j == 0 else 0.0
            cols[f"mfcc_{j + 1:02d}"] = (rng.normal(size=n) + shift).astype(np.float32)
        parts.append(pl.DataFrame(cols))
    _register(wh, "frames", name, digest, corpus, pl.concat(parts))


def add_images(
    wh: Warehouse,
    utterances: pl.DataFrame,
    name: str = "mel",
    digest: str = "img123",
    height: int = 16,
    seed: int = 0,
    corpus: str = "toy",
) -> None:
    """Register an images part: grey PNGs whose bright band's height depends on the class."""
    import io

    from PIL import Image

    rng = np.random.default_rng(seed)
    codes = {c: i for i, c in enumerate(sorted(utterances["emotion"].unique()))}
    rows = []
    for utt, emotion in zip(utterances["utt_id"], utterances["emotion"], strict=True):
        width = int(rng.integers(12, 30))
        image = rng.integers(0, 60, (height, width)).astype(np.uint8)
        band = 2 + 4 * codes[emotion]
        image[band : band + 3] = 220
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        rows.append({"utt_id": utt, "height": height, "width": width, "png": buffer.getvalue()})
    _register(wh, "images", name, digest, corpus, pl.DataFrame(rows))
