"""sercap.analysis against hand computations and numpy/scipy/sklearn references."""

import doctest

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score

import sercap.analysis as an


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(an).failed == 0


def test_ccc_by_hand_and_pearson_mae_against_scipy() -> None:
    rng = np.random.default_rng(1)
    t = rng.normal(size=50)
    p = 0.5 * t + 0.3 + rng.normal(scale=0.4, size=50)
    # Hand formula, population moments.
    cov = np.mean((t - t.mean()) * (p - p.mean()))
    hand = 2 * cov / (np.var(t) + np.var(p) + (t.mean() - p.mean()) ** 2)
    assert an.ccc(t, p) == pytest.approx(hand)
    assert an.ccc(t, p) < an.pearson(t, p)  # bias and scale cost concordance, not correlation
    assert an.pearson(t, p) == pytest.approx(stats.pearsonr(t, p).statistic)
    assert an.mae(t, p) == pytest.approx(np.mean(np.abs(t - p)))
    assert an.ccc(t, np.full(50, 0.2)) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(an.pearson(t, np.full(50, 0.2)))
    with pytest.raises(ValueError):
        an.ccc([1.0], [1.0, 2.0])


def test_ua_and_f1_match_sklearn() -> None:
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    assert an.unweighted_accuracy(y, p, 4) == pytest.approx(balanced_accuracy_score(y, p))
    assert an.macro_f1(y, p, 4) == pytest.approx(f1_score(y, p, average="macro"))


def test_paired_bootstrap_matches_a_plain_reference_on_a_fixed_seed() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 40)
    a = np.where(rng.random(40) < 0.8, y, rng.integers(0, 3, 40))
    b = np.where(rng.random(40) < 0.5, y, rng.integers(0, 3, 40))
    for metric, fn in (
        ("ua", balanced_accuracy_score),
        (
            "macro_f1",
            lambda t, q: f1_score(t, q, labels=np.unique(t), average="macro", zero_division=0),
        ),  # fmt: skip
    ):
        ci = an.paired_bootstrap(y, a, b, n_classes=3, metric=metric, n_boot=60, seed=7)
        draw = np.random.default_rng(7).integers(0, 40, size=(60, 40))
        diffs = [fn(y[i], a[i]) - fn(y[i], b[i]) for i in draw]
        low, high = np.percentile(diffs, [2.5, 97.5])
        assert ci.difference == pytest.approx(fn(y, a) - fn(y, b))
        assert (ci.low, ci.high) == pytest.approx((low, high))
        assert ci.low < ci.difference < ci.high
    same = an.paired_bootstrap(y, a, a, n_boot=50)
    assert (same.difference, same.low, same.high, same.within_noise) == (0.0, 0.0, 0.0, True)
    assert an.paired_bootstrap(y, a, b, seed=1) == an.paired_bootstrap(y, a, b, seed=1)


def test_speaker_bootstrap_resamples_whole_speakers_against_a_plain_reference() -> None:
    """With groups, each draw takes whole speakers (a cluster bootstrap); the interval is
    computed from the drawn speakers' pooled utterances, as a plain loop does."""
    rng = np.random.default_rng(5)
    speakers = np.repeat(["s3", "s1", "s2", "s5", "s4"], 12)  # unsorted on purpose
    y = rng.integers(0, 3, speakers.size)
    good = np.isin(speakers, ["s1", "s2", "s3"])  # A is much better on three speakers only
    a = np.where(good | (rng.random(y.size) < 0.5), y, (y + 1) % 3)
    b = np.where(rng.random(y.size) < 0.6, y, (y + 2) % 3)
    names = np.unique(speakers)
    for metric, fn in (
        ("ua", balanced_accuracy_score),
        (
            "macro_f1",
            lambda t, q: f1_score(t, q, labels=np.unique(t), average="macro", zero_division=0),
        ),  # fmt: skip
    ):
        ci = an.paired_bootstrap(
            y, a, b, n_classes=3, metric=metric, n_boot=80, seed=2, groups=speakers
        )
        draw = np.random.default_rng(2).integers(0, names.size, size=(80, names.size))
        diffs = []
        for row in draw:
            i = np.concatenate([np.flatnonzero(speakers == names[j]) for j in row])
            diffs.append(fn(y[i], a[i]) - fn(y[i], b[i]))
        assert (ci.low, ci.high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
        assert ci.difference == pytest.approx(fn(y, a) - fn(y, b))
        assert (ci.unit, ci.n_units) == ("speaker", 5)
    by_utterance = an.paired_bootstrap(y, a, b, n_boot=400, seed=2)
    by_speaker = an.paired_bootstrap(y, a, b, n_boot=400, seed=2, groups=speakers)
    assert by_utterance.unit == "utterance" and by_utterance.n_units == y.size
    # the gain lives in three of five speakers: whole speakers vary more than utterances
    assert by_speaker.high - by_speaker.low > by_utterance.high - by_utterance.low
    with pytest.raises(ValueError, match="groups"):
        an.paired_bootstrap(y, a, b, groups=speakers[:-1])
    # one speaker: every resample is the same, a zero-width "significant" interval
    with pytest.raises(ValueError, match="two or more"):
        an.paired_bootstrap(y, a, b, groups=np.zeros(y.size))


def test_the_verdict_interval_spans_the_speaker_and_utterance_ones() -> None:
    """Resampling 3-10 speakers alone excluded 0 in 11-18 % of simulated runs without a
    difference; the span needs both intervals to exclude 0."""
    rng = np.random.default_rng(8)
    speakers = np.repeat(np.arange(4), 30)
    y = rng.integers(0, 3, speakers.size)
    a = np.where(rng.random(y.size) < 0.7, y, (y + 1) % 3)
    b = np.where(rng.random(y.size) < 0.5, y, (y + 2) % 3)
    span, by_speaker, by_utterance = an.speakers_and_utterances(
        y, a, b, speakers, n_classes=3, n_boot=300, seed=4
    )
    assert by_speaker == an.paired_bootstrap(y, a, b, n_classes=3, n_boot=300, seed=4,
                                             groups=speakers)  # fmt: skip
    assert by_utterance == an.paired_bootstrap(y, a, b, n_classes=3, n_boot=300, seed=4)
    assert span.low == min(by_speaker.low, by_utterance.low)
    assert span.high == max(by_speaker.high, by_utterance.high)
    assert span.within_noise == (by_speaker.within_noise or by_utterance.within_noise)
    alone, none, same = an.speakers_and_utterances(y, a, b, np.zeros(y.size), n_classes=3)
    assert none is None and alone == same and alone.unit == "utterance"


def test_mcnemar_counts_exact_and_chi2_against_scipy() -> None:
    y = np.zeros(100, dtype=int)
    a = np.zeros(100, dtype=int)
    b = np.zeros(100, dtype=int)
    a[:10] = 1  # A wrong on 0..9
    b[5:40] = 1  # B wrong on 5..39: only A right on 10..39 (30), only B right on 0..4 (5)
    r = an.mcnemar(y, a, b)
    assert (r.only_a_right, r.only_b_right, r.method) == (30, 5, "chi2")
    assert r.statistic == pytest.approx((25 - 1) ** 2 / 35)
    assert r.p_value == pytest.approx(stats.chi2.sf((25 - 1) ** 2 / 35, 1))
    small = an.mcnemar(y[:20], a[:20], b[:20])  # 10 only-A-right, 5 only-B-right
    assert (small.only_a_right, small.only_b_right, small.method) == (10, 5, "exact")
    assert small.p_value == pytest.approx(stats.binomtest(5, 15, 0.5).pvalue)
    assert an.mcnemar(y, a, a).p_value == 1.0
    # b = c = 13 (chi-square branch): no evidence either way; (|b - c| - 1)^2 gave p = 0.84
    tie = an.mcnemar([0] * 26, [0] * 13 + [1] * 13, [1] * 13 + [0] * 13)
    assert (tie.only_a_right, tie.only_b_right, tie.method) == (13, 13, "chi2")
    assert tie.statistic == 0.0 and tie.p_value == 1.0


def test_entropy_margin_confidence_against_scipy() -> None:
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(5), size=30)
    np.testing.assert_allclose(an.entropy(p), stats.entropy(p, axis=1))
    np.testing.assert_allclose(an.entropy(p, normalise=True), stats.entropy(p, axis=1) / np.log(5))
    s = np.sort(p, axis=1)
    np.testing.assert_allclose(an.margin(p), s[:, -1] - s[:, -2])
    np.testing.assert_allclose(an.confidence(p, "max"), s[:, -1])
    with pytest.raises(ValueError):
        an.confidence(p, "nope")


def test_coverage_curve_and_abstain_by_hand() -> None:
    y = np.array([0, 1, 1, 0, 2, 2])
    p = np.array(
        [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.6, 0.2, 0.2],
         [0.3, 0.3, 0.4], [0.1, 0.2, 0.7]]
    )  # fmt: skip
    curve = an.coverage_curve(y, p, coverages=[1.0, 0.5])
    # all: rows 2 and 4 wrong? row 4 predicts 2 (right), row 2 predicts 0 (wrong) -> 5/6
    assert curve["accuracy"].to_list() == pytest.approx([5 / 6, 1.0])
    assert curve["ua"].to_list()[0] == pytest.approx(np.mean([1.0, 0.5, 1.0]))
    assert curve["n_kept"].to_list() == [6, 3]  # 0.9, 0.8, 0.7 kept
    assert curve["threshold"].to_list()[1] == pytest.approx(0.7)
    # Uninformative confidence order: a curve that rises means confident = right here.
    full = an.coverage_curve(y, p)
    assert full.height == 19 and full["accuracy"][-1] == 1.0
    t = an.threshold_for_coverage(p, 0.5)
    assert (an.abstain(p, t) >= 0).sum() == 3
    assert an.abstain(p, t).tolist() == [0, 1, -1, -1, -1, 2]


def test_group_scores_and_worst_gap() -> None:
    y = np.array([0, 1, 0, 1, 0, 1, 0, 0])
    p = np.array([0, 1, 1, 1, 0, 0, 0, 1])
    g = ["F", "F", "M", "M", "s3", "s3", None, None]
    f = an.group_scores(y, p, g)
    by = dict(zip(f["group"], f["ua"], strict=True))
    assert by == {"F": 1.0, "M": 0.5, "s3": 0.5, "?": 0.5}
    assert an.worst_group_gap(y, p, g) == 0.5
    assert f["group"][-1] == "F" and f["gap"][-1] == 0.0


def test_permutation_importance_of_an_ignored_family_is_zero() -> None:
    rng = np.random.default_rng(5)
    n = 120
    y = rng.integers(0, 3, n)
    cols = ["mfcc_01_mean", "mfcc_02_mean", "f0_hz_mean", "f0_hz_std"]
    X = np.column_stack([y + rng.normal(0, 0.3, n), y + rng.normal(0, 0.3, n),
                         rng.normal(size=n), rng.normal(size=n)])  # fmt: skip
    model = LogisticRegression(max_iter=500).fit(X[:, :2], y)  # f0 columns never seen

    def predict_proba(A):
        return model.predict_proba(A[:, :2])

    groups = an.column_families(cols)
    assert groups == {"mfcc": cols[:2], "f0_hz": cols[2:]}
    imp = an.permutation_importance(predict_proba, X, y, groups, columns=cols, n_repeats=4)
    by = dict(zip(imp["group"], imp["importance"], strict=True))
    assert by["f0_hz"] == 0.0
    assert by["mfcc"] > 0.3
    assert imp["group"][0] == "mfcc"
    # A model that sees the noise columns too: their importance is near zero, not exactly.
    full = LogisticRegression(max_iter=500).fit(X, y)
    imp = an.permutation_importance(full.predict_proba, X, y, groups, columns=cols, n_repeats=4)
    assert abs(dict(zip(imp["group"], imp["importance"], strict=True))["f0_hz"]) < 0.05
    with pytest.raises(ValueError, match="no column"):
        an.permutation_importance(predict_proba, X, y, {"x": ["nope"]}, columns=cols)


def test_coverage_and_importance_plots_write_pngs(tmp_path) -> None:
    from sercap.plots import coverage_png, importance_png

    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 40)
    curve = an.coverage_curve(y, rng.dirichlet(np.ones(3), size=40))
    out = coverage_png({"svm": curve.to_dict(as_series=False)}, tmp_path / "c.png", n_classes=3)
    out2 = importance_png(["mfcc", "f0_hz", "rms"], [0.3, 0.0, -0.01], tmp_path / "i.png", top=2,
                          std=[0.02, 0.0, 0.01])  # fmt: skip
    for path in (out, out2):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_permutation_importance_scores_stacked_copies_like_one_call_per_copy() -> None:
    """Batching shuffled copies into few predict_proba calls gives exactly what one call per
    copy gave (same permutations, same UA drops), and makes far fewer calls."""
    from sercap.analysis import _confusion, _ua_f1, permutation_importance

    rng = np.random.default_rng(5)
    X = rng.normal(size=(37, 6))
    y = (X[:, 0] + 0.5 * X[:, 2] > 0).astype(int) + (X[:, 4] > 1).astype(int)
    weights = rng.normal(size=(6, 3))
    calls = []

    def model(A: np.ndarray) -> np.ndarray:
        calls.append(len(A))
        z = A @ weights
        return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)

    groups = {"a": ["x0"], "b": ["x1", "x3"], "c": ["x2", "x4", "x5"]}
    columns = [f"x{i}" for i in range(6)]
    got = permutation_importance(model, X, y, groups, columns=columns, n_repeats=4, seed=3)
    assert len(calls) <= 3  # the class count, the baseline, then all copies at once

    def ua(A):
        return _ua_f1(_confusion(y, model(A).argmax(axis=1), 3))[0]

    reference = np.random.default_rng(3)
    base = ua(X)
    for name, cols in groups.items():
        idx = [columns.index(c) for c in cols]
        drops = []
        for _ in range(4):
            shuffled = X.copy()
            shuffled[:, idx] = X[reference.permutation(len(y))][:, idx]
            drops.append(base - ua(shuffled))
        row = got.filter(pl.col("group") == name)
        assert row["importance"].item() == pytest.approx(np.mean(drops), abs=1e-12)
        assert row["std"].item() == pytest.approx(np.std(drops), abs=1e-12)
    # A small chunk still gives the same numbers, in more calls.
    calls.clear()
    small = permutation_importance(
        model, X, y, groups, columns=columns, n_repeats=4, seed=3, chunk_bytes=X.nbytes * 5
    )
    assert len(calls) == 2 + 3  # 12 copies, 5 per call
    assert small.equals(got)


def test_coverage_ties_keep_their_stored_order_despite_float32_noise() -> None:
    """Equal stored confidences, renormalised from float32 rows, differed by rounding noise,
    and that noise decided which of the tied predictions were kept."""
    from sercap.analysis import _proba, coverage_curve

    # stored float32 rows that sum to 1 only up to rounding: the same top probability
    proba = np.array(
        [[0.362, 0.338, 0.3], [0.362, 0.338, 0.30000007], [0.362, 0.338, 0.29999995],
         [0.362, 0.338, 0.3]], dtype=np.float32,
    )  # fmt: skip
    assert len(set(_proba(proba).max(1).tolist())) > 1  # renormalised: no longer equal
    curve = coverage_curve([0, 1, 0, 1], proba, coverages=[0.5])
    # kept: the first two rows, as stored (row 0 right, row 1 wrong)
    assert curve["accuracy"].to_list() == [0.5]


def test_the_bootstrap_draws_in_blocks_the_numbers_of_one_matrix(monkeypatch) -> None:
    """Resamples are drawn a block at a time (a (1000, n) matrix of indices was 80 MB per
    array at 10k utterances): the interval is the one of the single matrix the docstring
    describes, whatever the block size, for UA and for any score."""
    import sercap.analysis as analysis
    from sercap.evaluate import paired_bootstrap_interval

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 500)
    a = np.where(rng.random(500) < 0.6, y, rng.integers(0, 4, 500))
    b = np.where(rng.random(500) < 0.65, y, rng.integers(0, 4, 500))
    draws = np.random.default_rng(0).integers(0, 500, size=(250, 500))
    by_hand = [
        analysis.unweighted_accuracy(y[i], a[i], 4) - analysis.unweighted_accuracy(y[i], b[i], 4)
        for i in draws
    ]
    hand = np.percentile(by_hand, [2.5, 97.5])
    accuracy = lambda t, p: float((t == p).mean())  # noqa: E731
    intervals = []
    for block in (7, 100, 1000):
        monkeypatch.setattr(analysis, "BOOT_BLOCK", block)
        ci = analysis.paired_bootstrap(y, a, b, n_classes=4, n_boot=250)
        assert np.allclose([ci.low, ci.high], hand, rtol=0, atol=1e-12)
        intervals.append(paired_bootstrap_interval(accuracy, y, a, b, n_boot=250))
    assert intervals[0] == intervals[1] == intervals[2]
