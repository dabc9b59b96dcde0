"""The one interface every model implements, plus helpers shared by all families.

Models are pure: they take numpy arrays (tabular), lists of frame arrays (sequence) or lists of
uint8 images, and never know where rows came from (DESIGN §8). Evaluation code only ever calls
``fit``, ``predict_proba``, ``save`` and ``load``, so any model can be swapped for another.
"""

from __future__ import annotations

import abc
import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import optuna

from sercap.errors import BadParameterError, NotFoundError, SercapError

META_FILE = "model.json"


def read_meta(path: Path) -> dict:
    """The metadata ``save`` wrote beside a model (its registered name, parameters, seed)."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise NotFoundError(f"no saved model in {path} (missing {META_FILE})")
    return json.loads(meta_path.read_text())


def _type_problem(default: Any, value: Any) -> str | None:
    """What ``value`` must be when its type cannot stand for ``default``'s, else None.

    Only the unambiguous cases: a flag must be true or false, and a number must be a number
    (a parameter whose default is a string or None, such as ``gamma`` or ``max_depth``,
    may take several types and is checked by its model).
    """
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int | float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and isinstance(default, int) and not float(value).is_integer():
            return "a whole number"  # tree counts, layer sizes, epochs…
        return None if ok else "a number"
    return None


#: (low, low included, high, high included); None is unbounded on that side.
Range = tuple[float | None, bool, float | None, bool]


def _range_problem(bounds: Range, value: Any) -> str | None:
    """What ``value`` must be when it lies outside ``bounds``, else None.

    >>> _range_problem((2, True, None, False), 1)
    'at least 2'
    >>> _range_problem((0, False, 1, True), 1.5)
    'in (0, 1]'
    >>> _range_problem((0, False, None, False), 0.1) is None
    True
    """
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None  # the type check speaks for those
    low, low_in, high, high_in = bounds
    below = low is not None and (value < low if low_in else value <= low)
    above = high is not None and (value > high if high_in else value >= high)
    if not (below or above):
        return None
    if high is None:
        return f"at least {low}" if low_in else f"greater than {low}"
    if low is None:
        return f"at most {high}" if high_in else f"less than {high}"
    return f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"


@contextlib.contextmanager
def library_refusals(name: str) -> Iterator[None]:
    """Turn a library's refusal of a parameter value, raised inside, into a one-line error."""
    try:
        yield
    except Exception as exc:
        refused = library_parameter_error(name, exc)
        if refused is None:
            raise
        raise refused from None


def library_parameter_error(name: str, exc: BaseException) -> BadParameterError | None:
    """A one-line error for a library's refusal of a parameter value, else None.

    scikit-learn's ``InvalidParameterError``, LightGBM's and XGBoost's errors raised while
    fitting mean that a value passed the model's own checks but not the library's (say
    ``n_estimators = -5``); the user gets their first line, not a traceback.
    """
    kinds = {"InvalidParameterError", "LightGBMError", "XGBoostError"}
    if type(exc).__name__ not in kinds:
        return None
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return BadParameterError(f"{name}: a parameter was refused: {first}")


class ModelParams(abc.ABC):
    """The constructor every sercap model shares, classifier or regressor: ``params``
    checked against ``default_params`` (an unknown name is a one-line error), a seed,
    threads and a torch device."""

    name: ClassVar[str]
    #: How an unknown-parameter error names the model ("svm", "svm regressor").
    _described_as: ClassVar[str] = "{name}"
    #: Ranges of numeric parameters, checked before any data is read, for values a library
    #: would refuse only inside the fit, in its own words (LightGBM also prints a
    #: "[Fatal]" line of its own first).
    param_ranges: ClassVar[dict[str, Range]] = {}

    def __init__(
        self,
        params: dict | None = None,
        *,
        seed: int = 0,
        n_jobs: int = 1,
        device: str | None = None,
        verbose: bool = False,
    ) -> None:
        defaults = self.default_params()
        given = dict(params or {})
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise BadParameterError(
                f"{self._described_as.format(name=self.name)}: unknown parameter "
                f"{unknown[0]!r} (known: {', '.join(sorted(defaults))})"
            )
        for key, value in given.items():
            problem = _type_problem(defaults[key], value)
            if isinstance(value, float) and not math.isfinite(value):
                problem = "a finite number"  # JSON's NaN and 1e400 (inf) parse as floats
            if problem:
                raise BadParameterError(
                    f"{self._described_as.format(name=self.name)}: {key} must be {problem}, "
                    f"got {value!r}"
                )
        self.params: dict[str, Any] = {**defaults, **given}
        for key, value in given.items():
            bounds = self._ranges().get(key)
            problem = _range_problem(bounds, value) if bounds else None
            if problem:
                raise BadParameterError(
                    f"{self._described_as.format(name=self.name)}: {key} must be {problem}, "
                    f"got {value!r}"
                )
        for key, value in self.params.items():  # torch raises deep inside the first fit
            numeric = isinstance(value, int | float)
            if key.endswith("dropout") and numeric and not 0.0 <= float(value) < 1.0:
                raise BadParameterError(
                    f"{self._described_as.format(name=self.name)}: {key} must be in "
                    f"[0, 1), got {value!r}"
                )
        self.seed = int(seed)
        if int(n_jobs) < 1:
            raise BadParameterError(f"{self.name}: n_jobs must be at least 1, got {n_jobs}")
        self.n_jobs = int(n_jobs)
        self.device = device
        self.verbose = bool(verbose)
        self._check_on_init()

    def _check_on_init(self) -> None:  # noqa: B027 - an optional hook, empty by design
        """Model-specific checks of ``params`` at construction, before any data is read."""

    @classmethod
    def _ranges(cls) -> dict[str, Range]:
        """``param_ranges``; a model that borrows another's parameters borrows these too."""
        return cls.param_ranges

    @classmethod
    @abc.abstractmethod
    def default_params(cls) -> dict:
        """Parameters used when the caller gives none; the set of known parameter names."""


class SERModel(ModelParams):
    """A classifier over K emotion classes; ``predict_proba`` always has K columns.

    Subclasses define ``name``, ``input_kind``, ``default_params``, ``search_space``, ``fit``,
    ``predict_proba`` and the two state hooks ``_save_state`` / ``_load_state``. Every name a
    ``search_space`` suggests is the name of a parameter, so ``study.best_params`` can be passed
    straight back as ``params``.
    """

    name: ClassVar[str]
    input_kind: ClassVar[str]  # "tabular" | "sequence" | "image"
    default_columns: ClassVar[str | None] = None
    #: Whether each row's output is the same scored alone or among other rows, to the bit
    #: (``predict`` then scores many files in one call; a network's float32 products are not)
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
        self.n_classes_: int | None = None

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.params.items() if self.default_params().get(k) != v}
        return f"{type(self).__name__}({changed}, seed={self.seed})"

    @classmethod
    @abc.abstractmethod
    def default_params(cls) -> dict:
        """Parameters used when the caller gives none; the set of known parameter names."""

    @classmethod
    @abc.abstractmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        """Suggest a parameter dict for ``__init__`` (Optuna names equal parameter names)."""

    @abc.abstractmethod
    def fit(
        self,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> Self:
        """Train on X/y; ``groups`` (speakers, or sessions under leave-one-session-out: see
        :meth:`sercap.data.Dataset.validation_groups`) is only used for inner validation
        splits."""

    @abc.abstractmethod
    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, n_classes) float64 probabilities, rows summing to 1."""

    def predict(self, X: Any) -> np.ndarray:
        """Class index with the highest probability."""
        return np.argmax(self.predict_proba(X), axis=1)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        """Write parameters (JSON) and fitted state into the directory ``path``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "name": self.name,
            "params": self.params,
            "seed": self.seed,
            "n_classes": self.n_classes_,
            "state": self._state_meta(),
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2, default=_json_default))
        self._save_state(path)

    @classmethod
    def load(cls, path: Path, *, n_jobs: int = 1, device: str | None = None) -> SERModel:
        """Read a model of this class written by ``save``.

        :func:`sercap.models.load_model` reads a model of any registered class.
        """
        path = Path(path)
        meta = read_meta(path)
        if getattr(cls, "name", None) != meta["name"]:
            what = "a model class" if cls is SERModel else repr(cls.name)
            raise SercapError(
                f"{path} holds a {meta['name']!r} model, not {what}; "
                "sercap.models.load_model reads any model"
            )
        target: type[SERModel] = cls
        model = target(meta["params"], seed=meta["seed"], n_jobs=n_jobs, device=device)
        model.n_classes_ = meta["n_classes"]
        model._load_state(path, meta.get("state") or {})
        return model

    def _state_meta(self) -> dict:
        """Small JSON-able facts needed to rebuild the fitted state (e.g. input size)."""
        return {}

    @abc.abstractmethod
    def _save_state(self, path: Path) -> None: ...

    @abc.abstractmethod
    def _load_state(self, path: Path, state: dict) -> None: ...

    def _check_fitted(self) -> None:
        if self.n_classes_ is None:
            raise SercapError(f"{self.name}: the model is not fitted yet (call fit first)")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


# ---------------------------------------------------------------------- shared helpers
def check_labels(
    name: str, y: Any, n_samples: int, n_classes: int | None
) -> tuple[np.ndarray, int]:
    """Validate class indices and return (y as int64, K)."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_samples:
        raise BadParameterError(f"{name}: y has {len(y)} labels for {n_samples} rows")
    if n_samples == 0:
        raise BadParameterError(f"{name}: no training rows")
    if not np.issubdtype(y.dtype, np.integer) and not np.all(np.equal(np.mod(y, 1), 0)):
        raise BadParameterError(f"{name}: y must hold class indices 0..K-1")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise BadParameterError(f"{name}: y must hold class indices 0..K-1, got {y.min()}")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if y.max() >= k:
        raise BadParameterError(f"{name}: class index {y.max()} is out of range for n_classes={k}")
    if len(np.unique(y)) < 2:
        raise BadParameterError(
            f"{name}: the training data holds only one class; need at least two"
        )
    return y, k


def check_tabular(name: str, X: Any, n_features: int | None = None) -> np.ndarray:
    """A 2-D float32 array; NaN allowed (each model imputes it)."""
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise BadParameterError(f"{name}: X must be a numeric 2-D array ({exc})") from None
    if arr.ndim != 2:
        raise BadParameterError(f"{name}: X must be 2-D (rows × features), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise BadParameterError(
            f"{name}: X has {arr.shape[1]} features, the model was fitted on {n_features}"
        )
    if np.isinf(arr).any():
        arr = np.where(np.isinf(arr), np.nan, arr)
    return arr


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """'Balanced' weight per class, n / (K_present · count); absent classes get 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def expand_proba(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Put an estimator's columns (for the classes it saw) into K columns, rows summing to 1."""
    out = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    out[:, np.asarray(classes, dtype=np.int64)] = proba
    return normalise_rows(out)


def normalise_rows(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(np.asarray(proba, dtype=np.float64), 0.0, None)
    sums = proba.sum(axis=1, keepdims=True)
    bad = sums[:, 0] <= 0
    if bad.any():
        proba[bad] = 1.0 / proba.shape[1]
        sums[bad] = 1.0
    return proba / sums


def inner_split(
    y: np.ndarray,
    groups: np.ndarray | None,
    valid_fraction: float,
    seed: int,
    tries: int = 20,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Split training rows into (train, valid) indices for early stopping.

    Grouped by ``groups`` (speakers, or sessions) when it has at least two of them, so that
    validation measures generalisation to unseen speakers like the outer protocol; otherwise
    stratified. Among a few random group splits it keeps the one whose validation set covers
    the most classes (ties: the first), so small corpora do not validate on two classes.
    Returns None when no sensible split exists (fraction 0 or too few rows).
    """
    n = len(y)
    if valid_fraction <= 0 or n < 4:
        return None
    rng = np.random.default_rng(seed)
    n_classes_train = len(np.unique(y))
    if groups is not None:
        groups = np.asarray(groups)
        speakers = np.unique(groups)
        if len(speakers) >= 2:
            n_valid = min(len(speakers) - 1, max(1, round(valid_fraction * len(speakers))))
            best: tuple[int, np.ndarray] | None = None
            for _ in range(tries):
                chosen = rng.choice(speakers, size=n_valid, replace=False)
                mask = np.isin(groups, chosen)
                covered = len(np.unique(y[mask]))
                if len(np.unique(y[~mask])) < min(2, n_classes_train):
                    continue
                if best is None or covered > best[0]:
                    best = (covered, mask)
                if covered == n_classes_train:
                    break
            if best is not None:
                mask = best[1]
                return np.flatnonzero(~mask), np.flatnonzero(mask)
    # Stratified: each class contributes about valid_fraction of its rows (at least one row
    # when it has two or more), so training keeps every class.
    valid: list[np.ndarray] = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        if len(idx) < 2:
            continue
        take = max(1, round(valid_fraction * len(idx)))
        take = min(take, len(idx) - 1)
        valid.append(rng.choice(idx, size=take, replace=False))
    if not valid:
        return None
    valid_idx = np.sort(np.concatenate(valid))
    train_mask = np.ones(n, dtype=bool)
    train_mask[valid_idx] = False
    return np.flatnonzero(train_mask), valid_idx


def unweighted_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """UA: mean recall over the classes present in y_true."""
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls)) if recalls else 0.0
