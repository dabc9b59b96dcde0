"""``dnn``: a multilayer perceptron on utterance-level features (the whole feature set, as the
SVM sees it, by default)."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import optuna
import torch
from torch import nn

from sercap.errors import BadParameterError
from sercap.models.base import Range, check_tabular
from sercap.models.torch_common import (
    TORCH_RANGES,
    TorchModel,
    common_params,
    common_search_space,
)


class MLP(nn.Module):
    """[Dropout on inputs] → n_layers × (Linear → [BatchNorm] → ReLU → Dropout) → Linear."""

    def __init__(
        self,
        n_in: int,
        n_classes: int,
        n_layers: int,
        hidden: int,
        dropout: float,
        batchnorm: bool,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_drop = nn.Dropout(input_dropout)  # no weights: saved models stay loadable
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(n_layers):
            layers.append(nn.Linear(width, hidden))
            if batchnorm:
                layers.append(nn.BatchNorm1d(hidden))
            layers += [nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.input_drop(x))


def refuse_single_row_batches(name: str, params: dict) -> None:
    """Batch normalisation cannot train on a batch of one row (torch raises deep inside the
    first fold): ``batch_size`` 1 needs ``batchnorm`` false."""
    if params.get("batchnorm") and int(params["batch_size"]) < 2:
        raise BadParameterError(
            f"{name}: batch_size must be at least 2 with batchnorm (a batch of one row has no "
            "statistics to normalise by); give batchnorm false for batch_size 1"
        )


class DNNModel(TorchModel):
    """MLP on median-imputed features standardised with training rows; early stopping on
    held-out training speakers. By default five networks, trained with seeds seed … seed + 4,
    average their probabilities (``n_seeds``; one network's UA moves by ±0.02 with its seed
    on a corpus of ~500 utterances)."""

    param_ranges: ClassVar[dict[str, Range]] = {
        **TORCH_RANGES,
        "n_layers": (0, True, None, False),
        "hidden_size": (1, True, None, False),
    }

    name: ClassVar[str] = "dnn"
    input_kind: ClassVar[str] = "tabular"
    default_columns: ClassVar[str | None] = None  # all functionals, like the SVM

    @property
    def uses_batchnorm(self) -> bool:  # type: ignore[override]
        return bool(self.params["batchnorm"])

    def _validate_params(self) -> None:
        super()._validate_params()
        refuse_single_row_batches("dnn", self.params)

    @classmethod
    def default_params(cls) -> dict:
        return {
            **common_params(),
            "epochs": 200,
            "batch_size": 64,
            "lr": 1e-3,
            "weight_decay": 1e-2,
            "scheduler": "none",
            "patience": 25,
            "n_layers": 2,
            "hidden_size": 256,
            "dropout": 0.3,
            "batchnorm": True,
            "input_dropout": 0.0,  # drop whole input features (a strong regulariser on ~1k)
            # Five networks, seeds seed…seed + 4, probabilities averaged: on ~500 utterances
            # one network's UA moves by ±0.02 with its seed alone.
            "n_seeds": 5,
        }

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            **common_search_space(trial),
            "n_layers": trial.suggest_int("n_layers", 1, 4),
            "hidden_size": trial.suggest_int("hidden_size", 32, 1024, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.6),
            "batchnorm": trial.suggest_categorical("batchnorm", [True, False]),
        }

    def _check_input(self, X: Any, fitting: bool) -> np.ndarray:
        return check_tabular(self.name, X, None if fitting else len(self.median_))

    def _fit_stats(self, X: np.ndarray) -> None:
        # All-NaN columns get median 0; constant columns std 1 (they become 0 after centring).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice"
            median = np.nanmedian(X, axis=0)
        self.median_ = np.nan_to_num(median, nan=0.0).astype(np.float32)
        filled = np.where(np.isnan(X), self.median_, X)
        self.mean_ = filled.mean(axis=0).astype(np.float32)
        std = filled.std(axis=0)
        self.std_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(X), self.median_, X)
        return ((filled - self.mean_) / self.std_).astype(np.float32)

    def _stats(self) -> dict[str, np.ndarray]:
        return {"median": self.median_, "mean": self.mean_, "std": self.std_}

    def _set_stats(self, stats: dict[str, np.ndarray], arch: dict) -> None:
        self.median_, self.mean_, self.std_ = stats["median"], stats["mean"], stats["std"]

    def _build(self, n_classes: int) -> nn.Module:
        p = self.params
        return MLP(
            len(self.median_),
            n_classes,
            int(p["n_layers"]),
            int(p["hidden_size"]),
            float(p["dropout"]),
            bool(p["batchnorm"]),
            float(p.get("input_dropout", 0.0)),
        )

    def _train_batch(
        self, X: np.ndarray, idx: np.ndarray, rng: np.random.Generator, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        return (torch.from_numpy(self._transform(X[idx])).to(device),)

    def _proba(self, X: np.ndarray, device: torch.device) -> np.ndarray:
        Z = self._transform(X)
        step = max(256, int(self.params["batch_size"]))
        parts = [
            self._run((torch.from_numpy(Z[i : i + step]).to(device),), device)
            for i in range(0, len(Z), step)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, int(self.n_classes_ or 0)))
