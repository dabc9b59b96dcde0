"""Dask dispatch of the work of train, bench and tune (the only place that submits it).

* Cross-validation: a task is one (model, outer fold) fit. Each dataset is sent to the
  cluster once; a task gets it with the fold's row indices, fits on a worker with
  :func:`sercap.evaluate.fit_fold` (the in-process code) and returns the fold's test-row
  probabilities, so this process scores, pools and stores exactly what it would have
  computed itself. All runs of a bench are submitted at once, so a big cluster is not idle
  while one model's last fold runs.
* Tuning: a task is one Optuna trial of one study, run by ``study.optimize(n_trials=1)`` on
  a worker against the shared storage (:func:`sercap.tuning.run_trial_task`).

``cluster`` is a ``dask.distributed.Client`` the caller manages or a spec (``local:N``,
``tcp://HOST:8786``) for which a client is opened and closed here.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from sercap.data import Dataset
from sercap.evaluate import CVResult, check_splits, finish_cv, fit_fold, score


@contextmanager
def client_for(cluster: Any) -> Iterator[Any]:
    """The caller's Client as is, or one opened (and closed on exit) for a spec."""
    if hasattr(cluster, "submit"):
        yield cluster
        return
    from sercap.cluster import open_client

    with open_client(cluster) as client:
        yield client


def run_on_cluster(
    cluster: Any,
    fn: Callable[[Any], Any],
    shared: Sequence[Any],
    items: Iterable[tuple[int, Any]],
    *,
    progress: bool | None = None,
    unit: str = "task",
) -> Iterator[Any]:
    """Yield ``fn((shared[i], item))`` for every ``(i, item)``, in completion order.

    Every object of ``shared`` (datasets) is scattered to the cluster once and reaches the
    tasks by reference. A task whose worker dies is rerun by Dask; Ctrl-C cancels the
    pending ones (:func:`sercap.cluster.map_tasks`).
    """
    from sercap.cluster import map_tasks

    with client_for(cluster) as client:
        # a task's result, not scattered data: when every worker holding it dies (a worker
        # killed while the other was restarting), the scheduler recomputes it from the task
        # instead of cancelling every task that needs it ("already forgotten")
        with warnings.catch_warnings():  # "Sending large graph": the dataset travels once
            warnings.simplefilter("ignore", UserWarning)
            refs = [client.submit(_shared, obj, pure=False) for obj in shared]
        tasks = [(refs[i], item) for i, item in items]
        try:
            yield from map_tasks(client, fn, tasks, progress=progress, unit=unit)
        finally:
            client.cancel(refs)


def _shared(obj: Any) -> Any:
    """A dataset as a task's result (see :func:`run_on_cluster`)."""
    return obj


# ----------------------------------------------------------------------------- folds
@dataclass(frozen=True)
class CVRequest:
    """One cross-validation to run on the cluster (the arguments of ``cross_validate``)."""

    data: Dataset
    model: str
    params: dict | None = None
    fold_params: dict[str, dict] | None = None
    seed: int = 0
    n_jobs: int = 1
    device: str | None = None
    splits: list | None = None


@dataclass(frozen=True)
class FoldTask:
    """One (model, outer fold) fit: what a task carries besides its dataset."""

    run: int
    fold: int
    model: str
    params: dict | None
    train: np.ndarray
    test: np.ndarray
    seed: int
    n_jobs: int
    device: str | None


def fit_fold_task(item: tuple[Dataset, FoldTask]) -> tuple[int, int, np.ndarray, float]:
    """On a worker: fit one fold; return (run, fold, test probabilities, fit seconds)."""
    from sercap.cluster import worker_threads

    data, task = item
    proba, fit_s = fit_fold(
        data, task.model, task.params, task.train, task.test, seed=task.seed,
        n_jobs=worker_threads(task.n_jobs), device=task.device,
    )  # fmt: skip
    return task.run, task.fold, proba, fit_s


def cross_validate_many(
    cluster: Any, requests: Sequence[CVRequest], *, progress: bool | None = None
) -> list[CVResult]:
    """Run several cross-validations as one batch of fold tasks; their results in order.

    Each result equals what ``cross_validate`` computes in this process with the same
    arguments and threads (a fold's fit is the same code with the same seed, given at most
    its worker's threads: :func:`sercap.cluster.worker_threads`). torch's sums depend on the
    thread count, so a torch model's probabilities differ by about 1e-4 from an in-process
    run with more threads. ``duration_s`` is the wall time of the whole batch and ``fit_s``
    the sum of the folds' fit times.
    """
    started = time.perf_counter()
    datasets: list[Dataset] = []
    index: dict[int, int] = {}
    plans = []
    items: list[tuple[int, FoldTask]] = []
    for r, req in enumerate(requests):
        splits = check_splits(req.data, req.model, req.splits, req.fold_params)
        plans.append(splits)
        slot = index.setdefault(id(req.data), len(datasets))
        if slot == len(datasets):
            datasets.append(req.data)
        for f, (name, train, test) in enumerate(splits):
            params = req.params if req.fold_params is None else req.fold_params[name]
            task = FoldTask(r, f, req.model, params, train, test, req.seed, req.n_jobs, req.device)
            items.append((slot, task))
    fits: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
    for run, fold, proba, fit_s in run_on_cluster(
        cluster, fit_fold_task, datasets, items, progress=progress, unit="fold"
    ):
        fits[(run, fold)] = (proba, fit_s)
    duration = time.perf_counter() - started
    results = []
    for r, (req, splits) in enumerate(zip(requests, plans, strict=True)):
        data, K = req.data, req.data.n_classes
        proba = np.full((len(data), K), np.nan)
        metrics, fit_total = [], 0.0
        for f, (_name, _train, test) in enumerate(splits):
            p, fit_s = fits[(r, f)]
            proba[test] = p
            metrics.append(score(data.y[test], p.argmax(axis=1), K))
            fit_total += fit_s
        results.append(finish_cv(data, splits, proba, metrics, fit_total, duration))
    return results
