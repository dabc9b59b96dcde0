"""The text dataset: transcripts of one corpus' labelled utterances, for the text models.

The same utterances, labels, speakers and folds as :func:`sercap.data.load_dataset` gives
the audio models, with ``X`` the transcript of each utterance (an object array of str) and
``input_kind`` "text". Raw strings only: every vocabulary or weight is learnt inside a model's
``fit`` on training rows. Reads; never writes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from sercap.data import (
    Dataset,
    labelled_utterances,
    protocol_sessions,
    resolve_corpus,
    resolve_label_map,
)
from sercap.errors import SercapError
from sercap.store import Warehouse
from sercap.store.runs import audio_sources

TEXT_FEATURE_SET = "transcripts"


def load_text_dataset(
    wh: Warehouse, *, corpus: str | None = None, label_map: str | None = None
) -> Dataset:
    """Transcripts, labels, speakers and folds of the labelled utterances that have words.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse.
    corpus : str, optional
        The corpus; the only one in the warehouse when omitted.
    label_map : str, optional
        The label map; the corpus' default when omitted.

    Returns
    -------
    Dataset
        ``input_kind="text"``, ``feature_set="transcripts"`` and ``feature_set_hash`` a digest
        of the ids and words used (so runs on other words are told apart).
    """
    corpus = resolve_corpus(wh, corpus)
    label_map = resolve_label_map(wh, corpus, label_map)
    meta = labelled_utterances(wh, corpus, label_map)
    wh.con.register("_text_wanted", meta.select("utt_id").to_arrow())
    try:
        words = wh.query(
            "SELECT t.utt_id, t.text FROM transcripts t JOIN _text_wanted USING (utt_id) "
            "WHERE trim(t.text) <> '' ORDER BY t.utt_id"  # (blank: left out, as missing)
        )
    finally:
        wh.con.unregister("_text_wanted")
    if words.is_empty():
        raise SercapError(
            f"corpus {corpus!r} has no transcripts; ingest a corpus with words (IEMOCAP "
            "dialog/transcriptions/, or a manifest with a text column)"
        )
    labelled = meta.height
    every_class = set(meta["label"].unique().to_list())
    meta = meta.join(words, on="utt_id", how="inner").sort("utt_id")
    classes = sorted(meta["label"].unique().to_list())
    index = {c: i for i, c in enumerate(classes)}
    return Dataset(
        utt_ids=meta["utt_id"].to_numpy(),
        X=np.array(meta["text"].to_list(), dtype=object),
        y=np.array([index[c] for c in meta["label"]], dtype=np.int64),
        classes=classes,
        speakers=meta["speaker"].to_numpy(),
        folds=meta["fold"].to_numpy(),
        classes_left_out=tuple(sorted(every_class - set(classes))),
        sessions=protocol_sessions(meta),
        audio_sources=audio_sources(wh, corpus),
        corpus=corpus,
        label_map=label_map,
        protocol=meta["protocol"][0],
        input_kind="text",
        feature_set=TEXT_FEATURE_SET,
        feature_set_hash=words_digest(meta.select("utt_id", "text")),
        left_out=labelled - meta.height,
    )


def words_digest(frame: pl.DataFrame) -> str:
    """16 hex digits naming the exact (utt_id, text) rows, in utt_id order."""
    digest = hashlib.sha256()
    for utt_id, text in frame.sort("utt_id").iter_rows():
        digest.update(f"{utt_id}\t{text}\n".encode())
    return digest.hexdigest()[:16]


def load_multimodal_dataset(audio: Dataset, text: Dataset) -> Dataset:
    """Functionals and transcripts of the same utterances, for the fusion models.

    Parameters
    ----------
    audio : Dataset
        A tabular dataset (:func:`sercap.data.load_dataset`).
    text : Dataset
        The text dataset of the same corpus and label map (:func:`load_text_dataset`).

    Returns
    -------
    Dataset
        The utterances both hold, by utt_id; ``X`` a list of ``(features, text)`` pairs,
        ``input_kind="multimodal"``, ``feature_set`` ``"<audio set>+transcripts"`` and
        ``feature_set_hash`` a digest of both inputs' hashes.
    """
    if (audio.corpus, audio.label_map) != (text.corpus, text.label_map):
        raise SercapError("audio and text datasets of different corpora or label maps")
    if audio.classes != text.classes:
        raise SercapError(
            f"corpus {audio.corpus!r}: the transcribed utterances cover classes "
            f"{', '.join(text.classes)}, the extracted ones {', '.join(audio.classes)}"
        )
    common, ia, it = np.intersect1d(audio.utt_ids, text.utt_ids, return_indices=True)
    if len(common) == 0:
        raise SercapError(
            f"no utterance of corpus {audio.corpus!r} has both features and a transcript"
        )
    digest = hashlib.sha256(f"{audio.feature_set_hash}+{text.feature_set_hash}".encode())
    return Dataset(
        utt_ids=audio.utt_ids[ia],
        X=[(audio.X[i], text.X[j]) for i, j in zip(ia, it, strict=True)],
        y=audio.y[ia],
        classes=audio.classes,
        speakers=audio.speakers[ia],
        folds=audio.folds[ia],
        sessions=None if audio.sessions is None else audio.sessions[ia],
        audio_sources=audio.audio_sources,
        corpus=audio.corpus,
        label_map=audio.label_map,
        protocol=audio.protocol,
        input_kind="multimodal",
        feature_set=f"{audio.feature_set}+{TEXT_FEATURE_SET}",
        feature_set_hash=digest.hexdigest()[:16],
        columns=audio.columns,
        column_pattern=audio.column_pattern,
        speaker_norm=audio.speaker_norm,
        left_out=len(audio) + audio.left_out - len(common),
    )
