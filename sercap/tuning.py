"""Optuna studies for every model: honest objective, pruning, resumable shared storage.

The objective never sees a test fold. For each outer fold of the corpus' protocol the tuner
gets only that fold's training rows, holds out a group of their speakers as validation,
fits on the rest and scores UA there; the mean over folds is the trial's value. After each
fold the mean UA so far is reported as an intermediate value, so a pruner stops hopeless
trials after a fold or two. (The chosen parameters are shared by all outer folds, so a
later cross-validation with them is slightly optimistic: speakers that validate one fold are
tested in another. Nested tuning per fold would remove that at K times the cost.)

Studies live in a journal file inside the warehouse by default (several processes on one
machine may tune the same study at once) or in any Optuna storage URL (a PostgreSQL URL lets
several machines tune one study).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from tqdm.auto import tqdm

from sercap.data import Dataset
from sercap.errors import SercapError
from sercap.evaluate import cross_validate, outer_splits
from sercap.store import Warehouse, layout
from sercap.store import runs as store_runs

PRUNERS = ("median", "hyperband", "none")


def study_name(model: str, data: Dataset) -> str:
    """One study per (model, corpus, label map, feature set)."""
    digest = (data.feature_set_hash or "none")[:8]
    norm = "-spknorm" if data.speaker_norm else ""
    return f"{model}-{data.corpus}-{data.label_map}-{data.feature_set}-{digest}{norm}"


def open_storage(url: str | None, root: Path, study: str) -> optuna.storages.BaseStorage:
    """The storage named by ``url``; by default a journal file under ``root/studies``.

    ``url`` may be an RDB URL (``sqlite:///x.db``, ``postgresql://…``) or a path ending in
    ``.journal`` / ``.log``.
    """
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if url is None or url.endswith((".journal", ".log")):
        path = Path(url) if url else layout.study_journal(root, study)
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return JournalStorage(backend)
    if "://" not in url:
        raise SercapError(
            f"--storage {url!r} is neither a storage URL (sqlite:///…, postgresql://…) nor a "
            "journal file (*.journal)"
        )
    try:
        return RDBStorage(url)
    except Exception as exc:  # SQLAlchemy raises many kinds; all mean "cannot use this URL"
        raise SercapError(f"--storage {url!r}: {str(exc).splitlines()[0]}") from exc


class FoldMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose mean UA over its first k folds is below the median of the other
    trials' means over the same k folds.

    Optuna's MedianPruner compares a trial's *best* value over its steps with the others'
    at the current step, which suits learning curves; folds are not a curve (an easy first
    fold is a trial's best value forever after), so with it no fold-wise trial is ever pruned.
    """

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 1) -> None:
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        others = [
            t.intermediate_values[step]
            for t in study.get_trials(deepcopy=False, states=states)
            if step in t.intermediate_values
        ]
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(complete) < self.n_startup_trials or not others:
            return False
        value = trial.intermediate_values[step]
        median = float(np.median(others))
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return value < median
        return value > median


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """``median`` (after 5 trials and 2 folds), ``hyperband`` (over folds) or ``none``."""
    if name == "median":
        return FoldMedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SercapError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}")


@dataclass(frozen=True)
class TuningSplit:
    """Rows a trial may use for one outer fold: never that fold's test rows."""

    outer_fold: str
    train: np.ndarray
    valid: np.ndarray
    outer_test: np.ndarray


def tuning_splits(
    data: Dataset, max_folds: int | None = 5, valid_fraction: float = 0.25, seed: int = 0
) -> list[TuningSplit]:
    """For each outer fold, a speaker-grouped train/validation split of its training rows.

    ``max_folds`` evenly picks that many outer folds (all when None) to bound a trial's cost.
    About ``valid_fraction`` of the training speakers validate (at least one).
    """
    rng = np.random.default_rng(seed)
    outer = list(outer_splits(data))
    if max_folds is not None and len(outer) > max_folds:
        pick = np.linspace(0, len(outer) - 1, max_folds).round().astype(int)
        outer = [outer[i] for i in sorted(set(pick))]
    splits = []
    for name, train, test in outer:
        speakers = np.unique(data.speakers[train])
        if len(speakers) < 2:
            raise SercapError(f"fold {name!r}: tuning needs at least two training speakers")
        n_valid = max(1, int(round(valid_fraction * len(speakers))))
        valid_speakers = rng.choice(speakers, size=n_valid, replace=False)
        in_valid = np.isin(data.speakers[train], valid_speakers)
        splits.append(TuningSplit(name, train[~in_valid], train[in_valid], test))
    return splits


def objective_for(
    model: str,
    data: Dataset,
    splits: list[TuningSplit],
    *,
    fixed: dict | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
) -> Callable[[optuna.Trial], float]:
    """The function Optuna maximises: mean validation UA over the tuning splits.

    ``fixed`` parameters override the search space (e.g. fewer epochs while tuning).
    """
    from sercap.models.registry import get_model

    cls = get_model(model)

    def objective(trial: optuna.Trial) -> float:
        params = {**cls.search_space(trial), **(fixed or {})}

        uas: list[float] = []

        def report(step: int, metrics) -> None:
            uas.append(metrics.ua)  # the running mean is comparable across trials at a step
            trial.report(float(np.mean(uas)), step)
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"pruned after fold {step + 1}: mean UA {np.mean(uas):.3f}"
                )

        result = cross_validate(
            data,
            model,
            params,
            seed=seed,
            n_jobs=n_jobs,
            device=device,
            splits=[(s.outer_fold, s.train, s.valid) for s in splits],
            on_fold=report,
            progress=False,
        )
        return float(np.mean([m.ua for m in result.fold_metrics]))

    return objective


def run_study(
    model: str,
    data: Dataset,
    storage: optuna.storages.BaseStorage,
    name: str,
    *,
    n_trials: int | None = 20,
    timeout: float | None = None,
    pruner: str = "median",
    max_folds: int | None = 5,
    fixed: dict | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
) -> optuna.Study:
    """Create or resume study ``name`` and run ``n_trials`` more trials (or until timeout)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed + len(_trials(storage, name))),
        pruner=make_pruner(pruner),
        load_if_exists=True,
    )
    study.set_user_attr("model", model)
    if fixed:
        study.set_user_attr("fixed_params", fixed)
    splits = tuning_splits(data, max_folds=max_folds, seed=seed)
    objective = objective_for(
        model, data, splits, fixed=fixed, seed=seed, n_jobs=n_jobs, device=device
    )
    bar = tqdm(total=n_trials, desc=f"tune {model}", unit="trial", disable=not progress)

    def update(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update(1)
        with contextlib.suppress(ValueError):  # no completed trial yet
            bar.set_postfix_str(f"best UA {study.best_value:.4f} (trial {study.best_trial.number})")

    try:
        study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=[update])
    finally:
        bar.close()
    return study


def _trials(storage: optuna.storages.BaseStorage, name: str) -> list:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return []
    return storage.get_all_trials(study_id, deepcopy=False)


def load_study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """An existing study, or a one-line error saying how to create it."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError as exc:
        raise SercapError(f"no study {name!r} yet; run `sercap tune` without --show first") from exc


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    try:
        return study.best_trial
    except ValueError as exc:
        raise SercapError(f"study {study.study_name!r} has no completed trial yet") from exc


def store_best(
    wh: Warehouse, study: optuna.Study, model: str, data: Dataset, storage_label: str
) -> None:
    """Record the study's best parameters where `train --tuned` finds them."""
    trial = best_trial(study)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    store_runs.store_tuned_params(
        wh,
        study=study.study_name,
        model=model,
        corpus=data.corpus,
        label_map=data.label_map,
        feature_set_hash=data.feature_set_hash,
        storage=storage_label,
        best_trial=trial.number,
        best_value=trial.value,
        n_complete=len(complete),
        params={**trial.params, **study.user_attrs.get("fixed_params", {})},
    )


@dataclass
class StudySummary:
    """What `tune --show` prints."""

    name: str
    n_trials: int
    n_complete: int
    n_pruned: int
    best_number: int
    best_value: float
    best_params: dict
    importances: dict[str, float]
    history: list[tuple[int, str, float | None]]


def summarise(study: optuna.Study) -> StudySummary:
    """Best trial, parameter importances (when computable) and the trial history."""
    best = best_trial(study)
    states = optuna.trial.TrialState
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    try:
        importances = optuna.importance.get_param_importances(study) if len(complete) > 2 else {}
    except (RuntimeError, ValueError):
        importances = {}
    history = [(t.number, t.state.name.lower(), t.value) for t in study.trials]
    return StudySummary(
        name=study.study_name,
        n_trials=len(study.trials),
        n_complete=len(complete),
        n_pruned=sum(t.state == states.PRUNED for t in study.trials),
        best_number=best.number,
        best_value=float(best.value),
        best_params=dict(best.params),
        importances=dict(importances),
        history=history,
    )


def plot_study(summary: StudySummary, path: Path) -> Path:
    """History (value per trial, best so far) and parameter importances, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    done = [(n, v) for n, s, v in summary.history if s == "complete" and v is not None]
    if done:
        xs, ys = zip(*done, strict=True)
        ax1.scatter(xs, ys, s=14, label="trial UA (validation)")
        ax1.plot(xs, np.maximum.accumulate(ys), color="C3", label="best so far")
    pruned = [n for n, s, _ in summary.history if s == "pruned"]
    if pruned:
        ax1.scatter(pruned, [min(ys) if done else 0] * len(pruned), marker="x", color="grey",
                    s=14, label="pruned")  # fmt: skip
    ax1.set(xlabel="trial", ylabel="UA", title=f"{summary.name}: history")
    ax1.legend(loc="lower right", fontsize=8)
    if summary.importances:
        names = list(summary.importances)[::-1]
        ax2.barh(names, [summary.importances[n] for n in names], color="C0")
        ax2.set(xlabel="importance (fANOVA)", title="parameter importances")
    else:
        ax2.text(0.5, 0.5, "needs ≥ 3 completed trials", ha="center", va="center")
        ax2.set_axis_off()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
