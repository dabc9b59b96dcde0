"""Regressors for dimensional ratings (valence, activation, dominance): the same CLI names as
the classifiers, each fitting its family's regressor.

``svm`` → SVR, ``rf`` → RandomForestRegressor, ``xgb`` → XGBRegressor, ``lgbm`` →
LGBMRegressor, ``trees`` → the mean of those three (as the ``trees`` classifier's soft vote),
``dnn`` → the ``dnn`` multilayer perceptron with a one-unit head trained on a
CCC (default) or MSE loss; ``lstm``, ``cnn``, ``resnet18``, ``resnet34`` → their network with
a one-unit head, trained the same way (:class:`TorchRegressor`). Like the classifiers they
are pure (numpy in, numpy out), impute missing values from training rows only and know
nothing of the warehouse. A model name
without a regressor here gets a one-line error naming those that have one.
"""

from __future__ import annotations

import abc
import functools
import warnings
from typing import Any, ClassVar, Self

import numpy as np
import optuna

from sercap._threads import limit_threads
from sercap.errors import BadParameterError, SercapError, option
from sercap.models.base import (
    ModelParams,
    Range,
    check_tabular,
    inner_split,
    library_refusals,
)
from sercap.models.tabular import (
    LGBM_RANGES,
    RF_RANGES,
    XGB_RANGES,
    lgbm_leaf_size,
    namespaced_ranges,
)


def check_targets(name: str, y: Any, n_samples: int) -> np.ndarray:
    """Finite float64 ratings, one per row, not all equal."""
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadParameterError(f"{name}: y must hold numeric ratings ({exc})") from None
    if y.ndim != 1 or len(y) != n_samples:
        raise BadParameterError(f"{name}: y has {len(y)} ratings for {n_samples} rows")
    if n_samples < 2:
        raise BadParameterError(f"{name}: need at least two training rows")
    if not np.isfinite(y).all():
        raise BadParameterError(f"{name}: y holds missing or infinite ratings")
    if np.ptp(y) == 0:
        raise BadParameterError(f"{name}: every training rating is {y[0]}; nothing to learn")
    return y


class Regressor(ModelParams):
    """A model of one rating: ``fit(X, y, groups)`` then ``predict(X)`` → (n,) float64.

    Subclasses define ``name``, ``default_params``, ``search_space``, ``_fit`` and
    ``_predict``. ``params`` are checked against ``default_params`` as for the classifiers.
    """

    name: ClassVar[str]
    input_kind: ClassVar[str] = "tabular"
    _described_as: ClassVar[str] = "{name} regressor"
    #: As :attr:`sercap.models.base.SERModel.batch_invariant`.
    batch_invariant: ClassVar[bool] = False

    def __init__(
        self,
        params: dict | None = None,
        *,
        seed: int = 0,
        n_jobs: int = 1,
        device: str | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(params, seed=seed, n_jobs=n_jobs, device=device, verbose=verbose)
        self.n_features_: int | None = None

    @classmethod
    @abc.abstractmethod
    def default_params(cls) -> dict:
        """Parameters used when the caller gives none; the set of known parameter names."""

    @classmethod
    @abc.abstractmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        """Suggest a parameter dict for ``__init__`` (Optuna names equal parameter names)."""

    def fit(self, X: Any, y: Any, groups: np.ndarray | None = None) -> Self:
        """Train on rows X and ratings y; ``groups`` (speakers) only serve inner splits."""
        X = self._check_input(X, None)
        y = check_targets(self.name, y, len(X))
        if groups is not None and len(groups) != len(y):
            raise BadParameterError(
                f"{self.name}: groups has {len(groups)} entries for {len(y)} rows"
            )
        self.n_features_ = X.shape[1] if isinstance(X, np.ndarray) else 0
        with limit_threads(self.n_jobs), library_refusals(self.name):
            self._fit(X, y, None if groups is None else np.asarray(groups))
        self.y_range_ = (float(np.min(y)), float(np.max(y)))
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted ratings, (n,) float64, clipped to the range of the training ratings.

        A rating scale has ends and a network's linear head (or an SVR far from its support
        vectors) does not: an input unlike any training row could otherwise be rated 23 on
        a 1–5 scale. Trees never leave the range, so clipping changes nothing for them.
        """
        if self.n_features_ is None:
            raise SercapError(f"{self.name}: the model is not fitted yet (call fit first)")
        X = self._check_input(X, self.n_features_)
        with limit_threads(self.n_jobs):
            pred = np.asarray(self._predict(X), dtype=np.float64).reshape(-1)
        low_high = getattr(self, "y_range_", None)  # models saved before it: as they were
        return pred if low_high is None else np.clip(pred, *low_high)

    def _check_input(self, X: Any, n_features: int | None) -> Any:
        """Tabular input (a 2-D float array); sequence and image regressors override it."""
        return check_tabular(self.name, X, n_features)

    @abc.abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> None: ...

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X)


def _imputer():  # noqa: ANN202 - sklearn object
    from sklearn.impute import SimpleImputer

    return SimpleImputer(strategy="median", keep_empty_features=True)


def _without(params: dict, *names: str) -> dict:
    return {k: v for k, v in params.items() if k not in names}


# ---------------------------------------------------------------------------- svm
class SVRRegressor(Regressor):
    """RBF support vector regression on median-imputed, standardised features."""

    name: ClassVar[str] = "svm"
    batch_invariant: ClassVar[bool] = True
    param_ranges: ClassVar[dict[str, Range]] = {
        "C": (0, False, None, False),
        "epsilon": (0, True, None, False),
    }

    @classmethod
    def default_params(cls) -> dict:
        return {"C": 1.0, "gamma": "scale", "epsilon": 0.1}

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            "C": trial.suggest_float("C", 0.1, 100.0, log=True),
            "gamma": trial.suggest_float("gamma", 1e-5, 1e-1, log=True),
            "epsilon": trial.suggest_float("epsilon", 0.01, 0.5, log=True),
        }

    def _fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> None:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR

        p = self.params
        gamma = p["gamma"]
        if not (gamma in ("scale", "auto") or (isinstance(gamma, int | float) and gamma > 0)):
            raise BadParameterError(
                f"svm: gamma must be 'scale', 'auto' or a positive number, got {gamma!r}"
            )
        svr = SVR(kernel="rbf", C=float(p["C"]), gamma=gamma, epsilon=float(p["epsilon"]))
        self.estimator_ = make_pipeline(_imputer(), StandardScaler(), svr).fit(X, y)


# ---------------------------------------------------------------------------- rf
class RandomForestRegressorModel(Regressor):
    """Random forest regression on median-imputed features."""

    name: ClassVar[str] = "rf"
    batch_invariant: ClassVar[bool] = True
    param_ranges: ClassVar[dict[str, Range]] = RF_RANGES

    @classmethod
    def default_params(cls) -> dict:
        from sercap.models.tabular import RandomForestModel

        return _without(RandomForestModel.default_params(), "class_weight")

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        from sercap.models.tabular import RandomForestModel

        return RandomForestModel.search_space(trial)

    def _fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> None:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.pipeline import make_pipeline

        p = self.params
        rf = RandomForestRegressor(
            n_estimators=int(p["n_estimators"]),
            max_features=p["max_features"],
            max_depth=p["max_depth"],
            min_samples_leaf=int(p["min_samples_leaf"]),
            n_jobs=self.n_jobs,
            random_state=self.seed,
        )
        self.estimator_ = make_pipeline(_imputer(), rf).fit(X, y)


# ---------------------------------------------------------------------------- boosted trees
_BOOSTED_ONLY_CLASSIFIER = ("class_weight", "early_stopping_rounds", "valid_fraction")


class XGBRegressorModel(Regressor):
    """XGBoost (hist) regression on squared error; NaN handled natively."""

    name: ClassVar[str] = "xgb"
    batch_invariant: ClassVar[bool] = True
    param_ranges: ClassVar[dict[str, Range]] = XGB_RANGES

    @classmethod
    def default_params(cls) -> dict:
        from sercap.models.tabular import XGBModel

        return _without(XGBModel.default_params(), *_BOOSTED_ONLY_CLASSIFIER)

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        from sercap.models.tabular import XGBModel

        return XGBModel.search_space(trial)

    def _fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> None:
        from xgboost import XGBRegressor

        p = self.params
        self.estimator_ = XGBRegressor(
            n_estimators=int(p["n_estimators"]),
            learning_rate=float(p["learning_rate"]),
            max_depth=int(p["max_depth"]),
            min_child_weight=float(p["min_child_weight"]),
            subsample=float(p["subsample"]),
            colsample_bytree=float(p["colsample_bytree"]),
            max_bin=int(p["max_bin"]),
            reg_lambda=float(p["reg_lambda"]),
            reg_alpha=float(p["reg_alpha"]),
            tree_method="hist",
            objective="reg:squarederror",
            n_jobs=self.n_jobs,
            random_state=self.seed,
        ).fit(X, y)


class LGBMRegressorModel(Regressor):
    """LightGBM regression (L2), row bagging on as for the classifier."""

    name: ClassVar[str] = "lgbm"
    batch_invariant: ClassVar[bool] = True
    param_ranges: ClassVar[dict[str, Range]] = LGBM_RANGES

    @classmethod
    def default_params(cls) -> dict:
        from sercap.models.tabular import LGBMModel

        return _without(LGBMModel.default_params(), *_BOOSTED_ONLY_CLASSIFIER)

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        from sercap.models.tabular import LGBMModel

        return LGBMModel.search_space(trial)

    def _fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> None:
        import lightgbm as lgb

        p = self.params
        leaf = lgbm_leaf_size(int(p["min_child_samples"]), len(y) // 4)  # a quarter of rows
        self.estimator_ = lgb.LGBMRegressor(
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
            n_jobs=self.n_jobs,
            random_state=self.seed,
            deterministic=True,
            force_col_wise=True,
            verbose=-1,
        ).fit(X, y)


class TreesRegressor(Regressor):
    """Mean prediction of the rf, xgb and lgbm regressors; parameters namespaced by member.

    The regression counterpart of the ``trees`` classifier (its soft vote averages
    probabilities; this averages ratings), with the same parameter names
    (``rf__n_estimators``, ``xgb__learning_rate``…) and search space.
    """

    name: ClassVar[str] = "trees"
    batch_invariant: ClassVar[bool] = True
    members: ClassVar[dict[str, type[Regressor]]] = {
        "rf": RandomForestRegressorModel,
        "xgb": XGBRegressorModel,
        "lgbm": LGBMRegressorModel,
    }
    param_ranges: ClassVar[dict[str, Range]] = namespaced_ranges(members)

    @classmethod
    def default_params(cls) -> dict:
        from sercap.models.tabular import namespaced_defaults

        return namespaced_defaults(cls.members)

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        from sercap.models.tabular import TreesVoteModel

        space = TreesVoteModel.search_space(trial)
        known = cls.default_params()
        return {k: v for k, v in space.items() if k in known}

    def _fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> None:
        from sercap.models.tabular import member_params

        self.models_ = {}
        for prefix, member in self.members.items():
            sub = member_params(self.params, prefix)
            model = member(sub, seed=self.seed, n_jobs=self.n_jobs, verbose=self.verbose)
            model._fit(X, y, groups)  # threads are already limited by fit()
            self.models_[prefix] = model

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m._predict(X) for m in self.models_.values()], axis=0)


# ---------------------------------------------------------------------------- dnn
LOSSES = ("ccc", "mse")


def ccc_loss(pred: Any, target: Any) -> Any:
    """1 − Lin's CCC of a batch (population moments), a differentiable torch scalar."""
    mp, mt = pred.mean(), target.mean()
    cov = ((pred - mp) * (target - mt)).mean()
    denom = pred.var(unbiased=False) + target.var(unbiased=False) + (mp - mt) ** 2
    return 1.0 - 2.0 * cov / (denom + 1e-8)


def _batch_ccc(pred: np.ndarray, target: np.ndarray) -> float:
    from sercap.analysis import ccc

    return float(ccc(target, pred))


class DNNRegressor(Regressor):
    """The ``dnn`` MLP (same layers and parameters) with a one-unit head.

    Features are median-imputed and standardised, and the ratings standardised, with
    training rows only; the loss is 1 − CCC of each batch (``loss="ccc"``, the usual choice
    for dimensional emotion) or the mean squared error (``"mse"``). Early stopping keeps
    the epoch with the best CCC on held-out training speakers.
    """

    name: ClassVar[str] = "dnn"

    @classmethod
    def default_params(cls) -> dict:
        from sercap.models.dnn import DNNModel

        keep = _without(
            DNNModel.default_params(), "class_weight", "label_smoothing", "mixup", "optimizer",
            "momentum", "nesterov", "n_seeds",
        )  # fmt: skip
        return {**keep, "loss": "ccc"}

    @classmethod
    def _ranges(cls) -> dict[str, Range]:
        from sercap.models.dnn import DNNModel

        return DNNModel.param_ranges

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        from sercap.models.dnn import DNNModel

        return DNNModel.search_space(trial)

    def _check_on_init(self) -> None:
        super()._check_on_init()
        self._check_params()  # before any data is read, not at the first fold's fit

    def _check_params(self) -> None:
        p = self.params
        if p["loss"] not in LOSSES:
            raise BadParameterError(f"dnn: loss must be one of {LOSSES}, got {p['loss']!r}")
        if p["scheduler"] not in ("none", "cosine"):
            raise BadParameterError("dnn regressor: scheduler must be 'none' or 'cosine'")
        for key in ("epochs", "batch_size"):
            if int(p[key]) < 1:
                raise BadParameterError(f"dnn: {key} must be at least 1, got {p[key]!r}")
        if int(p["n_layers"]) < 0 or int(p["hidden_size"]) < 1:
            raise BadParameterError("dnn: n_layers must be >= 0 and hidden_size >= 1")
        from sercap.models.dnn import refuse_single_row_batches

        refuse_single_row_batches("dnn", p)

    def _fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> None:
        import torch

        from sercap.models.dnn import MLP
        from sercap.models.torch_common import (
            batch_indices,
            check_not_diverged,
            resolve_device,
            seeded,
            torch_threads,
        )

        self._check_params()
        p = self.params
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice"
            median = np.nanmedian(X, axis=0)
        self.median_ = np.nan_to_num(median, nan=0.0).astype(np.float32)
        filled = np.where(np.isnan(X), self.median_, X)
        self.mean_ = filled.mean(axis=0).astype(np.float32)
        std = filled.std(axis=0)
        self.std_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        self.y_mean_, self.y_std_ = float(y.mean()), float(y.std()) or 1.0
        Z = self._transform(X)
        t = ((y - self.y_mean_) / self.y_std_).astype(np.float32)
        device = resolve_device(self.device)
        # Speakers split like the classifiers' (one "class": no stratification to keep).
        split = inner_split(
            np.zeros(len(y), dtype=np.int64), groups, float(p["valid_fraction"]), self.seed
        )
        train_idx, valid_idx = split if split is not None else (np.arange(len(y)), None)
        with torch_threads(self.n_jobs), seeded(self.seed, device) as rng:
            module = MLP(
                Z.shape[1], 1, int(p["n_layers"]), int(p["hidden_size"]), float(p["dropout"]),
                bool(p["batchnorm"]), float(p["input_dropout"]),
            ).to(device)  # fmt: skip
            opt = torch.optim.AdamW(
                module.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"])
            )
            epochs = int(p["epochs"])
            sched = (
                torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
                if p["scheduler"] == "cosine"
                else None
            )
            loss_fn = ccc_loss if p["loss"] == "ccc" else torch.nn.functional.mse_loss
            Zt, tt = torch.from_numpy(Z).to(device), torch.from_numpy(t).to(device)
            best: float | None = None
            best_state = None
            since_best = 0
            for epoch in range(epochs):
                module.train()
                for idx in batch_indices(train_idx, int(p["batch_size"]), rng, drop_single=True):
                    index = torch.from_numpy(np.asarray(idx)).to(device)
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(module(Zt[index]).squeeze(1), tt[index])
                    loss.backward()
                    opt.step()
                if sched is not None:
                    sched.step()
                check_not_diverged(module, f"{self.name} regressor", epoch + 1, p["lr"])
                if valid_idx is None:
                    continue
                score = _batch_ccc(self._forward(module, Z[valid_idx], device), t[valid_idx])
                if best is None or score > best:
                    best, since_best = score, 0
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    since_best += 1
                    if int(p["patience"]) > 0 and since_best >= int(p["patience"]):
                        break
            if best_state is not None:
                module.load_state_dict(best_state)
        module.eval()
        self.module_, self.device_ = module, device

    def _transform(self, X: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(X), self.median_, X)
        return ((filled - self.mean_) / self.std_).astype(np.float32)

    def _forward(self, module: Any, Z: np.ndarray, device: Any) -> np.ndarray:
        import torch

        module.eval()
        with torch.no_grad():
            out = module(torch.from_numpy(Z).to(device)).squeeze(1)
        return out.double().cpu().numpy()

    def _predict(self, X: np.ndarray) -> np.ndarray:
        from sercap.models.torch_common import torch_threads

        with torch_threads(self.n_jobs):
            z = self._forward(self.module_, self._transform(X), self.device_)
        return z * self.y_std_ + self.y_mean_


# ---------------------------------------------------------------------------- lstm, cnns
class TorchRegressor(Regressor):
    """A torch classifier's network (``base``) with a one-unit head, as a regressor.

    The base model's own input handling is kept (normalisation statistics, crops and
    augmentation of training batches, full-length or windowed prediction), as are its
    optimiser and schedule; only the head, the loss (1 − CCC of a batch, or MSE, on
    standardised ratings) and early stopping (best CCC on held-out training speakers) differ.
    """

    base: ClassVar[Any]

    @classmethod
    def default_params(cls) -> dict:
        keep = _without(
            cls.base.default_params(), "class_weight", "label_smoothing", "mixup", "n_seeds"
        )
        return {**keep, "loss": "ccc"}

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return cls.base.search_space(trial)

    def _check_on_init(self) -> None:
        super()._check_on_init()
        if self.params["loss"] not in LOSSES:  # before any data is read
            raise BadParameterError(
                f"{self.name}: loss must be one of {LOSSES}, got {self.params['loss']!r}"
            )
        self._net()  # the base model checks its own choices (optimizer, stem, norm…)

    def _net(self) -> Any:
        """The base model instance whose hooks (inputs, network) this regressor uses; its
        forward pass returns the raw output instead of a softmax (``raw_output``). A plain
        instance of a module-level class, so a fitted regressor pickles."""
        params = {k: v for k, v in self.params.items() if k != "loss"}
        net = self.base(params, seed=self.seed, n_jobs=self.n_jobs, device=self.device)
        net.raw_output = True
        return net

    def _check_input(self, X: Any, n_features: int | None) -> Any:
        if getattr(self, "net_", None) is None:
            self.net_ = self._net()
        return self.net_._check_input(X, fitting=n_features is None)

    def _fit(self, X: Any, y: np.ndarray, groups: np.ndarray | None) -> None:
        import torch

        from sercap.models.torch_common import (
            _optimizer,
            _scheduler,
            check_not_diverged,
            resolve_device,
            seeded,
            torch_threads,
        )

        p = self.params
        if p["loss"] not in LOSSES:
            raise BadParameterError(f"{self.name}: loss must be one of {LOSSES}, got {p['loss']!r}")
        net = self.net_
        net._validate_params()
        self.y_mean_, self.y_std_ = float(y.mean()), float(y.std()) or 1.0
        t = ((y - self.y_mean_) / self.y_std_).astype(np.float32)
        device = resolve_device(self.device)
        split = inner_split(
            np.zeros(len(y), dtype=np.int64), groups, float(p["valid_fraction"]), self.seed
        )
        train_idx, valid_idx = split if split is not None else (np.arange(len(y)), None)
        take = (lambda idx: [X[i] for i in idx]) if isinstance(X, list) else (lambda idx: X[idx])
        loss_fn = ccc_loss if p["loss"] == "ccc" else torch.nn.functional.mse_loss
        with torch_threads(self.n_jobs), seeded(self.seed, device) as rng:
            net._fit_stats(X)
            net.module_ = net._placed(net._build(1), device)
            net.n_classes_ = 1
            opt = _optimizer(net.module_, net.params)
            sched = _scheduler(opt, net.params)
            best: float | None = None
            best_state = None
            since_best = 0
            bs, patience = int(net.params["batch_size"]), int(net.params["patience"])
            for epoch in range(int(net.params["epochs"])):
                net.module_.train()
                for idx in net._batch_order(X, train_idx, bs, rng):
                    inputs = net._train_batch(X, idx, rng, device)
                    target = torch.as_tensor(t[idx], device=device)
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(net.module_(*inputs).float().reshape(-1), target)
                    loss.backward()
                    opt.step()
                if sched is not None:
                    sched.step()
                name = f"{self.name} regressor"
                check_not_diverged(net.module_, name, epoch + 1, net.params["lr"])
                if valid_idx is None:
                    continue
                score = _batch_ccc(net._proba(take(valid_idx), device)[:, 0], t[valid_idx])
                if best is None or score > best:
                    best, since_best = score, 0
                    state = net.module_.state_dict()
                    best_state = {k: v.detach().clone() for k, v in state.items()}
                else:
                    since_best += 1
                    if patience > 0 and since_best >= patience:
                        break
            if best_state is not None:
                net.module_.load_state_dict(best_state)
        net.module_.eval()
        net.device_ = device

    def _predict(self, X: Any) -> np.ndarray:
        from sercap.models.torch_common import torch_threads

        with torch_threads(self.n_jobs):
            z = self.net_._proba(X, self.net_.device_)[:, 0]
        return z * self.y_std_ + self.y_mean_


@functools.cache
def _torch_regressor(name: str) -> type[TorchRegressor]:
    """The regressor class of torch model ``name``, made once and named in this module
    (``LSTMModelRegressor``…), where pickle finds it through the module's ``__getattr__``."""
    from sercap.models.cnn import CNNModel, ResNet18Model, ResNet34Model
    from sercap.models.lstm import LSTMModel

    base = {"lstm": LSTMModel, "cnn": CNNModel, "resnet18": ResNet18Model,
            "resnet34": ResNet34Model}[name]  # fmt: skip
    cls_name = f"{base.__name__}Regressor"
    return type(
        cls_name,
        (TorchRegressor,),
        {
            "__module__": __name__,
            "__qualname__": cls_name,
            "name": name,
            "base": base,
            "input_kind": base.input_kind,
            "__doc__": base.__doc__,
            "param_ranges": base.param_ranges,
        },  # fmt: skip
    )


#: Class name → model name of the torch regressors, for :func:`__getattr__`.
_TORCH_REGRESSOR_CLASSES = {
    "LSTMModelRegressor": "lstm",
    "CNNModelRegressor": "cnn",
    "ResNet18ModelRegressor": "resnet18",
    "ResNet34ModelRegressor": "resnet34",
}


def __getattr__(attr: str) -> Any:
    # The torch regressors are made on first use (importing torch's models is slow); a
    # pickled one names its class here, and unpickling asks for it by that name.
    if attr in _TORCH_REGRESSOR_CLASSES:
        return _torch_regressor(_TORCH_REGRESSOR_CLASSES[attr])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


# ---------------------------------------------------------------------------- registry
REGRESSORS: dict[str, type[Regressor]] = {
    cls.name: cls
    for cls in (SVRRegressor, RandomForestRegressorModel, XGBRegressorModel, LGBMRegressorModel,
                TreesRegressor, DNNRegressor)
}  # fmt: skip
#: Torch sequence and image models: their classifier's network with a one-unit head.
TORCH_REGRESSORS = ("lstm", "cnn", "resnet18", "resnet34")


def get_regressor(name: str) -> type[Regressor]:
    """The regressor of a model name; a name without one lists those that have one."""
    if name in TORCH_REGRESSORS:
        return _torch_regressor(name)
    try:
        return REGRESSORS[name]
    except (KeyError, TypeError):
        raise SercapError(
            f"model {name!r} cannot predict a dimensional target yet; {option('target')} works "
            "with: "
            f"{', '.join(regressor_names())}"
        ) from None


def regressor_names() -> list[str]:
    """Every model name with a regressor."""
    return [*REGRESSORS, *TORCH_REGRESSORS]
