import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

import sercap.tuning as tune_module
from sercap.data import load_dataset
from sercap.errors import SercapError
from sercap.models.registry import MODELS
from sercap.store import connect
from sercap.tuning import open_storage, run_study, store_best, study_name, tuning_splits
from tests.helpers import add_corpus, add_features, add_frames, add_images

ROOT = Path(__file__).resolve().parents[1]

#: Tiny settings so that every model family tunes in seconds.
TINY = {
    "svm": {},
    "rf": {"n_estimators": 10},
    "xgb": {"n_estimators": 10},
    "lgbm": {"n_estimators": 10},
    "trees": {"rf__n_estimators": 5, "xgb__n_estimators": 5, "lgbm__n_estimators": 5},
    "dnn": {"epochs": 2},
    "lstm": {"epochs": 2},
    "cnn": {"epochs": 1},
    "resnet18": {"epochs": 1},
    "resnet34": {"epochs": 1},
}


@pytest.fixture
def toy(wh):
    utts = add_corpus(wh, n_speakers=4, per_class=3)
    add_features(wh, utts)
    add_frames(wh, utts)
    add_images(wh, utts)
    return wh


def test_tuning_splits_never_touch_the_test_fold(toy) -> None:
    data = load_dataset(toy, "tabular")
    splits = tuning_splits(data, max_folds=None, seed=3)
    assert len(splits) == 4
    for s in splits:
        used = np.concatenate([s.train, s.valid])
        assert not set(data.utt_ids[used]) & set(data.utt_ids[s.outer_test])
        assert not set(data.speakers[s.train]) & set(data.speakers[s.valid])
        assert len(s.valid) and len(s.train)
    assert len(tuning_splits(data, max_folds=2)) == 2


def test_objective_is_given_only_training_rows(toy, monkeypatch, tmp_path) -> None:
    data = load_dataset(toy, "tabular")
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = tune_module.cross_validate

    def spy(data_, model, params, **kwargs):
        seen.extend((train, valid) for _, train, valid in kwargs["splits"])
        return real(data_, model, params, **kwargs)

    monkeypatch.setattr(tune_module, "cross_validate", spy)
    storage = open_storage(None, tmp_path, "s")
    run_study("svm", data, storage, "s", n_trials=2, max_folds=None, progress=False)
    tests = {s.outer_fold: s.outer_test for s in tuning_splits(data, max_folds=None)}
    assert len(seen) == 2 * len(tests)
    for (train, valid), test in zip(seen, list(tests.values()) * 2, strict=True):
        assert not set(data.utt_ids[np.concatenate([train, valid])]) & set(data.utt_ids[test])


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_tunes_and_resumes(toy, tmp_path, model) -> None:
    kind = MODELS[model].input_kind
    data = load_dataset(toy, kind, columns="^mfcc_" if model == "dnn" else None)
    storage = open_storage(None, tmp_path, "study")
    kwargs = dict(max_folds=2, fixed=TINY[model], pruner="none", progress=False)
    study = run_study(model, data, storage, "study", n_trials=2, **kwargs)
    assert len(study.trials) == 2
    study = run_study(model, data, storage, "study", n_trials=1, **kwargs)
    assert len(study.trials) == 3  # resumed, not restarted
    store_best(toy, study, model, data, "journal")
    stored = toy.query("SELECT * FROM tuned_params WHERE model = ?", [model])
    assert stored.height == 1 and 0.0 <= stored["value"][0] <= 1.0
    for key, value in TINY[model].items():
        assert f'"{key}": {value}' in stored["params_json"][0]


def test_pruner_stops_bad_trials(toy, tmp_path) -> None:
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "p")
    study = run_study("svm", data, storage, "p", n_trials=12, pruner="median", max_folds=None,
                      progress=False)  # fmt: skip
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.COMPLETE in states
    assert optuna.trial.TrialState.PRUNED in states
    # per-fold intermediate values were reported for the pruner
    assert all(len(t.intermediate_values) >= 1 for t in study.trials)


def test_bad_storage_is_one_line(tmp_path) -> None:
    with pytest.raises(SercapError, match="neither a storage URL"):
        open_storage("not-a-url", tmp_path, "s")
    with pytest.raises(SercapError, match="--storage"):
        open_storage("nosuchdialect://x", tmp_path, "s")


def test_study_name_separates_corpora_and_feature_sets(toy) -> None:
    data = load_dataset(toy, "tabular")
    assert study_name("xgb", data) == "xgb-toy-emodb7-default-abc123"


def test_two_processes_share_one_journal(tmp_path) -> None:
    wh_dir = tmp_path / "wh"
    wh = connect(wh_dir)
    add_features(wh, add_corpus(wh, n_speakers=4, per_class=3))
    wh.close()
    cmd = [sys.executable, str(ROOT / "cli.py"), "-w", str(wh_dir), "tune", "svm", "--trials", "3",
           "--pruner", "none"]  # fmt: skip
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    journal = wh_dir / "studies" / "svm-toy-emodb7-default-abc123.journal"
    study = optuna.load_study(
        study_name=journal.stem, storage=open_storage(str(journal), wh_dir, "")
    )
    assert len(study.trials) == 6
    assert len({t.number for t in study.trials}) == 6


def test_fold_median_pruner_compares_running_means_at_the_same_fold() -> None:
    from sercap.tuning import FoldMedianPruner

    study = optuna.create_study(direction="maximize", pruner=FoldMedianPruner(3, 1))
    # an easy first fold then harder ones: running means fall over the folds
    for means in ([0.80, 0.70, 0.72], [0.82, 0.74, 0.75], [0.78, 0.66, 0.68], [0.81, 0.72, 0.7]):
        study.add_trial(
            optuna.trial.create_trial(
                value=means[-1],
                intermediate_values=dict(enumerate(means)),
                distributions={},
                params={},
            )
        )
    weak = study.ask()
    weak.report(0.85, 0)  # the best first fold of all: optuna's MedianPruner keeps it forever
    assert not weak.should_prune()  # warm-up: no decision after one fold
    weak.report(0.69, 1)  # below the median 0.71 of the others' means after two folds
    assert weak.should_prune()
    strong = study.ask()
    strong.report(0.75, 0)
    strong.report(0.73, 1)
    assert not strong.should_prune()
    assert not optuna.pruners.MedianPruner(1, 1).prune(study, study.trials[-2])  # the bug


def test_fold_median_pruner_waits_for_startup_trials() -> None:
    from sercap.tuning import FoldMedianPruner

    study = optuna.create_study(direction="maximize", pruner=FoldMedianPruner(5, 0))
    study.add_trial(
        optuna.trial.create_trial(value=0.9, intermediate_values={0: 0.9}, distributions={})
    )
    trial = study.ask()
    trial.report(0.1, 0)
    assert not trial.should_prune()
