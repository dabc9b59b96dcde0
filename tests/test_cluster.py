"""Dask execution (sercap.cluster, extract --cluster) and optuna studies on a real PostgreSQL.

The PostgreSQL cases need a server: run this file through `.ci/with-postgres` (it starts one
and exports SERCAP_TEST_POSTGRES); without one they are skipped with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
import soundfile as sf

pytest.importorskip("dask.distributed", reason='needs Dask: pip install "sercap[cluster]"')

from distributed import WorkerPlugin  # noqa: E402

from sercap.cluster import (  # noqa: E402
    ClusterSpec,
    import_distributed,
    map_tasks,
    open_client,
    parse_spec,
    resolve_spec,
)
from sercap.corpora.ingest import ingest  # noqa: E402
from sercap.errors import SercapError  # noqa: E402
from sercap.features.extract import extract  # noqa: E402
from sercap.store import connect  # noqa: E402
from tests.helpers import BAD, GOOD, SR, make_corpus, voice  # noqa: E402
from tests.pgserver import postgres_url, unique_study  # noqa: E402


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client():
    """One LocalCluster of 2 worker processes for the module (start-up costs seconds)."""
    with open_client("local:2") as c:
        c.wait_for_workers(2)
        yield c


@pytest.fixture
def pg() -> str:
    """The server's URL, with optuna's tables created: processes that create them at once on
    an empty database race in PostgreSQL's catalog (UniqueViolation on pg_type)."""
    import optuna

    url = postgres_url()
    optuna.storages.RDBStorage(url)
    return url


def _manifest_corpus(root: Path, n: int, seconds: float = 0.5) -> Path:
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        sf.write(root / f"u{i:02d}.wav", voice(seconds, 110 + 7 * i, i), SR)
        rows.append((f"u{i:02d}.wav", "neu", f"s{i % 4}"))
    pl.DataFrame(rows, schema=["path", "label", "speaker"], orient="row").write_csv(
        root / "manifest.csv"
    )
    return root / "manifest.csv"


def _warehouse(path: Path, manifest: Path):
    wh = connect(path, memory=True)
    ingest(wh, "manifest", manifest, name="toy")
    return wh


def _stored(wh) -> dict[str, pl.DataFrame]:
    return {
        "features": wh.query("SELECT * FROM utterance_features ORDER BY utt_id"),
        "frames": wh.query("SELECT * FROM frames ORDER BY utt_id, frame"),
        "extractions": wh.query(
            "SELECT utt_id, status, error, n_frames FROM extractions ORDER BY utt_id"
        ),
    }


def _stray_files(wh) -> list[Path]:
    """Files under the part folders that are not registered parts."""
    rows = wh.con.execute("SELECT path FROM parts").fetchall()
    known = {(wh.root / p).resolve() for (p,) in rows}  # relative to the root, or absolute
    return [
        f
        for kind in ("frames", "features")
        for f in (wh.root / kind).rglob("*")
        if f.is_file() and f.resolve() not in known
    ]


# ----------------------------------------------------------------------------- specs
def test_cluster_specs_parse_and_bad_ones_are_one_line() -> None:
    assert parse_spec("local:3") == ClusterSpec("local", workers=3)
    assert parse_spec("tcp://10.0.0.5:8786") == ClusterSpec(
        "address", address="tcp://10.0.0.5:8786"
    )
    assert str(parse_spec("local:2")) == "local:2"
    # no port: dask scheduler's own (it failed later, "missing port number")
    assert parse_spec("tcp://10.0.0.5").address == "tcp://10.0.0.5:8786"
    for bad in ("local:0", "local", "8786", "http://x:1", "local:two"):
        with pytest.raises(SercapError) as info:
            parse_spec(bad)
        assert "\n" not in str(info.value)
    assert resolve_spec(None, {}) is None
    assert resolve_spec(None, {"SERCAP_CLUSTER": "local:4"}) == ClusterSpec("local", 4)
    assert resolve_spec("local:1", {"SERCAP_CLUSTER": "local:4"}) == ClusterSpec("local", 1)
    # a bad value nobody typed: the error said "cluster 'bogus'" without saying where from
    with pytest.raises(SercapError, match=r"^\$SERCAP_CLUSTER: cluster 'bogus': expected"):
        resolve_spec(None, {"SERCAP_CLUSTER": "bogus"})
    from click.testing import CliRunner

    from cli import main

    cli = CliRunner().invoke(main, ["train", "svm", "--help"])
    assert "[env var: SERCAP_CLUSTER]" in " ".join(cli.output.split())


def test_without_dask_the_error_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails
    with pytest.raises(SercapError, match=r'pip install "sercap\[cluster\]"'):
        import_distributed()


def test_cli_extract_takes_cluster_from_option_and_env(tmp_path) -> None:
    from click.testing import CliRunner

    from cli import main

    manifest = _manifest_corpus(tmp_path / "c", 2)
    w = ["-w", str(tmp_path / "wh")]
    runner = CliRunner()
    assert runner.invoke(main, [*w, "ingest", "manifest", str(manifest)]).exit_code == 0
    out = runner.invoke(main, [*w, "extract", "--cluster", "nowhere"])
    assert out.exit_code == 1 and "error: cluster 'nowhere'" in out.output, out.output
    out = runner.invoke(main, [*w, "extract"], env={"SERCAP_CLUSTER": "elsewhere"})
    # (said where it came from: nobody typed it)
    assert out.exit_code == 1 and "error: $SERCAP_CLUSTER: cluster 'elsewhere'" in out.output


# ----------------------------------------------------------------------------- map_tasks
def _square(x: int) -> int:
    return x * x


def _slow(x: int) -> int:
    time.sleep(0.3)
    return x


def test_map_tasks_yields_every_result_with_a_progress_bar(client, capsys) -> None:
    assert sorted(map_tasks(client, _square, range(12), progress=True)) == [
        i * i for i in range(12)
    ]
    assert "12/12" in capsys.readouterr().err


def _threads_for(n: int) -> int:
    from sercap.cluster import worker_threads

    return worker_threads(n)


def _fold_fit_threads(n: int) -> int:
    """On a worker: the n_jobs a fold task asking for ``n`` hands to fit_fold (a spy)."""
    import numpy as np

    import sercap.distribute as dist

    seen: list[int] = []
    original = dist.fit_fold
    dist.fit_fold = lambda *a, **k: (seen.append(k["n_jobs"]), (np.zeros((1, 1)), 0.0))[1]
    try:
        task = dist.FoldTask(0, 0, "svm", None, np.array([0]), np.array([1]), 0, n, None)
        dist.fit_fold_task((None, task))
    finally:
        dist.fit_fold = original
    return seen[0]


def test_a_task_gets_no_more_threads_than_its_worker(client) -> None:
    """Tasks run side by side, one per worker thread: a model asking for 4 threads in a
    one-thread worker would oversubscribe the machine (lightgbm: several times slower)."""
    from sercap.cluster import worker_threads

    assert list(map_tasks(client, _threads_for, [4], progress=False)) == [1]
    assert list(map_tasks(client, _fold_fit_threads, [4], progress=False)) == [1]
    assert worker_threads(4) == 4  # in this process: as asked


def test_ctrl_c_cancels_the_pending_tasks(client) -> None:
    def n_tasks() -> int:
        return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

    results = map_tasks(client, _slow, range(40), progress=False)
    next(results)
    with pytest.raises(KeyboardInterrupt) as info:
        results.throw(KeyboardInterrupt)
    # the traceback keeps the generator's futures alive: only cancel() frees the tasks
    assert info.value.__traceback__ is not None
    deadline = time.time() + 30
    while n_tasks() and time.time() < deadline:
        time.sleep(0.1)
    assert n_tasks() == 0


# ----------------------------------------------------------------------------- extraction
def test_dask_extraction_stores_the_same_features_bit_for_bit(tmp_path, client) -> None:
    manifest = make_corpus(tmp_path / "corpus")
    (tmp_path / "corpus" / "gone.wav").unlink()  # not ingested: BAD less one
    inproc = _warehouse(tmp_path / "a", manifest)
    dasked = _warehouse(tmp_path / "b", manifest)
    try:
        one = extract(inproc, "default", chunk_size=2, progress=False)
        two = extract(dasked, "default", chunk_size=2, progress=False, cluster=client)
        assert (two.done, two.failed) == (one.done, one.failed) == (GOOD, len(BAD) - 1)
        a, b = _stored(inproc), _stored(dasked)
        for name in a:
            assert a[name].height > 0
            assert a[name].equals(b[name], null_equal=True), name
        assert extract(dasked, "default", progress=False, cluster=client).done == 0
    finally:
        inproc.close()
        dasked.close()


class DieWhileWritingOnce(WorkerPlugin):
    """In the worker process: the first chunk (over all workers, claimed by a marker file)
    writes its temporary Parquet file, then its process is SIGKILLed before the rename."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def setup(self, worker) -> None:
        import pyarrow.parquet as pq

        import sercap.features.extract as ex

        original, marker = ex.write_part, self.marker

        def write(table, folder, name):
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return original(table, folder, name)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            pq.write_table(table, os.path.join(folder, f".{name}.{os.getpid()}.tmp"))
            os.kill(os.getpid(), signal.SIGKILL)

        ex.write_part = write


def test_extract_on_a_cluster_sizes_its_chunks_by_the_workers_there(
    tmp_path, client, monkeypatch
) -> None:
    """Chunks were sized for 2 workers whatever the cluster: 8 parts of EmoDB on any size,
    half of a 16-worker cluster idle."""
    import sercap.features.extract as extract_module

    seen: list[int] = []
    sized = extract_module.auto_chunk_size
    monkeypatch.setattr(
        extract_module, "auto_chunk_size", lambda n, workers: seen.append(workers) or sized(n, 1)
    )
    monkeypatch.setattr(client, "nthreads", lambda: {f"tcp://w{i}:1": 1 for i in range(5)})
    wh = _warehouse(tmp_path / "wh", make_corpus(tmp_path / "corpus"))
    try:
        assert extract(wh, "default", progress=False, cluster=client).done > 0
    finally:
        wh.close()
    assert seen == [5]


def test_a_worker_killed_mid_chunk_loses_and_duplicates_nothing(tmp_path, client) -> None:
    manifest = _manifest_corpus(tmp_path / "c", 8)
    marker = tmp_path / "killed"
    reference = _warehouse(tmp_path / "ref", manifest)
    wh = _warehouse(tmp_path / "wh", manifest)
    client.register_plugin(DieWhileWritingOnce(str(marker)), name="die-once")
    try:
        extract(reference, "default", chunk_size=2, progress=False)
        summary = extract(wh, "default", chunk_size=2, progress=False, cluster=client)
        assert marker.exists()  # a worker really died with its temporary file written
        assert summary.done == 8 and summary.failed == 0
        assert summary.orphans_removed >= 1
        assert _stray_files(wh) == []
        a, b = _stored(reference), _stored(wh)
        for name in a:
            assert a[name].equals(b[name], null_equal=True), name
    finally:
        client.unregister_worker_plugin("die-once")
        client.wait_for_workers(2)
        reference.close()
        wh.close()


def test_a_worker_killed_while_tasks_run_the_run_completes(tmp_path, client) -> None:
    manifest = _manifest_corpus(tmp_path / "c", 16, seconds=1.0)
    wh = _warehouse(tmp_path / "wh", manifest)
    killed: list[int] = []

    def kill_a_busy_worker(_res) -> None:
        if killed:
            return
        busy = [addr for addr, keys in client.processing().items() if keys]
        pids = client.run(os.getpid, workers=busy[:1])
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        summary = extract(
            wh, "default", chunk_size=1, progress=False, cluster=client, on_chunk=kill_a_busy_worker
        )
        assert killed, "no worker was busy when the first chunk came back"
        assert summary.done == 16
        ids = wh.query("SELECT utt_id FROM utterance_features")["utt_id"]
        assert ids.len() == 16 and ids.n_unique() == 16
        keys = wh.query("SELECT utt_id, frame FROM frames")
        assert keys.height == keys.unique().height
        assert wh.scalar("SELECT count(*) FROM extractions WHERE status = 'ok'") == 16
        assert _stray_files(wh) == []
    finally:
        client.wait_for_workers(2)
        wh.close()


# ----------------------------------------------------------------------------- PostgreSQL
_OPTIMIZE = textwrap.dedent(
    """
    import sys, time
    import optuna
    from optuna.storages import RDBStorage

    url, study, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a trial whose process stops beating for grace_period seconds is failed by the next
    # process that starts a trial on the study
    storage = RDBStorage(url, heartbeat_interval=1, grace_period=1)
    s = optuna.create_study(study_name=study, storage=storage, load_if_exists=True,
                            sampler=optuna.samplers.RandomSampler())
    def objective(trial):
        x = trial.suggest_float("x", -1, 1)
        time.sleep(pause)
        return x * x
    s.optimize(objective, n_trials=n)
    """
)


def optimize_loop(args: tuple[str, str, int]) -> int:
    """One worker's optimize loop on the shared study (runs on a Dask worker)."""
    import optuna

    url, study, n = args
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(
        study_name=study,
        storage=optuna.storages.RDBStorage(url),
        load_if_exists=True,
        sampler=optuna.samplers.RandomSampler(),
    )
    s.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=n)
    return n


def _states(url: str, study: str) -> dict[str, int]:
    import optuna

    trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def _optimizer(tmp_path: Path, url: str, study: str, n: int, pause: float) -> subprocess.Popen:
    script = tmp_path / "optimize.py"
    script.write_text(_OPTIMIZE)
    return subprocess.Popen([sys.executable, str(script), url, study, str(n), str(pause)])


def test_sercap_storage_opens_a_postgresql_url(pg, tmp_path) -> None:
    import optuna

    from sercap.tuning import open_storage

    storage = open_storage(pg, tmp_path, "s")
    assert isinstance(storage, optuna.storages.RDBStorage)
    study = optuna.create_study(study_name=unique_study("open"), storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2


def test_two_processes_tune_one_postgresql_study(pg, tmp_path) -> None:
    study = unique_study("two")
    procs = [_optimizer(tmp_path, pg, study, 6, 0.05) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert _states(pg, study) == {"COMPLETE": 12}


def test_dask_workers_tune_one_postgresql_study(pg, client) -> None:
    study = unique_study("dask")
    done = list(map_tasks(client, optimize_loop, [(pg, study, 5)] * 2, progress=False))
    assert done == [5, 5]
    assert _states(pg, study) == {"COMPLETE": 10}


def test_a_killed_tuner_leaves_a_study_that_resumes(pg, tmp_path) -> None:
    study = unique_study("kill")
    proc = _optimizer(tmp_path, pg, study, 1000, 1.0)
    deadline = time.time() + 90
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            states = _states(pg, study)
        except KeyError:  # the study is not created yet
            continue
        if states.get("COMPLETE", 0) >= 2 and states.get("RUNNING"):
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _states(pg, study)
    assert before.get("RUNNING") == 1  # the trial the kill interrupted
    time.sleep(2.5)  # past the heartbeat's grace period
    resumed = _optimizer(tmp_path, pg, study, 3, 0.0)
    assert resumed.wait(timeout=120) == 0
    after = _states(pg, study)
    assert "RUNNING" not in after and after.get("FAIL") == 1  # the stale trial, failed
    assert after["COMPLETE"] == before["COMPLETE"] + 3


# ----------------------------------------------------------------------------- train/bench
@pytest.fixture
def toy(wh):
    """4 speakers × 3 classes × 3 utterances of learnable features (leave-one-speaker-out)."""
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=4, per_class=3))
    return wh


def _runs(wh, run_ids: list[str]) -> pl.DataFrame:
    return wh.query(
        "SELECT model, tuned_from, ua, wa, macro_f1, confusion_json FROM runs "
        "WHERE list_contains(?, run_id) ORDER BY model, tuned_from NULLS FIRST",
        [run_ids],
    )


def _predictions(wh, run_id: str) -> pl.DataFrame:
    return wh.query(
        "SELECT utt_id, fold, predicted, proba FROM predictions WHERE run_id = ? ORDER BY utt_id",
        [run_id],
    )


def test_a_bench_through_dask_gives_the_same_ua_as_without(toy, client) -> None:
    from sercap.compare import BenchSpec, bench_runs

    specs = [BenchSpec("svm"), BenchSpec("lgbm")]
    params = {"lgbm": {"n_estimators": 20}}
    here = bench_runs(toy, specs, params=params, progress=False)
    there = bench_runs(toy, specs, params=params, progress=False, cluster=client)
    assert len(set(here.run_ids) | set(there.run_ids)) == 4  # every run stored
    a, b = _runs(toy, here.run_ids), _runs(toy, there.run_ids)
    assert a.height == 2 and a.equals(b)
    for one, two in zip(here.run_ids, there.run_ids, strict=True):
        assert _predictions(toy, one).equals(_predictions(toy, two))


def test_a_tuned_bench_through_dask_leaves_the_tuned_run_newest(toy, tmp_path, client) -> None:
    """`bench --tuned --cluster` stored the tuned run before its default one, unlike the
    in-process bench: `predict --model svm` then used the default run, not the tuned one."""
    import sercap
    from sercap.compare import BenchSpec, bench_runs
    from sercap.prediction import newest_run

    sercap.tune(toy, "svm", trials=2, inner_folds=2, pruner="none", progress=False)
    runs = bench_runs(toy, [BenchSpec("svm")], tuned=True, progress=False, cluster=client)
    (comparison,) = runs.comparisons
    assert comparison.tuned.run_id != comparison.default.run_id
    assert newest_run(toy, "svm") == comparison.tuned.run_id


def test_train_through_dask_stores_the_in_process_run(toy, client) -> None:
    from sercap.data import load_dataset
    from sercap.experiment import run_model

    data = load_dataset(toy, "tabular")
    here = run_model(toy, "svm", data, progress=False)
    there = run_model(toy, "svm", data, progress=False, cluster=client)
    assert there.result.fold_names == here.result.fold_names
    assert there.result.pooled == here.result.pooled
    assert (there.result.proba == here.result.proba).all()


# ----------------------------------------------------------------------------- tune on Dask
def _counts(storage, study: str) -> dict[str, int]:
    import optuna

    out: dict[str, int] = {}
    for t in optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def test_nested_tuning_from_dask_workers_on_postgresql(pg, toy, client, tmp_path) -> None:
    from sercap.data import load_dataset
    from sercap.tuning import final_study_name, fold_study_name, open_storage, run_nested

    data = load_dataset(toy, "tabular")
    base = unique_study("nested")
    storage = open_storage(pg, tmp_path, base)
    nested = run_nested("svm", data, storage, base, n_trials=3, inner_folds=2,
                        progress=False, cluster=client)  # fmt: skip
    names = [fold_study_name(base, f) for f in sorted(set(data.folds))] + [final_study_name(base)]
    assert sorted(s.study_name for s in nested.folds.values()) == sorted(names[:-1])
    for name in names:
        assert _counts(storage, name) == {"COMPLETE": 3}, name
    nested = run_nested("svm", data, storage, base, n_trials=2, inner_folds=2,
                        progress=False, cluster=client)  # fmt: skip
    for name in names:  # resumed: the counts add up
        assert _counts(storage, name) == {"COMPLETE": 5}, name
    nested = run_nested("svm", data, storage, base, n_trials=6, inner_folds=2,
                        progress=False, cluster=client, top_up=True)  # fmt: skip
    for name in names:  # topped up: one more each (complete or pruned), to six in all
        counts = _counts(storage, name)
        assert sum(counts.values()) == 6 and set(counts) <= {"COMPLETE", "PRUNED"}, name
    trial0 = nested.final.trials[0]
    assert trial0.user_attrs.get("default") and trial0.params == {"C": 1.0, "gamma_rel": 1.0}


class DieInFirstTrial(WorkerPlugin):
    """In the worker process: the first trial (over all workers, claimed by a marker file)
    SIGKILLs its process 1.5 s into the trial, so its trial is left RUNNING in the storage."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def setup(self, worker) -> None:
        import sercap.tuning as tuning

        original, marker = tuning.objective_for, self.marker

        def objective_for(*args, **kwargs):
            inner = original(*args, **kwargs)

            def objective(trial):
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return inner(trial)
                os.close(fd)
                time.sleep(1.5)  # the trial's heartbeat is recorded, as in a real trial
                os.kill(os.getpid(), signal.SIGKILL)

            return objective

        tuning.objective_for = objective_for


@pytest.mark.slow
def test_nested_tuning_resumes_after_a_worker_is_killed(pg, toy, client, tmp_path) -> None:
    """Dask reruns the killed worker's trial elsewhere (every study still gets its trials);
    the killed trial, left RUNNING, is failed by the heartbeat when its study resumes. When
    it was a study's default trial (trial 0), the default is run again: one more trial."""
    from sercap.data import load_dataset
    from sercap.tuning import final_study_name, open_storage, run_nested

    data = load_dataset(toy, "tabular")
    base = unique_study("killed")
    storage = open_storage(pg, tmp_path, base, heartbeat_s=1, grace_s=2)
    marker = tmp_path / "killed"
    # both workers up (an earlier test's killed worker may still be restarting): the shared
    # dataset is broadcast to every worker, and with one alive its only copy dies with it
    client.wait_for_workers(2)
    client.register_plugin(DieInFirstTrial(str(marker)), name="die-in-trial")
    try:
        nested = run_nested("svm", data, storage, base, n_trials=3, inner_folds=2,
                            progress=False, cluster=client)  # fmt: skip
    finally:
        client.unregister_worker_plugin("die-in-trial")
        client.wait_for_workers(2)
    assert marker.exists()  # a worker really died in a trial
    names = [s.study_name for s in nested.folds.values()] + [final_study_name(base)]
    counts = {name: _counts(storage, name) for name in names}
    complete = sorted(c["COMPLETE"] for c in counts.values())
    assert complete in ([3] * len(names), [3] * (len(names) - 1) + [4]), counts
    assert sum(c.get("RUNNING", 0) + c.get("FAIL", 0) for c in counts.values()) == 1, counts
    import optuna

    for name in names:  # every study has a scored default trial to compare with
        study = optuna.load_study(study_name=name, storage=storage)
        assert any(t.user_attrs.get("default") and t.value is not None for t in study.trials)
    time.sleep(2.5)  # past the grace period
    run_nested("svm", data, storage, base, n_trials=1, inner_folds=2, progress=False)
    after = {name: _counts(storage, name) for name in names}
    assert all(
        after[n]["COMPLETE"] == counts[n]["COMPLETE"] + 1 and "RUNNING" not in after[n]
        for n in names
    ), after
    assert sum(c.get("FAIL", 0) for c in after.values()) == 1, after


_OPEN_STORAGE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sercap.tuning import open_storage

    url, start = sys.argv[1], float(sys.argv[2])
    time.sleep(max(0.0, start - time.time()))
    open_storage(url, Path("."), "s")
    """
)


@pytest.mark.slow
def test_processes_opening_an_empty_postgresql_database_at_once_all_succeed(pg, tmp_path):
    """optuna's table creation races in PostgreSQL's catalog (UniqueViolation on pg_type);
    open_storage retries until the winner's tables exist."""
    import psycopg

    db = unique_study("empty").replace("-", "_")
    admin = pg.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {db}")
    url = pg.rsplit("/", 1)[0] + f"/{db}"
    script = tmp_path / "open.py"
    script.write_text(_OPEN_STORAGE)
    start = time.time() + 4.0  # every process imports first, then all create at once
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(start)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, "\n".join(e for e in errors if e)


def test_a_cross_corpus_matrix_through_dask_equals_the_in_process_one(wh, client) -> None:
    import sercap
    from tests.test_cross import two_corpora

    two_corpora(wh)
    kwargs = dict(model="svm", speaker_norm="both", progress=False)
    here = sercap.bench_cross(wh, ["a", "b"], out_dir=wh.root / "here", **kwargs)
    there = sercap.bench_cross(wh, ["a", "b"], out_dir=wh.root / "there", cluster=client, **kwargs)
    assert there.equals(here) and there.height == 4
    cells = wh.query(
        "SELECT cross_matrix, count(*) AS n FROM runs WHERE cross_matrix IS NOT NULL GROUP BY 1"
    )
    assert sorted(cells["n"].to_list()) == [8, 8]  # every cell of both matrices stored


def test_a_regression_through_dask_stores_the_in_process_predictions(wh, client) -> None:
    import sercap
    from tests.helpers import add_corpus, add_features
    from tests.test_regression import FAST, add_ratings

    utts = add_corpus(wh, n_speakers=4, per_class=5)
    add_features(wh, utts)
    add_ratings(wh, utts)
    ccc = {}
    for model in ("svm", "trees"):
        kwargs = dict(target="valence", params=FAST[model], progress=False)
        here = sercap.train(wh, model, **kwargs)
        there = sercap.train(wh, model, cluster=client, **kwargs)
        assert there.run_id != here.run_id and there.ccc == here.ccc
        assert there.predictions.equals(here.predictions)
        ccc[model] = here.ccc
    bench = sercap.bench(wh, ["svm"], target="valence", cluster=client, progress=False)
    assert bench.table["ccc"].to_list() == [ccc["svm"]]  # svm's defaults are FAST["svm"]


def _worker_sigint_and_main() -> tuple:
    """On a worker: its SIGINT handler and the script its main module was loaded from."""
    import signal

    main = sys.modules.get("__mp_main__") or sys.modules["__main__"]
    return signal.getsignal(signal.SIGINT), getattr(main, "__file__", None)


def test_local_workers_leave_ctrl_c_to_the_client_and_do_not_rerun_main(client) -> None:
    """Each `--cluster local:N` worker re-ran `python cli.py` (installing its Ctrl-C
    handler: the "interrupted" line printed once per worker) or, under `python -m sercap`,
    printed a KeyboardInterrupt traceback. Workers now ignore SIGINT and start without the
    caller's script."""
    import signal

    workers = list(client.scheduler_info()["workers"])
    futures = [client.submit(_worker_sigint_and_main, pure=False, workers=[w]) for w in workers]
    for handler, script in client.gather(futures):
        assert handler == signal.SIG_IGN
        assert script is None or "pytest" not in script


def test_a_scheduler_without_workers_is_said_not_a_silent_wait(capsys) -> None:
    """`extract --cluster tcp://…` of a scheduler with no worker sat silent until killed.
    It now says so after the connect timeout and keeps waiting (adaptive clusters add
    workers late), or gives up after ``worker_wait_s``."""
    from distributed import Scheduler

    from sercap.errors import SercapError

    async def no_workers():
        async with Scheduler(port=0, dashboard_address=":0") as scheduler:
            import asyncio

            def connect():
                with open_client(scheduler.address, timeout_s=1, worker_wait_s=1):
                    pass

            with pytest.raises(SercapError, match="no worker joined the scheduler in 2 s"):
                await asyncio.get_running_loop().run_in_executor(None, connect)

    import asyncio

    asyncio.run(no_workers())
    waiting = capsys.readouterr().err.splitlines()
    assert len(waiting) == 1 and "has no worker yet" in waiting[0], waiting


def test_a_lost_scheduler_is_one_line() -> None:
    from distributed.client import FutureCancelledError

    from sercap.cluster import _scheduler_lost

    lost = FutureCancelledError("x", reason="scheduler-connection-lost")
    assert _scheduler_lost(lost) == "scheduler-connection-lost"
    assert _scheduler_lost(ValueError("a task's own error")) is None
    assert _scheduler_lost(KeyboardInterrupt()) is None


def test_shared_data_survives_the_death_of_its_only_holder(tmp_path) -> None:
    """Scattered datasets have no lineage: when the one worker holding a copy died (here the
    only worker; in a run, one killed while the other was restarting) every task needing it
    was cancelled, "already forgotten". As a task's result it is recomputed instead."""
    from sercap.distribute import run_on_cluster
    from tests.helpers import die_once_then_sum

    marker = tmp_path / "died"
    with open_client("local:1") as c:
        c.wait_for_workers(1)
        done = list(
            run_on_cluster(
                c, die_once_then_sum, [[1.0, 2.0]], [(0, (str(marker), 1.0))], progress=False
            )
        )
    assert marker.exists() and done == [4.0]


def test_a_failing_task_leaves_the_message_to_the_command(capfd) -> None:
    """The workers printed their own "distributed.worker - ERROR - Compute Failed" block
    (with the task's traceback) before the command's one-line error."""
    from tests.helpers import fail_task

    with open_client("local:1") as c:
        c.wait_for_workers(1)
        with pytest.raises(ValueError, match="this task fails"):
            c.submit(fail_task, 1).result()
    assert "Compute Failed" not in capfd.readouterr().err


_LOST_SCHEDULER_CLIENT = """
import sys, time
from sercap.cluster import map_tasks, open_client
from sercap.errors import SercapError
try:
    with open_client(sys.argv[1], timeout_s=2) as client:
        print("connected", flush=True)
        list(map_tasks(client, time.sleep, [30, 30]))
except SercapError as exc:
    print(exc, file=sys.stderr)
"""


@pytest.mark.slow
def test_a_remote_scheduler_killed_mid_run_is_one_line_not_dask_logs(tmp_path) -> None:
    """A remote scheduler killed while tasks ran: the client's own log (a "Failed to
    reconnect" line and two asyncio tracebacks, ~25 lines) came before sercap's one line."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--dashboard-address", ":0"], **quiet,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1"],
        **quiet,
    )
    try:
        client = subprocess.Popen(
            [sys.executable, "-c", _LOST_SCHEDULER_CLIENT, address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        assert client.stdout.readline().strip() == "connected"
        time.sleep(1.0)  # the tasks are running on the worker
        scheduler.kill()
        _, err = client.communicate(timeout=60)
    finally:
        for p in (scheduler, worker):
            p.kill()
            p.wait()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "lost the scheduler" in lines[0], err


def test_a_port_that_is_not_a_scheduler_is_said_so_not_called_a_timeout() -> None:
    """A PostgreSQL port given as the scheduler failed in about a second but said "no
    scheduler answered within 30 s"."""
    import socket
    import threading
    import time

    from sercap.errors import SercapError

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_wrongly() -> None:
        for _ in range(20):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
            conn.close()

    threading.Thread(target=answer_wrongly, daemon=True).start()
    port = server.getsockname()[1]
    started = time.monotonic()
    try:
        with (
            pytest.raises(SercapError, match="no Dask scheduler there") as caught,
            open_client(f"tcp://127.0.0.1:{port}", timeout_s=20),
        ):
            pass
    finally:
        server.close()
    assert "within" not in caught.value.message
    assert time.monotonic() - started < 18


def test_a_refused_port_or_an_unknown_host_is_named_as_such() -> None:
    """`--cluster tcp://127.0.0.1:1` and an unknown host waited the whole timeout and then
    said "no scheduler answered"; a port above 65535 passed the parser. (A refused port is
    tried until the timeout: a scheduler started a moment ago may not listen yet.)"""
    import socket
    import time

    with pytest.raises(SercapError, match="port 99999 is not a port"):
        parse_spec("tcp://127.0.0.1:99999")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    for address, said in (
        (f"tcp://127.0.0.1:{port}", f"nothing listens on port {port} of 127.0.0.1"),
        ("tcp://no-such-host.invalid:8786", "unknown host 'no-such-host.invalid'"),
    ):
        started = time.monotonic()
        with pytest.raises(SercapError, match=said), open_client(address, timeout_s=2):
            pass
        assert time.monotonic() - started < 8
