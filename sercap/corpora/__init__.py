"""Corpus readers (one module per corpus) and the registry of corpus kinds.

Every reader turns a directory into :class:`~sercap.corpora.records.UtteranceRecord` s plus
problems; :func:`sercap.corpora.ingest.ingest` writes them into the warehouse.
"""

from __future__ import annotations

from sercap.corpora import cremad, emodb, iemocap, manifest, ravdess, tess
from sercap.corpora.records import CorpusKind
from sercap.errors import BadParameterError

KINDS: dict[str, CorpusKind] = {
    kind.name: kind
    for kind in (
        CorpusKind(
            "iemocap",
            iemocap.read,
            "iemocap4",
            "leave-one-session-out",
            "IEMOCAP_full_release/Session1..5/ (or some SessionN/): "
            "dialog/EmoEvaluation/<dialog>.txt, sentences/wav/<dialog>/<utt>.wav",
        ),
        CorpusKind(
            "emodb",
            emodb.read,
            "emodb7",
            "leave-one-speaker-out",
            "wav/03a01Fa.wav (speaker, text, emotion letter, version); README for genders",
        ),
        CorpusKind(
            "ravdess",
            ravdess.read,
            "ravdess8",
            "actor-blocks-4",
            "Actor_NN/03-01-EE-II-SS-RR-AA.wav (speech files only)",
        ),
        CorpusKind(
            "cremad",
            cremad.read,
            "cremad6",
            "speaker-kfold-5",
            "AudioWAV/1001_DFA_ANG_XX.wav; VideoDemographics.csv beside it for genders",
        ),
        CorpusKind(
            "tess",
            tess.read,
            "tess7",
            "leave-one-speaker-out",
            "OAF_angry/OAF_back_angry.wav, YAF_pleasant_surprised/YAF_back_ps.wav …",
        ),
        CorpusKind(
            "manifest",
            manifest.read,
            "manifest",
            "speaker-kfold-5",
            "a .csv/.parquet with path,label,speaker [utt_id,gender,session,start,end,text,"
            "valence,activation,dominance]",
        ),
    )
}


def corpus_kind(name: str) -> CorpusKind:
    """The corpus kind called ``name``; a one-line error lists the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise BadParameterError(
            f"unknown corpus kind {name!r}; choose one of {', '.join(KINDS)}"
        ) from None
