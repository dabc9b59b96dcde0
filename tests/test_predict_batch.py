"""Predicting files in chunks: the same answers as one file at a time, shared features,
a file's failure kept to that file, and the training range kept with the final model."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import sercap.features.lld as lld
import sercap.predict_batch as batch
from sercap.experiment import data_request, load_for
from sercap.prediction import RANGE_FILE, final_model, predict_files, training_range
from sercap.store import connect, runs
from tests.helpers import predicting_warehouse


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """A tiny synthetic corpus with svm and rf runs, an ensemble of both, and its wavs."""
    base = tmp_path_factory.mktemp("batch")
    wh_dir, ids = predicting_warehouse(
        base, per_speaker=6, seed=3,
        models={"svm": {}, "rf": {"n_estimators": 10}, "dnn": {"epochs": 3, "n_seeds": 1}},
    )  # fmt: skip
    with connect(wh_dir, read_only=True) as wh:
        wavs = [Path(p) for p in wh.query("SELECT path FROM utterances ORDER BY utt_id")["path"]]
    broken = base / "broken.wav"
    broken.write_bytes(b"not audio")
    silent = base / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    return {"wh": wh_dir, "runs": ids, "wavs": wavs, "broken": broken, "silent": silent}


def _probas(results) -> list:
    return [r.error if r.error else np.array(list(r.proba.values())) for r in results]


def test_chunks_give_the_answers_of_one_file_at_a_time(built, monkeypatch) -> None:
    """A chunk computes its functionals in one query and scores them in one call where the
    model allows it; every probability equals the one-file-per-chunk one to the bit (a
    network scored a chunk in one call differed in the last bits), and an unreadable or
    silent file in the middle gets its own error while its neighbours are predicted."""
    files = built["wavs"][:5] + [built["broken"]] + built["wavs"][5:9] + [built["silent"]]
    with connect(built["wh"], read_only=True) as wh:
        for name in ("svm", "dnn", "ensemble"):
            together = _probas(predict_files(wh, built["runs"][name], files, progress=False))
            monkeypatch.setattr(batch, "CHUNK_FILES", 1)
            alone = _probas(predict_files(wh, built["runs"][name], files, progress=False))
            monkeypatch.setattr(batch, "CHUNK_FILES", 32)
            for a, b in zip(together, alone, strict=True):
                if isinstance(a, str):
                    assert a == b
                else:
                    np.testing.assert_array_equal(a, b)  # to the bit: a file alone or among others
            assert "unreadable" in together[5] and "silent" in together[-1].lower()
            assert sum(isinstance(a, str) for a in together) == 2


def test_an_ensemble_computes_each_files_descriptors_once(built, monkeypatch) -> None:
    """The svm and rf members read the same feature set: the chunk's descriptors are
    computed once per file, not once per member."""
    calls = []
    real = lld.compute_frames
    monkeypatch.setattr(lld, "compute_frames", lambda y, p: calls.append(1) or real(y, p))
    files = built["wavs"][:4]
    with connect(built["wh"], read_only=True) as wh:
        got = predict_files(wh, built["runs"]["ensemble"], files, progress=False)
    assert all(r.error is None for r in got)
    assert len(calls) == len(files)


def test_a_chunk_whose_query_fails_is_computed_file_by_file(built, monkeypatch) -> None:
    """One file that breaks the chunk's functionals query takes only itself down."""
    import sercap.features.functionals as functionals

    real = functionals.compute_functionals
    bad = {}

    def flaky(table, hop_s, con=None):
        out = real(table, hop_s, con)
        if any(n == bad["n"] for n in _frame_counts(table)):
            raise RuntimeError("a query that fails on this file")
        return out

    files = built["wavs"][:3]
    with connect(built["wh"], read_only=True) as wh:
        final = final_model(wh, built["runs"]["svm"], progress=False)
        sr = int(final.feature_set["params"]["sample_rate"])
        from sercap.audio import load_audio

        params = final.feature_set["params"]
        counts = [
            len(next(iter(lld.compute_frames(load_audio(f, sr), params).values()))) for f in files
        ]
        assert counts[1] not in (counts[0], counts[2])  # the query can tell file 1 apart
        bad["n"] = counts[1]
        monkeypatch.setattr(functionals, "compute_functionals", flaky)
        got = batch.predict_chunk(final, files, [None] * 3)
    assert isinstance(got[1], batch.AudioError) and "a query that fails" in str(got[1])
    assert not isinstance(got[0], Exception) and not isinstance(got[2], Exception)


def _frame_counts(table) -> list[int]:
    import pyarrow.compute as pc

    counts = pc.value_counts(table.column("utt_id"))
    return [int(c["counts"]) for c in counts.to_pylist()]


def test_the_final_model_keeps_its_training_range(built, tmp_path, monkeypatch) -> None:
    """The range predict compares a file with is stored with the final model, so a call
    no longer loads the whole training set to find it (about 2 s on EmoDB); a model stored
    before ranges were kept still gets its notes from the data."""
    import shutil

    import sercap.data

    copy = tmp_path / "wh"
    shutil.copytree(built["wh"], copy)
    run_id = built["runs"]["svm"]
    noise = tmp_path / "noise.wav"
    sf.write(noise, (0.1 * np.random.default_rng(0).standard_normal(32000)).astype("f4"), 16000)
    with connect(copy) as wh:
        final = final_model(wh, run_id, progress=False)
        data = load_for(wh, data_request("svm"))
        folder = runs.artifact_dir(wh, run_id)
    stored = np.load(folder / RANGE_FILE)
    np.testing.assert_array_equal(stored, training_range(data.X))
    np.testing.assert_array_equal(final.training_range, stored)

    def no_loading(*args, **kwargs):
        raise AssertionError("predict loaded the training set")

    notes: list[str] = []
    with connect(copy, read_only=True) as wh:
        monkeypatch.setattr(sercap.data, "load_dataset", no_loading)
        predict_files(wh, run_id, [noise], progress=False, say=notes.append)
        monkeypatch.undo()
        assert any("outside the range of every training utterance" in n for n in notes)
    # an older final model without the file: same note, from the data
    (folder / RANGE_FILE).unlink()
    digest = runs.write_artifact_checksums(folder)
    with connect(copy) as wh:
        runs.record_artifact(wh, run_id, folder, digest)
        assert final_model(wh, run_id, progress=False).training_range is None
        older: list[str] = []
        predict_files(wh, run_id, [noise], progress=False, say=older.append)
    assert [n for n in older if "outside" in n] == [n for n in notes if "outside" in n]


def test_chunks_hold_at_most_so_many_files_and_seconds(tmp_path) -> None:
    """Chunks were capped by file count only: 32 two-minute files held 1.7 GB at once."""
    lengths = [4.0, 4.0, 9.0, 1.0, 1.0, 1.0, 12.0]
    files = []
    for i, seconds in enumerate(lengths):
        files.append(tmp_path / f"f{i}.wav")
        sf.write(files[-1], np.zeros(int(seconds * 1000), np.float32), 1000)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    got = batch.chunks([*files, broken], size=3, seconds=10.0)
    assert [[p.name for p in c] for c in got] == [
        ["f0.wav", "f1.wav"], ["f2.wav", "f3.wav"], ["f4.wav", "f5.wav"],
        ["f6.wav"], ["broken.wav"],  # (a file longer than the limit: a chunk of its own)
    ]  # fmt: skip
    assert batch.chunks([], size=3) == []


def test_one_files_failure_in_its_inputs_stays_that_files(built) -> None:
    """A fused model's input hook refusing one file's words, or features lacking a column
    the model reads, made predict fail for every file of the chunk."""
    from sercap.predict_inputs import FinalModel

    class Picky:
        classes_ = None

        @staticmethod
        def prediction_input(features, texts):
            if texts[0] == "bad":
                raise ValueError("these words are refused")
            return [(features, list(texts))]

        def predict_proba(self, batch):
            return np.full((len(batch), 4), 0.25)

    files = built["wavs"][:3]
    with connect(built["wh"], read_only=True) as wh:
        audio = final_model(wh, built["runs"]["svm"], progress=False)
    fused = FinalModel(Picky(), audio.classes, "multimodal", audio.feature_set, audio.columns)
    got = batch.predict_chunk(fused, files, ["fine", "bad", "fine"])
    assert isinstance(got[1], batch.AudioError) and "these words are refused" in str(got[1])
    assert np.allclose(got[0], 0.25) and np.allclose(got[2], 0.25)
    lacking = FinalModel(
        audio.model, audio.classes, "tabular", audio.feature_set, [*audio.columns, "nope_mean"]
    )
    got = batch.predict_chunk(lacking, files, [None] * 3)
    assert all(isinstance(g, batch.AudioError) and "nope_mean" in str(g) for g in got)
