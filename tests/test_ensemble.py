import numpy as np
import pytest

from sercap.data import Dataset
from sercap.ensemble import average_probabilities, ensemble_runs, newest_run_per_model
from sercap.errors import SercapError
from sercap.evaluate import CVResult, score, store_run
from sercap.store.runs import get_run


def _store(wh, proba: np.ndarray, y: np.ndarray, *, model="m", label_map="emodb7",
           corpus="toy", protocol="leave-one-speaker-out", norm=False) -> str:  # fmt: skip
    n = len(y)
    folds = np.array(["f1", "f2"] * (n // 2))
    data = Dataset(
        utt_ids=np.array([f"u{i:02d}" for i in range(n)]), X=None, y=y, classes=["a", "b", "c"],
        speakers=folds, folds=folds, corpus=corpus, label_map=label_map, protocol=protocol,
        input_kind="tabular", speaker_norm=norm,
    )  # fmt: skip
    metrics = [score(y[folds == f], proba[folds == f].argmax(1), 3) for f in ("f1", "f2")]
    result = CVResult(proba=proba, fold_names=["f1", "f2"], fold_metrics=metrics,
                      pooled=score(y, proba.argmax(1), 3), fit_s=1.0, duration_s=1.0,
                      evaluated=np.arange(n))  # fmt: skip
    return store_run(wh, data, model, result, params={}, seed=0)


def _random_proba(rng, n):
    p = rng.random((n, 3))
    return p / p.sum(axis=1, keepdims=True)


def test_ensemble_average_matches_numpy_and_is_stored(wh) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 20)
    p1, p2 = _random_proba(rng, 20), _random_proba(rng, 20)
    r1, r2 = _store(wh, p1, y, model="svm"), _store(wh, p2, y, model="xgb")
    run_id, result = ensemble_runs(wh, [r1, r2], weights=[3, 1])
    expected = 0.75 * p1 + 0.25 * p2
    np.testing.assert_allclose(result.proba, expected, atol=1e-6)  # stored as float32
    stored = wh.query("SELECT proba FROM predictions WHERE run_id = ? ORDER BY utt_id", [run_id])
    np.testing.assert_allclose(np.array(stored["proba"].to_list()), expected, atol=1e-6)
    run = get_run(wh, run_id)
    assert run["kind"] == "ensemble" and list(run["members"]) == [r1, r2]
    assert run["ua"] == pytest.approx(score(y, expected.argmax(1), 3).ua)


def test_unweighted_average() -> None:
    a, b = np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])
    np.testing.assert_allclose(average_probabilities([a, b]), [[0.4, 0.6]])
    with pytest.raises(SercapError, match="one weight per run"):
        average_probabilities([a, b], [1.0])
    with pytest.raises(SercapError, match="non-negative"):
        average_probabilities([a, b], [-1.0, 2.0])
    for bad in (float("nan"), float("inf")):  # stored a run of nan probabilities, UA chance
        with pytest.raises(SercapError, match="must be finite numbers"):
            average_probabilities([a, b], [bad, 1.0])


def test_incompatible_runs_are_refused(wh) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 10)
    r1 = _store(wh, _random_proba(rng, 10), y)
    r2 = _store(wh, _random_proba(rng, 10), y, label_map="other7")
    with pytest.raises(SercapError, match="differ in label_map"):
        ensemble_runs(wh, [r1, r2])
    with pytest.raises(SercapError, match="at least two runs"):
        ensemble_runs(wh, [r1])
    with pytest.raises(SercapError, match="no run"):
        ensemble_runs(wh, [r1, "missing-run"])


def test_an_ensembles_total_time_covers_its_members(wh) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 10)
    runs = [_store(wh, _random_proba(rng, 10), y, model=m) for m in ("svm", "rf")]
    run = get_run(wh, ensemble_runs(wh, runs)[0])
    assert run["fit_s"] == pytest.approx(2.0) and run["duration_s"] >= run["fit_s"]


def test_an_ensemble_mixing_speaker_norm_marks_its_normalised_members(wh) -> None:
    from sercap.compare import bench_table, table_markdown
    from sercap.format import format_run

    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 10)
    plain = _store(wh, _random_proba(rng, 10), y, model="svm")
    normed = _store(wh, _random_proba(rng, 10), y, model="dnn", norm=True)
    normed2 = _store(wh, _random_proba(rng, 10), y, model="cnn", norm=True)
    mixed, _ = ensemble_runs(wh, [plain, normed])
    both, _ = ensemble_runs(wh, [normed, normed2])
    # it needs each speaker's statistics (predict refuses it), so the flag stays on ...
    assert get_run(wh, mixed)["speaker_norm"]
    table = bench_table(wh, [mixed, both, plain])
    names = dict(zip(table["run_id"], table["name"], strict=True))
    # ... but only the normalised member is labelled so: not "(speaker-norm)" for the mix
    assert names[mixed] == "avg(svm+dnn[sn])" and names[both] == "avg(dnn+cnn)"
    md = table_markdown(table)
    assert "| avg(svm+dnn[sn]) |" in md and "| avg(dnn+cnn) (speaker-norm) |" in md
    assert "| svm |" in md
    shown = format_run(get_run(wh, mixed))
    assert "members with and without speaker normalisation" in shown
    assert f"members {plain}, {normed}[sn]" in shown
    assert "with and without" not in format_run(get_run(wh, both))
    from sercap.store.runs import list_runs

    listed = dict(list_runs(wh).select("run_id", "spk_norm").iter_rows())
    assert (listed[mixed], listed[both], listed[plain]) == ("mixed", "yes", "no")
    # a member run deleted: the mix is unknown, and every listing keeps the run's flag
    wh.execute("DELETE FROM runs WHERE run_id = ?", [normed])
    listed = dict(list_runs(wh).select("run_id", "spk_norm").iter_rows())
    assert listed[mixed] == "yes" and bench_table(wh, [mixed])["name"][0] == "avg(svm+dnn)"


def test_newest_run_per_model_is_by_time_not_by_score(wh) -> None:
    rng = np.random.default_rng(2)
    y = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[y] * 0.9 + 0.1 / 3
    _store(wh, perfect, y, model="svm")
    newer = _store(wh, _random_proba(rng, 6), y, model="svm")
    assert newest_run_per_model(wh, "toy", "emodb7")["svm"] == newer


def test_an_ensemble_of_an_ensemble_is_refused_naming_its_members(tmp_path) -> None:
    """It was stored and scored, and predict could never use it ("is an ensemble; predict
    with it directly", said of the run the user had just named)."""
    import sercap
    from tests.helpers import add_corpus, add_features

    wh = sercap.connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=2))
    a, b, c = (sercap.train(wh, "svm", params={"C": C}, progress=False).run_id
               for C in (1, 10, 100))  # fmt: skip
    both = sercap.ensemble_runs(wh, [a, b]).run_id
    with pytest.raises(sercap.SercapError, match=f"run {both} is an ensemble already .of {a}"):
        sercap.ensemble_runs(wh, [both, c])
    # weights computed with numpy are weights; 1e308 twice overflowed their sum (all zero)
    run = sercap.ensemble_runs(wh, [a, b], weights=np.array([2.0, 1.0]))
    assert run.record["n_utterances"] > 0
    huge = sercap.ensemble_runs(wh, [a, b], weights=[1e308, 1e308])
    same = sercap.ensemble_runs(wh, [a, b])
    assert huge.ua == pytest.approx(same.ua)
    wh.close()
