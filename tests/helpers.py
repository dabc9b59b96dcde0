"""Small builders shared by tests: catalog rows and registered feature parts, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf

from sercap.store import Warehouse


def add_corpus(
    wh: Warehouse,
    name: str = "toy",
    kind: str = "emodb",
    protocol: str = "leave-one-speaker-out",
    n_speakers: int = 4,
    per_class: int = 3,
    classes: tuple[str, ...] = ("ang", "neu", "sad"),
    sessions: bool | None = None,
) -> pl.DataFrame:
    """Insert a corpus with ``n_speakers`` × classes × ``per_class`` utterances (no audio).

    ``sessions`` pairs speakers into sessions as IEMOCAP's (default: unless the protocol is
    speaker-kfold-5, whose corpora, CREMA-D's, have none: with them it deals sessions)."""
    sessions = protocol != "speaker-kfold-5" if sessions is None else sessions
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
                        "session": f"Ses{s // 2 + 1:02d}" if sessions else None,
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


#: Words of the toy transcripts: one leaning word per emotion, the rest shared.
TOY_WORDS = {"ang": "hate", "neu": "fine", "sad": "sorry", "hap": "love"}


def add_transcripts(wh: Warehouse, utterances: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Give every utterance words: shared filler plus, most of the time, its emotion's word."""
    rng = np.random.default_rng(seed)
    filler = ["well", "you", "know", "the", "car", "today", "okay"]
    texts = []
    for emotion in utterances["emotion"]:
        words = list(rng.choice(filler, size=3))
        if rng.random() < 0.8:
            words.insert(int(rng.integers(0, 4)), TOY_WORDS.get(emotion, "um"))
        texts.append(" ".join(words))
    frame = pl.DataFrame({"utt_id": utterances["utt_id"], "text": texts})
    for utt_id, text in frame.iter_rows():
        wh.execute("INSERT INTO transcripts (utt_id, text) VALUES (?, ?)", [utt_id, text])
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
    # As extraction does: one bookkeeping row per utterance stored.
    for utt in frame["utt_id"].unique().to_list():
        wh.execute(
            "INSERT OR REPLACE INTO extractions VALUES (?, ?, 'ok', NULL, ?, NULL, now())",
            [utt, digest, str(path)],
        )
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


# --------------------------------------------------------------------------- audio corpus
SR = 16000
GOOD = 7
BAD = {
    "silent": "silent",
    "tiny": "shorter than one analysis window",
    "nan": "NaN",
    "gone": "audio file not found",
}


def voice(seconds: float, f0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    y = sum(0.2 / k * np.sin(k * phase) for k in range(1, 6))
    y = y * (np.sin(2 * np.pi * 2 * t) > -0.3)  # voiced stretches and pauses
    return (y + 0.003 * rng.normal(size=t.size)).astype(np.float32)


def make_corpus(root: Path) -> Path:
    """A manifest corpus: 7 usable recordings (one stereo 44.1 kHz) and 4 bad ones."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(GOOD):
        path = root / f"good{i}.wav"
        y = voice(0.6 + 0.1 * i, 120 + 25 * i, i)
        if i == 0:
            t = np.arange(int(0.8 * 44100)) / 44100
            y2 = 0.2 * np.sin(2 * np.pi * 180 * t)
            sf.write(path, np.stack([y2, y2], axis=1).astype(np.float32), 44100)
        else:
            sf.write(path, y, SR)
        rows.append((path.name, ["ang", "neu", "sad"][i % 3], f"s{i % 3}"))
    sf.write(root / "silent.wav", np.zeros(SR // 2, np.float32), SR)
    sf.write(root / "tiny.wav", voice(0.01, 200, 9), SR)
    nan = voice(0.5, 200, 10)
    nan[100] = np.nan
    sf.write(root / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(root / "gone.wav", voice(0.5, 200, 11), SR)
    rows += [(f"{name}.wav", "neu", "s0") for name in BAD]
    pl.DataFrame(rows, schema=["path", "label", "speaker"], orient="row").write_csv(
        root / "manifest.csv"
    )
    return root / "manifest.csv"


def double_or_die(x: int) -> int:
    """A pool task (importable by spawned workers): task 3 kills its own worker, as kill -9
    or the OOM killer would."""
    import os
    import signal

    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return 2 * x


def worker_pid(_: object) -> int:
    """A pool task (importable by spawned workers): the process that ran it."""
    import os

    return os.getpid()


def die_once_then_sum(item: tuple) -> float:
    """A cluster task (importable by workers): the first call, claimed by a marker file,
    kills its worker process; later ones return the shared data's sum plus ``x``."""
    import os
    import signal

    data, (marker, x) = item
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return float(sum(data)) + x
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    return 0.0


def fail_task(_: object) -> None:
    """A cluster task (importable by workers) that fails."""
    raise ValueError("this task fails")


def predicting_warehouse(
    folder: Path, *, per_speaker: int, seed: int, models: dict[str, dict]
) -> tuple[Path, dict[str, str]]:
    """A synthetic corpus (2 sessions) in ``folder``, ingested and extracted, with a run of
    each of ``models`` (name → parameters) and ``"ensemble"``, the average of the svm and
    rf runs: what the prediction tests predict with. Returns the warehouse folder and the
    run ids by name."""
    from sercap.corpora.ingest import ingest
    from sercap.corpora.synthetic import generate
    from sercap.ensemble import ensemble_runs
    from sercap.experiment import data_request, load_for, run_model
    from sercap.features.extract import extract
    from sercap.store import connect

    corpus = generate(folder / "corpus", sessions=2, per_speaker=per_speaker, seed=seed).root
    wh = connect(folder / "wh")
    ingest(wh, "iemocap", corpus)
    extract(wh, "default", jobs=1, progress=False)
    data = load_for(wh, data_request("svm"))
    runs = {
        name: run_model(wh, name, data, params=params, progress=False).run_id
        for name, params in models.items()
    }
    runs["ensemble"], _ = ensemble_runs(wh, [runs["svm"], runs["rf"]])
    wh.close()
    return folder / "wh", runs
