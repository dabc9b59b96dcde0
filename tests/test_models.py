"""Model interface, registry and tabular models on small synthetic data (seconds on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from sercap.errors import BadParameterError, SercapError
from sercap.models import MODELS, get_model, load_model, model_names
from sercap.models import tabular as tabular_module
from sercap.models.base import class_weights, expand_proba, inner_split, unweighted_accuracy
from sercap.models.tabular import TreesVoteModel

TABULAR = ["svm", "rf", "xgb", "lgbm", "trees"]
# Small but real settings: every model still has to learn the blobs below.
FAST = {
    "svm": {},
    "rf": {"n_estimators": 60},
    "xgb": {"n_estimators": 60},
    "lgbm": {"n_estimators": 60, "min_child_samples": 5},
    "trees": {"rf__n_estimators": 40, "xgb__n_estimators": 40, "lgbm__n_estimators": 40},
}


def blobs(
    n: int = 240, k: int = 4, d: int = 12, seed: int = 0, nan_rate: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian blobs (class c shifted along feature c), some NaN, 12 speakers."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(n, d)) + 3.0 * np.eye(k, d)[y]
    X[rng.random(X.shape) < nan_rate] = np.nan
    groups = rng.integers(0, 12, n)
    return X.astype(np.float32), y, groups


def split(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return perm[: int(0.7 * n)], perm[int(0.7 * n) :]


# ----------------------------------------------------------------------------- registry
def test_registry_names_and_kinds() -> None:
    assert list(MODELS) == [
        "svm",
        "rf",
        "xgb",
        "lgbm",
        "trees",
        "dnn",
        "lstm",
        "cnn",
        "resnet18",
        "resnet34",
        "text-lr",
        "text-svm",
        "text-cnn",
        "fusion",
        "early-fusion",
    ]
    assert model_names("tabular") == ["svm", "rf", "xgb", "lgbm", "trees", "dnn"]
    assert model_names("sequence") == ["lstm"]
    assert model_names("image") == ["cnn", "resnet18", "resnet34"]
    assert model_names("text") == ["text-lr", "text-svm", "text-cnn"]
    assert model_names("multimodal") == ["fusion", "early-fusion"]
    for name, cls in MODELS.items():
        assert get_model(name) is cls and cls.name == name
    assert get_model("dnn").default_columns is None  # all functionals, as the svm
    assert get_model("svm").default_columns is None


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(SercapError, match=r"unknown model 'foo'; choose one of: svm, rf, xgb"):
        get_model("foo")
    with pytest.raises(SercapError, match="unknown input kind"):
        model_names("video")


def test_unknown_parameter_is_a_clear_error() -> None:
    message = r"^svm: unknown parameter 'foo' \(known: C, class_weight"
    with pytest.raises(SercapError, match=message):
        get_model("svm")({"foo": 1})
    with pytest.raises(SercapError, match="trees: unknown parameter 'rf__foo'"):
        TreesVoteModel({"rf__foo": 1})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("svm", {"C": "ten"}, "svm: C must be a number, got 'ten'"),
        ("svm", {"C": None}, "svm: C must be a number, got None"),
        ("rf", {"n_estimators": "a"}, "rf: n_estimators must be a number, got 'a'"),
        ("xgb", {"max_depth": True}, "xgb: max_depth must be a number, got True"),
        ("cnn", {"deltas": "yes"}, "cnn: deltas must be true or false, got 'yes'"),
        ("trees", {"lgbm__num_leaves": [3]}, "trees: lgbm__num_leaves must be a number"),
        ("lgbm", {"n_estimators": 2.5}, "lgbm: n_estimators must be a whole number, got 2.5"),
        ("dnn", {"dropout": 1.5}, "dnn: dropout must be in [0, 1), got 1.5"),
        ("cnn", {"dropout": -0.1}, "cnn: dropout must be in [0, 1), got -0.1"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_one_line_error(name, params, message) -> None:
    with pytest.raises(BadParameterError) as err:
        get_model(name)(params)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "params", "words"),
    [
        ("rf", {"max_features": 5.0}, "max_features"),
        ("trees", {"rf__max_features": "banana"}, "max_features"),
    ],
)
def test_a_value_the_library_refuses_is_a_one_line_error(name, params, words) -> None:
    X = np.random.default_rng(0).normal(size=(30, 4))
    y = np.arange(30) % 3
    with pytest.raises(BadParameterError) as err:
        get_model(name)(params).fit(X, y)
    text = str(err.value)
    assert text.startswith(f"{'rf' if name == 'trees' else name}: a parameter")
    assert words in text and "\n" not in text


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("lgbm", {"num_leaves": 1}, "lgbm: num_leaves must be in [2, 131072], got 1"),
        ("lgbm", {"subsample": 1.5}, "lgbm: subsample must be in (0, 1], got 1.5"),
        ("xgb", {"learning_rate": 0}, "xgb: learning_rate must be greater than 0, got 0"),
        ("xgb", {"n_estimators": 0}, "xgb: n_estimators must be at least 1, got 0"),
        ("trees", {"lgbm__num_leaves": 0}, "trees: lgbm__num_leaves must be in [2, 131072]"),
        ("rf", {"n_estimators": 0}, "rf: n_estimators must be at least 1, got 0"),
        ("trees", {"rf__min_samples_leaf": 0}, "trees: rf__min_samples_leaf must be at least 1"),
        ("svm", {"C": 0}, "svm: C must be greater than 0, got 0"),
        # torch raised these inside the first fit, with a traceback
        ("dnn", {"lr": -1}, "dnn: lr must be greater than 0, got -1"),
        ("dnn", {"weight_decay": -1}, "dnn: weight_decay must be at least 0, got -1"),
        ("lstm", {"hidden_size": 0}, "lstm: hidden_size must be at least 1, got 0"),
        ("lstm", {"num_layers": 0}, "lstm: num_layers must be at least 1, got 0"),
        ("cnn", {"channels": 0}, "cnn: channels must be at least 1, got 0"),
        # and took these without a word
        ("dnn", {"valid_fraction": 1.5}, "dnn: valid_fraction must be in [0, 1), got 1.5"),
        ("dnn", {"patience": -1}, "dnn: patience must be at least 0, got -1"),
        ("resnet34", {"momentum": 5}, "resnet34: momentum must be in [0, 1), got 5"),
        ("lstm", {"frame_stride": 0}, "lstm: frame_stride must be at least 1, got 0"),
        ("cnn", {"window_stride": -5}, "cnn: window_stride must be at least 0, got -5"),
        ("cnn", {"n_masks": -1}, "cnn: n_masks must be at least 0, got -1"),
        ("resnet18", {"stem": "banana"}, "resnet18: stem must be one of ('3x3', '7x7')"),
    ],
)
def test_a_value_out_of_range_is_refused_before_any_fit(name, params, message, capfd) -> None:
    """In sercap's words and before any data is read: LightGBM would print its own
    "[LightGBM] [Fatal]" line on stderr first, and word the check as C++ source."""
    with pytest.raises(BadParameterError) as err:
        get_model(name)(params)
    assert str(err.value).startswith(message)
    assert "Fatal" not in capfd.readouterr().err


def test_regressors_share_their_classifiers_ranges() -> None:
    from sercap.models.regressors import (
        DNNRegressor,
        LGBMRegressorModel,
        SVRRegressor,
        TreesRegressor,
        _torch_regressor,
    )

    with pytest.raises(BadParameterError, match="dnn regressor: lr must be greater than 0"):
        DNNRegressor({"lr": -1})
    with pytest.raises(BadParameterError, match="lstm regressor: hidden_size must be at least"):
        _torch_regressor("lstm")({"hidden_size": 0})
    with pytest.raises(BadParameterError, match="svm regressor: epsilon must be at least 0"):
        SVRRegressor({"epsilon": -1})

    with pytest.raises(BadParameterError, match="lgbm regressor: num_leaves must be in"):
        LGBMRegressorModel({"num_leaves": 1})
    with pytest.raises(BadParameterError, match="trees regressor: xgb__subsample must be in"):
        TreesRegressor({"xgb__subsample": 0})


def test_params_merge_over_defaults() -> None:
    model = get_model("svm")({"C": 10.0}, seed=3, n_jobs=2)
    assert model.params == {"C": 10.0, "gamma": "scale", "class_weight": "balanced"}
    assert (model.seed, model.n_jobs) == (3, 2)
    with pytest.raises(SercapError, match="n_jobs"):
        get_model("svm")(n_jobs=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_search_space_gives_valid_params(name: str) -> None:
    """Real trials and FixedTrial both work; trial names are parameter names, so a study's
    best_params can be passed straight back to the model."""
    cls = get_model(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        params = cls.search_space(trial)
        assert set(params) <= set(cls.default_params())
        assert trial.params == params
        cls(params)
        cls(trial.params)
        assert cls.search_space(optuna.trial.FixedTrial(trial.params)) == params


def test_trees_search_space_is_the_namespaced_union() -> None:
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = TreesVoteModel.search_space(trial)
    for prefix in ("rf", "xgb", "lgbm"):
        member = get_model(prefix)
        keys = {k.split("__", 1)[1] for k in params if k.startswith(prefix + "__")}
        assert keys == set(member.search_space(optuna.create_study().ask()))
    assert TreesVoteModel.default_params()["lgbm__subsample_freq"] == 1


# ----------------------------------------------------------------------------- helpers
def test_inner_split_is_grouped_by_speaker_and_covers_classes() -> None:
    _, y, groups = blobs(n=300)
    tr, va = inner_split(y, groups, 0.2, seed=0)
    assert not set(groups[tr]) & set(groups[va])
    assert len(tr) + len(va) == len(y)
    assert set(y[va]) == set(y)  # the chosen speaker set covers all classes
    assert inner_split(y, groups, 0.2, seed=0)[1].tolist() == va.tolist()


def test_inner_split_without_groups_is_stratified() -> None:
    y = np.repeat(np.arange(3), [10, 20, 30])
    tr, va = inner_split(y, None, 0.2, seed=0)
    assert np.bincount(y[va]).tolist() == [2, 4, 6]
    assert set(y[tr]) == {0, 1, 2}
    assert inner_split(y, None, 0.0, seed=0) is None
    # one speaker only: cannot group, falls back to stratified
    tr, va = inner_split(y, np.zeros(len(y)), 0.2, seed=0)
    assert len(va) == 12


def test_weights_and_column_expansion() -> None:
    y = np.array([0, 0, 0, 2])
    w = class_weights(y, 3)
    assert w.tolist() == pytest.approx([4 / 6, 0.0, 2.0])
    proba = expand_proba(np.array([[0.25, 0.75]]), np.array([0, 2]), 4)
    assert proba.tolist() == [[0.25, 0.0, 0.75, 0.0]]
    assert unweighted_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == 0.75


# ----------------------------------------------------------------------------- tabular models
@pytest.mark.parametrize("name", TABULAR)
def test_tabular_models_learn_with_nan(name: str) -> None:
    X, y, groups = blobs()
    tr, te = split(len(y))
    model = get_model(name)(FAST[name], seed=0).fit(X[tr], y[tr], groups[tr])
    proba = model.predict_proba(X[te])
    assert proba.shape == (len(te), 4) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.array_equal(model.predict(X[te]), proba.argmax(axis=1))
    assert np.mean(model.predict(X[te]) == y[te]) > 0.8  # chance is 0.25


@pytest.mark.parametrize("name", TABULAR)
def test_missing_class_still_gets_a_column(name: str) -> None:
    X, y, groups = blobs()
    keep = y != 1
    model = get_model(name)(FAST[name]).fit(X[keep], y[keep], groups[keep], n_classes=5)
    proba = model.predict_proba(X[:20])
    assert proba.shape == (20, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all(proba[:, [1, 4]] == 0.0)


@pytest.mark.parametrize("name", TABULAR)
def test_reproducible_and_save_load_round_trip(name: str, tmp_path: Path) -> None:
    X, y, groups = blobs(n=120)
    a = get_model(name)(FAST[name], seed=7).fit(X, y, groups)
    b = get_model(name)(FAST[name], seed=7).fit(X, y, groups)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    a.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")  # dispatches on the stored name
    assert type(loaded) is type(a) and loaded.params == a.params and loaded.n_classes_ == 4
    np.testing.assert_array_equal(loaded.predict_proba(X), a.predict_proba(X))
    assert type(get_model(name).load(tmp_path / "m")) is type(a)


def test_all_nan_column_and_nan_at_prediction() -> None:
    X, y, groups = blobs(n=120)
    X[:, 5] = np.nan
    for name in ("svm", "rf", "lgbm"):
        model = get_model(name)(FAST[name]).fit(X, y, groups)
        X_test = X[:10].copy()
        X_test[:, :3] = np.nan
        assert np.isfinite(model.predict_proba(X_test)).all()


def test_boosted_trees_early_stopping_on_speaker_split() -> None:
    X, y, groups = blobs(n=240)
    xgb = get_model("xgb")({"n_estimators": 400, "early_stopping_rounds": 10}).fit(X, y, groups)
    assert xgb.estimator_.best_iteration < 399
    lgbm = get_model("lgbm")({"n_estimators": 400, "early_stopping_rounds": 10}).fit(X, y, groups)
    assert lgbm.estimator_.best_iteration_ < 400
    assert np.mean(lgbm.predict(X) == y) > 0.8


def test_thread_counts_follow_n_jobs() -> None:
    X, y, groups = blobs(n=80)
    assert get_model("rf")(FAST["rf"], n_jobs=2).fit(X, y).estimator_[-1].n_jobs == 2
    assert get_model("xgb")(FAST["xgb"], n_jobs=1).fit(X, y).estimator_.n_jobs == 1
    lgbm = get_model("lgbm")(FAST["lgbm"], n_jobs=1).fit(X, y).estimator_
    assert lgbm.n_jobs == 1 and lgbm.verbose == -1 and lgbm.subsample_freq == 1


def test_trees_params_reach_the_members() -> None:
    X, y, groups = blobs(n=80)
    model = TreesVoteModel(FAST["trees"], n_jobs=1).fit(X, y, groups)
    assert model.models_["rf"].params["n_estimators"] == 40
    assert model.models_["xgb"].params["max_depth"] == 4
    mean = np.mean([m.predict_proba(X) for m in model.models_.values()], axis=0)
    np.testing.assert_allclose(model.predict_proba(X), mean)


def test_svm_calibrated_fallback_learns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path used once sklearn drops SVC(probability=True)."""
    monkeypatch.setattr(tabular_module, "_SVC_HAS_PROBABILITY", False)
    X, y, groups = blobs()
    tr, te = split(len(y))
    model = get_model("svm")().fit(X[tr], y[tr])
    assert type(model.estimator_[-1]).__name__ == "CalibratedClassifierCV"
    assert np.mean(model.predict(X[te]) == y[te]) > 0.8


def test_bad_inputs_raise_sercap_errors() -> None:
    X, y, _ = blobs(n=40)
    svm = get_model("svm")()
    with pytest.raises(SercapError, match="not fitted"):
        svm.predict_proba(X)
    with pytest.raises(SercapError, match="2-D"):
        svm.fit(X[:, 0], y)
    with pytest.raises(SercapError, match="labels for"):
        svm.fit(X, y[:-1])
    with pytest.raises(SercapError, match="only one class"):
        svm.fit(X, np.zeros(len(y), dtype=int))
    with pytest.raises(SercapError, match="out of range"):
        svm.fit(X, y, n_classes=2)
    with pytest.raises(SercapError, match="gamma"):
        get_model("svm")({"gamma": "huge"}).fit(X, y)
    svm.fit(X, y)
    with pytest.raises(SercapError, match="features"):
        svm.predict_proba(X[:, :5])
    with pytest.raises(SercapError, match="no saved model"):
        load_model(Path("/nonexistent/model"))


def test_non_finite_parameters_are_refused_in_sercaps_words() -> None:
    """`--params '{"C": NaN}'` reached sklearn ("must be a float in the range (0.0, inf]"),
    after the data was read; `{"C": 1e400}` stored a run with C = Infinity."""
    from sercap.errors import BadParameterError
    from sercap.models.registry import get_model

    for value, shown in ((float("nan"), "nan"), (float("inf"), "inf")):
        with pytest.raises(BadParameterError, match=f"svm: C must be a finite number, got {shown}"):
            get_model("svm")(params={"C": value})


def test_the_registry_table_agrees_with_the_classes_and_loads_them_lazily() -> None:
    """The registry names each class by module and input kind so that `train svm` does not
    import torch (1.3 s) and the boosting libraries; the table must not drift."""
    import subprocess
    import sys

    from sercap.models.registry import FUSION_MODELS, MODELS, TEXT_MODELS, input_kind

    for name in MODELS:
        cls = MODELS[name]
        assert cls.name == name and cls.input_kind == input_kind(name), name
    assert set(TEXT_MODELS) == {n for n in MODELS if MODELS[n].input_kind == "text"}
    assert set(FUSION_MODELS) == {n for n in MODELS if MODELS[n].input_kind == "multimodal"}
    with pytest.raises(BadParameterError, match="unknown model 'nope'"):
        input_kind("nope")
    code = (
        "import sys; from sercap.models.registry import get_model, model_names; "
        "get_model('svm'); model_names('image'); "
        "print(sorted(m for m in ('torch', 'torchvision', 'lightgbm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_lgbm_learns_on_a_training_part_of_a_few_dozen_rows() -> None:
    """With 16 training rows no leaf of min_child_samples=10 could be made: every tree
    stayed a root, each class got its prior (0.5 / 0.5 under balanced weights) and the
    argmax was decided by rounding."""
    from sercap.models.registry import get_model

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 8)
    X = (rng.normal(size=(16, 3)) + 3.0 * y[:, None]).astype(np.float32)
    proba = get_model("lgbm")({}, seed=0).fit(X, y).predict_proba(X)
    assert proba[:, 1].std() > 0.1
    assert (proba.argmax(axis=1) == y).mean() > 0.9
