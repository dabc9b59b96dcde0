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


def test_a_tuned_run_is_refitted_with_each_folds_own_parameters(wh, monkeypatch) -> None:
    """The final study's parameters saw every speaker: permuting a fold's test speakers on
    a model fitted with them would not be an outer-fold importance."""
    import json

    from sercap.explain import run_importances
    from sercap.models.tabular import SVMModel
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=4))
    fold_params = {"01": {"C": 0.5}, "02": {"C": 2.0}, "03": {"C": 3.0}}
    wh.execute(
        "INSERT INTO runs (run_id, kind, model, corpus, label_map, protocol, feature_set, seed, "
        "params_json, fold_params_json, tuned_from, speaker_norm, started_at) VALUES ('svm-tuned',"
        " 'model', 'svm', 'toy', 'emodb7', 'leave-one-speaker-out', 'default', 0, ?, ?, 'x', "
        "false, now())",
        [json.dumps({"C": 9.0}), json.dumps(fold_params)],
    )
    seen = []
    original = SVMModel.fit
    monkeypatch.setattr(SVMModel, "fit", lambda self, *a, **k: seen.append(self.params["C"])
                        or original(self, *a, **k))  # fmt: skip
    run_importances(wh, "svm-tuned", n_repeats=1)
    assert seen == [0.5, 2.0, 3.0]  # each fold's own, never the final study's 9.0
    wh.execute("UPDATE runs SET fold_params_json = ?", [json.dumps({"01": {"C": 0.5}})])
    with pytest.raises(SercapError, match=r"no tuned parameters for outer fold\(s\) 02, 03"):
        run_importances(wh, "svm-tuned", n_repeats=1)
    wh.execute("UPDATE runs SET fold_params_json = NULL")  # stored before runs kept them
    with pytest.raises(SercapError, match="stores no per-fold parameters"):
        run_importances(wh, "svm-tuned", n_repeats=1)
