"""``text-cnn``: a small 1-D convolutional network over word tokens, trained from scratch.

``X`` is a sequence of transcripts. The vocabulary (lower-cased words and the marks ``! ? .``,
most frequent first, at least ``min_count`` occurrences) is built in ``fit`` from the training
rows only, like the tf-idf of the linear text models: under cross-validation a word said only
by test speakers is unknown (index 1) to the model. No pretrained embeddings: token embedding →
dropout → Conv1d (``kernel_size`` tokens, so bigrams and trigrams) → ReLU → max over time →
dropout → linear. A fixed number of epochs by default; ``valid_fraction`` > 0 turns on early
stopping on held-out training speakers, as for every torch model.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar

import numpy as np
import optuna
import torch
from torch import nn

from sercap.errors import BadParameterError
from sercap.models.text import check_texts
from sercap.models.torch_common import TorchModel, common_params, common_search_space

#: Words (letters, digits, apostrophes, any script) and the sentence marks, which carry tone.
TOKENS = re.compile(r"\w[\w']*|[!?.]")
PAD, UNK = 0, 1


def tokenize(text: str) -> list[str]:
    """Lower-cased word and mark tokens of one transcript."""
    return TOKENS.findall(text.lower())


def build_vocabulary(texts: list[str], min_count: int = 1, max_size: int = 20000) -> list[str]:
    """Tokens of ``texts`` seen at least ``min_count`` times, most frequent first (ties in
    alphabetical order), at most ``max_size``; index i of the list is embedding row i + 2."""
    counts = Counter(token for text in texts for token in tokenize(text))
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return kept[: max(0, int(max_size))]


def encode(texts: list[str], index: dict[str, int], max_tokens: int) -> np.ndarray:
    """(n, L) int64 token indices, 0-padded; unknown tokens are 1; at least one column."""
    rows = [[index.get(t, UNK) for t in tokenize(text)][:max_tokens] for text in texts]
    width = max([1, *(len(r) for r in rows)])
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


class TextCNN(nn.Module):
    """Embedding → Conv1d → ReLU → masked max over time → linear."""

    def __init__(
        self, n_tokens: int, n_classes: int, dim: int, channels: int, kernel: int, dropout: float
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_tokens, dim, padding_idx=PAD)
        self.drop = nn.Dropout(dropout)
        self.conv = nn.Conv1d(dim, channels, kernel, padding=kernel // 2)
        self.out = nn.Linear(channels, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.embed(tokens)).transpose(1, 2)  # (B, dim, L)
        h = torch.relu(self.conv(x))[:, :, : tokens.shape[1]]  # (B, C, L)
        mask = (tokens != PAD).unsqueeze(1)
        h = h.masked_fill(~mask, float("-inf")).amax(dim=2)
        h = torch.where(torch.isfinite(h), h, torch.zeros_like(h))  # an empty transcript
        return self.out(self.drop(h))


class TextCNNModel(TorchModel):
    """1-D CNN over word tokens with a vocabulary from the training rows only."""

    name: ClassVar[str] = "text-cnn"
    input_kind: ClassVar[str] = "text"

    @classmethod
    def default_params(cls) -> dict:
        return {
            **common_params(),
            "epochs": 30,
            "batch_size": 32,
            "lr": 1e-2,
            "weight_decay": 1e-2,
            "scheduler": "none",
            "patience": 10,
            # No inner hold-out by default: on a few hundred transcripts, stopping on two
            # held-out speakers cost more (0.40-0.46 UA on the demo corpus) than it saved.
            "valid_fraction": 0.0,
            "embed_dim": 64,
            "channels": 64,
            "kernel_size": 2,
            "dropout": 0.3,
            "min_count": 1,
            "max_vocab": 20000,
            "max_tokens": 64,
        }

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            **common_search_space(trial),
            "embed_dim": trial.suggest_categorical("embed_dim", [32, 64, 128]),
            "channels": trial.suggest_categorical("channels", [32, 64, 128]),
            "kernel_size": trial.suggest_int("kernel_size", 1, 5),
            "dropout": trial.suggest_float("dropout", 0.0, 0.6),
            "min_count": trial.suggest_int("min_count", 1, 3),
        }

    def _validate_params(self) -> None:
        super()._validate_params()
        p = self.params
        for key in ("embed_dim", "channels", "kernel_size", "min_count", "max_tokens", "max_vocab"):
            if int(p[key]) < 1:
                raise BadParameterError(f"{self.name}: {key} must be at least 1, got {p[key]!r}")
        if not 0.0 <= float(p["dropout"]) < 1.0:
            raise BadParameterError(f"{self.name}: dropout must be in [0, 1)")
        if float(p["mixup"]) != 0.0:
            raise BadParameterError(f"{self.name}: mixup does not apply to tokens; leave it 0")

    def _check_input(self, X: Any, fitting: bool) -> list[str]:
        texts = check_texts(self.name, X)
        if fitting and not any(t.strip() for t in texts):
            raise BadParameterError(f"{self.name}: every training transcript is empty")
        return texts

    def _fit_stats(self, X: list[str]) -> None:
        # The only thing learnt without labels: which tokens exist (training rows only).
        self.vocab_ = build_vocabulary(X, int(self.params["min_count"]), self.params["max_vocab"])
        self._index = {t: i + 2 for i, t in enumerate(self.vocab_)}

    def _stats(self) -> dict[str, np.ndarray]:
        return {"vocab": np.array(self.vocab_, dtype=str)}

    def _set_stats(self, stats: dict[str, np.ndarray], arch: dict) -> None:
        self.vocab_ = [str(t) for t in stats["vocab"]]
        self._index = {t: i + 2 for i, t in enumerate(self.vocab_)}

    def _build(self, n_classes: int) -> nn.Module:
        p = self.params
        return TextCNN(
            len(self.vocab_) + 2,
            n_classes,
            int(p["embed_dim"]),
            int(p["channels"]),
            int(p["kernel_size"]),
            float(p["dropout"]),
        )

    def _encode(self, texts: list[str], device: torch.device) -> torch.Tensor:
        ids = encode(texts, self._index, int(self.params["max_tokens"]))
        return torch.from_numpy(ids).to(device)

    def _train_batch(
        self, X: list[str], idx: np.ndarray, rng: np.random.Generator, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        return (self._encode([X[i] for i in idx], device),)

    def _proba(self, X: list[str], device: torch.device) -> np.ndarray:
        step = max(256, int(self.params["batch_size"]))
        parts = [
            self._run((self._encode(X[i : i + step], device),), device)
            for i in range(0, len(X), step)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, int(self.n_classes_ or 0)))
