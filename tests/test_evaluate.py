import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from sercap.data import Dataset
from sercap.errors import SercapError
from sercap.evaluate import check_speaker_independent, inner_splits, outer_splits, score


def _dataset(speakers, folds, y=None) -> Dataset:
    n = len(speakers)
    return Dataset(
        utt_ids=np.array([f"u{i}" for i in range(n)]),
        X=np.zeros((n, 2), np.float32),
        y=np.zeros(n, np.int64) if y is None else np.asarray(y),
        classes=["a", "b"],
        speakers=np.asarray(speakers),
        folds=np.asarray(folds),
        corpus="toy",
        label_map="emodb7",
        protocol="leave-one-speaker-out",
        input_kind="tabular",
    )


def test_score_matches_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, 200))
    m = score(y_true, y_pred, 4)
    assert m.ua == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m.wa == pytest.approx(accuracy_score(y_true, y_pred))
    assert m.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m.confusion == confusion_matrix(y_true, y_pred).tolist()


def test_score_fixed_arrays() -> None:
    # class 0: 2/2 right, class 1: 1/2 right, class 2: 0/1 → UA = (1 + .5 + 0) / 3
    m = score(np.array([0, 0, 1, 1, 2]), np.array([0, 0, 1, 0, 1]), 3)
    assert m.ua == pytest.approx(0.5)
    assert m.wa == pytest.approx(0.6)
    assert m.confusion == [[2, 0, 0], [1, 1, 0], [0, 1, 0]]


def test_score_ignores_classes_absent_from_a_fold() -> None:
    m = score(np.array([0, 0, 1]), np.array([0, 2, 1]), 3)
    assert m.ua == pytest.approx((0.5 + 1.0) / 2)


def test_outer_splits_never_share_a_speaker() -> None:
    speakers = ["s1", "s1", "s2", "s3", "s3", "s4"]
    data = _dataset(speakers, ["f1", "f1", "f1", "f2", "f2", "f2"])
    splits = list(outer_splits(data))
    assert [name for name, _, _ in splits] == ["f1", "f2"]
    for _, train, test in splits:
        assert not set(data.speakers[train]) & set(data.speakers[test])
        assert sorted(np.concatenate([train, test])) == list(range(6))


def test_a_speaker_in_two_folds_is_refused() -> None:
    with pytest.raises(SercapError, match="speaker 's1' is in folds"):
        check_speaker_independent(np.array(["s1", "s1"]), np.array(["f1", "f2"]))


def test_single_fold_is_refused() -> None:
    with pytest.raises(SercapError, match="single fold"):
        list(outer_splits(_dataset(["s1", "s1"], ["f1", "f1"])))


def test_inner_splits_group_by_speaker_and_cover_all_rows() -> None:
    speakers = np.repeat([f"s{i}" for i in range(6)], 5)
    data = _dataset(speakers, speakers)
    seen = []
    for _, train, valid in inner_splits(data, n_splits=3, seed=1):
        assert not set(speakers[train]) & set(speakers[valid])
        seen.extend(valid)
    assert sorted(seen) == list(range(30))
    with pytest.raises(SercapError, match="two training speakers"):
        list(inner_splits(_dataset(["a", "a"], ["a", "a"])))


def test_inner_validation_keeps_sessions_apart_under_leave_one_session_out(
    monkeypatch,
) -> None:
    """IEMOCAP's two speakers of a session act the same dialogues: an inner validation
    speaker whose session partner trained the model is not new as the outer test session
    is. Tuning's inner splits and the groups each fold's model gets (early stopping) are
    sessions there, speakers elsewhere."""
    from dataclasses import replace

    import sercap.evaluate as ev

    sessions = np.repeat([f"Ses0{i}" for i in range(1, 6)], 8)
    speakers = np.array([f"{s}{'FM'[i % 2]}" for i, s in enumerate(sessions)])
    data = replace(_dataset(speakers, sessions), protocol="leave-one-session-out")
    train = np.flatnonzero(sessions != "Ses05")
    sub = data.subset(train)
    for _, tr, va in inner_splits(sub, n_splits=3, seed=0):
        assert not set(sub.folds[tr]) & set(sub.folds[va])
    seen = []

    class Spy:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def fit(self, X, y, groups=None, n_classes=None) -> None:
            seen.append(np.asarray(groups))

        def predict_proba(self, X) -> np.ndarray:
            return np.full((len(X), 2), 0.5)

    monkeypatch.setattr("sercap.models.registry.get_model", lambda name: Spy)
    ev.fit_fold(data, "spy", None, train, np.flatnonzero(sessions == "Ses05"))
    assert seen[0].tolist() == sessions[train].tolist()
    # under leave-one-speaker-out, and with one training session, the speaker
    loso = _dataset(speakers, speakers)
    ev.fit_fold(loso, "spy", None, train, np.flatnonzero(sessions == "Ses05"))
    assert seen[1].tolist() == speakers[train].tolist()
    assert data.validation_groups(np.flatnonzero(sessions == "Ses01")).tolist() == [
        "Ses01F", "Ses01M"] * 4  # fmt: skip


def test_paired_bootstrap_ua_matches_a_plain_numpy_loop() -> None:
    from sercap.evaluate import paired_bootstrap_ua

    rng = np.random.default_rng(42)
    n, K = 120, 4
    y = rng.integers(0, K, n)
    a = np.where(rng.random(n) < 0.55, y, rng.integers(0, K, n))
    b = np.where(rng.random(n) < 0.70, y, rng.integers(0, K, n))
    got = paired_bootstrap_ua(y, a, b, K, n_boot=300, seed=7)

    def ua(t, p):
        return np.mean([np.mean(p[t == k] == k) for k in range(K) if np.any(t == k)])

    draws = np.random.default_rng(7)
    diffs = []
    for _ in range(300):
        i = draws.integers(0, n, n)
        diffs.append(ua(y[i], b[i]) - ua(y[i], a[i]))
    np.testing.assert_allclose(got.diff, ua(y, b) - ua(y, a))
    np.testing.assert_allclose([got.low, got.high], np.quantile(diffs, [0.025, 0.975]))
    assert got.low <= got.diff <= got.high
    same = paired_bootstrap_ua(y, a, a, K, n_boot=50)
    assert same.diff == same.low == same.high == 0.0 and same.within_noise
    # by speaker: each replicate draws speakers (sorted ids) with all their utterances
    speakers = np.array([f"s{i % 6}" for i in range(n)])
    by_speaker = paired_bootstrap_ua(y, a, b, K, n_boot=300, seed=7, groups=speakers)
    draws = np.random.default_rng(7)
    diffs = []
    for _ in range(300):
        drawn = draws.integers(0, 6, 6)
        i = np.concatenate([np.flatnonzero(speakers == f"s{g}") for g in drawn])
        diffs.append(ua(y[i], b[i]) - ua(y[i], a[i]))
    low, high = np.quantile(diffs, [0.025, 0.975])  # the span of both intervals
    np.testing.assert_allclose(
        [by_speaker.low, by_speaker.high], [min(low, got.low), max(high, got.high)]
    )
    assert by_speaker.unit == "speaker and utterance" and got.unit == "utterance"
    assert by_speaker.diff == got.diff
    from sercap.evaluate import paired_bootstrap_interval

    with pytest.raises(ValueError, match="two or more"):  # one speaker: one possible draw
        paired_bootstrap_interval(ua, y, a, b, n_boot=10, groups=np.zeros(n))
    one = paired_bootstrap_ua(y, a, b, K, n_boot=300, seed=7, groups=np.zeros(n))
    assert one.unit == "utterance" and (one.low, one.high) == (got.low, got.high)
    perfect = paired_bootstrap_ua(y, a, y, K, n_boot=200)
    assert perfect.low > 0 and not perfect.within_noise


def test_train_tuned_and_compare_give_one_interval_for_the_same_pair() -> None:
    """`train --tuned` (evaluate) and `compare` (analysis) draw the same resamples: the
    generic interval, with UA as its score, is compare's to the last digit."""
    from sercap.analysis import speakers_and_utterances
    from sercap.analysis import unweighted_accuracy as ua
    from sercap.evaluate import paired_bootstrap_interval, paired_bootstrap_ua

    rng = np.random.default_rng(3)
    n, K = 90, 3
    y = rng.integers(0, K, n)
    a = np.where(rng.random(n) < 0.5, y, rng.integers(0, K, n))
    b = np.where(rng.random(n) < 0.7, y, rng.integers(0, K, n))
    speakers = np.repeat(np.arange(5), 18)
    span, by_speaker, by_utterance = speakers_and_utterances(
        y, b, a, speakers, n_classes=K, n_boot=200, seed=5
    )
    tuned = paired_bootstrap_ua(y, a, b, K, n_boot=200, seed=5, groups=speakers)
    assert (tuned.low, tuned.high, tuned.diff) == (span.low, span.high, span.difference)

    def score(t, p):
        return ua(t, p, K)

    for groups, ci in ((None, by_utterance), (speakers, by_speaker)):
        low, high = paired_bootstrap_interval(score, y, a, b, n_boot=200, seed=5, groups=groups)
        np.testing.assert_allclose([low, high], [ci.low, ci.high], atol=1e-12)


def test_a_fold_with_one_training_class_is_named_before_any_fit() -> None:
    """Every fold's model said "the training data holds only one class", naming neither
    the fold nor the class."""
    from sercap.evaluate import cross_validate

    # s1 has ang and sad, s2 only ang: the fold testing s1 trains on ang alone
    data = Dataset(
        X=np.arange(8, dtype=np.float32).reshape(4, 2),
        y=np.array([0, 1, 0, 0]),
        classes=["ang", "sad"],
        speakers=np.array(["s1", "s1", "s2", "s2"]),
        folds=np.array(["s1", "s1", "s2", "s2"]),
        utt_ids=np.array(["a", "b", "c", "d"]),
        corpus="toy",
        label_map="toy",
        protocol="leave-one-speaker-out",
        input_kind="tabular",
    )
    with pytest.raises(SercapError, match=r"fold s1: its training part holds only class 'ang'"):
        cross_validate(data, "svm", progress=False)
    # a manifest corpus has one label map: the advice is the manifest's rows, not --labels
    from dataclasses import replace

    with pytest.raises(SercapError, match="drop their rows from the manifest") as caught:
        cross_validate(replace(data, label_map="manifest"), "svm", progress=False)
    assert "--labels" not in str(caught.value)


def test_each_fold_says_a_line_where_no_bar_shows() -> None:
    """In a log file `train svm` on IEMOCAP printed nothing for 12 minutes."""
    import re

    from sercap.evaluate import cross_validate

    rng = np.random.default_rng(0)
    speakers = np.repeat(["s1", "s2", "s3"], 20)
    y = np.tile([0, 1], 30)
    data = _dataset(speakers, speakers, y)
    data.X = (y[:, None] + rng.normal(0, 0.5, (60, 2))).astype(np.float32)
    lines: list[str] = []
    result = cross_validate(data, "svm", progress=False, say=lines.append)
    assert len(lines) == 3
    for k, (line, fold) in enumerate(zip(lines, ["s1", "s2", "s3"], strict=True)):
        found = re.fullmatch(
            rf"  svm fold {fold} \({k + 1}/3\): UA (\d\.\d{{3}}), fit \d+\.\d s", line
        )
        assert found, line
        assert float(found.group(1)) == pytest.approx(result.fold_metrics[k].ua, abs=5e-4)


def test_a_data_fingerprint_follows_labels_recordings_and_segments() -> None:
    """What `bench --resume`, `predict` and `tune` compare to know a run's data is today's."""
    from sercap.evaluate import fingerprint_of

    data = _dataset(["s1", "s1", "s2"], ["s1", "s1", "s2"], y=[0, 1, 0])
    audio = {"u0": "aa:None-None", "u1": "bb:None-None", "u2": "cc:0.5-1.0"}
    base = fingerprint_of(data, audio)
    assert base == fingerprint_of(data, dict(audio))
    assert fingerprint_of(data, {**audio, "u1": "dd:None-None"}) != base  # recording replaced
    assert fingerprint_of(data, {**audio, "u2": "cc:0.6-1.0"}) != base  # segment moved
    relabelled = _dataset(["s1", "s1", "s2"], ["s1", "s1", "s2"], y=[0, 0, 0])
    assert fingerprint_of(relabelled, audio) != base
    assert fingerprint_of(data, audio, np.array([0, 1])) != base  # a row fewer
    # a file ingest never hashed: no fingerprint (filling it in later changes nothing real)
    assert fingerprint_of(data, {**audio, "u0": None}) is None
    # a model of transcripts does not read the audio
    data.input_kind = "text"
    assert fingerprint_of(data, {**audio, "u1": "dd:None-None"}) == fingerprint_of(data, audio)


def test_notes_on_a_class_of_one_fold_and_a_speaker_of_one_utterance() -> None:
    """A class only one speaker has was scored 0 recall on that speaker's fold without a
    word (never trained on when tested); speaker normalisation turned a speaker's only
    utterance into zeros, also without a word."""
    from dataclasses import replace

    from sercap.evaluate import data_notes

    speakers = np.array(["s1"] * 4 + ["s2"] * 4 + ["s3"])
    y = np.array([0, 0, 1, 2, 0, 0, 1, 1, 0])
    data = _dataset(speakers, speakers, y=y)
    data = replace(data, classes=["a", "b", "c"])
    notes = data_notes(data)
    assert len(notes) == 1 and "class 'c' occurs in fold s1 only" in notes[0]
    X = np.ones((9, 2), np.float32)
    X[8] = 0.0  # s3's one utterance, standardised by its own statistics
    normed = data_notes(replace(data, speaker_norm=True, X=X))
    assert "made every functional 0 for 1 utterance(s) of s3" in normed[1]
    assert len(data_notes(replace(data, speaker_norm=True, X=np.ones((9, 2))))) == 1
    assert data_notes(replace(data, y=np.zeros(9, int))) == []


def test_a_torch_models_fold_shows_its_epochs_under_the_fold_bar(capsys) -> None:
    """The fold bar stood still for a whole fold of lstm --quick at IEMOCAP's size (five
    minutes): the folds' torch models now show their epochs under it."""
    from sercap.evaluate import cross_validate

    rng = np.random.default_rng(0)
    speakers = np.repeat(["s1", "s2", "s3"], 12)
    y = np.tile([0, 1], 18)
    data = _dataset(speakers, speakers, y)
    data.X = (y[:, None] + rng.normal(0, 0.5, (36, 4))).astype(np.float32)
    params = {"epochs": 2, "n_seeds": 1, "batch_size": 8}
    cross_validate(data, "dnn", params, progress=True)
    shown = capsys.readouterr().err
    assert "dnn folds" in shown and "epoch" in shown.replace("dnn folds", ""), shown[-300:]
    cross_validate(data, "dnn", params, progress=False)
    assert capsys.readouterr().err == ""
