"""Grouped permutation importance on outer test folds."""

import numpy as np
import pytest

from sercap.data import Dataset
from sercap.errors import SercapError
from sercap.explain import outer_fold_importance


def _data(input_kind: str = "tabular") -> Dataset:
    rng = np.random.default_rng(0)
    speakers = np.repeat(["s1", "s2", "s3"], 30)
    y = np.tile(np.arange(3), 30)
    X = np.column_stack([y + rng.normal(0, 0.3, 90), y + rng.normal(0, 0.3, 90),
                         rng.normal(size=90), rng.normal(size=90)]).astype(np.float32)  # fmt: skip
    return Dataset(
        utt_ids=np.array([f"u{i:03d}" for i in range(90)]), X=X, y=y,
        classes=["ang", "neu", "sad"], speakers=speakers, folds=speakers, corpus="toy",
        label_map="emodb7", protocol="leave-one-speaker-out", input_kind=input_kind,
        columns=["mfcc_01_mean", "mfcc_02_mean", "f0_hz_mean", "f0_hz_std"],
    )  # fmt: skip


def test_signal_family_matters_and_noise_family_does_not() -> None:
    imp = outer_fold_importance(_data(), "svm", n_repeats=3)
    by = dict(zip(imp["group"], imp["importance"], strict=True))
    assert imp["group"][0] == "mfcc" and by["mfcc"] > 0.3
    assert abs(by["f0_hz"]) < 0.05
    assert imp["n_folds"].to_list() == [3, 3]
    functional = outer_fold_importance(_data(), "svm", by="functional", n_repeats=2, max_folds=1)
    assert set(functional["group"]) == {"mean", "std"} and functional["n_folds"][0] == 1


def test_non_tabular_data_is_refused_in_one_line() -> None:
    with pytest.raises(SercapError, match="tabular") as info:
        outer_fold_importance(_data("sequence"), "svm")
    assert "\n" not in str(info.value)


def test_both_groupings_come_from_one_fit_per_fold(monkeypatch) -> None:
    from sercap.explain import outer_fold_importances
    from sercap.models.tabular import SVMModel

    fits = []
    original = SVMModel.fit
    monkeypatch.setattr(SVMModel, "fit", lambda self, *a, **k: fits.append(1) or original(
        self, *a, **k))  # fmt: skip
    both = outer_fold_importances(_data(), "svm", n_repeats=2)
    assert len(fits) == 3  # one per outer fold, not one per fold and grouping
    for by in ("descriptor", "functional"):
        alone = outer_fold_importance(_data(), "svm", by=by, n_repeats=2)
        assert both[by].equals(alone)


def test_at_most_max_rows_of_a_test_fold_are_permuted(monkeypatch) -> None:
    """Each family and repeat predicts the test fold again: at IEMOCAP's size an SVM took
    hours. A seeded sample of at most max_rows is permuted; under it, every row."""
    import sercap.analysis
    from sercap.explain import outer_fold_importances

    sizes = []
    original = sercap.analysis.permutation_importance

    def spy(predict_proba, X, y, *args, **kwargs):
        sizes.append(len(X))
        return original(predict_proba, X, y, *args, **kwargs)

    monkeypatch.setattr(sercap.analysis, "permutation_importance", spy)
    first = outer_fold_importances(_data(), "svm", n_repeats=1, max_rows=12)
    assert sizes == [12] * 6  # 3 folds of 30 utterances, two groupings each
    again = outer_fold_importances(_data(), "svm", n_repeats=1, max_rows=12)
    assert all(first[k].equals(again[k]) for k in first)  # the sample is seeded
    sizes.clear()
    outer_fold_importances(_data(), "svm", n_repeats=1, max_rows=30)
    assert sizes == [30] * 6


def _tuned(wh, fold_params: dict | None, final: dict) -> str:
    """A real svm run (with its predictions) made to look nested-tuned."""
    import json

    import sercap

    run = sercap.train(wh, "svm")
    wh.execute(
        "UPDATE runs SET params_json = ?, fold_params_json = ?, tuned_from = 'x' WHERE run_id = ?",
        [json.dumps(final), None if fold_params is None else json.dumps(fold_params), run.run_id],
    )
    return run.run_id


def test_a_tuned_run_is_refitted_with_each_folds_own_parameters(wh, monkeypatch) -> None:
    """The final study's parameters saw every speaker: permuting a fold's test speakers on
    a model fitted with them would not be an outer-fold importance."""
    import json

    from sercap.explain import run_importances
    from sercap.models.tabular import SVMModel
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=4))
    fold_params = {"01": {"C": 0.5}, "02": {"C": 2.0}, "03": {"C": 3.0}}
    run_id = _tuned(wh, fold_params, {"C": 9.0})
    seen = []
    original = SVMModel.fit
    monkeypatch.setattr(SVMModel, "fit", lambda self, *a, **k: seen.append(self.params["C"])
                        or original(self, *a, **k))  # fmt: skip
    run_importances(wh, run_id, n_repeats=1)
    assert seen == [0.5, 2.0, 3.0]  # each fold's own, never the final study's 9.0
    wh.execute("UPDATE runs SET fold_params_json = ?", [json.dumps({"01": {"C": 0.5}})])
    with pytest.raises(SercapError, match=r"no tuned parameters for outer fold\(s\) 02, 03"):
        run_importances(wh, run_id, n_repeats=1)
    wh.execute("UPDATE runs SET fold_params_json = NULL")  # stored before runs kept them
    with pytest.raises(SercapError, match="stores no per-fold parameters"):
        run_importances(wh, run_id, n_repeats=1)


def test_a_run_is_refitted_on_its_own_folds_after_a_speaker_is_added(wh, monkeypatch) -> None:
    """Under speaker-kfold-5 a speaker added after the run deals the others into other
    folds: the report's importance refitted "fold1" on today's fold1 — with parameters
    tuned while fold1 tested speakers it now trained on. It refits the run's own folds."""
    from sercap.explain import run_importances
    from sercap.models.tabular import SVMModel
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=7, per_class=2, protocol="speaker-kfold-5"))
    wh.execute("UPDATE utterances SET corpus = 'later' WHERE speaker = '07'")
    folds = {f"fold{k}": {"C": float(k)} for k in range(1, 6)}
    run_id = _tuned(wh, folds, {"C": 9.0})
    tested = dict(
        wh.con.execute(
            "SELECT p.fold, list(DISTINCT u.speaker ORDER BY u.speaker) FROM predictions p "
            "JOIN utterances u USING (utt_id) WHERE run_id = ? GROUP BY p.fold",
            [run_id],
        ).fetchall()
    )
    assert tested["fold1"] == ["01", "06"]
    # the new speaker sorts first: today's fold1 is 00 and 05, fold2 01 and 06 …
    wh.execute("UPDATE utterances SET corpus = 'toy', speaker = '00' WHERE corpus = 'later'")
    fits = []
    original = SVMModel.fit

    def spy(self, X, y, groups=None, **kwargs):
        fits.append((self.params["C"], sorted(set(groups))))
        return original(self, X, y, groups=groups, **kwargs)

    monkeypatch.setattr(SVMModel, "fit", spy)
    run_importances(wh, run_id, n_repeats=1)
    assert [c for c, _ in fits] == [1.0, 2.0, 3.0, 4.0, 5.0]
    for (_, trained), fold in zip(fits, sorted(tested), strict=True):
        assert not set(trained) & set(tested[fold]), (fold, trained)
        assert "00" not in trained  # not in the run: not in its refits either
    # features or labels changed since the run: refused, not explained on other data
    wh.execute("UPDATE labels SET emotion = 'sad' WHERE utt_id = 'toy_01_ang_0'")
    with pytest.raises(SercapError, match="utterances or labels changed"):
        run_importances(wh, run_id, n_repeats=1)


def test_importance_refuses_a_run_whose_recordings_changed(wh) -> None:
    """A recording replaced and extracted again: the report refitted "the run" on other
    features, which predict refuses."""
    import sercap
    from sercap.explain import run_importances
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    wh.execute("UPDATE utterances SET audio_sha256 = 'bytes of ' || utt_id")
    run = sercap.train(wh, "svm")
    run_importances(wh, run.run_id, n_repeats=1)
    wh.execute("UPDATE utterances SET audio_sha256 = 'new bytes' WHERE utt_id = 'toy_01_ang_0'")
    with pytest.raises(SercapError, match="recordings changed since it was stored"):
        run_importances(wh, run.run_id, n_repeats=1)


def test_the_refits_show_a_bar_over_the_folds(capsys) -> None:
    """`report` refitted one model per outer fold for many minutes at IEMOCAP's size with
    nothing on the screen; with progress it shows a bar over the folds."""
    from sercap.explain import outer_fold_importances

    outer_fold_importances(_data(), "svm", n_repeats=1, progress=True)
    assert "importance refits" in capsys.readouterr().err
    outer_fold_importances(_data(), "svm", n_repeats=1)  # (off by default: the API's call)
    assert "importance refits" not in capsys.readouterr().err


def test_the_refits_leave_the_warehouse_to_writers(tmp_path, monkeypatch) -> None:
    """A report's importance refits (11 minutes on an IEMOCAP-sized corpus) held the
    warehouse open read-only, and DuckDB lets no process write beside a reader: a `train`
    or `extract` started meanwhile gave up after its minute's wait."""
    import sercap
    import sercap.explain as explain
    from sercap.store import connect
    from tests.helpers import add_corpus, add_features

    wh = connect(tmp_path / "w")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    run = sercap.train(wh, "svm", progress=False).run_id
    wh.close()
    wh = connect(tmp_path / "w", read_only=True)
    written = []

    def refits(*args, **kwargs):
        writer = connect(tmp_path / "w", wait_s=0)  # another process's write, meanwhile
        writer.execute("CREATE TABLE meanwhile (x INTEGER)")
        writer.close()
        written.append(True)
        return {}

    monkeypatch.setattr(explain, "outer_fold_importances", refits)
    assert explain.run_importances(wh, run) == {} and written
    assert wh.read_only and wh.scalar("SELECT count(*) FROM runs") == 1
    wh.close()
