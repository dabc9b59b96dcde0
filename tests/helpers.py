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
    wh.execute(
        "INSERT OR REPLACE INTO feature_sets VALUES (?, ?, 'lld', '{}', '{}', now())",
        [digest, name],
    )
    path = wh.part_dir("features", digest, corpus) / "part-0.parquet"
    frame.write_parquet(path)
    wh.register_part("features", digest, corpus, path, frame.height)
    wh.refresh_views()
    return frame
