"""Text models: tf-idf of word and character n-grams, then a linear classifier.

``X`` is a sequence of strings (the transcript of each utterance). The vectorizers are part of
the model, so their vocabulary and IDF weights are computed in ``fit`` from the training rows
only: under cross-validation that is each training fold, never its test utterances.
``predict_proba`` only transforms. ``text-lr`` is a multinomial logistic regression;
``text-svm`` a linear SVM whose decision values become probabilities by a softmax (a ranking,
not a calibrated probability).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import optuna
from threadpoolctl import threadpool_limits

from sercap.errors import SercapError
from sercap.models.base import SERModel, check_labels, expand_proba

ESTIMATOR_FILE = "model.joblib"
#: Words of any script: letters, digits and apostrophes (so "can't" and "café" are one token).
TOKEN_PATTERN = r"(?u)\b\w[\w']*\b"


def check_texts(name: str, X: Any) -> list[str]:
    """A list of strings in Unicode NFC; None (no transcript) becomes the empty string.

    NFC: "café" typed with a combining accent (macOS, the web) is the same word as the
    precomposed one the corpus holds, at training and at prediction alike.

    Parameters
    ----------
    name : str
        The model's name, for errors.
    X : sequence of str
        One transcript per row.

    Returns
    -------
    list of str
    """
    if isinstance(X, str) or not hasattr(X, "__len__"):
        raise SercapError(f"{name}: X must be a sequence of transcripts (one string per row)")
    texts = []
    for value in X:
        if value is None:
            texts.append("")
        elif isinstance(value, str):
            texts.append(unicodedata.normalize("NFC", value))
        else:
            raise SercapError(f"{name}: X must hold strings, got {type(value).__name__}")
    return texts


def tfidf_features(  # noqa: ANN201 - sklearn object
    word_max_n: int = 2, char_max_n: int = 5, min_df: int = 1, sublinear: bool = True
):
    """Word 1..``word_max_n``-grams and character 2..``char_max_n``-grams (within word
    boundaries), each tf-idf weighted and L2-normalised, side by side; ``char_max_n`` 0 leaves
    out the characters."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    if int(word_max_n) < 1:
        raise SercapError(f"word_max_n must be at least 1, got {word_max_n!r}")
    if int(char_max_n) != 0 and int(char_max_n) < 2:
        raise SercapError(f"char_max_n must be 0 (off) or at least 2, got {char_max_n!r}")
    common = {"lowercase": True, "min_df": int(min_df), "sublinear_tf": bool(sublinear)}
    parts = [
        (
            "words",
            TfidfVectorizer(
                analyzer="word",
                ngram_range=(1, int(word_max_n)),
                token_pattern=TOKEN_PATTERN,
                **common,
            ),
        )
    ]
    if int(char_max_n):
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, int(char_max_n)), **common)
        parts.append(("chars", chars))
    return FeatureUnion(parts)


class TextModel(SERModel):
    """Shared plumbing: a sklearn Pipeline (tf-idf → classifier) fitted on training rows."""

    input_kind: ClassVar[str] = "text"
    c_range: ClassVar[tuple[float, float]] = (0.01, 100.0)  # where Optuna looks for C

    @classmethod
    def default_params(cls) -> dict:
        return {
            "word_max_n": 2,
            "char_max_n": 5,
            "min_df": 1,
            "sublinear_tf": True,
            "C": 1.0,
            "class_weight": "balanced",
        }

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            "word_max_n": trial.suggest_int("word_max_n", 1, 3),
            "char_max_n": trial.suggest_categorical("char_max_n", [0, 3, 4, 5]),
            "min_df": trial.suggest_int("min_df", 1, 3),
            "sublinear_tf": trial.suggest_categorical("sublinear_tf", [True, False]),
            "C": trial.suggest_float("C", *cls.c_range, log=True),
        }

    def fit(
        self,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> Self:
        from sklearn.pipeline import Pipeline

        texts = check_texts(self.name, X)
        y, k = check_labels(self.name, y, len(texts), n_classes)
        if self.params["class_weight"] not in ("balanced", None):
            raise SercapError(
                f"{self.name}: class_weight must be 'balanced' or null, "
                f"got {self.params['class_weight']!r}"
            )
        if float(self.params["C"]) <= 0:
            raise SercapError(f"{self.name}: C must be positive, got {self.params['C']!r}")
        if not any(t.strip() for t in texts):
            raise SercapError(f"{self.name}: every training transcript is empty")
        self.classes_ = np.unique(y)
        pipe = Pipeline(
            [
                (
                    "tfidf",
                    tfidf_features(
                        self.params["word_max_n"],
                        self.params["char_max_n"],
                        self.params["min_df"],
                        self.params["sublinear_tf"],
                    ),
                ),
                ("clf", self._classifier()),
            ]
        )
        with threadpool_limits(limits=self.n_jobs):
            try:
                pipe.fit(texts, np.searchsorted(self.classes_, y))
            except ValueError as exc:  # e.g. min_df leaves no term
                raise SercapError(f"{self.name}: {str(exc).splitlines()[0]}") from None
        self.pipeline_ = pipe
        self.n_classes_ = k
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        texts = check_texts(self.name, X)
        with threadpool_limits(limits=self.n_jobs):
            proba = self._proba(texts)
        return expand_proba(proba, self.classes_, self.n_classes_)

    def _classifier(self) -> Any:
        raise NotImplementedError

    def _proba(self, texts: list[str]) -> np.ndarray:
        return self.pipeline_.predict_proba(texts)

    def _state_meta(self) -> dict:
        return {"classes": self.classes_.tolist()}

    def _save_state(self, path: Path) -> None:
        joblib.dump(self.pipeline_, path / ESTIMATOR_FILE)

    def _load_state(self, path: Path, state: dict) -> None:
        self.pipeline_ = joblib.load(path / ESTIMATOR_FILE)
        self.classes_ = np.asarray(state["classes"], dtype=np.int64)


class TextLRModel(TextModel):
    """Multinomial logistic regression on word + character tf-idf."""

    name: ClassVar[str] = "text-lr"

    def _classifier(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=float(self.params["C"]),
            class_weight=self.params["class_weight"],
            max_iter=2000,
            random_state=self.seed,
        )


class TextSVMModel(TextModel):
    """Linear SVM (one-vs-rest) on word + character tf-idf; softmax of its decision values."""

    name: ClassVar[str] = "text-svm"
    c_range: ClassVar[tuple[float, float]] = (0.001, 10.0)

    def _classifier(self) -> Any:
        from sklearn.svm import LinearSVC

        return LinearSVC(
            C=float(self.params["C"]),
            class_weight=self.params["class_weight"],
            max_iter=5000,
            random_state=self.seed,
        )

    def _proba(self, texts: list[str]) -> np.ndarray:
        scores = np.asarray(self.pipeline_.decision_function(texts), dtype=np.float64)
        if scores.ndim == 1:  # two classes: one margin for the second class
            scores = np.column_stack([-scores, scores]) / 2
        scores = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)
