"""Classical models on utterance-level feature vectors: svm, rf, xgb, lgbm and their soft vote.

Each model imputes missing values itself from training rows only (pitch functionals are NaN for
an utterance without a voiced frame): svm and rf use the training median; xgb and lgbm keep NaN
and learn a missing-value branch, which carries the "no voiced frame" information.
Thread counts are set from ``n_jobs`` explicitly: LightGBM in particular slows down by an order
of magnitude when its threads compete with other work on a small machine.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import optuna

from sercap._threads import limit_threads
from sercap.errors import BadParameterError
from sercap.models.base import (
    Range,
    SERModel,
    check_labels,
    check_tabular,
    class_weights,
    expand_proba,
    inner_split,
    library_refusals,
)

ESTIMATOR_FILE = "model.joblib"


class TabularModel(SERModel):
    """Shared plumbing: input checks, label remapping to the classes seen, joblib persistence."""

    input_kind: ClassVar[str] = "tabular"

    def _check_on_init(self) -> None:
        if "class_weight" in self.params:  # before any data is read (and before a study exists)
            _check_class_weight(self.name, self.params["class_weight"])

    def fit(
        self,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> Self:
        X = check_tabular(self.name, X)
        y, k = check_labels(self.name, y, len(X), n_classes)
        # Estimators only see the classes present (some refuse gaps like {0, 2, 3});
        # predict_proba maps their columns back to all K classes.
        self.classes_ = np.unique(y)
        y_local = np.searchsorted(self.classes_, y)
        self.n_features_ = X.shape[1]
        with limit_threads(self.n_jobs), library_refusals(self.name):
            self.estimator_ = self._fit_estimator(X, y_local, groups)
        self.n_classes_ = k
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = check_tabular(self.name, X, self.n_features_)
        with limit_threads(self.n_jobs):
            proba = self.estimator_.predict_proba(X)
        return expand_proba(proba, self.classes_, self.n_classes_)

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> Any:
        raise NotImplementedError

    def _sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        if self.params.get("class_weight") != "balanced":
            return None
        return class_weights(y, int(y.max()) + 1)[y]

    def _state_meta(self) -> dict:
        return {"classes": self.classes_.tolist(), "n_features": self.n_features_}

    def _save_state(self, path: Path) -> None:
        joblib.dump(self.estimator_, path / ESTIMATOR_FILE)

    def _load_state(self, path: Path, state: dict) -> None:
        self.estimator_ = joblib.load(path / ESTIMATOR_FILE)
        self.classes_ = np.asarray(state["classes"], dtype=np.int64)
        self.n_features_ = int(state["n_features"])
        self._after_load()

    def _after_load(self) -> None:
        """Re-apply thread counts to a loaded estimator (they were chosen by another process)."""


def _imputer():  # noqa: ANN202 - sklearn object
    from sklearn.impute import SimpleImputer

    # keep_empty_features: a column that is all-NaN in training stays (as 0) so the column count
    # at prediction time matches.
    return SimpleImputer(strategy="median", keep_empty_features=True)


def _check_gamma(gamma: Any) -> Any:
    if isinstance(gamma, bool) or not (
        gamma in ("scale", "auto") or (isinstance(gamma, int | float) and gamma > 0)
    ):
        raise BadParameterError(
            f"svm: gamma must be 'scale', 'auto' or a positive number, got {gamma!r}"
        )
    return gamma


def _check_class_weight(name: str, value: Any) -> str | None:
    if value not in ("balanced", None):
        raise BadParameterError(f"{name}: class_weight must be 'balanced' or null, got {value!r}")
    return value


# ---------------------------------------------------------------------------- svm
_SVC_HAS_PROBABILITY = (
    "probability" in inspect.signature(__import__("sklearn.svm", fromlist=["SVC"]).SVC).parameters
)


#: Random forest ranges (scikit-learn refuses these only inside the fit, in its words).
RF_RANGES: dict[str, Range] = {
    "n_estimators": (1, True, None, False),
    "min_samples_leaf": (1, True, None, False),
    "max_depth": (1, True, None, False),
}


class SVMModel(TabularModel):
    """RBF support vector machine on median-imputed, standardised features."""

    name: ClassVar[str] = "svm"
    batch_invariant: ClassVar[bool] = True
    param_ranges: ClassVar[dict[str, Range]] = {"C": (0, False, None, False)}

    @classmethod
    def default_params(cls) -> dict:
        return {"C": 1.0, "gamma": "scale", "class_weight": "balanced"}

    def _check_on_init(self) -> None:
        super()._check_on_init()
        _check_gamma(self.params["gamma"])

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        # gamma around "scale" = 1/n_features on standardised data (4e-4 for 2500 features).
        return {
            "C": trial.suggest_float("C", 0.1, 100.0, log=True),
            "gamma": trial.suggest_float("gamma", 1e-5, 1e-1, log=True),
        }

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> Any:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        gamma = _check_gamma(self.params["gamma"])
        pipe = make_pipeline(_imputer(), StandardScaler(), self._svc(y, gamma))
        with warnings.catch_warnings():
            # sklearn 1.9 deprecates SVC(probability=True); it still gives libsvm's multiclass
            # Platt scaling, which the reference results were measured with.
            warnings.filterwarnings("ignore", message=".*probability.*", category=FutureWarning)
            pipe.fit(X, y)
        return pipe

    def _svc(self, y: np.ndarray, gamma: Any, use_libsvm_proba: bool | None = None) -> Any:
        from sklearn.svm import SVC

        class_weight = _check_class_weight("svm", self.params["class_weight"])
        use_libsvm_proba = _SVC_HAS_PROBABILITY if use_libsvm_proba is None else use_libsvm_proba
        if use_libsvm_proba:
            return SVC(
                kernel="rbf",
                C=float(self.params["C"]),
                gamma=gamma,
                class_weight=class_weight,
                probability=True,
                random_state=self.seed,
            )
        # sklearn >= 1.11: the same sigmoid calibration on cross-validated decision values.
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold

        n_splits = int(max(2, min(5, np.bincount(y).min())))
        svc = SVC(kernel="rbf", C=float(self.params["C"]), gamma=gamma, class_weight=class_weight)
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.seed)
        return CalibratedClassifierCV(svc, method="sigmoid", cv=cv, ensemble=False)


# ---------------------------------------------------------------------------- rf
class RandomForestModel(TabularModel):
    """Random forest on median-imputed features; balanced class weights."""

    name: ClassVar[str] = "rf"
    batch_invariant: ClassVar[bool] = True
    param_ranges: ClassVar[dict[str, Range]] = RF_RANGES

    @classmethod
    def default_params(cls) -> dict:
        return {
            "n_estimators": 500,
            "max_features": "sqrt",
            "max_depth": None,
            "min_samples_leaf": 1,
            "class_weight": "balanced",
        }

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 1000, log=True),
            # fraction of features per split; "sqrt" of 2500 features is 0.02
            "max_features": trial.suggest_float("max_features", 0.005, 0.5, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 10, log=True),
        }

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> Any:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.pipeline import make_pipeline

        p = self.params
        rf = RandomForestClassifier(
            n_estimators=int(p["n_estimators"]),
            max_features=p["max_features"],
            max_depth=p["max_depth"],
            min_samples_leaf=int(p["min_samples_leaf"]),
            class_weight=_check_class_weight("rf", p["class_weight"]),
            n_jobs=self.n_jobs,
            random_state=self.seed,
        )
        return make_pipeline(_imputer(), rf).fit(X, y)

    def _after_load(self) -> None:
        self.estimator_[-1].set_params(n_jobs=self.n_jobs)


# ---------------------------------------------------------------------------- boosted trees
#: What XGBoost and LightGBM both refuse inside their fit (see ``ModelParams.param_ranges``).
BOOSTED_RANGES: dict[str, Range] = {
    "n_estimators": (1, True, None, False),
    "learning_rate": (0, False, None, False),
    "subsample": (0, False, 1, True),
    "colsample_bytree": (0, False, 1, True),
    "max_bin": (2, True, None, False),
    "reg_lambda": (0, True, None, False),
    "reg_alpha": (0, True, None, False),
    "early_stopping_rounds": (0, True, None, False),
    "valid_fraction": (0, False, 1, False),
}
XGB_RANGES: dict[str, Range] = {
    **BOOSTED_RANGES,
    "max_depth": (0, True, None, False),
    "min_child_weight": (0, True, None, False),
}
LGBM_RANGES: dict[str, Range] = {
    **BOOSTED_RANGES,
    "num_leaves": (2, True, 131072, True),
    "min_child_samples": (0, True, None, False),
    "subsample_freq": (0, True, None, False),
}


#: LightGBM's ``min_child_samples`` in sercap's lgbm defaults (:func:`lgbm_leaf_size`).
LGBM_DEFAULT_LEAF = 10


def lgbm_leaf_size(requested: int, fits: int) -> int:
    """LightGBM's ``min_child_samples`` for a training part where leaves of ``fits`` rows
    can be made: ``requested``, except on a tiny part (``fits`` below the default 10).

    There no leaf of ``requested`` rows could be made: every tree stayed a root, each class
    got its prior (a regressor the mean rating), and the argmax was decided by rounding.
    Elsewhere (EmoDB's and the demo's folds and inner folds) the value, tuned or not, is
    used as it is.

    >>> lgbm_leaf_size(10, 4), lgbm_leaf_size(50, 22), lgbm_leaf_size(3, 4)
    (4, 50, 3)
    """
    if fits < LGBM_DEFAULT_LEAF:
        return min(requested, max(1, fits))
    return requested


class _BoostedModel(TabularModel):
    """Early stopping (off by default) on an inner split of the training rows grouped by
    speaker (by session under leave-one-session-out)."""

    def _split_for_early_stopping(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        if int(self.params["early_stopping_rounds"]) <= 0:
            return None
        split = inner_split(y, groups, float(self.params["valid_fraction"]), self.seed)
        if split is None:
            return None
        tr, va = split
        # The validation rows may only hold classes the training part has seen.
        va = va[np.isin(y[va], np.unique(y[tr]))]
        if len(va) == 0 or len(np.unique(y[tr])) != len(np.unique(y)):
            return None  # the model must still know every training class
        return tr, va, X[tr], X[va]


class XGBModel(_BoostedModel):
    """XGBoost (hist) with balanced sample weights; NaN handled natively."""

    name: ClassVar[str] = "xgb"
    batch_invariant: ClassVar[bool] = True
    param_ranges: ClassVar[dict[str, Range]] = XGB_RANGES

    @classmethod
    def default_params(cls) -> dict:
        return {
            "n_estimators": 200,
            "learning_rate": 0.1,
            "max_depth": 4,
            "min_child_weight": 1.0,
            "subsample": 0.8,
            "colsample_bytree": 0.3,
            "max_bin": 64,  # 4x faster than 256 on ~2500 columns, same accuracy here
            "reg_lambda": 1.0,
            "reg_alpha": 0.0,
            "class_weight": "balanced",
            "early_stopping_rounds": 0,
            "valid_fraction": 0.15,
        }

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 1000, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.1, 10.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.1, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 1.0, log=True),
        }

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> Any:
        from xgboost import XGBClassifier

        p = self.params
        _check_class_weight("xgb", p["class_weight"])
        n_class = int(y.max()) + 1
        kwargs: dict[str, Any] = {
            "n_estimators": int(p["n_estimators"]),
            "learning_rate": float(p["learning_rate"]),
            "max_depth": int(p["max_depth"]),
            "min_child_weight": float(p["min_child_weight"]),
            "subsample": float(p["subsample"]),
            "colsample_bytree": float(p["colsample_bytree"]),
            "max_bin": int(p["max_bin"]),
            "reg_lambda": float(p["reg_lambda"]),
            "reg_alpha": float(p["reg_alpha"]),
            "tree_method": "hist",
            "n_jobs": self.n_jobs,
            "random_state": self.seed,
            "objective": "binary:logistic" if n_class == 2 else "multi:softprob",
            "eval_metric": "logloss" if n_class == 2 else "mlogloss",
        }
        split = self._split_for_early_stopping(X, y, groups)
        if split is None:
            model = XGBClassifier(**kwargs)
            model.fit(X, y, sample_weight=self._sample_weight(y))
            return model
        tr, va, X_tr, X_va = split
        model = XGBClassifier(**kwargs, early_stopping_rounds=int(p["early_stopping_rounds"]))
        w = self._sample_weight(y)
        model.fit(
            X_tr,
            y[tr],
            sample_weight=None if w is None else w[tr],
            eval_set=[(X_va, y[va])],
            sample_weight_eval_set=None if w is None else [w[va]],
            verbose=False,
        )
        return model

    def _after_load(self) -> None:
        self.estimator_.set_params(n_jobs=self.n_jobs)


class LGBMModel(_BoostedModel):
    """LightGBM with balanced class weights, row bagging actually on (subsample_freq=1)."""

    name: ClassVar[str] = "lgbm"
    batch_invariant: ClassVar[bool] = True
    param_ranges: ClassVar[dict[str, Range]] = LGBM_RANGES

    @classmethod
    def default_params(cls) -> dict:
        return {
            "n_estimators": 200,
            "learning_rate": 0.1,
            "num_leaves": 15,
            "max_depth": -1,
            "min_child_samples": LGBM_DEFAULT_LEAF,
            "subsample": 0.8,
            "subsample_freq": 1,  # LightGBM ignores subsample unless this is > 0
            "colsample_bytree": 0.3,
            "max_bin": 63,
            "reg_lambda": 1.0,
            "reg_alpha": 0.0,
            "class_weight": "balanced",
            "early_stopping_rounds": 0,
            "valid_fraction": 0.15,
        }

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 1000, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 2, 50, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.1, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 1.0, log=True),
        }

    def _fit_estimator(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> Any:
        import lightgbm as lgb

        p = self.params
        # each class may make a leaf: rows / (2 x classes)
        leaf = lgbm_leaf_size(
            int(p["min_child_samples"]), len(y) // (2 * max(2, len(np.unique(y))))
        )
        model = lgb.LGBMClassifier(
            n_estimators=int(p["n_estimators"]),
            learning_rate=float(p["learning_rate"]),
            num_leaves=int(p["num_leaves"]),
            max_depth=int(p["max_depth"]),
            min_child_samples=leaf,
            subsample=float(p["subsample"]),
            subsample_freq=int(p["subsample_freq"]),
            colsample_bytree=float(p["colsample_bytree"]),
            max_bin=int(p["max_bin"]),
            reg_lambda=float(p["reg_lambda"]),
            reg_alpha=float(p["reg_alpha"]),
            class_weight=_check_class_weight("lgbm", p["class_weight"]),
            n_jobs=self.n_jobs,
            random_state=self.seed,
            deterministic=True,
            force_col_wise=True,
            verbose=-1,
        )
        split = self._split_for_early_stopping(X, y, groups)
        if split is None:
            return model.fit(X, y)
        tr, va, X_tr, X_va = split
        w = self._sample_weight(y)
        if "eval_X" in inspect.signature(model.fit).parameters:  # lightgbm >= 4.7
            eval_kwargs: dict[str, Any] = {"eval_X": (X_va,), "eval_y": (y[va],)}
        else:
            eval_kwargs = {"eval_set": [(X_va, y[va])]}
        return model.fit(
            X_tr,
            y[tr],
            **eval_kwargs,
            eval_sample_weight=None if w is None else [w[va]],
            callbacks=[
                lgb.early_stopping(int(p["early_stopping_rounds"]), verbose=False),
                lgb.log_evaluation(0),
            ],
        )

    def _after_load(self) -> None:
        self.estimator_.set_params(n_jobs=self.n_jobs)


# ---------------------------------------------------------------------------- soft vote
class _PrefixedTrial:
    """Lets a member's search_space suggest "rf__n_estimators" while it asks for "n_estimators"."""

    def __init__(self, trial: optuna.Trial, prefix: str) -> None:
        self._trial = trial
        self._prefix = prefix

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_float(self._prefix + name, *args, **kwargs)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> int:
        return self._trial.suggest_int(self._prefix + name, *args, **kwargs)

    def suggest_categorical(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._trial.suggest_categorical(self._prefix + name, *args, **kwargs)


def namespaced_defaults(members: Mapping[str, Any]) -> dict:
    """Members' default parameters under ``<member>__<name>`` (the trees models' names)."""
    return {
        f"{prefix}__{key}": value
        for prefix, member in members.items()
        for key, value in member.default_params().items()
    }


def namespaced_ranges(members: Mapping[str, Any]) -> dict[str, Range]:
    """Members' parameter ranges under ``<member>__<name>``, as their defaults are."""
    return {
        f"{prefix}__{key}": bounds
        for prefix, member in members.items()
        for key, bounds in member.param_ranges.items()
    }


def member_params(params: Mapping[str, Any], prefix: str) -> dict:
    """One member's parameters out of namespaced ones (``rf__n_estimators`` → rf's)."""
    return {
        key.split("__", 1)[1]: value
        for key, value in params.items()
        if key.startswith(f"{prefix}__")
    }


class TreesVoteModel(SERModel):
    """Soft vote (mean of probabilities) of rf, xgb and lgbm; parameters namespaced by member."""

    name: ClassVar[str] = "trees"
    batch_invariant: ClassVar[bool] = True
    input_kind: ClassVar[str] = "tabular"
    members: ClassVar[dict[str, type[TabularModel]]] = {
        "rf": RandomForestModel,
        "xgb": XGBModel,
        "lgbm": LGBMModel,
    }
    param_ranges: ClassVar[dict[str, Range]] = namespaced_ranges(members)

    @classmethod
    def default_params(cls) -> dict:
        return namespaced_defaults(cls.members)

    def _check_on_init(self) -> None:
        for member in self.members:
            key = f"{member}__class_weight"
            if key in self.params:
                _check_class_weight(f"trees: {member}", self.params[key])

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        params: dict[str, Any] = {}
        for prefix, member in cls.members.items():
            sub = member.search_space(_PrefixedTrial(trial, f"{prefix}__"))  # type: ignore[arg-type]
            params.update({f"{prefix}__{k}": v for k, v in sub.items()})
        return params

    def _member(self, prefix: str) -> TabularModel:
        sub = member_params(self.params, prefix)
        return self.members[prefix](sub, seed=self.seed, n_jobs=self.n_jobs, verbose=self.verbose)

    def fit(
        self,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> Self:
        X = check_tabular(self.name, X)
        y, k = check_labels(self.name, y, len(X), n_classes)
        # Members run one after another, each with n_jobs threads (never oversubscribed).
        self.models_ = {p: self._member(p).fit(X, y, groups, k) for p in self.members}
        self.n_classes_ = k
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = check_tabular(self.name, X)
        probas = [model.predict_proba(X) for model in self.models_.values()]
        return np.mean(probas, axis=0)

    def _save_state(self, path: Path) -> None:
        for prefix, model in self.models_.items():
            model.save(path / prefix)

    def _load_state(self, path: Path, state: dict) -> None:
        self.models_ = {
            prefix: member.load(path / prefix, n_jobs=self.n_jobs)  # type: ignore[misc]
            for prefix, member in self.members.items()
        }
