"""Audio + text fusion: the functionals and the transcript of the same utterances.

``X`` is a sequence of ``(features, text)`` pairs, one per utterance: a 1-D float vector of
functionals and the words said (``sercap.textdata.load_multimodal_dataset`` reads them).

``fusion`` (late fusion) averages the class probabilities of an audio model (default
``svm``) and a text model (default ``text-lr``): ``w · audio + (1 − w) · text``. The weight
``w`` is chosen in ``fit`` from the training rows alone: both members are cross-validated
over the training speakers (``inner_folds`` folds grouped by the ``groups`` fit is given),
and ``w`` is the point of a grid that maximises the UA of the fused inner out-of-fold
probabilities; then both members are refitted on every training row. Under the outer
protocol, a fold's test speakers therefore reach neither a member's fit nor the choice of
``w``.

``early-fusion`` puts both modalities in one linear model: median-imputed, standardised
functionals (scaled as one block) beside word and character tf-idf, then a multinomial
logistic regression. Imputer, scaler and vectorizers are fitted on the training rows only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import optuna
from threadpoolctl import threadpool_limits

from sercap.errors import BadParameterError
from sercap.models.base import Range, SERModel, check_labels, check_tabular, expand_proba
from sercap.models.dnn import DNNModel
from sercap.models.tabular import (
    LGBMModel,
    RandomForestModel,
    SVMModel,
    TreesVoteModel,
    XGBModel,
    _PrefixedTrial,
)
from sercap.models.text import TextLRModel, TextSVMModel, check_texts, tfidf_features
from sercap.models.text_cnn import TextCNNModel

#: Models a late fusion may combine: audio ones read functionals, text ones transcripts.
AUDIO_MEMBERS: dict[str, type[SERModel]] = {
    c.name: c for c in (SVMModel, RandomForestModel, XGBModel, LGBMModel, TreesVoteModel, DNNModel)
}
TEXT_MEMBERS: dict[str, type[SERModel]] = {
    c.name: c for c in (TextLRModel, TextSVMModel, TextCNNModel)
}
ESTIMATOR_FILE = "model.joblib"


def split_pairs(name: str, X: Any) -> tuple[np.ndarray, list[str]]:
    """(features matrix, transcripts) of a sequence of ``(features, text)`` pairs.

    Parameters
    ----------
    name : str
        The model's name, for errors.
    X : sequence of (array-like, str)
        One pair per utterance.

    Returns
    -------
    ndarray (n, d) float32, list of str
    """
    if isinstance(X, str | np.ndarray) or not hasattr(X, "__len__"):
        raise BadParameterError(f"{name}: X must be a sequence of (features, text) pairs")
    pairs = list(X)
    if not pairs:
        raise BadParameterError(f"{name}: no rows")
    if any(not isinstance(p, tuple | list) or len(p) != 2 for p in pairs):
        raise BadParameterError(f"{name}: X must hold (features, text) pairs, one per utterance")
    audio = check_tabular(name, [np.asarray(p[0], dtype=np.float32) for p in pairs])
    return audio, check_texts(name, [p[1] for p in pairs])


def speaker_folds(
    y: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, valid) index pairs over the training rows: grouped by speaker (speakers
    shuffled with ``seed`` and dealt into ``n_splits`` groups) when there are two or more,
    else stratified by class. Splits whose training part holds one class are left out."""
    from sklearn.model_selection import StratifiedKFold

    n = len(y)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    speakers = np.unique(groups) if groups is not None else np.zeros(0)
    if len(speakers) >= 2:
        k = min(int(n_splits), len(speakers))
        order = np.random.default_rng(seed).permutation(speakers)
        deal = {s: i % k for i, s in enumerate(order)}
        assignment = np.array([deal[s] for s in groups])
        out = [(np.flatnonzero(assignment != j), np.flatnonzero(assignment == j)) for j in range(k)]
    else:
        k = int(min(n_splits, max(2, np.bincount(y).min())))
        cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        out = list(cv.split(np.zeros(n), y))
    return [(tr, va) for tr, va in out if len(np.unique(y[tr])) >= 2 and len(va)]


def fused_ua(p_audio: np.ndarray, p_text: np.ndarray, y: np.ndarray, weight: float) -> float:
    """UA (mean recall over the classes in ``y``) of ``weight · audio + (1 − weight) · text``."""
    pred = np.argmax(weight * p_audio + (1.0 - weight) * p_text, axis=1)
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def choose_weight(
    p_audio: np.ndarray, p_text: np.ndarray, y: np.ndarray, steps: int = 11
) -> tuple[float, float]:
    """The audio weight on a grid of ``steps`` points in [0, 1] whose fused probabilities
    score the highest UA on ``y``; ties go to the weight closest to 0.5. Returns
    (weight, that UA). Call it with out-of-fold probabilities of training rows only."""
    grid = np.linspace(0.0, 1.0, max(2, int(steps)))
    scores = np.array([fused_ua(p_audio, p_text, y, w) for w in grid])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    chosen = best[np.argmin(np.abs(grid[best] - 0.5))]
    return float(grid[chosen]), float(scores[chosen])


def _member_class(role: str, name: str) -> type[SERModel]:
    """The model class of a late-fusion member, or one line listing those it can be."""
    known = AUDIO_MEMBERS if role == "audio" else TEXT_MEMBERS
    if name not in known:
        raise BadParameterError(
            f"fusion: {role}_model must be one of {', '.join(known)}, got {name!r}"
        )
    return known[name]


class LateFusionModel(SERModel):
    """Probability average of an audio and a text model, the weight learnt on inner folds.

    Member parameters are namespaced: ``audio__C`` is the audio model's ``C``,
    ``text__C`` the text model's.
    """

    name: ClassVar[str] = "fusion"
    input_kind: ClassVar[str] = "multimodal"
    default_audio: ClassVar[str] = "svm"
    default_text: ClassVar[str] = "text-lr"
    #: weight_steps 1 or less was stored as given and quietly used as a 2-point grid
    param_ranges: ClassVar[dict[str, Range]] = {
        "inner_folds": (2, True, None, False),
        "weight_steps": (2, True, None, False),
    }

    def __init__(self, params: dict | None = None, **kwargs: Any) -> None:
        given = dict(params or {})
        members = {
            "audio": (given.get("audio_model", self.default_audio), AUDIO_MEMBERS),
            "text": (given.get("text_model", self.default_text), TEXT_MEMBERS),
        }
        for role, (model, known) in members.items():
            if model not in known:
                raise BadParameterError(
                    f"{self.name}: {role}_model {model!r} is not one of {', '.join(known)}"
                )
        own = {k: v for k, v in given.items() if not k.startswith(("audio__", "text__"))}
        super().__init__(own, **kwargs)
        self.params = {
            k: v for k, v in self.params.items() if not k.startswith(("audio__", "text__"))
        }
        for role, (model, known) in members.items():
            defaults = known[model].default_params()
            for key in given:
                if key.startswith(f"{role}__") and key.split("__", 1)[1] not in defaults:
                    raise BadParameterError(
                        f"{self.name}: unknown parameter {key!r} ({model} knows: "
                        f"{', '.join(sorted(defaults))})"
                    )
            self.params.update({f"{role}__{k}": v for k, v in defaults.items()})
        self.params.update({k: v for k, v in given.items() if k.startswith(("audio__", "text__"))})

    @classmethod
    def default_params(cls) -> dict:
        audio = AUDIO_MEMBERS[cls.default_audio].default_params()
        text = TEXT_MEMBERS[cls.default_text].default_params()
        return {
            "audio_model": cls.default_audio,
            "text_model": cls.default_text,
            "inner_folds": 3,
            "weight_steps": 11,
            **{f"audio__{k}": v for k, v in audio.items()},
            **{f"text__{k}": v for k, v in text.items()},
        }

    @classmethod
    def search_space(
        cls, trial: optuna.Trial, audio_model: str | None = None, text_model: str | None = None
    ) -> dict:
        """The members' own spaces, namespaced (the weight is learnt, not tuned); the
        default members unless ``audio_model`` / ``text_model`` name others (the
        parameters a tuning holds fixed)."""
        out: dict[str, Any] = {}
        for role, member in (
            ("audio", _member_class("audio", audio_model or cls.default_audio)),
            ("text", _member_class("text", text_model or cls.default_text)),
        ):
            sub = member.search_space(_PrefixedTrial(trial, f"{role}__"))  # type: ignore[arg-type]
            out.update({f"{role}__{k}": v for k, v in sub.items()})
        return out

    def _member(self, role: str) -> SERModel:
        known = AUDIO_MEMBERS if role == "audio" else TEXT_MEMBERS
        sub = {k.split("__", 1)[1]: v for k, v in self.params.items() if k.startswith(f"{role}__")}
        cls = known[self.params[f"{role}_model"]]
        return cls(sub, seed=self.seed, n_jobs=self.n_jobs, device=self.device)

    def fit(
        self,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> Self:
        audio, texts = split_pairs(self.name, X)
        y, k = check_labels(self.name, y, len(texts), n_classes)
        if int(self.params["inner_folds"]) < 2:
            raise BadParameterError(f"{self.name}: inner_folds must be at least 2")
        groups = None if groups is None else np.asarray(groups)
        splits = speaker_folds(y, groups, int(self.params["inner_folds"]), self.seed)
        p_audio = np.full((len(y), k), np.nan)
        p_text = np.full((len(y), k), np.nan)
        for tr, va in splits:  # inner out-of-fold probabilities of the training rows
            sub_groups = None if groups is None else groups[tr]
            a = self._member("audio").fit(audio[tr], y[tr], sub_groups, k)
            p_audio[va] = a.predict_proba(audio[va])
            t = self._member("text").fit([texts[i] for i in tr], y[tr], sub_groups, k)
            p_text[va] = t.predict_proba([texts[i] for i in va])
        seen = ~np.isnan(p_audio[:, 0])
        if seen.any():
            self.weight_, self.inner_ua_ = choose_weight(
                p_audio[seen], p_text[seen], y[seen], int(self.params["weight_steps"])
            )
        else:  # too few speakers or classes to validate: an even average
            self.weight_, self.inner_ua_ = 0.5, float("nan")
        self.audio_ = self._member("audio").fit(audio, y, groups, k)
        self.text_ = self._member("text").fit(texts, y, groups, k)
        self.n_classes_ = k
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        audio, texts = split_pairs(self.name, X)
        w = self.weight_
        return w * self.audio_.predict_proba(audio) + (1.0 - w) * self.text_.predict_proba(texts)

    def _state_meta(self) -> dict:
        return {"weight": self.weight_, "inner_ua": self.inner_ua_}

    def _save_state(self, path: Path) -> None:
        self.audio_.save(path / "audio")
        self.text_.save(path / "text")

    def _load_state(self, path: Path, state: dict) -> None:
        self.weight_ = float(state["weight"])
        self.inner_ua_ = state.get("inner_ua")
        self.audio_ = AUDIO_MEMBERS[self.params["audio_model"]].load(
            path / "audio", n_jobs=self.n_jobs, device=self.device
        )
        self.text_ = TEXT_MEMBERS[self.params["text_model"]].load(
            path / "text", n_jobs=self.n_jobs, device=self.device
        )


class EarlyFusionModel(SERModel):
    """One logistic regression on standardised functionals beside word + character tf-idf.

    The functionals block is scaled by ``audio_weight / sqrt(d)``, so that its rows have
    about the norm ``audio_weight`` (as a tf-idf block's, which is L2-normalised): the
    parameter sets how much room the regularised model gives the voice against the words.
    """

    name: ClassVar[str] = "early-fusion"
    input_kind: ClassVar[str] = "multimodal"

    @classmethod
    def default_params(cls) -> dict:
        return {
            "word_max_n": 2,
            "char_max_n": 5,
            "min_df": 1,
            "sublinear_tf": True,
            "audio_weight": 1.0,
            "C": 1.0,
            "class_weight": "balanced",
        }

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            "word_max_n": trial.suggest_int("word_max_n", 1, 2),
            "char_max_n": trial.suggest_categorical("char_max_n", [0, 3, 5]),
            "audio_weight": trial.suggest_float("audio_weight", 0.1, 10.0, log=True),
            "C": trial.suggest_float("C", 0.01, 100.0, log=True),
        }

    def fit(
        self,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> Self:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        audio, texts = split_pairs(self.name, X)
        y, k = check_labels(self.name, y, len(texts), n_classes)
        p = self.params
        if float(p["C"]) <= 0 or float(p["audio_weight"]) < 0:
            raise BadParameterError(f"{self.name}: C must be positive and audio_weight >= 0")
        if p["class_weight"] not in ("balanced", None):
            raise BadParameterError(f"{self.name}: class_weight must be 'balanced' or null")
        if not any(t.strip() for t in texts):
            raise BadParameterError(f"{self.name}: every training transcript is empty")
        self.classes_ = np.unique(y)
        with threadpool_limits(limits=self.n_jobs):
            imputer = SimpleImputer(strategy="median", keep_empty_features=True).fit(audio)
            scaler = StandardScaler().fit(imputer.transform(audio))
            tfidf = tfidf_features(p["word_max_n"], p["char_max_n"], p["min_df"], p["sublinear_tf"])
            try:
                words = tfidf.fit_transform(texts)
            except ValueError as exc:  # e.g. min_df leaves no term
                raise BadParameterError(f"{self.name}: {str(exc).splitlines()[0]}") from None
            self.state_ = {"imputer": imputer, "scaler": scaler, "tfidf": tfidf}
            self.n_features_ = audio.shape[1]
            clf = LogisticRegression(
                C=float(p["C"]), class_weight=p["class_weight"], max_iter=3000,
                random_state=self.seed,
            )  # fmt: skip
            clf.fit(self._design(audio, words), np.searchsorted(self.classes_, y))
            self.state_["clf"] = clf
        self.n_classes_ = k
        return self

    def _design(self, audio: np.ndarray, words: Any) -> Any:
        from scipy import sparse

        s = self.state_
        block = s["scaler"].transform(s["imputer"].transform(audio))
        block *= float(self.params["audio_weight"]) / np.sqrt(max(block.shape[1], 1))
        return sparse.hstack([sparse.csr_matrix(block), words], format="csr")

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        audio, texts = split_pairs(self.name, X)
        audio = check_tabular(self.name, audio, self.n_features_)
        with threadpool_limits(limits=self.n_jobs):
            design = self._design(audio, self.state_["tfidf"].transform(texts))
            proba = self.state_["clf"].predict_proba(design)
        return expand_proba(proba, self.classes_, self.n_classes_)

    def _state_meta(self) -> dict:
        return {"classes": self.classes_.tolist(), "n_features": self.n_features_}

    def _save_state(self, path: Path) -> None:
        joblib.dump(self.state_, path / ESTIMATOR_FILE)

    def _load_state(self, path: Path, state: dict) -> None:
        self.state_ = joblib.load(path / ESTIMATOR_FILE)
        self.classes_ = np.asarray(state["classes"], dtype=np.int64)
        self.n_features_ = int(state["n_features"])
