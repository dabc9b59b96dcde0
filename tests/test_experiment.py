"""Planning and running the cross-validations that train, bench and compare_tuned store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sercap
from sercap.store import connect
from tests.helpers import add_corpus, add_features


def _readable_elsewhere(database: Path) -> bool:
    """Whether another process can open the catalog to read it now."""
    return (
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import duckdb; duckdb.connect({str(database)!r}, read_only=True)",
            ],
            capture_output=True,
            timeout=60,
        ).returncode
        == 0
    )


def _lock_taken_then_interrupted(database: Path, holders: list) -> object:
    """A stand-in for the fits: another process takes the catalog's lock (kept in
    ``holders``, to be killed), then the user presses Ctrl-C."""

    def interrupted(*args, **kwargs):
        holder = subprocess.Popen(
            [sys.executable, "-c",
             f"import duckdb, time; c = duckdb.connect({str(database)!r}); print(1, flush=True);"
             " time.sleep(30)"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        holders.append(holder)
        assert holder.stdout.readline().strip() == "1"
        raise KeyboardInterrupt

    return interrupted


def test_other_processes_can_read_the_warehouse_while_the_folds_are_fitted(
    tmp_path: Path, monkeypatch
) -> None:
    """train and bench held the write lock for their whole run (15 minutes at IEMOCAP's
    size): `sql` and `info` gave up after their minute's wait. The lock is given back while
    the folds are fitted, and each run is stored after with the fingerprint of the data it
    loaded, though a recording is replaced meanwhile (a review caught bench's second model
    stored with the new recording's fingerprint)."""
    import sercap.experiment as experiment
    from sercap.store.runs import get_run

    database = tmp_path / "wh" / "sercap.duckdb"
    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    wh.execute("UPDATE utterances SET audio_sha256 = 'bytes of ' || utt_id")
    from sercap.evaluate import data_sha256

    loaded = data_sha256(wh, sercap.dataset(wh, "tabular"))
    seen = []
    fit = experiment.cross_validate

    def spied(*args, **kwargs):
        seen.append(_readable_elsewhere(database))
        if len(seen) == 1:  # another process replaces a recording during the first fit
            with connect(tmp_path / "wh") as other:
                other.execute(
                    "UPDATE utterances SET audio_sha256 = 'new bytes' WHERE utt_id = ?",
                    [other.scalar("SELECT min(utt_id) FROM utterances")],
                )
        return fit(*args, **kwargs)

    monkeypatch.setattr(experiment, "cross_validate", spied)
    assert not _readable_elsewhere(database)  # (held, as any writer holds it)
    bench = sercap.bench(wh, ["svm", "rf"], quick=True, progress=False)
    assert seen == [True, True]
    assert not _readable_elsewhere(database)  # taken back: the caller's wh works
    stored = [get_run(wh, r)["data_sha256"] for r in bench.table["run_id"]]
    assert stored == [loaded, loaded]
    assert data_sha256(wh, sercap.dataset(wh, "tabular")) != loaded  # (it did change)
    wh.close()


def test_a_ctrl_c_during_the_fits_ends_at_once_though_another_process_holds_the_lock(
    tmp_path: Path, monkeypatch
) -> None:
    """A Ctrl-C during the fits waited up to an hour to open a catalog that another process
    had taken meanwhile, only to give up on it."""
    import time

    import pytest

    import sercap.experiment as experiment

    database = tmp_path / "wh" / "sercap.duckdb"
    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    holders: list[subprocess.Popen] = []
    stand_in = _lock_taken_then_interrupted(database, holders)
    monkeypatch.setattr(experiment, "cross_validate", stand_in)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            sercap.train(wh, "svm", progress=False)
        assert time.monotonic() - started < 20
        assert not wh.closed  # its lock was taken: the handle takes it back at its next use
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    assert wh.scalar("SELECT count(*) FROM runs") == 0
    wh.close()


def test_a_ctrl_c_during_a_tuning_ends_at_once_though_another_process_holds_the_lock(
    tmp_path: Path, monkeypatch
) -> None:
    """tune reopened the caller's warehouse with a minute's wait after a Ctrl-C too."""
    import time

    import pytest

    import sercap.tuning as tuning

    database = tmp_path / "wh" / "sercap.duckdb"
    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    holders: list[subprocess.Popen] = []
    monkeypatch.setattr(tuning, "run_nested", _lock_taken_then_interrupted(database, holders))
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            sercap.tune(wh, "svm", trials=1, progress=False)
        assert time.monotonic() - started < 20
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_a_fit_inside_the_callers_transaction_keeps_the_connection(tmp_path: Path) -> None:
    """Closing the connection for the fits rolled back what the caller had written in its
    transaction, stored the run outside it, then failed on the commit."""
    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    with wh.transaction():
        wh.execute("CREATE TABLE notes AS SELECT 1 AS x")
        run = sercap.train(wh, "svm", progress=False)
    assert wh.scalar("SELECT count(*) FROM notes") == 1
    assert wh.scalar("SELECT count(*) FROM runs WHERE run_id = ?", [run.run_id]) == 1
    wh.close()


def test_a_feature_set_stored_by_another_sercap_gets_a_note_from_train_and_bench(
    tmp_path: Path,
) -> None:
    """After an upgrade that changed how the default set is computed, train, tune and bench
    read the version stored by the older sercap without a word; predict then refused every
    run on it ("read feature set 'default' as another sercap … computed it")."""
    import json

    import sercap
    from sercap.features.featureset import builtin_definitions
    from tests.helpers import add_corpus, add_features

    wh = sercap.connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    said: list[str] = []
    sercap.train(wh, "svm", progress=False, say=said.append)
    assert not any("another sercap" in line for line in said)  # no definition to compare
    _kind, params, _ = builtin_definitions()["default"]  # as an older sercap stored it
    wh.execute("UPDATE feature_sets SET params_json = ? WHERE hash = 'abc123'",
               [json.dumps(params)])  # fmt: skip
    now = sercap.get_feature_set("default").hash
    said.clear()
    sercap.train(wh, "svm", progress=False, say=said.append)
    notes = [line for line in said if "another sercap" in line]
    assert notes == [
        "note: feature set 'default' is stored as abc123, which another sercap or other "
        f"library versions computed; this installation computes it as {now}: "
        "`sercap extract --feature-set default --corpus toy` / "
        "`sercap.extract(wh, 'default', corpus='toy')` stores it as computed now, and predict "
        "refuses a run on the stored version (new files would get other features)"
    ]
    said.clear()
    sercap.bench(wh, ["svm"], progress=False, say=said.append)
    assert sum("another sercap" in line for line in said) == 1
    # a rating's regressors read the same set: train and bench --target say it too
    from tests.test_regression import add_ratings

    add_ratings(wh, wh.query("SELECT utt_id, emotion FROM utterances JOIN labels USING "
                             "(utt_id)"), "activation")  # fmt: skip
    for call in (sercap.train, sercap.bench):
        said.clear()
        models = "svm" if call is sercap.train else ["svm"]
        call(wh, models, target="activation", progress=False, say=said.append)
        assert sum("another sercap" in line for line in said) == 1, call
    wh.close()


def test_a_torch_run_records_the_threads_and_device_that_reproduce_it(tmp_path: Path) -> None:
    """torch's sums run in another order with another thread count: on EmoDB dnn scored
    0.772 with `--jobs 2` and 0.779 with one thread, and nothing in a run said which;
    `bench --resume` reused a two-thread run for a one-thread bench, and the first
    predict's --jobs decided the stored final model."""
    import json

    import sercap
    from sercap.format import format_run
    from sercap.prediction import run_compute
    from tests.helpers import add_corpus, add_features

    wh = sercap.connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    from sercap.run_labels import QUICK_PARAMS

    tiny = QUICK_PARAMS["dnn"]  # what bench --quick fits, so that --resume can find it
    one = sercap.train(wh, "dnn", params=tiny, jobs=1, progress=False)
    two = sercap.train(wh, "dnn", params=tiny, jobs=2, progress=False)
    svm = sercap.train(wh, "svm", jobs=2, progress=False)
    recorded = {r.run_id: json.loads(r.record["versions_json"]) for r in (one, two, svm)}
    assert (recorded[one.run_id]["torch_threads"], recorded[one.run_id]["torch_device"]) == (
        "1", "cpu",
    )  # fmt: skip
    assert recorded[two.run_id]["torch_threads"] == "2"
    assert "torch_threads" not in recorded[svm.run_id]
    assert "fitted with 2 torch thread(s) on cpu" in format_run(two.record)
    assert "torch thread" not in format_run(svm.record)
    assert run_compute(one.record, 2) == (1, "cpu")  # predict refits as the run was fitted
    # --resume reuses a run fitted with the same threads only
    said: list[str] = []
    # a GPU run predicted where there is no such GPU: the default device, not an error
    import torch

    gpu = run_compute({"versions_json": '{"torch_threads": "2", "torch_device": "cuda"}'}, 1)
    assert gpu == (2, "cuda" if torch.cuda.is_available() else None)
    if not torch.cuda.is_available():  # and predict says its final model is fitted here
        from sercap.prediction import final_model

        on_gpu = json.dumps({**recorded[two.run_id], "torch_device": "cuda"})
        wh.execute("UPDATE runs SET versions_json = ? WHERE run_id = ?", [on_gpu, two.run_id])
        notes: list[str] = []
        final_model(wh, two.run_id, progress=False, say=notes.append)
        assert any(f"run {two.run_id} was fitted on cuda, which this machine" in n
                   for n in notes), notes  # fmt: skip
        wh.execute("UPDATE runs SET versions_json = ? WHERE run_id = ?",
                   [json.dumps(recorded[two.run_id]), two.run_id])  # fmt: skip
    # a rating's torch regressor, and a fused model (its members may be torch), record too
    from sercap.evaluate import _uses_torch
    from tests.test_regression import add_ratings

    add_ratings(wh, wh.query("SELECT utt_id, emotion FROM utterances JOIN labels USING "
                             "(utt_id)"), "activation")  # fmt: skip
    rated = sercap.train(wh, "dnn", target="activation", params={"epochs": 2}, jobs=1,
                         progress=False)  # fmt: skip
    assert json.loads(rated.record["versions_json"])["torch_threads"] == "1"
    assert _uses_torch("fusion") and _uses_torch("early-fusion") and not _uses_torch("svm")
    for jobs, reused in ((1, one.run_id), (2, two.run_id)):
        said.clear()
        sercap.bench(wh, ["dnn"], quick=True, jobs=jobs, resume=True, progress=False,
                     say=said.append)  # fmt: skip
        assert any(f"stored run {reused}, reused" in line for line in said), said
    wh.close()
