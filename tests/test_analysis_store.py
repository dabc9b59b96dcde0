"""Fairness, significance and confidence of stored runs: from stored predictions only."""

import numpy as np
import polars as pl
import pytest

import sercap.evaluate
import sercap.models.registry
from sercap import analysis, analysis_store
from sercap.data import Dataset
from sercap.errors import SercapError
from sercap.evaluate import CVResult, score, store_run
from sercap.store.runs import get_run
from tests.helpers import add_corpus

CLASSES = ["ang", "neu", "sad"]


@pytest.fixture
def no_refit(monkeypatch):
    """A spy: any attempt to build or cross-validate a model fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built or refitted")

    monkeypatch.setattr(sercap.models.registry, "get_model", refuse)
    monkeypatch.setattr(sercap.evaluate, "cross_validate", refuse)
    with pytest.raises(AssertionError, match="refitted"):  # the spy is armed
        sercap.models.registry.get_model("svm")


def _corpus(wh) -> pl.DataFrame:
    utts = add_corpus(wh, n_speakers=4, per_class=3)  # 36 utterances, speakers 01..04
    wh.execute("UPDATE utterances SET gender = CASE WHEN speaker IN ('01', '02') THEN 'F' "
               "ELSE 'M' END")  # fmt: skip
    return utts.sort("utt_id")


def _store(wh, utts: pl.DataFrame, proba: np.ndarray, model: str, classes=CLASSES) -> str:
    y = np.array([classes.index(e) for e in utts["emotion"]])
    folds = utts["speaker"].to_numpy()
    data = Dataset(
        utt_ids=utts["utt_id"].to_numpy(), X=None, y=y, classes=list(classes), speakers=folds,
        folds=folds, corpus="toy", label_map="emodb7", protocol="leave-one-speaker-out",
        input_kind="tabular",
    )  # fmt: skip
    names = sorted(set(folds))
    k = len(classes)
    metrics = [score(y[folds == f], proba[folds == f].argmax(1), k) for f in names]
    result = CVResult(proba=proba, fold_names=names, fold_metrics=metrics,
                      pooled=score(y, proba.argmax(1), k), fit_s=1.0, duration_s=1.0,
                      evaluated=np.arange(len(y)))  # fmt: skip
    return store_run(wh, data, model, result, params={}, seed=0)


def _proba(rng, y, right: float) -> np.ndarray:
    """Random probability rows whose arg-max is the label with probability ``right``."""
    p = rng.dirichlet(np.ones(3), size=len(y))
    hit = rng.random(len(y)) < right
    p[hit, y[hit]] += 1.0
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture
def two_runs(wh):
    utts = _corpus(wh)
    y = np.array([CLASSES.index(e) for e in utts["emotion"]])
    rng = np.random.default_rng(0)
    pa, pb = _proba(rng, y, 0.9), _proba(rng, y, 0.4)
    ra, rb = _store(wh, utts, pa, "svm"), _store(wh, utts, pb, "rf")
    return utts, y, pa, pb, ra, rb


def test_fairness_from_stored_predictions_matches_numpy_and_the_view(wh, two_runs, no_refit):
    utts, y, pa, _, ra, _ = two_runs
    table = analysis_store.fairness_table(wh, ra)
    speakers = utts["speaker"].to_numpy()
    for s in ["01", "02", "03", "04"]:
        m = speakers == s
        recalls = [np.mean(pa[m & (y == c)].argmax(1) == c) for c in range(3)]
        row = table.filter((pl.col("group_by") == "speaker") & (pl.col("group_name") == s))
        assert row["ua"].item() == pytest.approx(np.mean(recalls))
        assert row["n"].item() == 9
    genders = table.filter(pl.col("group_by") == "gender")
    assert sorted(genders["group_name"]) == ["F", "M"]
    gap = genders["ua"].max() - genders["ua"].min()
    assert genders["worst_gap"].to_list() == pytest.approx([gap, gap])
    view = wh.query(
        "SELECT group_by, group_name, n, accuracy, ua, gap, worst_gap FROM run_groups "
        "WHERE run_id = ?", [ra]
    )  # fmt: skip
    key = ["group_by", "group_name"]
    got, want = table.sort(key), view.sort(key)
    assert got.select(key).rows() == want.select(key).rows()
    for col in ("n", "accuracy", "ua", "gap", "worst_gap"):
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), atol=1e-12)
    summary = analysis_store.fairness_summary(wh, ra)
    fair_view = wh.query("SELECT * FROM run_fairness WHERE run_id = ? ORDER BY group_by", [ra])
    assert summary.sort("group_by")["worst_gap"].to_list() == pytest.approx(
        fair_view["worst_gap"].to_list()
    )
    assert summary.sort("group_by")["n_groups"].to_list() == [2, 4]


def test_confidence_view_and_python_agree(wh, two_runs, no_refit):
    *_, ra, _ = two_runs
    py = analysis_store.prediction_confidence(wh, ra)
    sql = wh.query("SELECT * FROM prediction_confidence WHERE run_id = ? ORDER BY utt_id", [ra])
    assert py["utt_id"].to_list() == sql["utt_id"].to_list()
    assert py["correct"].to_list() == sql["correct"].to_list()
    for col in ("max_proba", "margin", "entropy", "entropy_norm"):
        np.testing.assert_allclose(py[col].to_numpy(), sql[col].to_numpy(), atol=1e-5)


def test_compare_runs_from_stored_predictions(wh, two_runs, no_refit):
    utts, y, pa, pb, ra, rb = two_runs
    c = analysis_store.compare_runs(wh, ra, rb, n_boot=300, seed=3)
    assert c.n_common == len(y)
    assert c.ua.a == pytest.approx(get_run(wh, ra)["ua"])
    assert c.ua.b == pytest.approx(get_run(wh, rb)["ua"])
    speakers = utts["speaker"].to_numpy()
    kw = {"n_classes": 3, "n_boot": 300, "seed": 3}
    by_speaker = analysis.paired_bootstrap(y, pa.argmax(1), pb.argmax(1), groups=speakers, **kw)
    one_by_one = analysis.paired_bootstrap(y, pa.argmax(1), pb.argmax(1), **kw)
    # the interval spans both: a difference counts only when neither contains 0
    assert c.ua.difference == pytest.approx(one_by_one.difference)
    assert c.ua.low == min(by_speaker.low, one_by_one.low)
    assert c.ua.high == max(by_speaker.high, one_by_one.high)
    assert (c.ua.unit, c.ua.n_units) == ("speaker and utterance", 4)
    assert (c.ua_by_speaker.low, c.ua_by_speaker.high) == (by_speaker.low, by_speaker.high)
    assert (c.ua_by_utterance.low, c.ua_by_utterance.high) == (one_by_one.low, one_by_one.high)
    text = str(c)
    assert "over speakers (4, each with all its utterances) and over utterances" in text
    assert f"UA over speakers [{by_speaker.low:+.4f}, {by_speaker.high:+.4f}]" in text
    assert c.as_dict()["resampled"] == "speaker and utterance"
    assert c.protocols is None and "note:" not in text
    # a run an older sercap scored on other folds: the difference holds the folds' change
    wh.execute("UPDATE runs SET protocol = 'speaker-kfold-5' WHERE run_id = ?", [rb])
    c = analysis_store.compare_runs(wh, ra, rb, n_boot=50, seed=3)
    assert c.protocols == (get_run(wh, ra)["protocol"], "speaker-kfold-5")
    assert (
        str(c)
        .splitlines()[-1]
        .startswith(
            f"note: A was scored under {c.protocols[0]}, B under speaker-kfold-5: other folds"
        )
    )
    assert c.as_dict()["protocol_b"] == "speaker-kfold-5"
    m = analysis.mcnemar(y, pa.argmax(1), pb.argmax(1))
    assert (c.mcnemar.only_a_right, c.mcnemar.only_b_right) == (m.only_a_right, m.only_b_right)
    assert c.ua.difference > 0 and not c.ua.within_noise
    assert c.as_dict()["mcnemar_p"] == m.p_value
    # each run says what it is, speaker normalisation included (compare never said)
    lines = str(c).splitlines()
    assert lines[0] == f"A: run {ra} (svm, no speaker-norm)"
    assert lines[1] == f"B: run {rb} (rf, no speaker-norm)"
    wh.execute("UPDATE runs SET speaker_norm = true WHERE run_id = ?", [rb])
    assert analysis_store.describe_run(wh, rb) == "rf, speaker-norm"
    # a nested-tuned run, or one on some columns, read exactly as the default run
    wh.execute("UPDATE runs SET tuned_from = 'x', columns = '^mfcc_' WHERE run_id = ?", [ra])
    assert analysis_store.describe_run(wh, ra).startswith("svm columns /^mfcc_/ nested-tuned")
    # The same run against itself: no difference.
    self_c = analysis_store.compare_runs(wh, ra, ra, n_boot=50)
    assert self_c.ua.within_noise and self_c.mcnemar.p_value == 1.0
    marks = analysis_store.significance_to_best(wh, [rb, ra], n_boot=200)
    assert marks["is_best"].to_list() == [False, True]
    assert marks["within_noise"].to_list() == [False, True]
    assert marks["level"].to_list() == [0.95, 0.95]  # one comparison: nothing to adjust


def test_comparisons_with_the_best_are_adjusted_for_how_many_there_are(wh, two_runs):
    """The best is the maximum of k runs: k - 1 intervals at 95 % each would call some run
    "below best" by chance; Bonferroni makes the 95 % hold for all of them together."""
    utts, y, *_, ra, rb = two_runs
    rc = _store(wh, utts, _proba(np.random.default_rng(1), y, 0.6), "dnn")
    marks = analysis_store.significance_to_best(wh, [ra, rb, rc], n_boot=200)
    assert marks["level"].to_list() == pytest.approx([0.975] * 3)
    assert marks["n_boot"].to_list() == [1600] * 3  # said, not hidden
    capped = analysis_store.significance_to_best(wh, [ra, rb, rc], n_boot=200, level=0.99999)
    assert capped["n_boot"].to_list() == [analysis_store.BONFERRONI_BOOT] * 3  # not 8 million
    # 200 draws left 2.5 beyond each 98.75% bound: each interval takes enough for 20 (1,600)
    for run, low, high in marks.select("run_id", "ua_low", "ua_high").rows()[1:]:
        c = analysis_store.compare_runs(wh, run, ra, n_boot=1600, level=0.975)
        assert (low, high) == (c.ua.low, c.ua.high)
        narrow = analysis_store.compare_runs(wh, run, ra, n_boot=200, level=0.95)
        assert low <= narrow.ua.low and high >= narrow.ua.high


def test_compare_refuses_runs_with_other_classes(wh, two_runs):
    utts, *_ = two_runs
    other = ["a", "b", "c"]
    wh.execute("UPDATE labels SET emotion = CASE emotion WHEN 'ang' THEN 'a' WHEN 'neu' "
               "THEN 'b' ELSE 'c' END")  # fmt: skip
    relabelled = utts.with_columns(emotion=pl.col("emotion").replace(
        {"ang": "a", "neu": "b", "sad": "c"}))  # fmt: skip
    rc = _store(wh, relabelled, np.full((len(utts), 3), 1 / 3), "dnn", classes=other)
    with pytest.raises(SercapError, match="different classes") as info:
        analysis_store.compare_runs(wh, two_runs[4], rc)
    assert "\n" not in str(info.value)
    with pytest.raises(SercapError, match="no run"):
        analysis_store.compare_runs(wh, two_runs[4], "nope")


def test_coverage_and_abstain_threshold_from_stored_predictions(wh, two_runs, no_refit):
    _, y, pa, _, ra, _ = two_runs
    curve = analysis_store.coverage_curve(wh, ra, coverages=[1.0, 0.5])
    assert curve["ua"][0] == pytest.approx(get_run(wh, ra)["ua"])
    ref = analysis.coverage_curve(y, pa, coverages=[1.0, 0.5])
    np.testing.assert_allclose(curve["accuracy"].to_numpy(), ref["accuracy"].to_numpy())
    t = analysis_store.abstain_threshold(wh, ra, 0.5)
    assert (analysis.abstain(pa, t) >= 0).sum() == pytest.approx(len(y) / 2, abs=1)
    with pytest.raises(SercapError, match="coverage"):
        analysis_store.abstain_threshold(wh, ra, 0.0)


def test_compare_refuses_runs_that_label_utterances_differently(wh, two_runs):
    utts, y, pa, *_ = two_runs
    wh.execute("UPDATE labels SET emotion = CASE emotion WHEN 'ang' THEN 'neu' WHEN 'neu' "
               "THEN 'ang' ELSE 'sad' END")  # fmt: skip
    swapped = utts.with_columns(emotion=pl.col("emotion").replace({"ang": "neu", "neu": "ang"}))
    rc = _store(wh, swapped, pa, "dnn")  # same classes, other labels (another label map)
    with pytest.raises(SercapError, match="label some utterances differently"):
        analysis_store.compare_runs(wh, two_runs[4], rc)


def test_the_public_compare_refuses_a_run_against_itself(wh, two_runs):
    """`sercap compare RUN RUN` printed a table of zeros and "within noise"."""
    import sercap

    ra = two_runs[4]
    with pytest.raises(sercap.BadParameterError, match=rf"are the same run, {ra}; compare two"):
        sercap.compare_runs(wh, ra, ra[:-2])  # a unique prefix names the same run
