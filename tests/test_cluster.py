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
    for bad in ("local:0", "local", "8786", "http://x:1", "local:two"):
        with pytest.raises(SercapError) as info:
            parse_spec(bad)
        assert "\n" not in str(info.value)
    assert resolve_spec(None, {}) is None
    assert resolve_spec(None, {"SERCAP_CLUSTER": "local:4"}) == ClusterSpec("local", 4)
    assert resolve_spec("local:1", {"SERCAP_CLUSTER": "local:4"}) == ClusterSpec("local", 1)


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
    assert out.exit_code == 1 and "error: cluster 'elsewhere'" in out.output, out.output


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

        original, marker = ex._write_parquet, self.marker

        def write(table, folder, name):
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return original(table, folder, name)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            pq.write_table(table, os.path.join(folder, f".{name}.{os.getpid()}.tmp"))
            os.kill(os.getpid(), signal.SIGKILL)

        ex._write_parquet = write


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
