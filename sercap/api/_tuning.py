"""Nested tuning with Optuna: ``tune`` and the studies it leaves."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap.api._common import (
    PathLike,
    Say,
    _bars,
    _check_counts,
    _check_params,
    _check_seed,
    _cluster,
    _listed,
    _quiet,
    _require_writable,
    _takes_warehouse,
)
from sercap.errors import BadParameterError, NotFoundError, SercapError, option

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    import optuna
    import polars as pl
    from distributed import Client

    from sercap.store import Warehouse


@dataclass
class Study:
    """A nested tuning of one model on one dataset: a study per outer fold, and the final one.

    ``folds`` maps each outer fold to its Optuna study (tuned on that fold's training speakers
    only; ``train(..., tuned=True)`` scores the fold with it); ``final`` is the study over all
    speakers whose parameters ``predict`` uses (never scored), or None. ``best_params`` and
    ``best_value`` are the final study's (inner cross-validated UA); ``trials`` lists every
    study's trials as a polars DataFrame.
    """

    name: str
    model: str
    storage: str
    nested: Any = field(repr=False)
    root: Path | None = field(default=None, repr=False)

    @property
    def folds(self) -> dict[str, optuna.Study]:
        return dict(self.nested.folds)

    @property
    def final(self) -> optuna.Study | None:
        return self.nested.final

    @property
    def best_params(self) -> dict:
        """Parameters ``predict`` uses: the final study's choice (defaults kept unless beaten)."""
        from sercap.tuning import best_params

        if self.final is None:
            raise SercapError(f"study {self.name} has no final study; tune with final=True")
        return best_params(self.final)

    @property
    def best_value(self) -> float:
        """The final study's chosen trial's inner UA: cross-validated over every speaker,
        the outer folds' test speakers included, and the best of its trials, so optimistic
        and not a score for new speakers (that is ``train(..., tuned=True)``'s outer UA)."""
        from sercap.tuning import chosen_trial

        if self.final is None:
            raise SercapError(f"study {self.name} has no final study; tune with final=True")
        return float(chosen_trial(self.final).value)

    @property
    def trials(self) -> pl.DataFrame:
        import polars as pl

        rows = []
        studies = [(f"fold={f}", s) for f, s in sorted(self.folds.items())]
        studies += [("final", self.final)] if self.final is not None else []
        for which, study in studies:
            for t in study.get_trials(deepcopy=False):
                rows.append((which, t.number, t.state.name, t.value))
        return pl.DataFrame(
            rows,
            schema={
                "study": pl.String,
                "number": pl.Int64,
                "state": pl.String,
                "value": pl.Float64,
            },
            orient="row",
        )

    def plot(self, path: PathLike | None = None) -> Path:
        """Write the final study's history and parameter importances as one PNG.

        The default path is ``WAREHOUSE/reports/tune-NAME.png`` (what ``sercap tune --show``
        writes). Returns the path written.
        """
        from sercap.tuning import plot_study, summarise

        if self.final is None:
            raise SercapError(f"study {self.name} has no final study to plot")
        if path is None:
            if self.root is None:
                raise BadParameterError("this study has no warehouse", hint="give a path")
            from sercap.store.layout import report_file

            path = report_file(self.root, f"tune-{self.name}.png")
        else:  # a picture among the parts or models was a foreign file to `check`
            from sercap.format import refuse_inside

            refuse_inside(Path(path), self.root)
        return plot_study(summarise(self.final), Path(path))

    def __str__(self) -> str:
        from sercap.format import format_nested

        return format_nested(self.nested)

    def _repr_markdown_(self) -> str:
        return f"```\n{self}\n```"


def _study_setup(
    wh: Warehouse,
    model: str,
    *,
    corpus: str | None,
    labels: str | None,
    feature_set: str | None,
    image_set: str | None,
    columns: str | None,
    speaker_norm: bool,
    storage: PathLike | None,
    study: str | None,
    target: str | None = None,
    show: bool = False,
    folds: list[str] | None = None,
) -> tuple[Any, str, Any, str]:
    """The dataset, base study name, Optuna storage and its printable label. With ``show``
    (reading an existing tuning) nothing is created, and without ``storage`` the one the
    tuning recorded is used."""
    from sercap.evaluate import check_inner_units
    from sercap.experiment import data_request, load_for
    from sercap.store.layout import study_journal
    from sercap.store.runs import study_storage
    from sercap.tuning import check_folds, open_storage, shown_url, storage_url, study_name

    # a URL, or a journal file given as a path (pathlib's too)
    storage = None if storage is None else os.fspath(storage)

    if target is not None:  # a rating: the regressor's dataset (its label map names it)
        from sercap.regression import load_target_dataset

        data, _ = load_target_dataset(
            wh, model, target, corpus=corpus, label_map=labels, feature_set=feature_set,
            image_set=image_set, columns=columns, speaker_norm=speaker_norm,
        )  # fmt: skip
    else:
        request = data_request(
            model,
            corpus=corpus,
            label_map=labels,
            feature_set=feature_set,
            image_set=image_set,
            columns=columns,
            speaker_norm=speaker_norm,
        )
        data = load_for(wh, request)
    check_folds(data, folds)  # before any journal exists
    if not show:
        check_inner_units(data, folds)
    if study is not None and (not study or any(c in study for c in "/\\\0") or ".." in study):
        raise BadParameterError(  # it names files: the journal, the plots
            f"study name {study!r}: a name, not a path",
            hint="use letters, digits, '-', '_' and '.', without '/' or '..'",
        )
    name = study or study_name(model, data)
    if show and storage is None and (recorded := study_storage(wh, name)):
        if shown_url(recorded) != recorded or "***" in recorded:  # a masked password
            raise NotFoundError(
                f"study {name!r} is stored in {recorded}",
                hint=f"give its full URL with {option('storage')}",
            )
        storage = recorded
    backend = open_storage(storage, wh.root, name, create=not show)
    opened = storage_url(storage)  # as opened: a relative file made absolute
    label = shown_url(opened) if opened else str(study_journal(wh.root, name))
    return data, name, backend, label


@_takes_warehouse
def load_study(
    wh: Warehouse,
    model: str,
    *,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
    storage: PathLike | None = None,
    study: str | None = None,
    target: str | None = None,
) -> Study:
    """An existing nested tuning, without tuning (what ``sercap tune --show`` shows).

    Parameters
    ----------
    wh : Warehouse
        An open warehouse.
    model, corpus, labels, feature_set, image_set, columns, speaker_norm, storage, study, \
target
        As for :func:`tune`: they name the studies to read.

    Returns
    -------
    Study
        The outer-fold studies and the final one, as :func:`tune` returns them.

    Raises
    ------
    sercap.errors.SercapError
        When no such study exists yet (tune first).

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(tempfile.mkdtemp())
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> tuned = sercap.tune(wh, "svm", trials=2, final=False)
    >>> sercap.load_study(wh, "svm").name == tuned.name
    True
    >>> wh.close()
    """
    from sercap.tuning import nested_studies

    _, name, backend, label = _study_setup(
        wh,
        model,
        corpus=corpus,
        labels=labels,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        speaker_norm=speaker_norm,
        storage=storage,
        study=study,
        target=target,
        show=True,
    )
    return Study(name, model, label, nested_studies(backend, name), wh.root)


@_takes_warehouse
def tune(
    wh: Warehouse,
    model: str,
    *,
    trials: int = 20,
    top_up: bool = False,
    timeout: float | None = None,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
    storage: PathLike | None = None,
    study: str | None = None,
    pruner: str = "median",
    inner_folds: int = 3,
    final: bool | None = None,
    folds: Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
    target: str | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    cluster: str | Client | None = None,
    progress: bool | None = None,
    say: Say | None = None,
) -> Study:
    """Nested tuning of ``model`` with Optuna: one study per outer fold, then a final one.

    The study of outer fold f scores trials by a speaker-grouped (session-grouped where the
    folds keep sessions whole, from three training sessions) inner cross-validation over
    fold f's training speakers only; ``train(wh, model, tuned=True)`` then fits each outer
    fold with its own study's parameters and scores its test speakers (the only tuned
    figure sercap reports). The final study, over all speakers, gives the parameters
    ``predict`` uses and is never scored. Calling it again resumes every study. While trials
    run, the warehouse's write lock is released (other processes may use it) and ``wh`` is
    reopened afterwards, so the same ``wh`` object stays usable.

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse with extracted features.
    model : str
        Any model :func:`train` accepts.
    trials : int
        Trials to add to each study.
    top_up : bool
        Count the trials the studies already have: each study ends with ``trials``
        finished (completed or pruned) trials in all. Use it to finish an interrupted
        tuning with the same budget for every fold, or to let several processes or machines
        share one budget (each stops once a study has them) instead of each adding
        ``trials``.
    timeout : float, optional
        Stop starting trials of a study after this many seconds.
    corpus, labels, feature_set, image_set, columns, speaker_norm
        The dataset, as for :func:`train`.
    storage : str or path, optional
        Optuna storage URL (``sqlite:///…``, ``postgresql+psycopg://…``) or a ``*.journal``
        file (default: a journal in the warehouse).
    study : str, optional
        Base study name (default: model, corpus, labels and feature set).
    pruner : str
        ``"median"`` (at inner folds), ``"hyperband"`` or ``"none"``.
    inner_folds : int
        Speaker-grouped inner folds of each trial.
    final : bool, optional
        Also run the final all-speaker study (for ``predict``). Default: yes, unless
        ``folds`` names some (processes sharing the folds would each add trials to it).
    folds : sequence of str, optional
        Tune only these outer folds (to share the work between processes).
    params : mapping, optional
        Parameters held fixed while tuning.
    target : str, optional
        Tune the model's regressor of this rating (``"valence"``, ``"activation"``,
        ``"dominance"``): the studies maximise the inner cross-validated CCC, and
        ``train(wh, model, target=..., tuned=True)`` uses them.
    seed, jobs, device, cluster, progress
        As for :func:`train`.
    say : callable, optional
        Receives one line naming the studies and their storage before tuning.

    Returns
    -------
    Study
        ``study.folds``, ``study.final``, ``study.best_params``, ``study.trials`` (polars).

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> study = sercap.tune(wh, "svm", trials=2)
    >>> sorted(study.folds), sorted(study.best_params)
    (['Ses01', 'Ses02'], ['C', 'gamma'])
    >>> run = sercap.train(wh, "svm", tuned=True)
    >>> sorted(run.fold_params), run.comparison is not None
    (['Ses01', 'Ses02'], True)
    >>> wh.close()
    """
    _check_counts(trials=trials, jobs=jobs)
    _check_counts(minimum=2, inner_folds=inner_folds)
    from sercap.experiment import refuse_unused_inputs
    from sercap.tuning import PRUNERS, run_nested, store_nested, study_line, trial_line

    # what train refuses, before trials are spent (and `train --tuned` refused it after)
    refuse_unused_inputs(model, feature_set=feature_set, image_set=image_set, device=device)

    spec = _cluster(cluster)
    storage = None if storage is None else os.fspath(storage)
    if spec is not None and storage is not None and storage.startswith("sqlite"):
        raise BadParameterError(
            f"{option('storage')} {storage} with {option('cluster')}: SQLite ignores the row "
            "locks Optuna takes, so two workers run the same queued trial and Optuna then "
            "fails",
            hint="use the default journal file, or a PostgreSQL URL",
        )
    if trials < 1:
        raise BadParameterError(f"{option('trials')} {trials}", hint="ask for at least one trial")
    if inner_folds < 2:
        raise BadParameterError(
            f"{option('inner_folds')} {inner_folds}", hint="use at least 2 inner folds"
        )
    if timeout is not None and not timeout > 0:
        raise BadParameterError(
            f"{option('timeout')} {timeout}",
            hint="give a positive number of seconds, or none for no limit",
        )
    if pruner not in PRUNERS:
        raise BadParameterError(
            f"unknown pruner {pruner!r}", hint=f"choose one of: {', '.join(PRUNERS)}"
        )
    _check_seed(seed)
    params = _check_params(params)
    _require_writable(wh, "tuning stores its parameters")
    folds = _listed(folds) if folds else None  # "Ses01" is one fold, not five letters
    if final is None:  # `--fold F` tunes that fold's study; the final one when asked
        final = not folds
    if target is not None:  # fixed parameters are checked before any study exists
        from sercap.models.regressors import get_regressor

        get_regressor(model)(dict(params or {}))
    else:
        from sercap.models.registry import get_model

        get_model(model)(dict(params or {}))
    say = say or _quiet
    data, name, backend, label = _study_setup(
        wh,
        model,
        corpus=corpus,
        labels=labels,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        speaker_norm=speaker_norm,
        storage=storage,
        study=study,
        target=target,
        folds=folds,
    )
    from sercap.evaluate import fingerprint_of
    from sercap.store.runs import audio_sources

    # what each study's trials are scored on (its rows' labels or ratings and audio), read
    # before the warehouse is closed: a study scored on other recordings is not resumed
    audio = audio_sources(wh, data.corpus)

    def fingerprint(rows: Any) -> str | None:
        return fingerprint_of(data, audio, rows)

    n_folds = len(set(folds)) if folds else len(set(data.folds))
    say(
        f"study {name}: {len(data)} utterances, {n_folds} outer-fold studies"
        f"{' + final' if final else ''} × {trials} trials{' in all' if top_up else ''}, "
        f"{_inner_folds_used(data, inner_folds)}, storage {label}"
    )
    from sercap.experiment import stale_version_note

    stale = stale_version_note(wh, data)
    if stale:
        say(stale)
    # (said before the warehouse is released: a `say` that raised left the caller's wh closed)
    # other processes may use the warehouse while the trials run; storing them then waits
    # for another writer as long as `train` does (an hour), not a minute: the trials are done
    released = wh.released(
        done=f"tuning {label}",
        then="its trials are kept in the study storage",
        hint=f"once the warehouse is free, run the same tuning with {option('top_up')}True: "
        "it records them without new trials (in Python, this wh takes the warehouse back at "
        "its next use)",
    )
    try:
        with released:
            result = run_nested(
                model,
                data,
                backend,
                name,
                n_trials=trials,
                timeout=timeout,
                pruner=pruner,
                inner_folds=inner_folds,
                fixed=dict(params or {}),
                final=final,
                only_folds=folds,
                seed=seed,
                n_jobs=jobs,
                device=device,
                progress=_bars(progress),
                cluster=spec,
                top_up=top_up,
                on_study=lambda each, done: say(
                    f"  {study_line(each.removeprefix(name + '/'), done)}"
                ),
                fingerprint=fingerprint,
                # a line per trial where no bar shows (a log file): minutes per trial at
                # IEMOCAP's size, a quarter of an hour per study
                on_trial=None
                if _bars(progress)
                else lambda each, study, trial: say(
                    f"    {trial_line(each.removeprefix(name + '/'), study, trial)}"
                ),
            )
    except Exception as exc:
        from sercap.tuning import storage_failure, storage_write_failure

        lost = storage_failure(exc)
        if lost is None:
            refused = storage_write_failure(exc)  # a journal file on a full disk
            if refused is None:
                raise
            raise SercapError(
                f"study storage {label} could not be written ({refused}); the trials it "
                "stored are kept",
                hint="free space on that disk (or make it writable) and run the same tuning "
                "again: it resumes",
            ) from exc
        raise SercapError(
            f"study storage {label} stopped answering ({lost}); the trials it stored are kept",
            hint=f"run the same tuning again once it is back (with {option('top_up')} True for "
            "the same budget)",
        ) from exc
    store_nested(wh, result, model, data, label)
    return Study(name, model, label, result, wh.root)


def _inner_folds_used(data: Any, inner_folds: int) -> str:
    """``"3 inner folds each"``, or what the outer folds with fewer training speakers (or
    sessions) get: the inner split deals them, so it cannot have more folds than them."""
    import numpy as np

    outer = np.asarray(data.folds)
    counts = []
    for fold in np.unique(outer):
        rows = np.flatnonzero(outer != fold)
        units = np.unique(data.validation_groups(rows))
        by_session = data.validation_unit(rows) == "session"
        counts.append((len(units), "sessions" if by_session else "speakers"))
    fewest, what = min(counts, default=(inner_folds, "speakers"))
    if fewest >= inner_folds:
        return f"{inner_folds} inner folds each"
    return f"{inner_folds} inner folds each ({fewest} where a fold has {fewest} training {what})"
