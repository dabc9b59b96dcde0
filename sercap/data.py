"""What models eat, read from the warehouse with polars: X, y, speakers and folds.

A :class:`Dataset` is one corpus under one label map and its speaker-independent fold
assignment, with inputs of one kind: a feature matrix (``tabular``), per-frame descriptor
sequences (``sequence``) or spectrogram images (``image``). Everything here reads; nothing
writes.

Speaker normalisation (``speaker_norm``) standardises each speaker's inputs (functionals,
frame descriptors or mel bands) with statistics over *all* of that speaker's extracted
utterances, labelled or not, so it never depends on the label map (nor on any label).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from sercap._arrow import to_floats
from sercap.errors import (
    INGEST_STEP,
    BadParameterError,
    NotExtractedError,
    NotFoundError,
    SercapError,
    option,
    step,
)
from sercap.features.featureset import store_step
from sercap.store import Warehouse, catalog, check_name
from sercap.store.corpora import corpus_names, unknown_corpus
from sercap.store.runs import audio_sources

INPUT_KINDS = ("tabular", "sequence", "image", "text")
DEFAULT_FEATURE_SET = "default"
DEFAULT_IMAGE_SET = "mel"
#: Protocols whose folds keep each session whole (sql/020_folds.sql): inner splits do too.
SESSION_PROTOCOLS = ("leave-one-session-out", "session-kfold-5")


@dataclass
class Dataset:
    """Inputs, labels, speakers and folds of one corpus under one label map.

    ``X`` is a float32 matrix (tabular) or a list of arrays (sequences, images), row-aligned
    with ``utt_ids``, ``y`` (class indices into ``classes``), ``speakers`` and ``folds``.
    """

    utt_ids: np.ndarray
    X: Any
    y: np.ndarray
    classes: list[str]
    speakers: np.ndarray
    folds: np.ndarray
    corpus: str
    label_map: str
    protocol: str
    input_kind: str
    feature_set: str | None = None
    feature_set_hash: str | None = None
    columns: list[str] = field(default_factory=list)
    column_pattern: str | None = None
    speaker_norm: bool = False
    #: A dimensional rating (valence, activation, dominance): ``y`` then holds float ratings
    #: and ``classes`` is empty (see :mod:`sercap.regression`).
    target: str | None = None
    #: Labelled utterances left out because their extraction failed (their audio was
    #: unusable; ``extractions.error`` says why).
    left_out: int = 0
    #: What inner validation splits keep apart, when set (a cross-corpus split: each
    #: training corpus' own unit); None: by the protocol (:meth:`validation_groups`).
    inner_groups: np.ndarray | None = None
    #: Each row's session where the protocol deals whole sessions into folds
    #: (``session-kfold-5``: a manifest of dyadic sessions); None otherwise.
    sessions: np.ndarray | None = None
    #: What each utterance of the corpus is recorded as (file SHA-256 and segment,
    #: :func:`sercap.store.runs.audio_sources`), read with the data: a run's data
    #: fingerprint, and the check that no recording lies in two folds, read it from here
    #: (the warehouse may change while the folds are fitted). None: not read.
    audio_sources: dict[str, str | None] | None = field(default=None, repr=False)
    #: Classes of the label map none of whose utterances the data holds (a text dataset of
    #: a corpus where one emotion has no transcripts): its runs have fewer classes.
    classes_left_out: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __repr__(self) -> str:
        # the dataclass' own repr printed every array and all 2,853 column names (75 kB)
        shape = self.X.shape if hasattr(self.X, "shape") else f"{len(self.X)} arrays"
        what = f"target={self.target!r}" if self.target else f"classes={self.classes}"
        norm = ", speaker_norm=True" if self.speaker_norm else ""
        return (
            f"Dataset(corpus={self.corpus!r}, label_map={self.label_map!r}, {len(self)} "
            f"utterances, {len(np.unique(self.speakers))} speakers, "
            f"{len(np.unique(self.folds))} folds ({self.protocol}), {self.input_kind} X "
            f"{shape}, {what}{norm})"
        )

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def validation_groups(self, index: np.ndarray | None = None) -> np.ndarray:
        """What inner validation splits (early stopping, tuning) keep apart, for rows
        ``index`` (all rows when None): the session under a protocol whose folds keep
        sessions whole (:data:`SESSION_PROTOCOLS`) when those rows hold three sessions or
        more, the speaker otherwise.

        A session is the protocol's unit for a reason: IEMOCAP's two speakers of a session
        act the same dialogues together, and each one's microphone hears the other, so a
        validation speaker whose partner is among the training rows is not new the way the
        outer test session is.

        Examples
        --------
        >>> import numpy as np
        >>> d = Dataset(np.arange(6), np.zeros((6, 1)), np.zeros(6, int), ["a"],
        ...             np.array(["1F", "1M", "2F", "2M", "3F", "3M"]),
        ...             np.array(["S1", "S1", "S2", "S2", "S3", "S3"]),
        ...             "c", "m", "leave-one-session-out", "tabular")
        >>> d.validation_groups().tolist()
        ['S1', 'S1', 'S2', 'S2', 'S3', 'S3']
        >>> d.validation_groups(np.array([0, 1, 2, 3])).tolist()  # two sessions: speakers
        ['1F', '1M', '2F', '2M']
        """
        rows = slice(None) if index is None else index
        if self.inner_groups is not None:
            return np.asarray(self.inner_groups)[rows]
        if self.validation_unit(index) == "session":
            return self._session_of_rows()[rows]
        return np.asarray(self.speakers)[rows]

    def _session_of_rows(self) -> np.ndarray:
        """Each row's session under a protocol that keeps sessions whole (under
        leave-one-session-out the fold is the session; a session-kfold-5 dataset built
        without its sessions falls back on its folds, each a few whole sessions)."""
        if self.protocol == "session-kfold-5" and self.sessions is not None:
            return np.asarray(self.sessions)
        return np.asarray(self.folds)

    def validation_unit(self, index: np.ndarray | None = None) -> str:
        """``"session"``, ``"speaker"`` or ``"given"`` (:attr:`inner_groups`): what
        :meth:`validation_groups` keeps apart for rows ``index`` (a study records it: trials
        split one way and the other are not one search). Sessions from three on: with two,
        holding one out would train on half the rows."""
        if self.inner_groups is not None:
            return "given"
        if self.protocol in SESSION_PROTOCOLS:
            rows = slice(None) if index is None else index
            if len(np.unique(self._session_of_rows()[rows])) >= 3:
                return "session"
        return "speaker"

    def subset(self, index: np.ndarray) -> Dataset:
        """Rows ``index`` (an integer array) of every aligned field."""
        return replace(
            self,
            utt_ids=self.utt_ids[index],
            X=take(self.X, index),
            y=self.y[index],
            speakers=self.speakers[index],
            folds=self.folds[index],
            inner_groups=None if self.inner_groups is None else self.inner_groups[index],
            sessions=None if self.sessions is None else self.sessions[index],
        )


def take(X: Any, index: np.ndarray) -> Any:
    """Rows of a matrix or items of a list, by integer index."""
    if isinstance(X, np.ndarray):
        return X[index]
    return [X[i] for i in index]


# ----------------------------------------------------------------------------- choices
def resolve_corpus(wh: Warehouse, corpus: str | None) -> str:
    """The corpus to use: the one named, or the only one in the warehouse."""
    names = corpus_names(wh)
    if not names:
        raise NotExtractedError(  # (named: a mistyped path opens a new, empty warehouse)
            f"the warehouse at {wh.root} has no corpus yet; run {INGEST_STEP} first"
        )
    if corpus is None:
        if len(names) > 1:
            raise BadParameterError(
                f"several corpora in the warehouse ({', '.join(names)}); pick one with "
                f"{option('corpus')}"
            )
        return names[0]
    if corpus not in names:
        raise unknown_corpus(corpus, names)
    return corpus


def resolve_label_map(wh: Warehouse, corpus: str, label_map: str | None) -> str:
    """The label map to use: the one named (checked against the corpus kind) or its default."""
    kind, default = wh.con.execute(
        "SELECT kind, label_map FROM corpora WHERE name = ?", [corpus]
    ).fetchall()[0]
    if label_map is None:
        return default
    maps = wh.query("SELECT name, kind FROM label_maps ORDER BY name")
    known = dict(zip(maps["name"], maps["kind"], strict=True))
    fitting = [n for n, k in known.items() if k == kind]
    if label_map not in known:  # the maps of this corpus' kind (it listed every corpus')
        raise BadParameterError(
            f"unknown label map {label_map!r}; corpus {corpus!r} ({kind}) takes: "
            f"{', '.join(fitting)}"
        )
    if known[label_map] != kind:
        raise BadParameterError(
            f"label map {label_map!r} is for {known[label_map]} corpora; corpus {corpus!r} is "
            f"{kind} (use one of: {', '.join(fitting)})"
        )
    return label_map


def feature_set_hash(wh: Warehouse, name: str, kind: str | None = None) -> str:
    """Hash of the newest registered feature set called ``name`` (an image set when ``kind``
    is "image", a frame/functional set otherwise)."""
    from sercap.features.featureset import builtin_definitions

    check_name(name, "feature set")
    images = kind == "image"
    known = {n for n, (k, _, _) in builtin_definitions().items() if (k == "image") == images}
    rows = wh.con.execute(
        "SELECT hash, kind FROM feature_sets WHERE name = ? ORDER BY created_at DESC", [name]
    ).fetchall()
    if rows and (rows[0][1] == "image") != images:
        rows = []
    if not rows and name not in known:
        what = "image set" if images else "feature set"
        other = {n for n, (k, _, _) in builtin_definitions().items() if (k == "image") != images}
        if name in other:  # the right name for the other kind of model
            reads = "spectrogram images" if not images else "descriptors and functionals"
            raise BadParameterError(
                f"{name!r} is an {'image' if not images else 'audio feature'} set, and this "
                f"model reads {'feature' if not images else 'image'} sets; choose one of: "
                f"{', '.join(sorted(known))} (a model reading {reads} takes {name!r})"
            )
        raise NotFoundError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(known))}")
    if not rows:
        raise NotExtractedError(
            f"{name!r} has not been extracted yet; run {store_step(name, kind)}"
        )
    return rows[0][0]


def _require_complete(
    wh: Warehouse, digest: str, name: str, kind: str | None, corpus: str, utt_ids: pl.Series
) -> None:
    """Refuse to train on a feature set that is only partly extracted (e.g. after --limit)
    or partly readable (a part found damaged at open is left out of the views): utterances
    never attempted, or lost, would silently drop out of the protocol. Nor on features of
    audio whose file has been overwritten since (one ``stat`` per file; a file is hashed
    only when its stat moved): the model would learn from sounds the corpus no longer
    holds, and nothing would say so."""
    from sercap.check import damage_line, stale_audio_line

    if line := damage_line(wh):
        raise SercapError(f"{line} first")
    if line := stale_audio_line(wh, utt_ids.to_list(), digest):
        raise SercapError(line)
    never = catalog.missing_extractions(wh, digest, utt_ids)
    if never:
        raise NotExtractedError(
            f"{name!r} is extracted for {len(utt_ids) - never} of the {len(utt_ids)} labelled "
            f"utterances of {corpus!r}; run {store_step(name, kind, corpus)} to finish it"
        )


def labelled_utterances(wh: Warehouse, corpus: str, label_map: str) -> pl.DataFrame:
    """utt_id, speaker, fold, protocol, label and session of every utterance the label map
    keeps, by utt_id."""
    check_name(label_map, "label map")
    frame = wh.query(
        f"SELECT l.utt_id, f.speaker, f.fold, f.protocol, l.label, f.session FROM {label_map} l "
        "JOIN folds f USING (utt_id) WHERE l.corpus = ? ORDER BY l.utt_id",
        [corpus],
    )
    if frame.is_empty():
        raise SercapError(
            f"label map {label_map!r} keeps no utterance of corpus {corpus!r}; "
            f"check {step('info', 'info(wh)')} and {option('labels')}"
        )
    return frame


def protocol_sessions(meta: pl.DataFrame) -> np.ndarray | None:
    """The ``session`` column of loaded folds (:func:`labelled_utterances`) where the
    protocol deals whole sessions into folds and the fold names do not say them
    (``session-kfold-5``); None otherwise (:attr:`Dataset.sessions`)."""
    if meta.is_empty() or meta["protocol"][0] != "session-kfold-5":
        return None
    return meta["session"].to_numpy()


# ----------------------------------------------------------------------------- loading
def load_dataset(
    wh: Warehouse,
    input_kind: str = "tabular",
    *,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
    version: str | None = None,
) -> Dataset:
    """The dataset a model of ``input_kind`` trains on.

    ``columns`` is a regular expression on feature (or descriptor) column names, e.g.
    ``"^mfcc_"``; ``speaker_norm`` standardises the inputs per speaker (see
    :func:`apply_speaker_norm`); ``version`` is the hash of the version of ``feature_set``
    to read (default: its newest, the one ``extract`` made last).
    """
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}")
    if input_kind == "text":  # transcripts, not features: their own loader
        raise ValueError("text datasets come from sercap.textdata.load_text_dataset")
    corpus = resolve_corpus(wh, corpus)
    label_map = resolve_label_map(wh, corpus, label_map)
    meta = labelled_utterances(wh, corpus, label_map)
    classes = sorted(meta["label"].unique().to_list())
    if input_kind == "image":
        name = feature_set or DEFAULT_IMAGE_SET
        digest = set_version(wh, name, "image", version)
        _require_complete(wh, digest, name, "image", corpus, meta["utt_id"])
        X, keep, cols = _read_images(wh, name, meta["utt_id"], digest)
    else:
        name = feature_set or DEFAULT_FEATURE_SET
        digest = set_version(wh, name, None, version)
        _require_complete(wh, digest, name, None, corpus, meta["utt_id"])
        if input_kind == "tabular":
            X, keep, cols = _read_tabular(wh, name, corpus, meta["utt_id"], columns, digest)
        else:
            X, keep, cols = _read_sequences(wh, name, corpus, meta["utt_id"], columns, digest)
    labelled = meta.height
    meta = meta.filter(pl.col("utt_id").is_in(keep))
    if meta.is_empty():
        raise SercapError(
            f"no {name!r} features for the utterances of corpus {corpus!r}; run "
            f"`sercap {'images' if input_kind == 'image' else 'extract'} --corpus {corpus}` first"
        )
    index = {c: i for i, c in enumerate(classes)}
    data = Dataset(
        utt_ids=meta["utt_id"].to_numpy(),
        X=X,
        y=np.array([index[c] for c in meta["label"]], dtype=np.int64),
        classes=classes,
        speakers=meta["speaker"].to_numpy(),
        folds=meta["fold"].to_numpy(),
        sessions=protocol_sessions(meta),
        audio_sources=audio_sources(wh, corpus),
        corpus=corpus,
        label_map=label_map,
        protocol=meta["protocol"][0],
        input_kind=input_kind,
        feature_set=name,
        feature_set_hash=digest,
        columns=cols,
        column_pattern=columns,
        speaker_norm=False,
        left_out=labelled - meta.height,
    )
    if speaker_norm:
        apply_speaker_norm(wh, data)
    return data


def set_version(wh: Warehouse, name: str, kind: str | None, version: str | None) -> str:
    """The hash of the version of set ``name`` a dataset reads: ``version`` when given (a
    registered version of ``name``, else one line), its newest otherwise. Either way a set
    of the other kind (``kind`` "image" or not, as :func:`feature_set_hash`) is one line."""
    newest = feature_set_hash(wh, name, kind=kind)
    if version is None:
        return newest
    record = catalog.feature_set_record(wh, version)
    if record is None or record["name"] != name:
        raise NotFoundError(
            f"feature set {name!r} has no version {version!r} in the warehouse "
            f"(`sercap features list` shows the versions stored)"
        )
    return version


def apply_speaker_norm(wh: Warehouse, data: Dataset) -> None:
    """Standardise ``data.X`` per speaker in place, whatever its input kind.

    The statistics are each speaker's over *every* extracted utterance of the corpus,
    labelled or not (no label is read): per functional for tabular inputs, per descriptor
    over all frames for sequences, per mel band over all frames for images. Image pixels
    stay uint8 (see :func:`speaker_normalise_images`).
    """
    name, corpus, cols = data.feature_set, data.corpus, data.columns
    assert name is not None
    name = version_view_name(name, data.feature_set_hash)  # (the version the data is of)
    if data.input_kind == "tabular":
        stats = _speaker_statistics_from_warehouse(wh, name, corpus, cols)
        data.X = speaker_normalise(data.X, data.speakers, stats)
    elif data.input_kind == "sequence":
        stats = _speaker_frame_statistics(wh, name, corpus, cols)
        data.X = speaker_normalise_sequences(data.X, data.speakers, stats)
    elif data.input_kind == "image":
        images, speakers = _corpus_images(wh, name, corpus)
        stats = speaker_band_statistics(images, speakers)
        data.X = speaker_normalise_images(data.X, data.speakers, stats)
    else:
        raise SercapError(f"{option('speaker_norm')} does not apply to {data.input_kind} inputs")
    data.speaker_norm = True


def _speaker_statistics_from_warehouse(
    wh: Warehouse, name: str, corpus: str, cols: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-speaker statistics over *every* extracted utterance of the corpus, labelled or not.

    A deployed system sees all of a speaker's audio and none of its labels, so which of a
    speaker's utterances a label map keeps must not move that speaker's mean and std.
    """
    select = ", ".join(f'f."{c}"' for c in cols)
    frame = wh.query(
        f"SELECT u.speaker, {select} FROM features_{name} f JOIN utterances u USING (utt_id) "
        "WHERE u.corpus = ? ORDER BY f.utt_id",
        [corpus],
    )
    X = frame.select(cols).cast(pl.Float32).to_numpy().astype(np.float32, copy=False)
    return speaker_statistics(X, frame["speaker"].to_numpy())


def _speaker_frame_statistics(
    wh: Warehouse, name: str, corpus: str, cols: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-speaker mean and standard deviation of each descriptor over all frames of every
    extracted utterance of the corpus (unvoiced NULLs ignored), computed by DuckDB."""
    aggregates = ", ".join(
        f'avg(f."{c}") AS "m{i}", stddev_pop(f."{c}") AS "s{i}"' for i, c in enumerate(cols)
    )
    frame = wh.query(
        f"SELECT u.speaker, {aggregates} FROM frames_{name} f JOIN utterances u USING (utt_id) "
        "WHERE u.corpus = ? GROUP BY u.speaker ORDER BY u.speaker",
        [corpus],
    )
    n = len(cols)
    means = frame.select([f"m{i}" for i in range(n)]).cast(pl.Float64).to_numpy()
    stds = frame.select([f"s{i}" for i in range(n)]).cast(pl.Float64).to_numpy()
    return {
        str(speaker): _usable(mean, std)
        for speaker, mean, std in zip(frame["speaker"].to_list(), means, stds, strict=True)
    }


def _corpus_images(
    wh: Warehouse, name: str, corpus: str
) -> tuple[Iterator[np.ndarray], np.ndarray]:
    """Every stored image of the corpus (labelled or not), decoded one at a time, and the
    speakers in the same order."""
    frame = wh.query(
        f"SELECT u.speaker, i.png FROM images_{name} i JOIN utterances u USING (utt_id) "
        "WHERE u.corpus = ? ORDER BY i.utt_id",
        [corpus],
    )
    return (decode_png(b) for b in frame["png"]), frame["speaker"].to_numpy()


def _feature_columns(available: list[str], pattern: str | None, what: str) -> list[str]:
    numeric = [c for c in available if c not in ("utt_id", "frame", "time_s", "corpus")]
    if pattern is None:
        return numeric
    try:
        regex = re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise BadParameterError(
            f"{option('columns')}{pattern!r} is not a valid regular expression ({exc})"
        ) from exc
    chosen = [c for c in numeric if regex.search(c)]
    if not chosen:
        raise BadParameterError(
            f"{option('columns')}{pattern!r} matches none of the {len(numeric)} {what} columns"
        )
    return chosen


def _query_utterances(
    wh: Warehouse, utt_ids: pl.Series, sql: str, params: list | None = None
) -> pl.DataFrame:
    """Run ``sql`` with the wanted utterance ids available as the relation ``wanted``."""
    with _wanted(wh, utt_ids):
        return wh.query(sql, params)


def _wanted(wh: Warehouse, utt_ids: pl.Series) -> contextlib.AbstractContextManager:
    """The utterance ids as the relation ``wanted`` while the block runs."""
    return _registered(wh, "wanted", pl.DataFrame({"utt_id": utt_ids}))


@contextlib.contextmanager
def _registered(wh: Warehouse, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """``frame`` as the relation ``name`` on the warehouse's connection while the block runs."""
    wh.con.register(name, frame.to_arrow())
    try:
        yield
    finally:
        wh.con.unregister(name)


def _require_view(wh: Warehouse, view: str, name: str, kind: str = "lld") -> None:
    """Nothing when ``view`` exists; else why not: every extraction of set ``name`` failed,
    or the step that stores it has not run."""
    if wh.has_relation(view):
        return
    try:
        failed = catalog.count_failed(wh, feature_set_hash(wh, name, kind), None)
    except SercapError:
        failed = 0
    if failed:  # extract ran and stored nothing: "run extract first" sent the user in a circle
        raise NotExtractedError(
            f"{view} does not exist: the extraction of each of the {failed} utterance(s) "
            "failed; each one's reason is in the extractions table (status 'error', column "
            "error)"
        )
    verb, option = ("images", "--image-set") if kind == "image" else ("extract", "--feature-set")
    raise NotExtractedError(f"{view} does not exist yet; run `sercap {verb} {option} {name}` first")


def _require_frames(wh: Warehouse, name: str, view: str | None = None) -> None:
    """The frames view of set ``name`` (``view``: of one version), or why there is none: an
    openSMILE set stores functionals only, which extracting it again does not change."""
    view = view or f"frames_{name}"
    if wh.has_relation(view):
        return
    kinds = {kind for _, set_name, kind in catalog.stored_feature_sets(wh) if set_name == name}
    if kinds == {"opensmile"}:
        raise BadParameterError(
            f"feature set {name!r} (openSMILE) stores functionals only; sequence models "
            "read per-frame descriptors: use an lld set such as 'default' (sercap features "
            "list)"
        )
    _require_view(wh, view, name)


def version_view_name(name: str, digest: str | None) -> str:
    """``NAME_HASH``: the suffix of the views of one version of a set (``features_…``,
    ``frames_…``, ``images_…``). The plain ``features_NAME`` shows the newest version that
    stored anything, which need not be the set's current definition (a newer one whose every
    extraction failed): a dataset reads the version it names."""
    return name if digest is None else f"{name}_{digest}"


def _read_tabular(
    wh: Warehouse,
    name: str,
    corpus: str,
    utt_ids: pl.Series,
    pattern: str | None,
    digest: str | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    view = f"features_{version_view_name(name, digest)}"
    _require_view(wh, view, name)
    cols = _feature_columns(wh.query(f"SELECT * FROM {view} LIMIT 0").columns, pattern, "feature")
    select = ", ".join(f'f."{c}"' for c in cols)
    frame = _query_utterances(
        wh,
        utt_ids,
        f"SELECT f.utt_id, {select} FROM {view} f JOIN wanted USING (utt_id) ORDER BY f.utt_id",
    )
    X = frame.select(cols).cast(pl.Float32).to_numpy().astype(np.float32, copy=False)
    return X, frame["utt_id"].to_list(), cols


def _read_sequences(
    wh: Warehouse,
    name: str,
    corpus: str,
    utt_ids: pl.Series,
    pattern: str | None,
    digest: str | None = None,
) -> tuple[list[np.ndarray], list[str], list[str]]:
    view = f"frames_{version_view_name(name, digest)}"
    _require_frames(wh, name, view)
    cols = _feature_columns(
        wh.query(f"SELECT * FROM {view} LIMIT 0").columns, pattern, "descriptor"
    )
    select = ", ".join(f'f."{c}"' for c in cols)
    with _wanted(wh, utt_ids):
        lengths = wh.query(
            f"SELECT f.utt_id, count(*) AS n, min(f.frame) AS lo, max(f.frame) AS hi, "
            f"count(DISTINCT f.frame) AS distinct_ "
            f"FROM {view} f JOIN wanted USING (utt_id) GROUP BY f.utt_id ORDER BY f.utt_id"
        )
    # each row of the array is written exactly once only if an utterance's frames are
    # 0..n-1, each once (a repeated frame beside a missing one would leave a row unwritten)
    if lengths.height and not (
        (lengths["lo"] == 0).all()
        and (lengths["hi"] == lengths["n"] - 1).all()
        and (lengths["distinct_"] == lengths["n"]).all()
    ):
        raise SercapError(
            f"the frames of feature set {name!r} are not numbered 0..n-1 once per utterance; "
            "run `sercap check`"
        )
    n = lengths["n"].to_numpy()
    starts = np.concatenate([[0], np.cumsum(n)])
    # Each frame goes straight to its row of one (frames, descriptors) array, batch by
    # batch, with no ORDER BY: the result is never held whole (a sorted polars frame, its
    # numpy copy and a string id per frame took 3.7x the data's size).
    values = np.empty((int(starts[-1]), len(cols)), dtype=np.float32)
    offsets = pl.DataFrame({"utt_id": lengths["utt_id"], "start__": starts[:-1]})
    with _registered(wh, "offsets__", offsets):
        for batch in wh.batches(
            f"SELECT o.start__ + f.frame AS row__, {select} "
            f"FROM {view} f JOIN offsets__ o USING (utt_id)"
        ):
            rows = to_floats(batch.column(0), np.int64)
            block = np.empty((batch.num_rows, len(cols)), dtype=np.float32)
            for j in range(len(cols)):
                block[:, j] = to_floats(batch.column(j + 1), np.float32)
            values[rows] = block
    sequences = [values[starts[i] : starts[i + 1]] for i in range(lengths.height)]
    return sequences, lengths["utt_id"].to_list(), cols


def _read_images(
    wh: Warehouse, name: str, utt_ids: pl.Series, digest: str | None = None
) -> tuple[list[np.ndarray], list[str], list[str]]:
    view = f"images_{version_view_name(name, digest)}"
    _require_view(wh, view, name, "image")
    frame = _query_utterances(
        wh,
        utt_ids,
        f"SELECT i.utt_id, i.png FROM {view} i JOIN wanted USING (utt_id) ORDER BY i.utt_id",
    )
    images = [decode_png(b) for b in frame["png"]]
    return images, frame["utt_id"].to_list(), []


def decode_png(data: bytes) -> np.ndarray:
    """8-bit grayscale PNG bytes → uint8 array (height, width)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


# ----------------------------------------------------------------------------- transforms
def speaker_statistics(
    X: np.ndarray, speakers: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean and standard deviation of each speaker's rows (NaN ignored; a constant or
    all-NaN column gets mean 0 / std 1 so that it passes through unscaled).

    Parameters
    ----------
    X : ndarray (n, d)
        Features of the rows to take statistics over (no labels are involved).
    speakers : ndarray (n,)
        Speaker of each row.

    Returns
    -------
    dict
        speaker → (mean, std), each of shape (d,).
    """
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for speaker in np.unique(speakers):
        block = X[speakers == speaker].astype(np.float64)
        with warnings.catch_warnings():  # an all-NaN column: a speaker never voiced
            warnings.simplefilter("ignore", category=RuntimeWarning)
            mean = np.nanmean(block, axis=0)
            std = np.nanstd(block, axis=0)
        out[str(speaker)] = _usable(mean, std)
    return out


def _usable(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A constant or all-NaN column passes through unscaled: mean 0, std 1."""
    return np.where(np.isfinite(mean), mean, 0.0), np.where(
        np.isfinite(std) & (std > 1e-8), std, 1.0
    )


def _statistics_of(
    stats: dict[str, tuple[np.ndarray, np.ndarray]], speaker: Any
) -> tuple[np.ndarray, np.ndarray]:
    if str(speaker) not in stats:
        raise SercapError(f"no speaker statistics for speaker {str(speaker)!r}")
    return stats[str(speaker)]


def speaker_normalise_sequences(
    sequences: list[np.ndarray],
    speakers: np.ndarray,
    stats: dict[str, tuple[np.ndarray, np.ndarray]],
) -> list[np.ndarray]:
    """Standardise each (frames, descriptors) sequence with its speaker's per-descriptor
    mean and standard deviation (from :func:`_speaker_frame_statistics`: all frames of all
    of the speaker's utterances). NaN (unvoiced) stays NaN."""
    out = []
    for seq, speaker in zip(sequences, speakers, strict=True):
        mean, std = _statistics_of(stats, speaker)
        out.append(((seq.astype(np.float64) - mean) / std).astype(np.float32))
    return out


#: Where a speaker-normalised image puts a band's mean and one standard deviation, in pixel
#: levels: ±4 standard deviations fit in 0…255, about as many levels per deviation as the
#: stored log-mel images have.
IMAGE_NORM_CENTRE = 128.0
IMAGE_NORM_SCALE = 32.0


def speaker_band_statistics(
    images: Iterable[np.ndarray], speakers: Iterable[Any]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per speaker, the mean and standard deviation of each mel band (image row) over all
    frames (columns) of that speaker's images, in pixel levels.

    One pass of sums, so ``images`` may be a generator: a corpus' images need not all be
    decoded at once (uint8 sums in float64 are exact far beyond any corpus' size).
    """
    sums: dict[str, list] = {}
    for img, speaker in zip(images, speakers, strict=True):
        v = img.astype(np.float64)
        acc = sums.setdefault(str(speaker), [0, 0.0, 0.0])
        acc[0] += v.shape[1]
        acc[1] = acc[1] + v.sum(axis=1)
        acc[2] = acc[2] + np.square(v).sum(axis=1)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for speaker, (n, total, squares) in sums.items():
        mean = total / n
        std = np.sqrt(np.clip(squares / n - mean**2, 0.0, None))
        out[speaker] = (mean, np.where(std > 1e-3, std, 1.0))  # below: a constant band
    return out


def speaker_normalise_images(
    images: list[np.ndarray],
    speakers: np.ndarray,
    stats: dict[str, tuple[np.ndarray, np.ndarray]],
) -> list[np.ndarray]:
    """Standardise each mel band of each image with its speaker's band statistics, then map
    z to ``128 + 32 z`` pixel levels (rounded, clipped to 0…255), so that the image models
    keep reading uint8 images and standardise them with training statistics as usual.

    Examples
    --------
    >>> img = np.array([[10, 30], [200, 220]], dtype=np.uint8)
    >>> stats = speaker_band_statistics([img], np.array(["a"]))
    >>> speaker_normalise_images([img], np.array(["a"]), stats)[0]
    array([[ 96, 160],
           [ 96, 160]], dtype=uint8)
    """
    out = []
    for img, speaker in zip(images, speakers, strict=True):
        mean, std = _statistics_of(stats, speaker)
        z = (img.astype(np.float64) - mean[:, None]) / std[:, None]
        levels = np.rint(IMAGE_NORM_CENTRE + IMAGE_NORM_SCALE * z)
        out.append(np.clip(levels, 0, 255).astype(np.uint8))
    return out


def speaker_normalise(
    X: np.ndarray,
    speakers: np.ndarray,
    stats: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> np.ndarray:
    """Standardise each speaker's rows with that speaker's own mean and standard deviation.

    ``stats`` (from :func:`speaker_statistics`) are normally taken over *all* of a
    speaker's extracted utterances, labelled or not (what :func:`load_dataset` does); by
    default they come from the rows of ``X`` themselves. No labels are used either way, so
    it is legitimate for a test speaker too. NaN entries are kept as NaN.
    """
    stats = speaker_statistics(X, speakers) if stats is None else stats
    out = np.empty_like(X, dtype=np.float32)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        mean, std = _statistics_of(stats, speaker)
        out[rows] = ((X[rows].astype(np.float64) - mean) / std).astype(np.float32)
    return out
