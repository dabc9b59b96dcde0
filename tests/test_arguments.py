"""Every public verb checks its simple arguments against its annotations (sercap._arguments)."""

import doctest
from pathlib import Path

import numpy as np
import pytest

import sercap
import sercap._arguments
from sercap.errors import BadParameterError


def test_the_module_examples_run() -> None:
    assert doctest.testmod(sercap._arguments).failed == 0


def test_a_string_for_a_flag_is_refused_before_anything_runs() -> None:
    """`sql(wh, "DELETE …", write="false")` deleted every row: "false" is a true string."""
    with sercap.connect(":memory:") as wh:
        sercap.sql(wh, "CREATE TABLE t AS SELECT 1 AS a", write=True)
        with pytest.raises(BadParameterError, match=r"^sql: write='false'; give True or False$"):
            sercap.sql(wh, "DELETE FROM t", write="false")
        assert sercap.sql(wh, "SELECT count(*) AS n FROM t")[0][1]["n"][0] == 1
        with pytest.raises(BadParameterError, match="speaker_norm='no'"):
            sercap.train(wh, "svm", speaker_norm="no")


def test_none_and_blank_strings_are_named(tmp_path: Path) -> None:
    with sercap.connect(":memory:") as wh:
        with pytest.raises(BadParameterError, match="^get_run: run_id is required, not None"):
            sercap.get_run(wh, None)
        with pytest.raises(BadParameterError, match=r"^get_run: run_id=''; give a non-empty"):
            sercap.get_run(wh, "")  # an empty prefix matched the only run
        with pytest.raises(BadParameterError, match="^extract: corpus=3; give a string"):
            sercap.extract(wh, corpus=3)  # was DuckDB's multi-line ConversionException
        with pytest.raises(BadParameterError, match="^train: jobs is required, not None"):
            sercap.train(wh, "svm", jobs=None)
    with pytest.raises(BadParameterError, match="^synth: sessions is required, not None"):
        sercap.synth(tmp_path / "c", sessions=None)
    with pytest.raises(BadParameterError, match="^connect: read_only='false'"):
        sercap.connect(tmp_path / "w", read_only="false")
    assert not (tmp_path / "w").exists()


def test_a_path_with_a_tilde_is_the_home_folder(tmp_path: Path, monkeypatch) -> None:
    """`synth("~/syn")` wrote ./~/syn; `ingest(wh, kind, "~/corpus")` found no such folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    corpus = sercap.synth("~/syn", sessions=1, per_speaker=2)
    assert corpus.root == tmp_path / "home" / "syn" and not (tmp_path / "~").exists()
    with sercap.connect("~/wh") as wh:
        assert sercap.ingest(wh, "iemocap", "~/syn").added > 0
    assert (tmp_path / "home" / "wh" / "sercap.duckdb").is_file()
    wav = next((tmp_path / "home" / "syn").rglob("*.wav"))
    row = sercap.features(f"~/{wav.relative_to(tmp_path / 'home')}")
    assert row.height == 1


def test_a_read_only_in_memory_catalog_is_one_line(tmp_path: Path) -> None:
    """It was DuckDB's CatalogException: an in-memory catalog starts empty."""
    for kwargs in ({"path": ":memory:"}, {"path": tmp_path / "w", "memory": True}):
        with pytest.raises(BadParameterError, match="read_only=True with an in-memory catalog"):
            sercap.connect(**kwargs, read_only=True)
    assert not (tmp_path / "w").exists()


def test_reprs_are_a_line_not_every_array() -> None:
    """A Dataset printed every array and 2,853 column names (75 kB) into a notebook cell."""
    from sercap.data import Dataset

    ds = Dataset(
        utt_ids=np.array(["a", "b", "c"]), X=np.zeros((3, 2853), np.float32),
        y=np.array([0, 1, 0]), classes=["ang", "neu"], speakers=np.array(["s1", "s1", "s2"]),
        folds=np.array(["s1", "s1", "s2"]), corpus="toy", label_map="toy2",
        protocol="leave-one-speaker-out", input_kind="tabular",
        columns=[f"c{i}" for i in range(2853)],
    )  # fmt: skip
    assert repr(ds) == (
        "Dataset(corpus='toy', label_map='toy2', 3 utterances, 2 speakers, 2 folds "
        "(leave-one-speaker-out), tabular X (3, 2853), classes=['ang', 'neu'])"
    )


def test_a_tilde_in_a_study_journal_or_a_transcripts_csv(tmp_path: Path, monkeypatch) -> None:
    """`tune(storage="~/st.journal")` made ./~/st.journal; `texts="~/t.csv"` was missing."""
    from sercap.predict_text import read_texts_csv
    from sercap.tuning import open_storage, storage_url

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert storage_url("~/st.journal") == str(tmp_path / "st.journal")
    open_storage("~/st.journal", tmp_path, "s")
    assert (tmp_path / "st.journal").is_file() and not (tmp_path / "~").exists()
    (tmp_path / "t.csv").write_text("path,text\na.wav,hello\n")
    assert [row[:2] for row in read_texts_csv("~/t.csv")] == [("a.wav", "hello")]


def test_richer_arguments_of_repair_and_bench_are_one_line() -> None:
    with sercap.connect(":memory:") as wh:
        with pytest.raises(BadParameterError, match=r"^problems=\[1, 2\]; give verify\(wh\)"):
            sercap.repair(wh, [1, 2])  # AttributeError: 'int' object has no attribute 'chunk'
        with pytest.raises(BadParameterError, match="^models=None; give model names"):
            sercap.bench(wh, None)  # TypeError: 'NoneType' object is not iterable


def test_every_exported_verb_is_checked() -> None:
    """dataset, compare_runs, fairness and bench_scale were exported but not wrapped:
    `dataset(wh, speaker_norm="no")` returned speaker-normalised features."""
    import inspect

    import sercap.api

    verbs = [n for n in sercap._API if inspect.isfunction(getattr(sercap.api, n, None))]
    assert len(verbs) > 30
    assert [n for n in verbs if not hasattr(getattr(sercap, n), "__wrapped__")] == []
    with sercap.connect(":memory:") as wh, pytest.raises(BadParameterError, match="speaker_norm"):
        sercap.dataset(wh, speaker_norm="no")


def test_a_feature_set_defined_in_code_is_still_extracted(tmp_path: Path) -> None:
    """The wrapper refused extract(wh, FeatureSet(...)), which worked before: the service
    takes one, and `features list` shows it as "defined in code"."""
    corpus = sercap.synth(tmp_path / "c", sessions=1, per_speaker=1)
    own = sercap.get_feature_set("default").with_params(name="hop20", hop_ms=20.0)
    with sercap.connect(":memory:") as wh:
        sercap.ingest(wh, "iemocap", corpus.root)
        assert sercap.extract(wh, own, progress=False).done > 0


def test_numpy_numbers_and_flags_reach_the_verbs_as_pythons_own(tmp_path: Path) -> None:
    """`seed=np.int64(1)` (from `for seed in np.arange(5)`) passed the check, then DuckDB
    refused it when the run was stored, after the fits; optuna's journal refused
    `inner_folds=np.int64(2)` after creating the study; `read_only=np.True_` was a
    TypeError from DuckDB; `limit=` and a model parameter were "not a number"."""
    from tests.helpers import add_corpus, add_features

    with sercap.connect(tmp_path / "wh") as wh:
        add_features(wh, add_corpus(wh, n_speakers=4, per_class=3))
        run = sercap.train(wh, "svm", seed=np.int64(1), progress=False)
        assert run.record["seed"] == 1
        rf = sercap.train(wh, "rf", params={"n_estimators": np.int64(5)}, progress=False)
        assert rf.record["params_json"] == '{"n_estimators": 5}'
        study = sercap.tune(wh, "svm", trials=np.int64(1), inner_folds=np.int64(2),
                            final=False, progress=False)  # fmt: skip
        assert study.folds
        (preview,) = sercap.sql_preview(wh, "FROM range(10)", np.int64(3))
        assert preview.head.height == 3
    with sercap.connect(tmp_path / "wh", read_only=np.True_) as wh:
        assert sercap.get_run(wh, run.run_id).ua == run.ua


def test_predict_takes_the_run_train_returned_and_tune_a_journal_as_a_path(tmp_path) -> None:
    """`predict(wh, clip, run=run)` right after `run = train(...)` said "give a string"
    (every other verb that takes a run takes the object), and `tune(storage=Path(...))`
    likewise, where the docstring says a journal file works."""
    corpus = sercap.synth(tmp_path / "corpus", sessions=2, per_speaker=6)
    with sercap.connect(tmp_path / "wh") as wh:
        sercap.ingest(wh, "iemocap", corpus.root)
        sercap.extract(wh, progress=False)
        run = sercap.train(wh, "svm", progress=False)
        clip = next(Path(corpus.root).rglob("*.wav"))
        assert sercap.models_to_fit(wh, clip, run=run) == [run.run_id]
        with pytest.raises(BadParameterError, match="^models_to_fit: run=123"):
            sercap.models_to_fit(wh, clip, run=123)
        table = sercap.predict(wh, clip, run=run, progress=False)
        assert table["run_id"].to_list() == [run.run_id] and table["error"][0] is None
        journal = tmp_path / "studies.journal"
        sercap.tune(wh, "svm", trials=1, inner_folds=2, final=False, storage=journal,
                    progress=False)  # fmt: skip
        assert journal.stat().st_size > 0
        assert sercap.load_study(wh, "svm", storage=journal).folds


def test_a_keyword_spelled_as_elsewhere_names_the_verbs_own() -> None:
    """`train(wh, "svm", label_map=run.label_map)` (the run's field) and `n_jobs=` (as in
    scikit-learn) were Python's bare "unexpected keyword argument"; a typo likewise."""
    with sercap.connect(":memory:") as wh:
        with pytest.raises(TypeError, match="'label_map'; did you mean 'labels'"):
            sercap.train(wh, "svm", label_map="emodb7")
        with pytest.raises(TypeError, match="'n_jobs'; did you mean 'jobs'"):
            sercap.tune(wh, "svm", n_jobs=2)
        with pytest.raises(TypeError, match="'modle'; did you mean 'model'"):
            sercap.predict(wh, "a.wav", modle="svm")
        with pytest.raises(TypeError, match="unexpected keyword argument 'foo'$"):
            sercap.train(wh, "svm", foo=1)
