"""Prediction of new audio (and transcripts) with a stored run's final model."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap.api._common import (
    PathLike,
    Say,
    _bars,
    _check_counts,
    _check_fraction,
    _quiet,
    _run_id,
    _takes_warehouse,
)
from sercap.api._runs import RegressionRun, Run, get_run
from sercap.errors import BadParameterError, NotFoundError, option, printable

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    import polars as pl

    from sercap.store import Warehouse


def prediction_table(results: Sequence[Any], run_id: str) -> pl.DataFrame:
    """One row per file: run_id, path, emotion, a probability column per class, error.

    Parameters
    ----------
    results : sequence of Prediction
        What :func:`predict` computed for each file (``path``, ``label``, ``proba`` (class →
        probability) and ``error``, None when the file could be used).
    run_id : str
        The run whose model predicted them.

    Returns
    -------
    polars.DataFrame
        What ``sercap predict`` prints and ``--out`` writes.

    Examples
    --------
    >>> from types import SimpleNamespace as Row
    >>> rows = [Row(path="a.wav", label="ang", proba={"ang": 0.7, "neu": 0.3}, error=None),
    ...         Row(path="b.txt", label=None, proba={}, error="not audio")]
    >>> prediction_table(rows, "svm-1").columns
    ['run_id', 'path', 'emotion', 'ang', 'neu', 'error']
    """
    import polars as pl

    classes = sorted({c for r in results for c in r.proba})
    rows = [
        {
            "run_id": run_id,
            "path": printable(str(r.path)),
            "emotion": r.label,
            **{c: r.proba.get(c) for c in classes},
            "error": r.error,
        }
        for r in results
    ]
    return pl.DataFrame(
        rows,
        schema={
            "run_id": pl.String,
            "path": pl.String,
            "emotion": pl.String,
            **{c: pl.Float64 for c in classes},
            "error": pl.String,
        },
    )


@_takes_warehouse
def predict(
    wh: Warehouse,
    paths: Sequence[PathLike] | PathLike,
    *,
    model: str | None = None,
    run: str | Run | RegressionRun | None = None,
    corpus: str | None = None,
    jobs: int = 1,
    progress: bool | None = None,
    abstain: float | None = None,
    coverage: float | None = None,
    texts: Mapping[PathLike, str] | PathLike | None = None,
    say: Say | None = None,
) -> pl.DataFrame:
    """Predict the emotion of audio files with a stored run's final model (or, with a
    regression run, their rating).

    The first prediction with a run trains its final model on all of the run's data and
    stores it in the warehouse; later ones load it. A file that cannot be read gets its
    reason in the ``error`` column and no probabilities; the others are still predicted.

    A run whose model reads text (``text-lr``, ``text-svm``, a fusion model, an ensemble
    with such a member) predicts each file from its transcript in ``texts``; files without
    one are predicted by the newest audio-only run of the same corpus and label map, and
    ``say`` gets a one-line note naming it (the ``run_id`` column says which run predicted
    each file). An audio run ignores ``texts``, with a note.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse. A final model trained by this call is stored there; on a
        read-only one it is used for the call and not kept (:func:`models_to_fit` says
        beforehand whether any will be trained).
    paths : path or sequence of paths
        Audio files (any sample rate or channel count; ``say`` hears a note for a file
        recorded below the features' 16 kHz or shorter than every training utterance).
    model : str, optional
        Use the newest stored run of this model (chosen by time, never by score).
    run : str or Run, optional
        Or this run (an id or unique prefix, or what :func:`train` returned; an ensemble
        run works too).
    corpus : str, optional
        With ``model``: only runs on this corpus.
    jobs : int
        Threads for the final model's fitting.
    progress : bool, optional
        Progress bars (``None``: on a terminal only).
    abstain : float, optional
        Abstain below this confidence (the top probability, 0–1): such a file's ``emotion``
        is null and ``abstained`` is true (its probabilities are kept).
    coverage : float, optional
        Or abstain below the confidence that kept this share (0–1] of the run's stored
        out-of-fold predictions (e.g. 0.8: the threshold that set aside its least confident
        20 %).
    texts : mapping or path, optional
        The words of each file: ``{path: transcript}``, or the path of a UTF-8 CSV with the
        columns ``path,text``. Paths are matched after resolving them; a transcript for a
        file not in ``paths``, or two for one file, is an error. Blank ones count as none.
    say : callable, optional
        Receives the one-line notes (fallback run, ignored transcripts; default: silent).

    Returns
    -------
    polars.DataFrame
        ``run_id`` (the run that predicted the file), ``path``, ``emotion``, one
        probability column per class, ``confidence`` (the top probability), ``error``; with
        ``abstain`` or ``coverage`` also ``abstained``.

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> _ = sercap.train(wh, "svm")
    >>> wav = next(corpus.root.rglob("*.wav"))
    >>> table = sercap.predict(wh, [wav], model="svm")
    >>> table.height, table["error"][0] is None
    (1, True)
    >>> sure = sercap.predict(wh, [wav], model="svm", abstain=1.0)  # nothing is that sure
    >>> sure["emotion"][0] is None, sure["abstained"][0]
    (True, True)

    A text model predicts from the words; a file without words falls back to an audio run:

    >>> words = sercap.train(wh, "text-lr")
    >>> other = sorted(corpus.root.rglob("*.wav"))[1]
    >>> notes = []
    >>> table = sercap.predict(wh, [wav, other], run=words.run_id,
    ...                        texts={wav: "I am so happy, this is wonderful!"}, say=notes.append)
    >>> "no transcript for 1 of 2 files" in notes[0], "(svm), the newest audio-only" in notes[0]
    (True, True)
    >>> table["run_id"].to_list() == [words.run_id, sercap.runs(wh, model="svm")["run_id"][0]]
    True
    >>> wh.close()
    """
    _check_counts(jobs=jobs)
    import polars as pl

    from sercap.predict_text import predict_with_texts

    paths, record = _prediction_run(wh, paths, run, model, corpus, say)
    run_id = record.run_id
    if isinstance(record, RegressionRun):
        _refuse_class_options(
            record,
            {"abstain": abstain is not None, "coverage": coverage is not None,
             "text/texts": texts is not None},
        )  # fmt: skip
        _refuse_unopenable(paths)
        return _predict_ratings(wh, record, paths, jobs=jobs, progress=progress, say=say)
    _refuse_unopenable(paths, texts)
    threshold = _abstain_threshold(wh, run_id, abstain, coverage)
    results, used = predict_with_texts(
        wh, run_id, paths, texts, n_jobs=jobs, progress=_bars(progress), say=say or _quiet
    )
    table = prediction_table(results, run_id).with_columns(run_id=pl.Series(used, dtype=pl.String))
    if coverage is not None and threshold is not None:  # each row by the run that predicted it
        from sercap.analysis_store import abstain_threshold

        others = {r for r in used if r and r != run_id}
        thresholds = {run_id: threshold, **{r: abstain_threshold(wh, r, coverage) for r in others}}
        return with_confidence(table, thresholds)
    return with_confidence(table, threshold)


def _refuse_class_options(run: RegressionRun, refused: Mapping[str, bool]) -> None:
    """One line naming the options given that only make sense for emotion classes."""
    if given := [name for name, on in refused.items() if on]:
        raise BadParameterError(
            f"run {run.run_id} predicts {run.record['target']} ratings; "
            f"{' and '.join(map(option, given))} {'is' if len(given) == 1 else 'are'} for "
            "emotion classes only",
            hint="leave them out for a rating",
        )


def _refuse_unopenable(paths: Sequence[Path], texts: Any = None) -> None:
    """Stop before a final model is trained when not one of ``paths`` can be opened (a
    typo'd folder, a glob that matched nothing): training then predicting nothing cost
    minutes and stored a model nobody asked for. Some openable files go on as documented:
    the others get their reason in the ``error`` column. With ``texts`` nothing is refused:
    a text run predicts from the words a file it cannot open."""
    from sercap.audio import file_problem

    if texts is not None:
        return

    problems = [(p, file_problem(p)) for p in paths]
    if any(why is None for _p, why in problems):
        return
    if len(problems) == 1:
        path, why = problems[0]
        raise NotFoundError(f"{printable(str(path))}: {why}; nothing predicted")
    listed = "; ".join(f"{printable(str(p))}: {why}" for p, why in problems[:3])
    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    raise NotFoundError(
        f"none of the {len(problems)} files can be opened ({listed}{more}); nothing predicted"
    )


def _prediction_run(
    wh: Warehouse,
    paths: Sequence[PathLike] | PathLike,
    run: str | Run | RegressionRun | None,
    model: str | None,
    corpus: str | None,
    say: Say | None = None,
    where: str = "predict",
) -> tuple[list[Path], Any]:
    """The files as a list of paths and the stored run that predicts them (:func:`predict`
    and :func:`models_to_fit` take the same arguments)."""
    from sercap.prediction import newest_run

    if (run is None) == (model is None):
        raise BadParameterError(
            "give exactly one of run or model", hint="name a stored run id or a model"
        )
    if run is not None:  # what train() returned, as the other verbs that take a run accept
        run = _run_id(run, "run", where)
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    given = paths
    paths = list(paths) if isinstance(paths, Iterable) else []
    if not paths or not all(isinstance(p, str | os.PathLike) for p in paths):
        raise BadParameterError(
            f"paths={given!r}", hint="give an audio file's path or a list of paths"
        )
    from sercap.prediction import refuse_speaker_normalised

    record = get_run(wh, run or newest_run(wh, model or "", corpus, say=say))
    refuse_speaker_normalised(record.record)  # models_to_fit listed it; the CLI opened writable
    return [Path(p) for p in paths], record


@_takes_warehouse
def models_to_fit(
    wh: Warehouse,
    paths: Sequence[PathLike] | PathLike,
    *,
    model: str | None = None,
    run: str | Run | RegressionRun | None = None,
    corpus: str | None = None,
    texts: Mapping[PathLike, str] | PathLike | None = None,
) -> list[str]:
    """The runs whose final models :func:`predict` would train before predicting.

    :func:`predict` with the same arguments loads a stored final model for every other
    run it uses; with none left to train it changes nothing in the warehouse, so a
    read-only connection does the same work. (``sercap predict`` opens the warehouse
    read-only when this is empty.)

    Parameters
    ----------
    wh : Warehouse
        An open warehouse (read-only is enough).
    paths, model, run, corpus, texts
        As for :func:`predict`.

    Returns
    -------
    list of str
        Run ids: the run itself, an ensemble's members, or the audio run that files
        without transcripts fall back to, for each whose final model is not stored whole
        (never fitted, or damaged).

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> svm = sercap.train(wh, "svm")
    >>> wav = next(corpus.root.rglob("*.wav"))
    >>> sercap.models_to_fit(wh, [wav], model="svm") == [svm.run_id]
    True
    >>> _ = sercap.predict(wh, [wav], model="svm")  # trains and stores the final model
    >>> sercap.models_to_fit(wh, [wav], model="svm")
    []
    >>> wh.close()
    """
    from sercap.predict_text import runs_to_fit
    from sercap.prediction import final_model_stored

    paths, record = _prediction_run(wh, paths, run, model, corpus, where="models_to_fit")
    try:
        _refuse_unopenable(paths, texts)
    except NotFoundError:
        return []  # predict refuses them before it trains anything
    if isinstance(record, RegressionRun):
        return [] if final_model_stored(wh, record.run_id) else [record.run_id]
    return runs_to_fit(wh, record.run_id, paths, texts)


def _predict_ratings(
    wh: Warehouse,
    run: RegressionRun,
    paths: list[Path],
    *,
    jobs: int,
    progress: bool | None,
    say: Say | None = None,
) -> pl.DataFrame:
    """:func:`predict` with a regression run: ``run_id``, ``path``, the rating, ``error``;
    ``say`` hears the same notes on files unlike the training audio as for emotions."""
    import polars as pl

    from sercap.prediction import predict_files

    results = predict_files(wh, run.run_id, paths, n_jobs=jobs, progress=_bars(progress), say=say)
    return pl.DataFrame(
        {
            "run_id": [run.run_id] * len(results),
            "path": [printable(str(r.path)) for r in results],
            str(run.record["target"]): [r.value for r in results],
            "error": [r.error for r in results],
        },
        schema={
            "run_id": pl.String, "path": pl.String, str(run.record["target"]): pl.Float64,
            "error": pl.String,
        },
    )  # fmt: skip


def _abstain_threshold(
    wh: Warehouse, run_id: str, abstain: float | None, coverage: float | None
) -> float | None:
    """The confidence below which ``predict`` abstains (None: never)."""
    _check_fraction("abstain", abstain)
    _check_fraction("coverage", coverage)
    if abstain is not None and coverage is not None:
        raise BadParameterError(
            f"give {option('abstain')} (a confidence) or {option('coverage')} (a share), not both",
            hint="e.g. abstain 0.5 or coverage 0.8",
        )
    if coverage is not None:
        from sercap.analysis_store import abstain_threshold

        if not 0.0 < coverage <= 1.0:
            raise BadParameterError(
                f"{option('coverage')} {coverage}: give the share of files to keep, in (0, 1]"
            )
        return abstain_threshold(wh, run_id, coverage)
    if abstain is not None and not 0.0 <= abstain <= 1.0:
        raise BadParameterError(f"{option('abstain')} {abstain}: give a confidence between 0 and 1")
    return abstain


def with_confidence(
    table: pl.DataFrame, threshold: float | Mapping[str, float] | None = None
) -> pl.DataFrame:
    """Add ``confidence`` (the top probability) after the probabilities; with a
    ``threshold``, null the emotion of files below it and add ``abstained``. A mapping
    gives each run id its own threshold (``coverage`` is a share of *that* run's
    out-of-fold predictions: a text run's files that fell back to an audio run are kept or
    not by the audio run's).

    Examples
    --------
    >>> import polars as pl
    >>> t = pl.DataFrame({"run_id": ["r", "r", "r"], "path": ["a", "b", "c"],
    ...                   "emotion": ["ang", "neu", None], "ang": [0.9, 0.45, None],
    ...                   "neu": [0.1, 0.55, None], "error": [None, None, "not found"]})
    >>> with_confidence(t, 0.6).select("emotion", "confidence", "abstained").rows()
    [('ang', 0.9, False), (None, 0.55, True), (None, None, False)]
    >>> with_confidence(t, {"r": 0.5})["abstained"].to_list()
    [False, False, False]
    """
    import polars as pl

    fixed = {"run_id", "path", "emotion", "error"}
    classes = [c for c in table.columns if c not in fixed]
    confidence = pl.max_horizontal(classes) if classes else pl.lit(None, dtype=pl.Float64)
    out = table.with_columns(confidence.cast(pl.Float64).alias("confidence"))
    out = out.select("run_id", "path", "emotion", *classes, "confidence", "error")
    if threshold is None:
        return out
    if isinstance(threshold, Mapping):
        limit = pl.col("run_id").replace_strict(
            dict(threshold), default=None, return_dtype=pl.Float64
        )
    else:
        limit = pl.lit(float(threshold))
    below = (pl.col("confidence") < limit).fill_null(False)
    return out.with_columns(
        pl.when(below).then(None).otherwise(pl.col("emotion")).alias("emotion"),
        below.alias("abstained"),  # a file that could not be read did not abstain: see error
    )
