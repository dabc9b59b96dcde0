"""`bench scale`: the same workloads with 1 process, the in-process pool and a LocalCluster.

Three workloads, as a user runs them: extract a corpus, bench svm + lgbm, nested-tune svm
with a small budget. Each runs three ways, every time as a whole new process (imports,
pool or cluster start-up and shutdown included, as a user pays them), timed side by side:

``1 process``   ``jobs=1``, no cluster;
``pool``        the in-process ``multiprocessing`` pool of N processes where sercap has one
                (extraction); bench and tune have none and get ``jobs=N`` (the models'
                own threads);
``local:N``     a ``dask.distributed.LocalCluster`` of N worker processes.

Every mode starts from a copy of the same ingested warehouse (so each extracts everything)
and tunes its own fresh study. :func:`scale_table` gives, per workload and mode, the time,
the speed-up over one process and the overhead per task: ``(N·T_N − T_1) / tasks``, the
worker-seconds a mode spends beyond the serial work, shared over its tasks (start-up,
transfers, scheduling and idle workers at the end).

:func:`project_nested` projects (it is a projection, not a measurement) the wall time of an
IEMOCAP-sized nested tuning of every model on 1, 8 and 64 workers from measured per-fit
costs (:func:`fit_costs`, from stored runs).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sercap._lazy import pl  # (the timed openSMILE process imports run_timed's module)
from sercap.errors import SercapError

WORKLOADS = ("extract", "bench", "tune")
#: Models of the bench workload and their settings (lgbm as bench --quick would not change).
BENCH_MODELS = ("svm", "lgbm")
#: Trials per study and inner folds of the tune workload ("a small budget").
TUNE_TRIALS = 4
TUNE_INNER = 2


def modes(workers: int) -> list[str]:
    """The three ways each workload runs: ``1 process``, ``pool``, ``local:N``."""
    return ["1 process", "pool", f"local:{workers}"]


def mode_folder(mode: str) -> str:
    """The folder (under the work dir) of the warehouse copy a mode runs on."""
    return mode.replace(" ", "-").replace(":", "")


@dataclass(frozen=True)
class Measurement:
    """One timed process: a workload in one mode."""

    workload: str
    mode: str
    workers: int
    seconds: float
    tasks: int
    #: every round's seconds, in the order they ran (``seconds`` is their median)
    runs: tuple[float, ...] = ()


# ----------------------------------------------------------------------------- one run
def run_one(workload: str, root: Path, mode: str, workers: int, seed: int = 0) -> int:
    """Run one workload in this process on the warehouse at ``root``; return its task count.

    This is what each timed subprocess (``python -m sercap.scale WORKLOAD ROOT MODE N``)
    executes; the tasks are what the cluster would run: extraction chunks, (model, fold)
    fits, or trials.
    """
    from sercap.store import connect

    cluster = mode if mode.startswith("local:") else None
    jobs = 1 if mode == "1 process" else workers
    wh = connect(root)
    try:
        if workload == "extract":
            from sercap.features.extract import auto_chunk_size, extract

            n = wh.scalar("SELECT count(*) FROM utterances")
            chunk = auto_chunk_size(n, workers)  # the same chunks in every mode
            extract(wh, "default", jobs=jobs, chunk_size=chunk, progress=False, cluster=cluster)
            return math.ceil(n / chunk)
        if workload == "bench":
            from sercap.compare import BenchSpec, bench_runs

            runs = bench_runs(
                wh, [BenchSpec(m) for m in BENCH_MODELS], seed=seed, n_jobs=jobs,
                progress=False, cluster=cluster,
            )  # fmt: skip
            from sercap.store.runs import folds_of

            return folds_of(wh, runs.run_ids)
        if workload == "tune":
            from sercap.experiment import data_request, load_for
            from sercap.tuning import open_storage, run_nested

            data = load_for(wh, data_request("svm"))
            name = f"scale-{mode.replace(':', '')}-{time.time_ns()}"
            storage = open_storage(None, root, name)
            nested = run_nested(
                "svm", data, storage, name, n_trials=TUNE_TRIALS, inner_folds=TUNE_INNER,
                seed=seed, n_jobs=jobs, progress=False, cluster=cluster,
            )  # fmt: skip
            return (len(nested.folds) + 1) * TUNE_TRIALS
        raise SercapError(f"unknown workload {workload!r}; choose one of: {', '.join(WORKLOADS)}")
    finally:
        wh.close()


def timed_process(workload: str, root: Path, mode: str, workers: int, seed: int = 0) -> Measurement:
    """Run :func:`run_one` as a new ``python -m sercap.scale`` process; time it whole."""
    argv = [sys.executable, "-m", "sercap.scale", workload, str(root), mode, str(workers),
            str(seed)]  # fmt: skip
    seconds, stdout = run_timed(argv, f"bench scale: {workload} with {mode}")
    tasks = json.loads(stdout.strip().splitlines()[-1])["tasks"]
    return Measurement(workload, mode, workers, seconds, int(tasks))


def run_timed(argv: Sequence[str], what: str, ok: Sequence[int] = (0,)) -> tuple[float, str]:
    """Run ``argv`` as a new process to its end: (wall seconds, its stdout).

    sercap's package folder leads ``PYTHONPATH``, so ``python -m sercap…`` finds this
    sercap from any working directory, installed or not. An exit status not in ``ok``
    raises one line naming ``what`` and the process' last line of stderr.
    """
    env = {**os.environ, "PYTHONPATH": _package_parent() + os.pathsep + os.environ.get(
        "PYTHONPATH", "")}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise SercapError(f"{what} failed: {tail}")
    return seconds, done.stdout


def fresh_copy(template: Path, dest: Path) -> Path:
    """``dest`` as a new copy of the warehouse folder ``template`` (an old copy removed; a
    folder that is not a warehouse is refused, never deleted)."""
    if dest.exists():
        refuse_foreign(dest)
        shutil.rmtree(dest)
    shutil.copytree(template, dest)
    return dest


def refuse_foreign(folder: Path) -> None:
    """One line, before anything is deleted, when ``folder`` holds files but no warehouse
    (a --work-dir pointed at a folder of the user's: its files were removed silently)."""
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "sercap.duckdb").exists():
        raise SercapError(
            f"{folder}: holds files but no sercap warehouse; bench replaces this folder, so "
            "give a --work-dir of its own (an empty or new folder)"
        )


def _package_parent() -> str:
    return str(Path(__file__).resolve().parent.parent)


# ----------------------------------------------------------------------------- the bench
def measure_scale(
    template: Path,
    work_dir: Path,
    *,
    workers: int = 2,
    workloads: Sequence[str] = WORKLOADS,
    seed: int = 0,
    repeat: int = 1,
    say: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Time every workload in every mode, each mode on its own copy of ``template``;
    ``repeat`` rounds, each running every mode once on a fresh copy (interleaved, so that a
    machine whose speed drifts moves every mode alike), each cell the median of its runs.

    Parameters
    ----------
    template : Path
        A warehouse folder with the corpus ingested and nothing extracted (every mode
        extracts from scratch; bench and tune then use what it extracted).
    work_dir : Path
        Where the copies go (one folder per mode; removed before use).
    workers : int
        N: pool size and LocalCluster size.
    workloads : sequence of str
        Some of ``extract``, ``bench``, ``tune`` (bench and tune need ``extract`` before,
        or features already in ``template``).
    seed : int
        Seed of the models and the studies.
    repeat : int
        Rounds.
    say : callable, optional
        Receives a line per finished measurement.
    """
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        raise SercapError(f"unknown workload {unknown[0]!r}; choose from {', '.join(WORKLOADS)}")
    if "extract" in workloads:  # compiled before any mode is timed: with a cold cache the
        # first mode (one process) paid ~14 s of compilation the others then reused
        from sercap.features.featureset import get_feature_set
        from sercap.numba_cache import ensure_numba_cache, warm_spec

        fs = get_feature_set("default")
        ensure_numba_cache(arg=warm_spec(fs.kind, fs.params), log=False)
    timed: dict[tuple[str, str], list[Measurement]] = {}
    for round_no in range(1, int(repeat) + 1):
        for mode in modes(workers):
            root = fresh_copy(template, work_dir / mode_folder(mode))
            for workload in workloads:
                m = timed_process(workload, root, mode, workers, seed)
                timed.setdefault((workload, mode), []).append(m)
                if say is not None:
                    shown = shown_mode(workload, mode, workers)
                    of = f"round {round_no}/{repeat}: " if repeat > 1 else ""
                    say(f"{of}{workload:8s} {shown:10s} {m.seconds:8.1f} s  ({m.tasks} tasks)")
    return [
        dataclasses.replace(
            runs[0],
            seconds=statistics.median(r.seconds for r in runs),
            runs=tuple(r.seconds for r in runs),
        )
        for (workload, mode), runs in sorted(
            timed.items(),
            key=lambda item: (modes(workers).index(item[0][1]), list(workloads).index(item[0][0])),
        )  # fmt: skip
    ]


def shown_mode(workload: str, mode: str, workers: int) -> str:
    """How the table names a mode: ``pool`` only where there is one (extraction); bench and
    tune run in one process with ``--jobs N`` (their models' threads)."""
    if mode == "pool" and workload != "extract":
        return f"--jobs {workers}"
    return mode


def scale_table(measurements: Sequence[Measurement], load: float | None = None) -> pl.DataFrame:
    """Per workload and mode: seconds, speed-up over one process, overhead per task.

    ``overhead_per_task_s`` is ``(N·T_N − T_1) / tasks`` (0 for one process); ``load`` (the
    machine's 1-minute load average during the measurement) is copied into every row.
    """
    rows = []
    serial = {m.workload: m.seconds for m in measurements if m.mode == "1 process"}
    for m in measurements:
        t1 = serial.get(m.workload)
        n = 1 if m.mode == "1 process" else m.workers
        rows.append(
            {
                "workload": m.workload,
                "mode": shown_mode(m.workload, m.mode, m.workers),
                "workers": n,
                "tasks": m.tasks,
                "seconds": round(m.seconds, 2),
                "runs_s": " ".join(f"{x:.2f}" for x in (m.runs or (m.seconds,))),
                "speed_up": round(t1 / m.seconds, 2) if t1 else None,
                "overhead_per_task_s": (
                    round((n * m.seconds - t1) / m.tasks, 3) if t1 and m.tasks else None
                ),
                "load": load,
            }
        )
    return pl.DataFrame(rows)


def table_markdown(table: pl.DataFrame) -> str:
    """The scale table as Markdown, with what the overhead column means."""
    lines = [
        "| workload | mode | workers | tasks | time (s) | runs (s) | speed-up | "
        "overhead/task (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.iter_rows(named=True):
        lines.append(
            f"| {r['workload']} | {r['mode']} | {r['workers']} | {r['tasks']} | "
            f"{r['seconds']:.1f} | {r.get('runs_s', '')} | {r['speed_up']:.2f}× | "
            f"{r['overhead_per_task_s']:.3f} |"
        )
    load = table["load"][0] if "load" in table.columns and table.height else None
    lines += [
        "",
        "Each cell is one whole process (start-up included), the median of its runs when "
        "there are several (rounds interleave the modes). Overhead per task = "
        "(N·T_N − T_1) / tasks." + (f" Load average during the run: {load:.1f}." if load else ""),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- projection
@dataclass(frozen=True)
class FitCost:
    """A measured cost: seconds per fit of ``model`` on ``n_train`` training utterances."""

    model: str
    seconds_per_fit: float
    n_train: int


#: How a model's fit time grows with training utterances (exponent): kernel SVMs are
#: roughly quadratic, trees and networks roughly linear per epoch. An assumption.
GROWTH = {"svm": 2.0}


def fit_costs(wh) -> list[FitCost]:
    """Per model, the mean seconds per fold fit of its newest default run (``fit_s`` /
    folds), with the mean training utterances per fold."""
    from sercap.store.runs import newest_default_fits

    frame = newest_default_fits(wh)
    return [
        FitCost(
            r["model"],
            r["fit_s"] / r["n_folds"],
            int(r["n_utterances"] * (r["n_folds"] - 1) / r["n_folds"]),
        )
        for r in frame.iter_rows(named=True)
    ]


def project_nested(
    costs: Sequence[FitCost],
    *,
    workers: Sequence[int] = (1, 8, 64),
    n_utterances: int = 5531,
    outer_folds: int = 5,
    trials: int = 30,
    inner_folds: int = 3,
    overhead_per_task_s: float = 0.0,
) -> pl.DataFrame:
    """PROJECTED wall time of a nested tuning of every model in ``costs``.

    The defaults describe IEMOCAP's 4-class set (5531 utterances, 5 sessions as outer
    folds), 30 trials per study and 3 inner folds. Per model: ``(outer_folds + 1) · trials``
    trial tasks (fold studies + final), each ``inner_folds`` fits on about
    ``n_utterances · (outer−1)/outer · (inner−1)/inner`` utterances, a fit's cost scaled
    from the measured one by ``(n / n_measured) ** GROWTH`` (1 unless listed). On W
    workers the tasks of every model share the cluster: time ≈ max(total / W, longest
    task) + tasks · overhead / W. No pruning is assumed (pruning only shortens it).

    Returns
    -------
    polars.DataFrame
        One row per model and one ``all models`` row; a column ``hours_W`` per worker count
        and ``projection`` = True.
    """
    n_fit = n_utterances * (outer_folds - 1) / outer_folds * (inner_folds - 1) / inner_folds
    rows, all_tasks, all_work, longest = [], 0, 0.0, 0.0
    for c in costs:
        fit = c.seconds_per_fit * (n_fit / max(c.n_train, 1)) ** GROWTH.get(c.model, 1.0)
        tasks = (outer_folds + 1) * trials
        task_s = inner_folds * fit
        all_tasks, all_work, longest = all_tasks + tasks, all_work + tasks * task_s, max(
            longest, task_s
        )  # fmt: skip
        rows.append(_projection_row(c.model, tasks, task_s, tasks * task_s, task_s, workers,
                                    overhead_per_task_s))  # fmt: skip
    if rows:
        rows.append(_projection_row("all models", all_tasks, None, all_work, longest, workers,
                                    overhead_per_task_s))  # fmt: skip
    return pl.DataFrame(rows)


def _projection_row(model, tasks, task_s, work, longest, workers, overhead) -> dict:
    row = {"model": model, "tasks": tasks, "seconds_per_task": task_s, "projection": True}
    for w in workers:
        row[f"hours_{w}"] = round((max(work / w, longest) + tasks * overhead / w) / 3600, 2)
    return row


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sercap.scale WORKLOAD ROOT MODE N [SEED]``: one timed run (prints its
    tasks)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (4, 5) or not all(a.isdigit() for a in args[3:]):
        sys.exit(
            "usage: python -m sercap.scale WORKLOAD ROOT MODE N [SEED] (one timed run of "
            "`sercap bench scale`, which starts it; run that instead)"
        )
    workload, root, mode, workers = args[0], Path(args[1]), args[2], int(args[3])
    seed = int(args[4]) if len(args) == 5 else 0
    tasks = run_one(workload, root, mode, workers, seed)
    print(json.dumps({"tasks": tasks}))


if __name__ == "__main__":
    main()
