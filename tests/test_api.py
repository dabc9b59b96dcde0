"""The public API: `import sercap` runs issue 11's example as written, and stays light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import soundfile as sf

import sercap
from sercap.corpora.synthetic import SAMPLE_RATE, make_speaker, synthesize

ROOT = Path(__file__).resolve().parents[1]

#: Issue 11's example, verbatim (paths are relative: the test runs it in a folder holding
#: data/emodb and clip.wav).
ISSUE_EXAMPLE = """
import sercap
wh = sercap.connect("warehouse")               # or ":memory:" + a folder
sercap.ingest(wh, "emodb", "data/emodb")
sercap.extract(wh, feature_set="default", jobs=2)
run = sercap.train(wh, "svm")                  # run.run_id, run.ua, run.confusion, run.predictions (polars)
study = sercap.tune(wh, "xgb", trials=30)
table = sercap.predict(wh, ["clip.wav"], model="svm")   # polars DataFrame
feats = sercap.features("clip.wav")            # one file, no warehouse: polars row of functionals
"""  # noqa: E501

#: EmoDB letters of the emotions the tiny corpus acts.
LETTERS = {"ang": "W", "neu": "N", "sad": "T"}


def write_emodb_corpus(root: Path, speakers=("03", "08", "09"), per_class: int = 2) -> Path:
    """A tiny corpus in EmoDB's layout (wav/SSTTTEV.wav) voiced by the synthetic vocoder."""
    (root / "wav").mkdir(parents=True, exist_ok=True)
    for s, speaker in enumerate(speakers):
        voice = make_speaker(1, "F" if s % 2 else "M", np.random.default_rng(100 + s))
        for e, (emotion, letter) in enumerate(LETTERS.items()):
            for k in range(per_class):
                rng = np.random.default_rng(1000 * s + 10 * e + k)
                y = synthesize(voice, emotion, rng)[: int(1.2 * SAMPLE_RATE)]
                sf.write(root / "wav" / f"{speaker}a{k:02d}{letter}a.wav", y, SAMPLE_RATE)
    return root


@pytest.fixture(scope="module")
def issue_example(tmp_path_factory) -> dict:
    """Run the example once in a folder laid out as it expects; return its variables.

    The example tunes xgb for 30 trials; on an 18-utterance corpus most of that time would
    be boosting rounds that change nothing, so each trial's tree count is capped at 20 here
    (the search itself, its storage and the tuned-parameter bookkeeping run unchanged).
    """
    import os

    from sercap.models.tabular import XGBModel

    space = XGBModel.search_space.__func__
    capped = classmethod(lambda cls, trial: {**space(cls, trial), "n_estimators": 20})
    patch = pytest.MonkeyPatch()
    patch.setattr(XGBModel, "search_space", capped)
    base = tmp_path_factory.mktemp("issue11")
    write_emodb_corpus(base / "data" / "emodb")
    voice = make_speaker(2, "F", np.random.default_rng(7))
    sf.write(base / "clip.wav", synthesize(voice, "ang", np.random.default_rng(8)), SAMPLE_RATE)
    namespace: dict = {}
    here = Path.cwd()
    os.chdir(base)
    try:
        exec(compile(ISSUE_EXAMPLE, "issue-11-example", "exec"), namespace)
    finally:
        os.chdir(here)
        patch.undo()
    namespace["base"] = base
    return namespace


@pytest.mark.slow
def test_issue_example_runs_as_written(issue_example) -> None:
    ns = issue_example
    run = ns["run"]
    assert run.run_id.startswith("svm")
    assert 0.0 <= run.ua <= 1.0
    assert isinstance(run.confusion, pl.DataFrame) and isinstance(run.predictions, pl.DataFrame)
    assert run.confusion["label"].to_list() == ["ang", "neu", "sad"]
    assert int(run.confusion.drop("label").sum_horizontal().sum()) == 18
    assert run.predictions.height == 18 and set(run.predictions["fold"]) == {"03", "08", "09"}
    study = ns["study"]
    trials = study.trials  # 30 per study: one per outer fold, then the final one
    assert sorted(study.folds) == ["03", "08", "09"] and study.final is not None
    assert trials.group_by("study").len()["len"].to_list() == [30] * 4 and study.best_params
    table = ns["table"]
    assert isinstance(table, pl.DataFrame) and table["path"].to_list() == ["clip.wav"]
    assert table["error"][0] is None and table["emotion"][0] in ("ang", "neu", "sad")
    assert table.select("ang", "neu", "sad").sum_horizontal()[0] == pytest.approx(1.0)
    feats = ns["feats"]
    assert feats.height == 1 and feats["path"][0] == "clip.wav"


def test_tune_releases_and_reopens_the_callers_warehouse(issue_example) -> None:
    """After tune, the same wh is writable again and every study's parameters are stored."""
    wh = issue_example["wh"]
    n_studies = len(issue_example["study"].folds) + 1  # each outer fold's, and the final one
    assert wh.scalar("SELECT count(*) FROM tuned_params WHERE model = 'xgb'") == n_studies
    tuned = sercap.train(wh, "xgb", tuned=True, params={"n_estimators": 20})
    assert tuned.record["tuned_from"].startswith(issue_example["study"].name)


def test_parameters_set_over_tuned_ones_make_a_configuration_of_their_own(issue_example):
    """`train --tuned --params …` read as plain "xgb nested-tuned" and replaced the real
    nested-tuned run in the report: overrides perhaps tried against the outer folds read
    as the nested-tuned figure."""
    from sercap.compare import bench_table
    from sercap.report import newest_runs

    wh = issue_example["wh"]
    by_hand = sercap.train(wh, "xgb", tuned=True, params={"n_estimators": 20})
    plain = sercap.train(wh, "xgb", tuned=True)
    assert json.loads(by_hand.record["overrides_json"]) == {"n_estimators": 20}
    assert plain.record["overrides_json"] is None
    shown = newest_runs(wh, plain.record["corpus"], plain.record["label_map"])
    assert {by_hand.run_id, plain.run_id} <= set(shown)
    table = bench_table(wh, [by_hand.run_id, plain.run_id])
    names = dict(zip(table["run_id"], table["name"], strict=True))
    assert names == {
        by_hand.run_id: "xgb (n_estimators=20) nested-tuned",
        plain.run_id: "xgb nested-tuned",
    }


def test_a_study_picture_is_never_written_among_the_warehouses_own_files(issue_example) -> None:
    """study.plot(W/"features"/"x.png") wrote into a folder only sercap writes (check then
    named it a foreign file), where write_report and bench refuse such a path."""
    study, base = issue_example["study"], issue_example["base"]
    inside = base / "warehouse" / "features" / "x.png"
    with pytest.raises(sercap.SercapError, match="not written: it is in the warehouse's feat"):
        study.plot(inside)
    assert not inside.exists()


def test_features_row_matches_the_warehouse(issue_example) -> None:
    """sercap.features computes what extraction stored for the same audio, column for column."""
    wh = issue_example["wh"]
    stored = wh.query("SELECT * FROM utterance_features ORDER BY utt_id LIMIT 1")
    path = wh.scalar("SELECT path FROM utterances WHERE utt_id = ?", [stored["utt_id"][0]])
    row = sercap.features(path)
    assert row.columns[1:] == stored.columns[1:]
    np.testing.assert_allclose(
        row.drop("path").to_numpy(), stored.drop("utt_id").to_numpy(), rtol=1e-5, atol=1e-6
    )


def test_predict_reports_unreadable_files_in_the_table(issue_example, tmp_path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    table = sercap.predict(issue_example["wh"], [broken], model="svm")
    assert table["emotion"][0] is None and table["error"][0]


def test_errors_are_a_hierarchy_with_hints() -> None:
    with pytest.raises(sercap.BadParameterError) as caught:
        sercap.predict(sercap.connect(":memory:"), ["x.wav"])  # neither run nor model
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, sercap.SercapError)
    assert caught.value.hint
    with pytest.raises(sercap.NotFoundError):
        sercap.features("no-such-file.wav")
    with pytest.raises(ValueError):
        sercap.features(ROOT / "README.md", feature_set="mel")


def test_what_does_not_exist_is_not_found(issue_example, tmp_path: Path) -> None:
    """A missing corpus folder, corpus or run is a NotFoundError, as the README's table says."""
    wh = issue_example["wh"]
    for call, words in (
        (lambda: sercap.ingest(wh, "emodb", tmp_path / "nowhere"), "no such directory"),
        (lambda: sercap.train(wh, "svm", corpus="nosuch"), "no corpus 'nosuch'"),
        (lambda: sercap.predict(wh, ["x.wav"], model="lgbm"), "no stored run of 'lgbm'"),
        (lambda: sercap.extract(wh, corpus="nosuch"), "no corpus 'nosuch' in the warehouse"),
        (lambda: sercap.train(wh, "svm", tuned=True), "no nested tuning for svm"),
        (lambda: sercap.connect(tmp_path / "nowh", read_only=True), "no warehouse at"),
        (lambda: sercap.ensemble_runs(wh, ["nosuch-a", "nosuch-b"]), "no run 'nosuch-a'"),
        (lambda: sercap.ingest(wh, "manifest", tmp_path / "none.csv"), "no such file"),
        (lambda: sercap.run_demo(tmp_path / "d", tmp_path / "nope"), "no such corpus directory"),
    ):
        with pytest.raises(sercap.NotFoundError, match=words):
            call()
    with pytest.raises(sercap.NotExtractedError, match="no corpus yet"):
        sercap.train(sercap.connect(":memory:"), "svm")


def test_unknown_names_are_bad_parameters(issue_example) -> None:
    wh = issue_example["wh"]
    for call in (
        lambda: sercap.train(wh, "no-such-model"),
        lambda: sercap.ingest(wh, "no-such-kind", "."),
        lambda: sercap.extract(wh, "no-such-set"),
        # a JSON string for params (the CLI's form), an invalid regex, and --columns on a
        # model that reads words: each was a raw ValueError, a bare SercapError or ignored
        lambda: sercap.train(wh, "svm", params='{"C": 1}'),
        lambda: sercap.train(wh, "svm", columns="(unclosed"),
        lambda: sercap.train(wh, "text-lr", columns="^mfcc_"),
        # unknown values and a choice left open were bare SercapErrors
        lambda: sercap.train(wh, "svm", labels="no-such-map"),
        lambda: sercap.train(wh, "svm", columns="^no_such_column"),
        lambda: sercap.train(wh, "svm", target="no-such-target"),
        lambda: sercap.bench(wh, ["svm"], modalities=["video"]),
        # importance_folds=0 was a raw "cannot concat empty list"; -1 dropped the last fold
        lambda: sercap.write_report(wh, importance_folds=0),
        lambda: sercap.write_report(wh, importance_folds=-1),
        # SQLite ignores Optuna's row locks: cluster workers ran one queued trial twice
        lambda: sercap.tune(wh, "svm", cluster="local:2", storage="sqlite:///nowhere.db"),
    ):
        with pytest.raises(sercap.BadParameterError):
            call()


def test_names_given_as_one_string_are_read_as_the_cli_reads_them(issue_example) -> None:
    """bench_cross(wh, "emodb,iemocap") said "no corpus 'e'" (the string's letters)."""
    wh = issue_example["wh"]
    with pytest.raises(sercap.SercapError) as info:
        sercap.bench_cross(wh, "emodb,nope", progress=False)
    assert "'nope'" in str(info.value) and "'e'" not in str(info.value)


def test_service_modules_stay_importable_beside_the_verbs() -> None:
    import sercap.features.lld as lld
    import sercap.tuning as tune_module

    assert callable(sercap.tune) and tune_module is sys.modules["sercap.tuning"]
    assert hasattr(tune_module, "run_study") and hasattr(lld, "compute_frames")
    assert callable(sercap.features) and callable(sercap.predict)
    assert sercap.features is sys.modules["sercap.features"]  # the package, callable


def test_import_sercap_loads_no_heavy_library() -> None:
    code = (
        "import sys, sercap; sercap.BadParameterError; "
        "heavy = [m for m in ('torch', 'librosa', 'duckdb', 'polars', 'numpy', 'optuna') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_tune_lets_other_processes_open_the_warehouse_during_trials(tmp_path, monkeypatch) -> None:
    """While trials run, another process can open the warehouse (the write lock is released);
    afterwards the caller's wh is open again and holds the stored best parameters."""
    import sercap.tuning as tune_module
    from tests.helpers import add_corpus, add_features

    wh = sercap.connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=2))
    database = tmp_path / "wh" / "sercap.duckdb"
    opened = []
    real_run_nested = tune_module.run_nested

    def run_nested_and_open_elsewhere(*args, **kwargs):
        probe = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
        done = subprocess.run([sys.executable, "-c", probe, str(database)], capture_output=True)
        opened.append(done.returncode == 0)
        return real_run_nested(*args, **kwargs)

    monkeypatch.setattr(tune_module, "run_nested", run_nested_and_open_elsewhere)
    study = sercap.tune(wh, "svm", trials=1, inner_folds=2)
    assert opened == [True]
    stored = wh.scalar("SELECT count(*) FROM tuned_params WHERE base_study = ?", [study.name])
    assert stored == len(study.folds) + 1  # every outer fold's study and the final one
    wh.close()


def test_python_m_sercap_runs_the_cli_from_a_clone(tmp_path) -> None:
    """`python -m sercap` runs the CLI package (sercap.cli), and so does the clone's cli.py shim."""
    out = subprocess.run(
        [sys.executable, "-m", "sercap", "--help"],
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("Usage: sercap ") and "predict" in out.stdout


def test_the_root_cli_py_is_a_shim_that_runs_the_package(tmp_path) -> None:
    """`python cli.py` from a clone runs sercap.cli (the README's way), and stays a shim."""
    shim = ROOT / "cli.py"
    assert len(shim.read_text().splitlines()) <= 10 and "from sercap.cli import main" in (
        shim.read_text()
    )
    out = subprocess.run(
        [sys.executable, str(shim), "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: cli.py ") and "predict" in out.stdout


def test_no_api_name_is_shadowed_by_a_module() -> None:
    """`sercap.X` is the API's X only if no module sercap/X.py exists: importing that module
    (any service does) would bind the module over the lazy attribute."""
    import importlib.util

    shadowed = [
        name
        for name in sercap.__all__
        if name != "features" and importlib.util.find_spec(f"sercap.{name}") is not None
    ]
    assert shadowed == []


def test_sql_runs_every_statement_before_it_returns() -> None:
    wh = sercap.connect(":memory:")
    results = sercap.sql(wh, "CREATE TABLE notes (x INT); INSERT INTO notes VALUES (7)", write=True)
    assert [text for text, _ in results] == [
        "CREATE TABLE notes (x INT)",
        "INSERT INTO notes VALUES (7)",
    ]
    assert wh.query("SELECT x FROM notes")["x"].to_list() == [7]  # nothing left to iterate
    streamed = sercap.iter_sql(wh, "SELECT 1 AS a; SELECT 2 AS a")
    assert [frame["a"][0] for _, frame in streamed] == [1, 2]
    wh.close()


def test_sql_preview_gives_each_statements_head_and_row_count() -> None:
    """What `sercap sql` prints as a table: the first rows and the count, with sql's checks
    applied before anything runs (a write in read-only mode runs no statement)."""
    wh = sercap.connect(":memory:")
    try:
        got = list(sercap.sql_preview(wh, "FROM range(7000) t(i); SELECT 2 AS a", 4))
        assert [(p.statement, p.head.height, p.rows) for p in got] == [
            ("FROM range(7000) t(i)", 4, 7000),
            ("SELECT 2 AS a", 1, 1),
        ]
        assert got[0].head["i"].to_list() == [0, 1, 2, 3]
        with pytest.raises(sercap.RefusedError):
            sercap.sql_preview(wh, "CREATE TABLE t (x INT)")
        assert wh.scalar("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'") == 0
        made = list(sercap.sql_preview(wh, "CREATE TABLE t AS FROM range(3)", write=True))
        assert made[0].rows == 1  # DuckDB's count of rows written
        assert list(sercap.sql_preview(wh, "FROM t", 0))[0].rows == 3
        with pytest.raises(sercap.BadParameterError):
            sercap.sql_preview(wh, "SELECT 1", -1)
    finally:
        wh.close()


def test_sql_stream_gives_each_result_a_frame_at_a_time(monkeypatch) -> None:
    """What `sql --format csv|json` and `--out` write: frames of one result in order, an
    empty result as its columns, a statement's unread frames closed by the next (DuckDB
    runs one query at a time), an error met while reading said as sql says it."""
    import polars as pl

    import sercap.store.warehouse as warehouse

    monkeypatch.setattr(warehouse, "STREAM_BYTES", 8 * 3000)  # ~3,000 rows of 1 column
    wh = sercap.connect(":memory:")
    try:
        got = [
            (text, [f.height for f in frames])
            for text, frames in sercap.sql_stream(
                wh, "FROM range(10000) t(i); SELECT 1 AS a WHERE false; FROM range(5)"
            )
        ]
        assert [t for t, _ in got] == [
            "FROM range(10000) t(i)",
            "SELECT 1 AS a WHERE false",
            "FROM range(5)",
        ]
        assert sum(got[0][1]) == 10000 and len(got[0][1]) > 1 and got[1][1] == [0]
        first = next(sercap.sql_stream(wh, "FROM range(10000) t(i)"))[1]
        assert pl.concat(list(first))["i"].to_list() == list(range(10000))
        results = sercap.sql_stream(wh, "FROM range(10000); SELECT 7 AS b")
        _, frames = next(results)
        next(frames)  # one frame read, the rest left: the next statement still runs
        _, second = next(results)
        assert [f["b"].to_list() for f in second] == [[7]]
        late = "SELECT CASE WHEN range = 9000 THEN 'x' ELSE '1' END::INT AS v FROM range(10000)"
        with pytest.raises(sercap.QueryError, match="Could not convert"):
            for _, frames in sercap.sql_stream(wh, late):
                list(frames)
        made = [
            (t, [f.height for f in fr])
            for t, fr in sercap.sql_stream(wh, "CREATE TABLE t AS FROM range(3)", write=True)
        ]
        assert made == [("CREATE TABLE t AS FROM range(3)", [1])]
        with pytest.raises(sercap.RefusedError):
            sercap.sql_stream(wh, "DROP TABLE t")
    finally:
        wh.close()


def test_a_stream_left_part_read_does_not_block_the_warehouse(monkeypatch) -> None:
    """A `break` out of a stream left DuckDB's result open, and every later verb on the
    warehouse raised DuckDB's raw ResourceInUseException. The next query closes it; the
    stream, read on, says so in one line rather than stopping short."""
    import sercap.store.warehouse as warehouse

    monkeypatch.setattr(warehouse, "STREAM_BYTES", 8 * 3000)
    wh = sercap.connect(":memory:")
    try:
        for _, frames in sercap.sql_stream(wh, "FROM range(10000) t(i)"):
            next(frames)
            break
        assert sercap.sql(wh, "SELECT 42 AS x")[0][1]["x"].to_list() == [42]
        with pytest.raises(sercap.SercapError, match="^a query result was read after the wa"):
            next(frames)
        for _, frames in sercap.sql_stream(wh, "FROM range(10000) t(i)"):
            next(frames)
            break
        assert wh.query("SELECT 7 AS b")["b"].to_list() == [7]  # the object's own queries
        assert wh.scalar("SELECT 8") == 8
        assert sercap.runs(wh).height == 0  # and a verb
    finally:
        wh.close()


def test_a_list_of_queries_is_read_as_the_text_form_is() -> None:
    """A list item with two statements returned only the last result, and a typo in a list
    raised DuckDB's ParserException where the text form raises QueryError."""
    wh = sercap.connect(":memory:")
    try:
        results = sercap.sql(wh, ["SELECT 1 AS a; SELECT 2 AS b", "SELECT 3 AS c"])
        assert [frame.columns[0] for _, frame in results] == ["a", "b", "c"]
        for query in ("SELEC 1", ["SELEC 1"]):
            with pytest.raises(sercap.QueryError):
                sercap.sql(wh, query)
    finally:
        wh.close()


@pytest.mark.parametrize("query", ["DELETE FROM notes", ["SELECT 1", "DELETE FROM notes"]])
def test_read_only_sql_refuses_a_write_given_as_text_or_as_a_list(query) -> None:
    # A list of statements used to skip the read-only check and run the DELETE.
    wh = sercap.connect(":memory:")
    wh.execute("CREATE TABLE notes (x INT)")
    wh.execute("INSERT INTO notes VALUES (7)")
    for call in (sercap.sql, sercap.iter_sql):
        with pytest.raises(sercap.errors.RefusedError, match="DELETE FROM notes"):
            call(wh, query)
    assert wh.query("SELECT count(*) AS n FROM notes")["n"][0] == 1
    wh.close()


def test_read_only_sql_can_be_called_again_and_fences_only_read_only_warehouses(tmp_path) -> None:
    path = tmp_path / "w"
    wh = sercap.connect(path)
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    query = f"SELECT * FROM read_csv('{outside}')"
    # a writable connection: checked for writes, not locked (later work would break)
    assert sercap.sql(wh, query)[0][1]["a"].to_list() == [1]
    assert sercap.sql(wh, "SELECT 1 AS n")[0][1]["n"].to_list() == [1]
    wh.execute("CREATE TABLE notes (x INT)")
    wh.close()
    ro = sercap.connect(path, read_only=True)
    for _ in range(2):  # the fence is set once and found in place the second time
        assert sercap.sql(ro, "SELECT count(*) AS n FROM notes")[0][1]["n"].to_list() == [0]
    with pytest.raises(sercap.errors.RefusedError):
        sercap.sql(ro, query)
    with pytest.raises(sercap.errors.RefusedError, match="open read-only"):
        sercap.sql(ro, "CREATE TABLE more (x INT)", write=True)
    ro.close()


def test_features_refuses_what_extraction_refuses_naming_the_file(tmp_path) -> None:
    sr = 16000
    cases = {
        "silent.wav": (np.zeros(sr, np.float32), "silent"),
        "tiny.wav": (np.full(100, 0.1, np.float32), "shorter than one analysis window"),
        "header.wav": (np.zeros(0, np.float32), "empty audio"),
    }
    for name, (y, reason) in cases.items():
        path = tmp_path / name
        sf.write(path, y, sr, subtype="PCM_16")
        with pytest.raises(sercap.AudioError, match=f"^{path}: {reason}"):
            sercap.features(path)
    loud = tmp_path / "loud.wav"
    sf.write(loud, np.full(sr, 5000.0, np.float32), sr, subtype="FLOAT")
    (tmp_path / "garbage.wav").write_bytes(b"not audio at all")
    for path, reason in ((loud, "samples exceed"), (tmp_path / "garbage.wav", "unreadable")):
        with pytest.raises(sercap.SercapError, match=reason) as err:
            sercap.features(path)
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    with pytest.raises(sercap.AudioError, match="a directory"):
        sercap.features(tmp_path)
    with pytest.raises(sercap.NotFoundError):
        sercap.features(tmp_path / "missing.wav")


def test_writing_verbs_refuse_a_read_only_warehouse_before_any_work(tmp_path) -> None:
    """`ingest` on a read-only warehouse raised DuckDB's "Current transaction is aborted"
    (hiding the real error); `train` ran its whole cross-validation, then failed on INSERT."""
    from tests.helpers import add_corpus, add_features

    with sercap.connect(tmp_path / "wh") as wh:
        add_features(wh, add_corpus(wh, n_speakers=3, per_class=2))
    with sercap.connect(tmp_path / "wh", read_only=True) as wh:
        for call in (
            lambda: sercap.ingest(wh, "emodb", tmp_path),
            lambda: sercap.train(wh, "svm"),
            lambda: sercap.bench(wh, ["svm"]),
            lambda: sercap.ensemble_runs(wh, ["a", "b"]),
            lambda: sercap.tune(wh, "svm", trials=1),
        ):
            with pytest.raises(sercap.SercapError, match="open read-only"):
                call()
        assert wh.scalar("SELECT count(*) FROM runs") == 0


def test_train_refuses_a_warehouse_with_a_damaged_part(tmp_path) -> None:
    """The CLI refused; `sercap.train` trained on the utterances the other parts hold (468 of
    535 on EmoDB) and stored the run."""
    from tests.helpers import add_corpus, add_features

    with sercap.connect(tmp_path / "wh") as wh:
        add_features(wh, add_corpus(wh, n_speakers=3, per_class=2))
        add_features(wh, add_corpus(wh, name="more", n_speakers=2, per_class=2), corpus="more")
    next((tmp_path / "wh" / "features").rglob("corpus=more/*.parquet")).unlink()
    with sercap.connect(tmp_path / "wh") as wh:
        with pytest.raises(sercap.SercapError, match=r"missing, damaged or unregistered"):
            sercap.train(wh, "svm", corpus="toy")
        assert wh.scalar("SELECT count(*) FROM runs") == 0


def test_api_errors_are_of_the_documented_kind(tmp_path) -> None:
    """From a notebook review: raw DuckDB, numpy and OS errors, and plain SercapErrors where
    the README names a kind."""
    from tests.helpers import add_corpus, add_features

    wh = sercap.connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=2))
    for query in ("SELECT * FROM nope", "SELEC 1", "SELECT 'a'::INT"):
        with pytest.raises(sercap.QueryError):
            sercap.sql(wh, query)
        with pytest.raises(sercap.QueryError):
            list(sercap.iter_sql(wh, query))
    # an unknown table or column says where to look (it was DuckDB's line alone)
    with pytest.raises(sercap.QueryError, match="Catalog Error") as table:
        sercap.sql(wh, "SELECT * FROM nope")
    assert table.value.hint.endswith('list the tables and views with "SHOW TABLES"')
    with pytest.raises(sercap.QueryError, match="Binder Error") as column:
        sercap.sql(wh, "SELECT nope FROM runs")
    assert "DESCRIBE table_name" in column.value.hint
    with pytest.raises(sercap.NotExtractedError, match="has not been extracted"):
        sercap.train(wh, "svm", feature_set="pyin")
    with pytest.raises(sercap.NotFoundError, match="no study"):
        sercap.load_study(wh, "lgbm")
    for limit in (0, -1):
        with pytest.raises(sercap.BadParameterError, match="limit"):
            sercap.extract(wh, limit=limit)
    with pytest.raises(sercap.BadParameterError, match="chunk_size"):
        sercap.extract(wh, chunk_size=0)
    a, b = sercap.train(wh, "svm"), sercap.train(wh, "rf", params={"n_estimators": 5})
    for bad in ({"level": 1.5}, {"n_boot": 0}):
        with pytest.raises(sercap.BadParameterError):
            sercap.compare_runs(wh, a.run_id, b.run_id, **bad)
    with pytest.raises(sercap.SercapError, match="cannot create the folder for the report"):
        sercap.write_report(wh, tmp_path / "wh" / "sercap.duckdb" / "x", importance=False)
    # the runs train returns are what a notebook passes on (DuckDB's NotImplementedException)
    both = sercap.ensemble_runs(wh, [a, b])
    assert both.model == "ensemble" and both == sercap.get_run(wh, both.run_id)
    assert sercap.compare_runs(wh, a, b, n_boot=100).ua.difference == pytest.approx(a.ua - b.ua)
    assert sercap.fairness(wh, a).height > 0
    assert sercap.get_run(wh, a) == a and a != b and len({a, sercap.get_run(wh, a.run_id)}) == 1
    for bad, words in (
        ([1, 2], "run_ids=1"),  # DuckDB's multi-line BinderException
        (None, "run_ids=None"),  # TypeError: 'NoneType' object is not iterable
    ):
        with pytest.raises(sercap.BadParameterError, match=words):
            sercap.ensemble_runs(wh, bad)
    with pytest.raises(sercap.BadParameterError, match="weights"):
        sercap.ensemble_runs(wh, [a, b], weights=[True, 1])  # was taken as weight 1
    wh.close()


def test_a_rating_run_is_not_called_a_run_without_predictions(tmp_path) -> None:
    """fairness/compare on a regression run said "has no stored predictions; re-run it",
    which re-running cannot help."""
    corpus = sercap.synth(tmp_path / "c", sessions=2, per_speaker=6)
    wh = sercap.connect(":memory:")
    sercap.ingest(wh, "iemocap", corpus.root)
    sercap.extract(wh)
    reg = sercap.train(wh, "svm", target="valence")
    with pytest.raises(sercap.BadParameterError, match="predicts a rating"):
        sercap.fairness(wh, reg.run_id)
    wh.close()


def test_report_tables_escape_a_pipe_in_a_column_pattern(tmp_path) -> None:
    """`--columns '^(mfcc|logmel)_'` (the README's own example) split its report rows into
    more cells than their headers."""
    from tests.helpers import add_corpus, add_features

    wh = sercap.connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=2))
    sercap.train(wh, "svm", columns="^(f0|mfcc)_")
    out = sercap.write_report(wh, tmp_path / "report", importance=False)
    text = Path(out.written["report"] if hasattr(out, "written") else out).read_text()
    checked, header, previous = 0, "", ""
    for line in text.splitlines():
        if line.startswith("|") and not previous.startswith("|"):
            header = line  # a table starts
        if line.startswith("|") and "columns /" in line:
            assert line.replace("\\|", "").count("|") == header.count("|"), (header, line)
            checked += 1
        previous = line
    assert checked >= 3, text  # the results, fairness and coverage tables


def test_summaries_print_as_the_cli_does_and_bad_argument_types_are_one_line(tmp_path) -> None:
    """IngestSummary's repr held two whole DataFrames and neither summary printed what the CLI
    prints; seed="x" and weights="2,1" were raw ValueErrors."""
    corpus = sercap.synth(tmp_path / "c", sessions=2, per_speaker=4)
    wh = sercap.connect(":memory:")
    ingested = sercap.ingest(wh, "iemocap", corpus.root)
    assert str(ingested).startswith("corpus iemocap (iemocap) from ")
    assert "DataFrame" not in repr(ingested) and "shape:" not in repr(ingested)
    extracted = sercap.extract(wh)
    assert str(extracted).startswith("default (") and "16 extracted" in str(extracted)
    assert extracted._repr_markdown_().startswith("```\ndefault (")
    with pytest.raises(sercap.BadParameterError, match="seed='x'"):
        sercap.train(wh, "svm", seed="x")
    with pytest.raises(sercap.BadParameterError, match="weights='2,1'"):
        sercap.ensemble_runs(wh, ["a", "b"], weights="2,1")
    wh.close()


def test_a_closed_or_misused_warehouse_is_one_line_in_a_notebook(tmp_path) -> None:
    """Across notebook cells: a closed warehouse, the same folder opened both ways, a path
    where a warehouse goes. Each was a DuckDB or Python error from deep inside a verb."""
    wh = sercap.connect(":memory:")
    root = wh.root
    wh.close()
    wh.close()  # again is fine
    assert not root.exists()  # an in-memory catalog's parts folder goes with it
    kept = sercap.connect(":memory:")
    report = kept.root / "reports" / "r.md"  # what a caller was handed stays
    report.parent.mkdir(parents=True)
    report.write_text("kept")
    (kept.root / "features").mkdir()
    kept.close()
    assert report.read_text() == "kept" and not (kept.root / "features").exists()
    with pytest.raises(sercap.SercapError, match=r"closed; its catalog was in memory") as info:
        sercap.runs(wh)
    assert "\n" not in str(info.value)
    path = tmp_path / "w"
    writable = sercap.connect(path)
    with pytest.raises(sercap.SercapError, match="already has the warehouse open writable"):
        sercap.connect(path, read_only=True)
    writable.close()
    with pytest.raises(
        sercap.SercapError, match=rf"closed; open it again with sercap.connect\('{path}'\)"
    ):
        sercap.info(writable)
    reader = sercap.connect(path, read_only=True)
    reader.close()
    with pytest.raises(sercap.SercapError, match=rf"connect\('{path}', read_only=True\)$"):
        sercap.info(reader)
    with pytest.raises(
        sercap.BadParameterError, match="sercap.train: the first argument is an open"
    ):
        sercap.train(str(path), "svm")
    assert sercap.feature_sets(None).height == sercap.feature_sets().height  # None is allowed


def test_demo_refuses_bad_models_and_sessions_before_any_work(tmp_path) -> None:
    with pytest.raises(sercap.SercapError, match="unknown model 'nope'"):
        sercap.run_demo(tmp_path / "d", models="nope", progress=False)
    with pytest.raises(sercap.BadParameterError, match="sessions 1: give 2 to 9"):
        sercap.run_demo(tmp_path / "d", sessions=1, progress=False)
    # per_speaker 0 was a ValueError traceback from the synthesiser
    with pytest.raises(sercap.BadParameterError, match="per_speaker=0; give a whole"):
        sercap.run_demo(tmp_path / "d", per_speaker=0, progress=False)
    assert not (tmp_path / "d").exists()  # nothing synthesised, ingested or extracted
    from tests.test_cli import run

    cli = run("demo", "--per-speaker", "0", "--dir", tmp_path / "d")
    assert cli.exit_code == 2 and "'--per-speaker': 0 is not in the range x>=1" in cli.output
    # --kind without --corpus-dir, and --sessions with it, were dropped without a word (the
    # synthetic demo ran for minutes, or the real corpus without the size asked for)
    with pytest.raises(sercap.BadParameterError, match="--kind / kind= is the kind of"):
        sercap.run_demo(tmp_path / "d", kind="emodb", progress=False)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for given in ({"sessions": 3}, {"per_speaker": 10}):
        with pytest.raises(sercap.BadParameterError, match="shapes the synthetic corpus"):
            sercap.run_demo(tmp_path / "d", corpus, progress=False, **given)
    cli = run("demo", "--kind", "emodb", "--dir", tmp_path / "d")
    assert cli.exit_code == 1 and "--kind / kind= is the kind of" in cli.output
    assert not (tmp_path / "d").exists()


def test_a_name_given_where_names_go_is_one_name() -> None:
    """ensemble_runs(wh, "lgbm-2026…") said "no run 'l'": a string was read letter by letter."""
    wh = sercap.connect(":memory:")
    with pytest.raises(sercap.SercapError, match="an ensemble needs at least two runs"):
        sercap.ensemble_runs(wh, "lgbm-20261127")
    wh.close()


def test_help_of_the_callable_features_package_documents_the_verb() -> None:
    import pydoc

    text = pydoc.render_doc(sercap.features)
    assert "sercap.features(path, feature_set='default')" in text and "Parameters" in text


def test_sql_results_of_types_polars_cannot_hold_are_text() -> None:
    """An INTERVAL (max(started_at) - min(started_at)) or a UNION was polars' ComputeError
    traceback in every format, and nested in a struct or list a Rust panic; each is shown as
    DuckDB's text, and a statement that writes still runs once."""
    with sercap.connect(":memory:") as wh:
        [(_, frame)] = sercap.sql(
            wh,
            "SELECT INTERVAL 3 DAY AS i, union_value(k := 1) AS u, 2 AS n, "
            "{'a': INTERVAL 1 DAY} AS s, [union_value(k := 1)] AS l",
        )
        assert frame.rows() == [("3 days", "1", 2, "{'a': 1 day}", "[1]")]
        sercap.sql(wh, "CREATE TABLE t (a INT)", write=True)
        [(_, ran)] = sercap.sql(
            wh, "INSERT INTO t VALUES (1) RETURNING INTERVAL 1 DAY AS d", write=True
        )
        assert ran.rows() == [("1 day",)]
        assert sercap.sql(wh, "SELECT count(*) AS n FROM t")[0][1].item() == 1
        # a TIMETZ lost its offset, BIT and BIGNUM came as bytes (csv wrote 04f5 for '0101')
        [(_, shown)] = sercap.sql(
            wh, "SELECT '10:00:00+02'::TIMETZ AS z, '0101'::BIT AS b, 123::VARINT AS v"
        )
        assert shown.rows() == [("10:00:00+02", "0101", "123")]


def test_a_join_of_tables_sharing_a_column_name_is_shown(tmp_path) -> None:
    """`SELECT * FROM utterances u JOIN labels l ON u.utt_id = l.utt_id` has utt_id twice,
    which polars refuses: a DuplicateError traceback in every format."""
    from click.testing import CliRunner

    from cli import main

    with sercap.connect(tmp_path / "wh") as wh:
        sercap.sql(wh, "CREATE TABLE a AS SELECT 1 AS id, 2 AS x", write=True)
        sercap.sql(wh, "CREATE TABLE b AS SELECT 1 AS id, 30 AS id_2, 4 AS y", write=True)
        [(_, frame)] = sercap.sql(wh, "SELECT * FROM a JOIN b ON a.id = b.id")
        assert frame.columns == ["id", "x", "id_3", "id_2", "y"]
        assert frame.rows() == [(1, 2, 1, 30, 4)]
    query = "SELECT * FROM a JOIN b ON a.id = b.id"
    for extra in ([], ["--format", "csv"]):
        out = CliRunner().invoke(main, ["-w", str(tmp_path / "wh"), "sql", query, *extra])
        assert out.exit_code == 0 and "id_3" in out.output, out.output


def test_predict_names_a_file_name_that_is_not_utf8_in_the_table(issue_example, tmp_path) -> None:
    """polars (and libsndfile) cannot take such a name: the table was a traceback."""
    import os
    import shutil

    good = tmp_path / "good.wav"
    shutil.copy(issue_example["base"] / "clip.wav", good)
    odd = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.wav"))
    shutil.copy(good, odd)
    table = sercap.predict(issue_example["wh"], [odd, good], model="svm")
    assert table["path"][0].endswith("caf\\xe9.wav") and "not valid UTF-8" in table["error"][0]
    assert table["emotion"][1] is not None


def test_a_bad_jobs_argument_is_not_taken_for_a_damaged_model(issue_example) -> None:
    """`predict --jobs -5` said the stored final model "cannot be read … fitting it again",
    refitted it, then failed on the same argument."""
    notes: list[str] = []
    with pytest.raises(sercap.BadParameterError, match="jobs=-5; give a whole number"):
        sercap.predict(
            issue_example["wh"], [issue_example["base"] / "clip.wav"], model="svm", jobs=-5,
            say=notes.append,
        )  # fmt: skip
    assert not [n for n in notes if "cannot be read" in n], notes
    from tests.test_cli import run

    for option, value in (("--jobs", "0"), ("--seed", "-1")):
        cli = run("train", "svm", option, value)
        assert cli.exit_code == 2 and f"Invalid value for '{option}'" in cli.output


def test_dir_lists_the_public_api_and_nothing_else() -> None:
    """`dir(sercap)` showed Any, annotations and importlib beside the API (tab completion)."""
    public = [n for n in dir(sercap) if not n.startswith("_")]
    assert sorted(public) == sorted(n for n in sercap.__all__ if not n.startswith("_"))
    # every name sercap.api exports is sercap's too (prediction_table was api's alone)
    assert set(sercap.api.__all__) <= set(sercap.__all__)


def test_sercap_api_is_reachable_from_a_fresh_import() -> None:
    """docs/python.md says `help(sercap.api.train)`; in a fresh session `sercap.api` was an
    AttributeError until some verb had imported it."""
    import subprocess
    import sys

    code = "import sercap; print(sercap.api.train.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "train", out.stderr


def test_demo_on_a_one_speaker_corpus_stops_before_extracting(tmp_path) -> None:
    """`demo --corpus-dir` on one speaker's recordings extracted both sets (minutes on a
    real corpus) before refusing with "single fold"."""
    corpus = write_emodb_corpus(tmp_path / "emodb", speakers=("03",))
    with pytest.raises(sercap.SercapError, match="single fold"):
        sercap.run_demo(tmp_path / "d", corpus, progress=False)
    with sercap.connect(tmp_path / "d" / "warehouse", read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM extractions") == 0


def test_connect_without_a_path_resolves_the_default_now(tmp_path, monkeypatch) -> None:
    """A notebook that opens ``./warehouse`` (no path) and then changes folder keeps one
    warehouse: the default path is made absolute at connect, as an explicit one is."""
    import sercap

    monkeypatch.delenv("SERCAP_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    wh = sercap.connect()
    try:
        assert wh.root == tmp_path / "warehouse" and wh.root.is_absolute()
    finally:
        wh.close()
    monkeypatch.setenv("SERCAP_WAREHOUSE", "elsewhere")
    wh = sercap.connect()
    try:
        assert wh.root == tmp_path / "elsewhere"
    finally:
        wh.close()


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda wh: sercap.extract(wh, jobs="2"), "jobs='2'"),
        (lambda wh: sercap.extract(wh, limit=2.5), "limit=2.5"),  # was silently accepted
        (lambda wh: sercap.images(wh, chunk_size=0), "chunk_size=0"),
        (lambda wh: sercap.train(wh, "svm", jobs="2"), "jobs='2'"),  # was silently accepted
        (lambda wh: sercap.train(wh, "svm", seed=-1), "seed=-1"),  # sklearn's refusal before
        (lambda wh: sercap.train(wh, "svm", seed=2**32), "seed=4294967296"),
        (lambda wh: sercap.tune(wh, "svm", trials="3"), "trials='3'"),
        (lambda wh: sercap.tune(wh, "svm", inner_folds=1), "inner_folds=1"),
        (lambda wh: sercap.bench_sql(wh, copies=0), "copies=0"),  # was run as 1
        (lambda wh: sercap.bench_sql(wh, threads=0), "threads=0"),  # a child's traceback
        (lambda wh: sercap.compare_runs(wh, "a", "b", n_boot=True), "n_boot=True"),
        (lambda wh: sercap.synth(__file__ + "/x"), "Not a directory"),  # NotADirectoryError
    ],
)
def test_counts_and_seeds_are_checked_as_the_command_line_checks_them(call, words) -> None:
    """Whole numbers in the ranges of the CLI's IntRange options, else one BadParameterError
    naming the argument (a TypeError, a child process' traceback or silence before)."""
    wh = sercap.connect(":memory:")
    try:
        with pytest.raises(sercap.SercapError, match=re.escape(words)):
            call(wh)
    finally:
        wh.close()


def test_extract_and_images_honour_sercap_cluster_as_train_does(monkeypatch, tmp_path) -> None:
    """`SERCAP_CLUSTER` was read by the CLI's extract and by sercap.train, but
    sercap.extract and sercap.images ran in process: the same setting, two behaviours."""
    corpus = sercap.synth(tmp_path / "c", sessions=2, per_speaker=1)
    wh = sercap.connect(":memory:")
    try:
        sercap.ingest(wh, "iemocap", corpus.root)
        monkeypatch.setenv("SERCAP_CLUSTER", "foo")
        for call in (lambda: sercap.extract(wh, limit=1), lambda: sercap.images(wh, limit=1)):
            with pytest.raises(sercap.SercapError, match="cluster 'foo'"):
                call()
    finally:
        wh.close()


def test_text_results_display_as_text_in_a_notebook() -> None:
    """info() and describe_feature_set() showed as a quoted string full of \\n, and a
    CheckResult as a dataclass dump."""
    wh = sercap.connect(":memory:")
    try:
        shown = repr(sercap.info(wh))
        assert "\\n" not in shown and not shown.startswith("'") and "no corpus yet" in shown
        assert repr(sercap.describe_feature_set(wh, "default")).startswith("default")
        result = sercap.verify(wh)
        assert str(result) == "no problems: 0 part(s) verified"
        assert result._repr_markdown_().startswith("```\nno problems")
        assert isinstance(sercap.info(wh), str)  # still a string for code that wants one
    finally:
        wh.close()


def test_arguments_of_the_wrong_type_are_one_line_each(issue_example, tmp_path: Path) -> None:
    wh = issue_example["wh"]
    run = sercap.train(wh, "svm")
    for call, words in (
        (lambda: sercap.tune(wh, "svm", params=[1, 2]), "params must be a dict"),
        (lambda: sercap.predict(wh, ["x.wav"], run=run.run_id, abstain="0.5"), "abstain='0.5'"),
        (lambda: sercap.predict(wh, None, run=run.run_id), "paths=None"),
        (lambda: sercap.sql(wh, None), "query=None"),
        (lambda: sercap.sql(wh, 5), "query=5"),
        (lambda: sercap.get_run(wh, 5), "run_id=5"),
        (lambda: sercap.train(wh, "svm", feature_set=5), "feature_set=5; give a string"),
        (lambda: sercap.train(wh, "svm", columns=5), "columns=5; give a string"),
        (lambda: sercap.compare_runs(wh, run.run_id, run.run_id, level="0.9"), "level='0.9'"),
    ):
        with pytest.raises(sercap.SercapError, match=words):
            call()


def test_paths_expand_the_home_folder_and_create_false_refuses_a_new_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    wh = sercap.connect("~/wh")
    assert wh.root == tmp_path / "home" / "wh" and not (tmp_path / "~").exists()
    wh.close()
    assert sercap.warehouse_exists("~/wh")
    sercap.connect("~/wh", create=False).close()  # exists now
    with pytest.raises(sercap.NotFoundError, match="no warehouse at .*typo"):
        sercap.connect(tmp_path / "typo", create=False)
    assert not (tmp_path / "typo").exists()


def test_a_mistyped_corpus_in_predict_is_named_as_such(issue_example) -> None:
    wh = issue_example["wh"]
    sercap.train(wh, "svm")
    with pytest.raises(sercap.NotFoundError, match="no corpus 'nosuch' in the warehouse"):
        sercap.predict(wh, ["x.wav"], model="svm", corpus="nosuch")


def test_tuning_gives_back_the_callers_optuna_verbosity(issue_example) -> None:
    import optuna

    wh = issue_example["wh"]
    fold = sercap.train(wh, "svm").predictions["fold"][0]
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        tuned = sercap.tune(wh, "svm", trials=1, folds=[fold], study="verbosity")
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        # folds named: only theirs (processes sharing the folds each added to the final one)
        assert tuned.final is None and list(tuned.folds) == [fold]
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_transaction_the_statements_leave_open_is_rolled_back_with_one_line() -> None:
    """A BEGIN without its COMMIT returned normally and left the transaction open: the next
    write said DuckDB's 'cannot start a transaction within a transaction', train fitted and
    then raised it, and closing the warehouse dropped the table silently."""
    with sercap.connect(":memory:") as wh:
        with pytest.raises(sercap.QueryError, match="^the statements began a transaction an"):
            sercap.sql(wh, "BEGIN; CREATE TABLE notes (x INT)", write=True)
        assert not wh.has_relation("notes")
        # a statement failing inside the user's transaction: rolled back too, and said
        with pytest.raises(sercap.QueryError, match="transaction it was in was rolled back"):
            sercap.sql(wh, "BEGIN; CREATE TABLE a (x INT); INSERT INTO a VALUES ('x')", write=True)
        assert not wh.has_relation("a")
        sercap.sql(wh, "CREATE TABLE b (x INT)", write=True)
        sercap.sql(wh, "BEGIN; INSERT INTO b VALUES (1); COMMIT; FROM b", write=True)
        sercap.sql(wh, "INSERT INTO b VALUES (2); INSERT INTO b VALUES (3)", write=True)
        assert sercap.sql(wh, "SELECT sum(x) AS s FROM b")[0][1]["s"][0] == 6


def test_write_sql_stopped_early_or_failing_at_commit_leaves_no_transaction_open(
    monkeypatch,
) -> None:
    """A caller that took one result of several write statements left a BEGIN open: the
    next statements vanished with it, and ingest failed with DuckDB's own error. A COMMIT
    that fails was DuckDB's 'cannot rollback - no transaction is active'."""
    with sercap.connect(":memory:") as wh:
        results = sercap.iter_sql(
            wh, "CREATE TABLE g (x INT); INSERT INTO g VALUES (1)", write=True
        )
        next(results)  # one result taken, the iterator left
        sercap.sql(wh, "CREATE TABLE h (x INT); INSERT INTO h VALUES (2)", write=True)
        del results
        both = "SELECT (SELECT count(*) FROM g) + (SELECT count(*) FROM h) AS n"
        assert sercap.sql(wh, both)[0][1]["n"][0] == 2
        real = wh.execute

        def failing_commit(sql, params=None):
            if sql == "COMMIT":
                real("ROLLBACK")
                raise duckdb.TransactionException("TransactionContext Error: conflict")
            return real(sql, params)

        monkeypatch.setattr(wh, "execute", failing_commit)
        with pytest.raises(sercap.QueryError, match="conflict; none of the 2 statements"):
            sercap.sql(wh, "CREATE TABLE k (x INT); INSERT INTO k VALUES (1)", write=True)
        monkeypatch.undo()
        assert not wh.has_relation("k")


def test_plot_image_and_bench_sql_say_what_to_give_and_what_to_run(tmp_path) -> None:
    """plot_image("x", …) was an AttributeError from inside the drawing; bench_sql on a set
    not extracted said to run `sercap extract`, which extracts the default set."""
    with pytest.raises(sercap.BadParameterError, match="give a stored image"):
        sercap.plot_image("x", tmp_path / "o.png")
    wh = sercap.connect(":memory:")
    with pytest.raises(sercap.NotExtractedError, match="`sercap extract --feature-set pyin`"):
        sercap.bench_sql(wh, feature_set="pyin")
    wh.close()


def test_a_second_connection_of_the_same_warehouse_sees_what_the_other_stored(
    tmp_path, monkeypatch
) -> None:
    """A notebook's connect cell run twice: what the second object extracted was not in the
    first one's views, and a verb on the first fell through to the stored view's relative
    paths ("No files found that match the pattern features/…", DuckDB's raw IOException)."""
    from tests.helpers import add_corpus, add_features

    wh1 = sercap.connect(tmp_path / "wh")
    wh2 = sercap.connect(tmp_path / "wh")
    monkeypatch.chdir(tmp_path.parent)  # not the warehouse: relative paths find nothing
    try:
        utterances = add_corpus(wh2, n_speakers=3, per_class=2)
        add_features(wh2, utterances, name="other", digest="def456")
        frame = sercap.sql(wh1, "SELECT count(*) AS n FROM features_other")[0][1]
        assert frame["n"].item() == utterances.height
        assert sercap.dataset(wh1, feature_set="other").X.shape[0] == utterances.height
    finally:
        wh1.close()
        wh2.close()


def test_show_tables_lists_each_name_once(tmp_path) -> None:
    """A warehouse's views are stored in the catalog and made again as this connection's
    temporary views of the same names: SHOW TABLES listed every one of them twice."""
    from tests.helpers import add_corpus, add_features

    with sercap.connect(tmp_path / "wh") as wh:
        add_features(wh, add_corpus(wh, n_speakers=2, per_class=1), name="other", digest="d1")
    with sercap.connect(tmp_path / "wh", read_only=True) as wh:
        names = sercap.sql(wh, "show tables;")[0][1]["name"].to_list()
        assert "features_other" in names and "utterances" in names
        assert len(names) == len(set(names)) and names == sorted(names)


def test_columns_for_a_model_that_reads_no_functionals_is_one_line() -> None:
    """`train cnn --columns '^mfcc'` trained on the whole images and stored the run as a plain
    cnn run: the pattern was dropped without a word."""
    wh = sercap.connect(":memory:")
    for model in ("cnn", "resnet18", "text-lr"):
        with pytest.raises(sercap.BadParameterError, match=f"does not apply to {model}: it reads"):
            sercap.train(wh, model, columns="^mfcc", progress=False)
    wh.close()


def test_a_tuning_that_cannot_reopen_the_warehouse_says_how_to_record_it(
    tmp_path: Path, monkeypatch
) -> None:
    """tune closes the caller's wh while trials run; when another process took the write
    lock meanwhile, the reopen raised WarehouseBusyError, nothing was recorded, and the
    advice that followed ("run sercap tune … first") ran every trial again."""
    from sercap.errors import WarehouseBusyError
    from sercap.store import connect
    from tests.helpers import add_corpus, add_features

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=4, per_class=3))

    waits = []

    def busy(*args, **kwargs):
        waits.append(kwargs.get("wait_s"))
        raise WarehouseBusyError("in use by another process (PID 1)")

    monkeypatch.setattr("sercap.store.warehouse.connect", busy)  # (the reopen after trials)
    with pytest.raises(sercap.SercapError) as caught:
        sercap.tune(wh, "svm", trials=2, progress=False)
    monkeypatch.undo()
    said = str(caught.value)
    assert "is done, but the warehouse could not be opened again" in said, said
    assert "--top-up / top_up=True: it records them without new trials" in said, said
    # the trials are done: storing them waits for another writer as long as train's (it
    # waited a minute, and a tune that ended during an extract failed to store)
    assert waits == [3600.0]
    wh = connect(tmp_path / "wh")
    assert wh.scalar("SELECT count(*) FROM tuned_params") == 0
    study = sercap.tune(wh, "svm", trials=2, top_up=True, progress=False)
    assert wh.scalar("SELECT count(*) FROM tuned_params") == len(study.folds) + 1
    trials = sercap.load_study(wh, "svm").trials
    assert trials.group_by("study").len()["len"].to_list() == [2] * (len(study.folds) + 1)
    wh.close()


def test_bench_refuses_all_models_with_named_models_or_modalities(tmp_path) -> None:
    """`bench --all svm` fitted every model (svm was dropped without a word), and
    `bench svm --modalities audio --all` fitted svm alone (--all was)."""
    from tests.helpers import add_corpus, add_features
    from tests.test_cli import run

    with sercap.connect(tmp_path / "wh") as wh:
        add_features(wh, add_corpus(wh, n_speakers=3, per_class=2))
        with pytest.raises(sercap.BadParameterError, match="naming svm too is one choice"):
            sercap.bench(wh, ["svm"], all_models=True, progress=False)
        with pytest.raises(sercap.BadParameterError, match="--modalities / modalities= each"):
            sercap.bench(wh, [], all_models=True, modalities=["audio"], progress=False)
        assert wh.scalar("SELECT count(*) FROM runs") == 0
    cli = run("-w", tmp_path / "wh", "bench", "--all", "svm")
    assert cli.exit_code == 1 and "naming svm too is one choice" in cli.output, cli.output


def test_train_refuses_inputs_the_model_would_not_read(tmp_path) -> None:
    """`train svm --image-set whatever --device nosuch` exited 0 having used neither (as
    --columns for an image model was, before it was refused)."""
    wh = sercap.connect(":memory:")
    cases = [
        ({"model": "svm", "image_set": "mel"}, "--image-set / image_set= does not apply to svm"),
        ({"model": "cnn", "feature_set": "default"}, "does not apply to cnn: it reads spectrogr"),
        ({"model": "text-lr", "feature_set": "default"}, "does not apply to text-lr: it reads tr"),
        ({"model": "svm", "device": "cpu"}, "--device / device= does not apply to svm"),
        ({"model": "lgbm", "device": "cuda", "target": "valence"}, "does not apply to lgbm"),
    ]
    for given, said in cases:
        with pytest.raises(sercap.BadParameterError, match=re.escape(said)):
            sercap.train(wh, progress=False, **given)
    wh.close()
    from tests.test_cli import run

    sercap.connect(tmp_path / "wh").close()
    cli = run("-w", tmp_path / "wh", "train", "svm", "--image-set", "mel")
    assert cli.exit_code != 0 and "does not apply to svm" in cli.output, cli.output


def test_runs_gives_the_runs_figures_unrounded(wh) -> None:
    """sercap.runs(wh) rounded UA, WA, macro-F1 and a rating run's CCC, r and MAE to four
    decimals: a DataFrame to rank and join held display figures (runs tied below 5e-5, and
    `== run.ua` never held). Tables still print four digits."""
    from sercap.format import format_table
    from tests.helpers import add_corpus, add_features
    from tests.test_regression import add_ratings

    utts = add_corpus(wh, n_speakers=3, per_class=3)
    add_features(wh, utts)
    add_ratings(wh, utts, "activation")
    run = sercap.train(wh, "svm", progress=False)
    rating = sercap.train(wh, "svm", target="activation", progress=False)
    listed = sercap.runs(wh)
    row = listed.filter(pl.col("run_id") == run.run_id).row(0, named=True)
    assert (row["ua"], row["wa"], row["macro_f1"]) == (run.ua, run.wa, run.macro_f1)
    stored = wh.query("SELECT ccc, mae FROM runs WHERE run_id = ?", [rating.run_id]).row(0)
    rated = listed.filter(pl.col("run_id") == rating.run_id).row(0, named=True)
    assert (rated["ccc"], rated["mae"]) == stored
    shown = format_table(listed.select("ua", "ccc")).splitlines()[2:-1]  # tables: 4 digits
    assert shown and all(len(cell.split(".")[-1]) <= 4 for r in shown for cell in r.split())


def test_type_checkers_see_every_public_name() -> None:
    """`import sercap` serves its names through a module __getattr__, which type checkers
    read as Any: the verbs' annotations reached no IDE. The names imported for them under
    TYPE_CHECKING must be exactly the public ones (a verb added to one list only would be
    Any again, or a name type checkers see that does not exist)."""
    import ast

    tree = ast.parse((ROOT / "sercap" / "__init__.py").read_text())
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
    )
    seen = {alias.name for node in guarded.body for alias in node.names}
    assert seen == set(sercap._API) | set(sercap._ERRORS) | set(sercap._TYPES)
    with sercap.connect(":memory:") as wh:
        assert isinstance(wh, sercap.Warehouse)


def test_the_callable_features_package_shows_the_verbs_parameters() -> None:
    """`sercap.features?` in Jupyter showed (*args, **kwargs): the package's __call__."""
    import inspect

    assert list(inspect.signature(sercap.features).parameters) == ["path", "feature_set"]
