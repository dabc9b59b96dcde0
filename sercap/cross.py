"""Cross-corpus evaluation: train on one corpus, test on another, under a shared label map.

For every (train corpus, test corpus) pair of the chosen corpora a model is fitted on the
whole train corpus and scored on the whole test corpus; the diagonal (train = test) is that
corpus' own speaker-independent protocol instead, so it never scores a speaker it trained
on. All cells use one label map: the emotions of ``shared_emotions`` (neutral, anger,
happiness, sadness, fear, disgust, surprise, boredom) that *every* chosen corpus has under
its own default label map. Each cell is a stored run (label map ``shared``), marked with its
train corpus and the matrix it belongs to (``runs.train_corpus``, ``runs.cross_matrix``,
view ``cross_corpus_runs``).

Speaker normalisation, when asked for, standardises every speaker of every corpus with the
statistics of all that speaker's extracted utterances (no labels): for the test corpus that
is the usual unsupervised remedy for corpus shift (see :func:`sercap.data.load_dataset`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from sercap.data import Dataset
from sercap.errors import BadParameterError, SercapError, option
from sercap.store import Warehouse
from sercap.store import runs as store_runs

#: The label map name cross-corpus runs are stored under (their classes: ``runs.classes``).
SHARED_LABEL_MAP = "shared"
#: The protocol recorded for an off-diagonal cell (one split: all of A → all of B).
CROSS_PROTOCOL = "cross-corpus"


# ----------------------------------------------------------------------------- pure parts
def shared_classes(per_corpus: Mapping[str, Sequence[str]], vocabulary: Sequence[str]) -> list[str]:
    """The classes of ``vocabulary`` (in its order) that every corpus has.

    Parameters
    ----------
    per_corpus : mapping
        Corpus name → the class codes it has under its default label map.
    vocabulary : sequence of str
        The emotions corpora may share (``shared_emotions``), in display order.

    Raises
    ------
    SercapError
        When fewer than two classes are shared (one line naming the corpora).
    """
    common = [c for c in vocabulary if all(c in set(labels) for labels in per_corpus.values())]
    if len(common) < 2:
        have = "; ".join(
            f"{name}: {' '.join(sorted(labels))}" for name, labels in per_corpus.items()
        )
        shared = ", ".join(common) if common else "none"
        raise SercapError(
            f"corpora {', '.join(per_corpus)} share fewer than 2 emotions of "
            f"{' '.join(vocabulary)} (shared: {shared}; {have}); a matrix scores every cell "
            f"on the classes all its corpora share: {_without_one(per_corpus, vocabulary)}"
        )
    return common


def _without_one(per_corpus: Mapping[str, Sequence[str]], vocabulary: Sequence[str]) -> str:
    """Which corpus to leave out so that the others share two classes or more, if one."""
    if len(per_corpus) > 2:
        for name in per_corpus:
            rest = {k: v for k, v in per_corpus.items() if k != name}
            common = [c for c in vocabulary if all(c in set(v) for v in rest.values())]
            if len(common) >= 2:
                return f"without {name}, the others share {', '.join(common)}"
    return "choose corpora with at least two classes in common"


def restrict(data: Dataset, classes: Sequence[str]) -> Dataset:
    """The rows of ``data`` labelled with one of ``classes``, re-coded to ``sorted(classes)``
    (the order :func:`sercap.data.load_dataset` gives), under the shared label map."""
    order = sorted(classes)
    missing = [c for c in order if c not in data.classes]
    if missing:
        raise SercapError(f"corpus {data.corpus!r} has no {', '.join(missing)} utterances")
    names = np.asarray(data.classes, dtype=object)[data.y]
    keep = np.flatnonzero(np.isin(names, order))
    index = {c: i for i, c in enumerate(order)}
    out = data.subset(keep)
    return replace(
        out,
        y=np.array([index[c] for c in names[keep]], dtype=np.int64),
        classes=order,
        label_map=SHARED_LABEL_MAP,
    )


def check_same_inputs(datasets: Sequence[Dataset]) -> None:
    """Refuse datasets read with different feature sets or columns: a model fitted on one
    corpus must read the same inputs on the other."""
    first = datasets[0]
    for other in datasets[1:]:
        if (other.input_kind, other.feature_set_hash) != (first.input_kind, first.feature_set_hash):
            raise SercapError(
                f"corpora {first.corpus} and {other.corpus} were read with different feature "
                f"sets ({first.feature_set} {first.feature_set_hash} vs {other.feature_set} "
                f"{other.feature_set_hash}); extract both with the same one"
            )
        if other.columns != first.columns:
            raise SercapError(
                f"corpora {first.corpus} and {other.corpus} have different feature columns "
                f"({len(first.columns)} vs {len(other.columns)}); extract both with the same "
                "feature set"
            )


def train_test(train: Dataset, test: Dataset) -> tuple[Dataset, list[tuple[str, Any, Any]]]:
    """One dataset holding ``train`` then ``test`` rows, and its single split (all of the
    train corpus → all of the test corpus). Speakers are prefixed with their corpus, so two
    corpora's speaker "03" stay two speakers; the fold of a row is its corpus."""
    if train.classes != test.classes:
        raise SercapError(
            f"corpora {train.corpus} and {test.corpus} have different classes "
            f"({', '.join(train.classes)} vs {', '.join(test.classes)})"
        )
    check_same_inputs([train, test])
    if isinstance(train.X, np.ndarray):
        X = np.concatenate([train.X, test.X])
    else:
        X = list(train.X) + list(test.X)
    both = replace(
        test,
        utt_ids=np.concatenate([train.utt_ids, test.utt_ids]),
        X=X,
        y=np.concatenate([train.y, test.y]),
        speakers=np.array(
            [f"{train.corpus}/{s}" for s in train.speakers]
            + [f"{test.corpus}/{s}" for s in test.speakers],
            dtype=object,
        ),
        folds=np.array([train.corpus] * len(train) + [test.corpus] * len(test), dtype=object),
        sessions=None,  # (the test corpus' alone would not line up; inner_groups says it)
        protocol=CROSS_PROTOCOL,
        # early stopping keeps apart what the training corpus' own protocol keeps apart
        # (IEMOCAP's sessions), not merely its speakers
        inner_groups=np.array(
            [f"{train.corpus}/{g}" for g in train.validation_groups()]
            + [f"{test.corpus}/{s}" for s in test.speakers],
            dtype=object,
        ),
    )
    n = len(train)
    split = (test.corpus, np.arange(n), np.arange(n, n + len(test)))
    return both, [split]


def matrix_frame(cells: pl.DataFrame, corpora: Sequence[str], metric: str = "ua") -> pl.DataFrame:
    """The cells as a matrix: one row per (speaker_norm, train corpus), one column per test
    corpus (in ``corpora`` order) holding ``metric``."""
    rows = []
    for norm in sorted(set(cells["speaker_norm"].to_list())):
        for train in corpora:
            mine = cells.filter((pl.col("speaker_norm") == norm) & (pl.col("train") == train))
            values = dict(zip(mine["test"], mine[metric], strict=True))
            rows.append(
                {"speaker_norm": norm, "train": train, **{t: values.get(t) for t in corpora}}
            )
    schema = {"speaker_norm": pl.Boolean, "train": pl.String, **{t: pl.Float64 for t in corpora}}
    return pl.DataFrame(rows, schema=schema)


# ----------------------------------------------------------------------------- warehouse
def corpus_classes(wh: Warehouse, corpus: str) -> list[str]:
    """The classes ``corpus`` has under its default label map."""
    from sercap.data import labelled_utterances, resolve_label_map

    meta = labelled_utterances(wh, corpus, resolve_label_map(wh, corpus, None))
    return sorted(meta["label"].unique().to_list())


def choose_corpora(wh: Warehouse, corpora: Sequence[str] | None) -> list[str]:
    """The corpora of a matrix: those named (each must be stored, at least two, no repeats)
    or every corpus of the warehouse."""
    from sercap.data import resolve_corpus

    names = wh.query("SELECT name FROM corpora ORDER BY name")["name"].to_list()
    chosen = list(dict.fromkeys(corpora)) if corpora else names
    for name in chosen:
        resolve_corpus(wh, name)  # one line for an unknown corpus
    if len(chosen) < 2:
        have = ", ".join(names) or "none"
        raise SercapError(
            f"a cross-corpus matrix needs at least two corpora (chosen: {', '.join(chosen)}; "
            f"in the warehouse: {have}); ingest another or name two with "
            f"{option('corpora')}"
        )
    return chosen


def check_extracted(wh: Warehouse, corpora: Sequence[str], name: str, kind: str | None) -> None:
    """Every corpus must be extracted with the one feature set ``name``: refuse in one line
    naming those that are not."""
    from sercap.data import feature_set_hash, labelled_utterances, resolve_label_map
    from sercap.store import catalog

    digest = feature_set_hash(wh, name, kind=kind)
    missing = []
    for corpus in corpora:
        ids = labelled_utterances(wh, corpus, resolve_label_map(wh, corpus, None))["utt_id"]
        never = catalog.missing_extractions(wh, digest, ids)
        if never:
            missing.append(f"{corpus} ({len(ids) - never} of {len(ids)} utterances)")
    if missing:
        command = "sercap images --image-set" if kind == "image" else "sercap extract --feature-set"
        raise SercapError(
            f"cross-corpus corpora must share one feature set: {name!r} ({digest}) is not "
            f"extracted for {', '.join(missing)}; run `{command} {name} --corpus CORPUS`"
        )


def load_corpus(wh: Warehouse, request: Any, classes: Sequence[str]) -> Dataset:
    """One corpus of a matrix (``request``: a :class:`sercap.experiment.DataRequest`) under
    the shared ``classes``. Speaker normalisation comes first, with the statistics of *all*
    of each speaker's extracted utterances (those of other classes and unlabelled ones
    too); only then are the rows of the shared classes kept."""
    from sercap.experiment import load_for

    return restrict(load_for(wh, request), classes)


def refuse_shared_audio(wh: Warehouse, corpora: Sequence[str]) -> None:
    """One error when two of ``corpora`` hold the same recording: a cell training on one and
    testing on the other would be tested on audio it trained on (a corpus ingested twice
    under two names, or a copy of some of its files: 1.00 UA off the diagonal)."""
    from sercap.store.corpora import same_audio

    shared = [row for row in same_audio(wh, corpora) if row[1] != row[4]]
    if shared:
        utt, corpus, path, other, other_corpus, other_path = shared[0]
        pair = {corpus, other_corpus}
        n = sum({row[1], row[4]} == pair for row in shared)
        raise SercapError(
            f"corpora {corpus!r} and {other_corpus!r} share {n} recording(s) (the "
            f"same audio bytes: {path} is utterance {utt} and, as {other_path}, {other}); a "
            "cross-corpus cell would test on recordings it trained on: leave one of the two "
            f"corpora out ({option('corpora')}), or ingest it without the shared files"
        )


def new_matrix_id() -> str:
    """Sortable, readable and unique: ``cross-20261126-071500-3fa2``."""
    return f"cross-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class CrossResult:
    """One cross-corpus matrix: ``cells`` (one row per stored run), the matrix of UA
    (:func:`matrix_frame`), the shared ``classes`` and the matrix id."""

    matrix_id: str
    corpora: list[str]
    classes: list[str]
    model: str
    feature_set: str
    cells: pl.DataFrame

    @property
    def matrix(self) -> pl.DataFrame:
        return matrix_frame(self.cells, self.corpora)


def run_cross(
    wh: Warehouse,
    corpora: Sequence[str] | None = None,
    *,
    model: str = "svm",
    feature_set: str | None = None,
    speaker_norm: Sequence[bool] = (False,),
    params: dict | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
) -> CrossResult:
    """Fit and score every (train, test) cell of the chosen corpora, once per speaker
    normalisation setting; store each cell as a run and return the matrix.

    With ``cluster`` (a Dask client or spec) every cell's folds are submitted at once as
    one batch (:func:`sercap.distribute.cross_validate_many`) and the runs stored when they
    are back: the same predictions as in process, cell by cell.
    """
    from sercap.data import DEFAULT_FEATURE_SET, DEFAULT_IMAGE_SET

    corpora = choose_corpora(wh, corpora)
    refuse_shared_audio(wh, corpora)
    classes = shared_classes(
        {c: corpus_classes(wh, c) for c in corpora}, store_runs.shared_emotions(wh)
    )
    from sercap.experiment import data_request  # scikit-learn: after the refusals
    from sercap.models.registry import get_model

    if get_model(model).input_kind in ("text", "multimodal"):  # fusion reads words too
        raise BadParameterError(
            f"model {model!r} reads transcripts; cross-corpus needs an audio model"
        )
    request = data_request(model, corpus=corpora[0], feature_set=feature_set, image_set=feature_set)
    name = request.feature_set or (
        DEFAULT_IMAGE_SET if request.input_kind == "image" else DEFAULT_FEATURE_SET
    )
    check_extracted(wh, corpora, name, "image" if request.input_kind == "image" else None)
    from sercap.evaluate import cross_validate, store_run

    matrix_id = new_matrix_id()
    settings = list(dict.fromkeys(bool(s) for s in speaker_norm))
    cells = []  # (setting, train corpus, test corpus, dataset, splits)
    for norm in settings:
        data = {}
        for corpus in corpora:
            data[corpus] = load_corpus(
                wh, replace(request, corpus=corpus, speaker_norm=norm), classes
            )
        check_same_inputs(list(data.values()))
        for train in corpora:
            for test in corpora:
                if train == test:
                    cells.append((norm, train, test, data[test], None))
                else:
                    cells.append((norm, train, test, *train_test(data[train], data[test])))

    from sercap.evaluate import versions_json

    def store(cell: tuple, result: Any) -> dict[str, Any]:
        norm, train, test, both, _splits = cell
        with wh.transaction():
            run_id = store_run(
                wh, both, model, result, params=params, seed=seed,
                versions=versions_json(model, n_jobs, device, cluster=cluster is not None),
            )  # fmt: skip
            store_runs.mark_cross_corpus(wh, run_id, train, matrix_id)
        return {
            "speaker_norm": norm, "train": train, "test": test,
            "ua": result.pooled.ua, "wa": result.pooled.wa, "macro_f1": result.pooled.macro_f1,
            "n_test": int(len(result.evaluated)), "run_id": run_id,
        }  # fmt: skip

    rows = []
    if cluster is not None:
        from sercap.distribute import CVRequest, cross_validate_many

        requests = [
            CVRequest(both, model, params, seed=seed, n_jobs=n_jobs, device=device, splits=splits)
            for _n, _tr, _te, both, splits in cells
        ]
        results = cross_validate_many(cluster, requests, progress=progress)
        rows = [store(cell, result) for cell, result in zip(cells, results, strict=True)]
        return CrossResult(matrix_id, corpora, classes, model, name, pl.DataFrame(rows))
    bar = tqdm(total=len(cells), desc="cross", unit="cell", disable=not progress)
    for cell in cells:
        _norm, train, test, both, splits = cell
        bar.set_postfix_str(f"{train} → {test}")
        result = cross_validate(
            both, model, params, seed=seed, n_jobs=n_jobs, device=device, splits=splits,
            progress=False,
        )  # fmt: skip
        rows.append(store(cell, result))
        bar.update()
    bar.close()
    return CrossResult(matrix_id, corpora, classes, model, name, pl.DataFrame(rows))


# ----------------------------------------------------------------------------- report
def caption(result: CrossResult) -> str:
    """One line saying how the figures of a matrix were obtained."""
    return (
        f"UA (mean per-class recall) of {result.model} on {result.feature_set} features · rows: "
        f"train corpus, columns: test corpus · labels shared ({', '.join(result.classes)}) · "
        "diagonal: the corpus' own speaker-independent protocol, off-diagonal: trained on the "
        f"whole row corpus, tested on the whole column corpus · chance "
        f"{1 / len(result.classes):.3f} · matrix {result.matrix_id}."
    )


def write_cross_report(result: CrossResult, out_dir: Path) -> dict[str, Path]:
    """cross.md, cross.csv (one row per cell) and cross-ua.png (a heatmap per setting),
    all or nothing (:func:`sercap._newfiles.write_all_or_nothing`)."""
    from sercap._newfiles import write_all_or_nothing

    return write_all_or_nothing(
        Path(out_dir), lambda folder: _write_cross_files(result, folder),
        "the matrix's tables and picture (its cells are stored)",
    )  # fmt: skip


def _write_cross_files(result: CrossResult, out_dir: Path) -> dict[str, Path]:
    """The body of :func:`write_cross_report`."""
    from sercap.plots import cross_corpus_png

    matrix = result.matrix
    panels = []
    for norm in sorted(set(matrix["speaker_norm"].to_list())):
        block = matrix.filter(pl.col("speaker_norm") == norm)
        values = block.select(result.corpora).to_numpy().astype(float)
        title = "speaker-normalised" if norm else "no speaker normalisation"
        panels.append((title, values))
    png = cross_corpus_png(
        panels, result.corpora, out_dir / "cross-ua.png", chance=1 / len(result.classes),
        title=f"{result.model}: UA, train (rows) → test (columns)",
    )  # fmt: skip
    result.cells.write_csv(out_dir / "cross.csv")
    lines = ["# Cross-corpus matrix", ""]
    for norm in sorted(set(matrix["speaker_norm"].to_list())):
        block = matrix.filter(pl.col("speaker_norm") == norm)
        lines += [f"**{'speaker-normalised' if norm else 'no speaker normalisation'}**", ""]
        lines.append("| train \\ test | " + " | ".join(result.corpora) + " |")
        lines.append("| --- |" + " --- |" * len(result.corpora))
        for r in block.iter_rows(named=True):
            cells = " | ".join(f"{r[c]:.3f}" for c in result.corpora)
            lines.append(f"| {r['train']} | {cells} |")
        lines.append("")
    lines += [caption(result), "", "![cross-corpus UA](cross-ua.png)", ""]
    (out_dir / "cross.md").write_text("\n".join(lines))
    return {"heatmap": png, "csv": out_dir / "cross.csv", "markdown": out_dir / "cross.md"}
