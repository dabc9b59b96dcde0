"""Cross-corpus matrices (`bench cross`): the shared label map, its refusals, the matrix and
its stored, marked runs. Two small hand-made corpora in an in-memory warehouse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import sercap
from sercap.cross import restrict, shared_classes, train_test
from sercap.errors import SercapError
from sercap.store import connect
from sercap.store import runs as store_runs
from tests.helpers import add_corpus, add_features

VOCABULARY = ["neu", "ang", "hap", "sad", "fea", "dis", "sur", "bor"]


def two_corpora(wh, a=("ang", "neu", "sad"), b=("ang", "hap", "neu", "sad"), features_b=True):
    """Corpus "a" (EmoDB kind, emodb7) and "b" (IEMOCAP kind, iemocap4), one feature set."""
    ua = add_corpus(wh, "a", "emodb", n_speakers=4, per_class=4, classes=a)
    ub = add_corpus(wh, "b", "iemocap", "leave-one-session-out", n_speakers=4, per_class=4,
                    classes=b)  # fmt: skip
    add_features(wh, ua, corpus="a", seed=1)
    if features_b:
        add_features(wh, ub, corpus="b", seed=2)


# ----------------------------------------------------------------------------- pure parts
def test_shared_classes_keep_what_every_corpus_has_in_vocabulary_order() -> None:
    per_corpus = {
        "emodb": ["ang", "bor", "dis", "fea", "hap", "neu", "sad"],
        "ravdess": ["ang", "cal", "dis", "fea", "hap", "neu", "sad", "sur"],
    }
    assert shared_classes(per_corpus, VOCABULARY) == ["neu", "ang", "hap", "sad", "fea", "dis"]
    per_corpus["iemocap"] = ["ang", "hap", "neu", "sad"]
    assert shared_classes(per_corpus, VOCABULARY) == ["neu", "ang", "hap", "sad"]


def test_shared_classes_refuse_fewer_than_two_in_one_line() -> None:
    with pytest.raises(SercapError) as err:
        shared_classes({"x": ["ang", "neu"], "y": ["neu", "sad"], "z": ["cal"]}, VOCABULARY)
    message = str(err.value)
    assert "\n" not in message
    assert "corpora x, y, z share fewer than 2 emotions" in message
    assert "z: cal" in message
    with pytest.raises(SercapError, match="shared: neu;"):
        shared_classes({"x": ["ang", "neu"], "y": ["neu", "sad"]}, VOCABULARY)
    # the corpus that shrinks the set is named (the matrix needs one set for every cell)
    with pytest.raises(SercapError, match="without z, the others share neu, ang"):
        shared_classes({"x": ["ang", "neu"], "y": ["neu", "ang"], "z": ["neu"]}, VOCABULARY)


def test_train_test_split_trains_on_one_corpus_and_tests_on_the_other(wh) -> None:
    two_corpora(wh)
    from sercap.data import load_dataset

    a = restrict(load_dataset(wh, corpus="a"), ["neu", "ang", "sad"])
    b = restrict(load_dataset(wh, corpus="b"), ["neu", "ang", "sad"])
    assert b.classes == ["ang", "neu", "sad"] and len(b) == 4 * 3 * 4  # hap dropped
    assert b.label_map == "shared"
    both, [(fold, train, test)] = train_test(a, b)
    assert fold == "b"
    assert set(both.utt_ids[train]) == set(a.utt_ids)
    assert set(both.utt_ids[test]) == set(b.utt_ids)
    assert not set(both.speakers[train]) & set(both.speakers[test])  # "01" of a ≠ "01" of b
    np.testing.assert_array_equal(both.X[test], b.X)
    # early stopping on the training corpus keeps apart what its own protocol keeps apart:
    # IEMOCAP's sessions (the cross protocol alone would group speakers)
    from dataclasses import replace

    sessions = np.array([f"S{int(s) % 3}" for s in a.speakers])
    by_session = replace(a, protocol="leave-one-session-out", folds=sessions)
    both, [(_, train, _)] = train_test(by_session, b)
    assert both.validation_groups(train).tolist() == [f"a/{s}" for s in sessions]


def test_speaker_norm_uses_every_utterance_of_the_speaker_then_keeps_shared_classes(wh) -> None:
    """b's hap utterances are dropped from the matrix but still count in b's speaker
    statistics: a deployed system sees all of a speaker's audio, never its labels."""
    two_corpora(wh)
    from sercap.cross import load_corpus
    from sercap.experiment import data_request

    request = data_request("svm", corpus="b", speaker_norm=True)
    data = load_corpus(wh, request, ["neu", "ang", "sad"])
    assert data.speaker_norm and data.classes == ["ang", "neu", "sad"] and len(data) == 48
    raw = wh.query(
        "SELECT f.*, u.speaker FROM features_default f JOIN utterances u USING (utt_id) "
        "WHERE u.corpus = 'b' ORDER BY utt_id"
    )  # all 64 utterances of b, hap included
    cols = data.columns
    X = raw.select(cols).to_numpy().astype(np.float64)
    speakers = raw["speaker"].to_numpy()
    position = {u: i for i, u in enumerate(raw["utt_id"])}
    for k, utt in enumerate(data.utt_ids):
        mine = X[speakers == speakers[position[utt]]]
        expected = (X[position[utt]] - mine.mean(axis=0)) / mine.std(axis=0)
        np.testing.assert_allclose(data.X[k], expected, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- the matrix
def test_matrix_diagonal_is_the_corpus_own_cross_validation(wh, tmp_path: Path) -> None:
    two_corpora(wh)
    lines = []
    matrix = sercap.bench_cross(
        wh, ["a", "b"], model="svm", out_dir=tmp_path / "report", progress=False,
        say=lines.append,
    )  # fmt: skip
    assert matrix.columns == ["speaker_norm", "train", "a", "b"]
    assert matrix["train"].to_list() == ["a", "b"]
    # "a" has exactly the shared classes: its diagonal is `train svm` on it, figure for figure.
    own = sercap.train(wh, "svm", corpus="a", progress=False)
    assert matrix.filter(pl.col("train") == "a")["a"][0] == pytest.approx(own.ua, abs=1e-12)
    assert all(0.0 <= v <= 1.0 for v in matrix.select("a", "b").to_numpy().ravel())
    assert (tmp_path / "report" / "cross-ua.png").stat().st_size > 1000
    assert pl.read_csv(tmp_path / "report" / "cross.csv").height == 4
    assert any(line.startswith("heatmap: ") for line in lines)


def test_cells_are_stored_runs_marked_cross_corpus(wh, tmp_path: Path) -> None:
    two_corpora(wh)
    sercap.bench_cross(wh, ["a", "b"], out_dir=tmp_path / "r", progress=False)
    cells = wh.query("SELECT * FROM cross_corpus_runs ORDER BY train_corpus, test_corpus")
    assert cells.height == 4 and cells["cross_matrix"].n_unique() == 1
    assert cells.select("train_corpus", "test_corpus").rows() == [
        ("a", "a"), ("a", "b"), ("b", "a"), ("b", "b"),
    ]  # fmt: skip
    runs = wh.query("SELECT * FROM runs ORDER BY train_corpus, corpus")
    assert runs["label_map"].unique().to_list() == ["shared"]
    assert all(list(c) == ["ang", "neu", "sad"] for c in runs["classes"])
    off = runs.filter((pl.col("train_corpus") == "a") & (pl.col("corpus") == "b")).row(
        0, named=True
    )
    assert off["protocol"] == "cross-corpus" and off["n_folds"] == 1
    predicted = store_runs.predictions(wh, off["run_id"])
    assert predicted.height == off["n_utterances"] == 48  # every b utterance but hap
    assert all(u.startswith("b_") for u in predicted["utt_id"]) and set(predicted["fold"]) == {"b"}
    shown = str(sercap.get_run(wh, off["run_id"]))
    assert f"cross-corpus: trained on a, scored on b (matrix {off['cross_matrix']})" in shown
    diag = runs.filter((pl.col("train_corpus") == "b") & (pl.col("corpus") == "b")).row(
        0, named=True
    )
    assert diag["protocol"] == "leave-one-session-out" and diag["n_folds"] == 2
    # `runs` and `compare` told the cell from b's own run apart by nothing but its UA
    listed = sercap.runs(wh, corpus="b")
    assert sorted(listed["corpus"].to_list()) == ["a→b", "b"]
    from sercap.analysis_store import describe_run

    assert describe_run(wh, off["run_id"]).endswith(", trained on a (cross-corpus)")
    assert "trained on" not in describe_run(wh, diag["run_id"])
    # their protocols differ by design: no note that "an older sercap" dealt other folds
    compared = sercap.compare_runs(wh, diag["run_id"], off["run_id"])
    assert compared.protocols is None and "note: A was scored under" not in str(compared)


def test_predict_never_picks_a_cross_corpus_cell(wh, tmp_path: Path) -> None:
    """A cell trained on another corpus (label map 'shared') is no model of its corpus."""
    two_corpora(wh)
    sercap.bench_cross(wh, ["a", "b"], out_dir=tmp_path / "r", progress=False)
    assert store_runs.run_for_prediction(wh, "svm", None) is None
    assert store_runs.run_for_prediction(wh, "svm", "b") is None
    from sercap.prediction import final_model

    cell = wh.query("SELECT run_id FROM cross_corpus_runs WHERE train_corpus <> test_corpus")
    with pytest.raises(SercapError, match="is a cell of cross-corpus matrix cross-"):
        final_model(wh, cell["run_id"][0], progress=False)
    # nor do cells make an ensemble: it was stored as a plain run of the test corpus
    sercap.bench_cross(wh, ["a", "b"], out_dir=tmp_path / "r2", progress=False)
    same = wh.query("SELECT run_id FROM cross_corpus_runs WHERE train_corpus = 'a' "
                    "AND test_corpus = 'b'")["run_id"].to_list()  # fmt: skip
    with pytest.raises(SercapError, match="an ensemble averages runs cross-validated on one"):
        sercap.ensemble_runs(wh, same[:2])


def test_a_cell_and_its_mark_are_stored_together(wh, tmp_path: Path, monkeypatch) -> None:
    two_corpora(wh)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_runs, "mark_cross_corpus", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        sercap.bench_cross(wh, ["a", "b"], out_dir=tmp_path / "r", progress=False)
    assert wh.scalar("SELECT count(*) FROM runs") == 0
    assert wh.scalar("SELECT count(*) FROM predictions") == 0


def test_speaker_norm_both_gives_both_matrices(wh, tmp_path: Path) -> None:
    two_corpora(wh)
    matrix = sercap.bench_cross(
        wh, ["a", "b"], speaker_norm="both", out_dir=tmp_path / "r", progress=False
    )
    assert matrix.select("speaker_norm", "train").rows() == [
        (False, "a"), (False, "b"), (True, "a"), (True, "b"),
    ]  # fmt: skip
    norms = wh.query("SELECT speaker_norm, count(*) AS n FROM cross_corpus_runs GROUP BY ALL")
    assert sorted(norms.rows()) == [(False, 4), (True, 4)]
    from sercap.format import format_cross_matrix

    shown = format_cross_matrix(matrix)
    assert "no speaker normalisation" in shown and "speaker-normalised" in shown
    assert shown.count("*") == 4  # the diagonals


# ----------------------------------------------------------------------------- refusals
def test_refuses_corpora_without_two_shared_classes(wh) -> None:
    two_corpora(wh, a=("ang", "bor", "dis"), b=("hap", "neu", "sad"))
    with pytest.raises(SercapError, match=r"corpora a, b share fewer than 2 emotions"):
        sercap.bench_cross(wh, ["a", "b"], progress=False)
    assert wh.scalar("SELECT count(*) FROM runs") == 0


def test_refuses_an_unknown_corpus_and_a_single_one(wh) -> None:
    two_corpora(wh)
    with pytest.raises(SercapError, match=r"no corpus 'nope' in the warehouse \(have: a, b\)"):
        sercap.bench_cross(wh, ["a", "nope"], progress=False)
    with pytest.raises(SercapError, match="needs at least two corpora"):
        sercap.bench_cross(wh, ["a"], progress=False)


def test_refuses_corpora_without_the_same_feature_set(wh) -> None:
    two_corpora(wh, features_b=False)
    with pytest.raises(SercapError) as err:
        sercap.bench_cross(wh, ["a", "b"], progress=False)
    message = str(err.value)
    assert "\n" not in message and "must share one feature set" in message
    assert "b (0 of 64 utterances)" in message and "a (" not in message


def test_refuses_corpora_that_share_a_recording(wh) -> None:
    """A corpus ingested again under another name, or a copy of some of its files: the
    cells across them tested on recordings they trained on (UA 1.00 off the diagonal)."""
    from sercap.store.corpora import same_audio

    two_corpora(wh)
    wh.execute("UPDATE utterances SET audio_sha256 = utt_id")  # every recording its own
    assert same_audio(wh, ["a", "b"]) == []
    sercap.bench_cross(wh, ["a", "b"], progress=False)  # no shared recording: runs
    n_runs = wh.scalar("SELECT count(*) FROM runs")
    wh.execute("UPDATE utterances SET audio_sha256 = 'same' WHERE utt_id IN ('a_01_ang_0', "
               "'b_02_sad_1')")  # fmt: skip
    with pytest.raises(SercapError) as err:
        sercap.bench_cross(wh, ["a", "b"], progress=False)
    message = str(err.value)
    assert "\n" not in message and "corpora 'a' and 'b' share 1 recording(s)" in message
    assert "a_01_ang_0" in message and "b_02_sad_1" in message
    assert wh.scalar("SELECT count(*) FROM runs") == n_runs  # refused before any fit
    # segments of one file (same bytes, other times) are not the same recording
    wh.execute("UPDATE utterances SET start_s = 1.0 WHERE utt_id = 'b_02_sad_1'")
    assert same_audio(wh, ["a", "b"]) == []


def test_cli_prints_the_matrix_and_one_line_errors(tmp_path: Path) -> None:
    from cli import main

    wh = connect(tmp_path / "wh")
    two_corpora(wh)
    wh.close()
    out = CliRunner().invoke(
        main, ["-w", str(tmp_path / "wh"), "bench", "cross", "--speaker-norm", "--corpora",
               "a,b", "--out", str(tmp_path / "r")],
        catch_exceptions=False,
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "speaker-normalised" in out.output and "train \\ test" in out.output
    assert "no speaker normalisation" not in out.output  # `--speaker-norm` alone means on
    assert "labels shared (neu, ang, sad)" in out.output
    bad = CliRunner().invoke(
        main, ["-w", str(tmp_path / "wh"), "bench", "cross", "--corpora", "a,zz"],
        catch_exceptions=False,
    )  # fmt: skip
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert bad.exit_code == 1 and lines[-1].startswith("error: no corpus 'zz'")


def test_schema_is_idempotent_and_upgrades_an_older_warehouse(tmp_path: Path) -> None:
    wh = connect(tmp_path / "wh")
    wh.execute("DROP VIEW cross_corpus_runs")
    wh.execute("ALTER TABLE runs DROP COLUMN cross_matrix")
    wh.execute("ALTER TABLE runs DROP COLUMN train_corpus")
    wh.execute("DROP TABLE shared_emotions")  # as a warehouse made before 007 was
    wh.close()
    for _ in range(2):
        wh = connect(tmp_path / "wh")
        assert {"train_corpus", "cross_matrix"} <= set(wh.query("SELECT * FROM runs").columns)
        assert store_runs.shared_emotions(wh)[:4] == ["neu", "ang", "hap", "sad"]
        assert wh.query("SELECT * FROM cross_corpus_runs").is_empty()
        wh.close()


def test_predict_by_model_name_asks_which_corpus_when_runs_exist_on_two(wh) -> None:
    from sercap.prediction import newest_run

    two_corpora(wh)
    a = sercap.train(wh, "svm", corpus="a", progress=False)
    assert newest_run(wh, "svm") == a.run_id  # one corpus with runs: no question
    b = sercap.train(wh, "svm", corpus="b", progress=False)
    with pytest.raises(SercapError, match=r"runs of 'svm' exist on several corpora \(a, b\)"):
        newest_run(wh, "svm")
    assert newest_run(wh, "svm", "b") == b.run_id and newest_run(wh, "svm", "a") == a.run_id


def test_torch_cells_record_their_threads_and_device(wh, tmp_path: Path) -> None:
    """Every cell of a torch model's matrix was stored without the threads and device its
    fits ran with, though `bench cross --jobs` changes a torch model's numbers."""
    import json

    two_corpora(wh)
    sercap.bench_cross(wh, ["a", "b"], model="dnn", params={"epochs": 2, "n_seeds": 1},
                       jobs=1, out_dir=tmp_path / "r", progress=False)  # fmt: skip
    cells = wh.query("SELECT versions_json FROM runs WHERE cross_matrix IS NOT NULL")
    assert cells.height == 4
    recorded = [json.loads(v) for v in cells["versions_json"]]
    assert {(v["torch_threads"], v["torch_device"]) for v in recorded} == {("1", "cpu")}
