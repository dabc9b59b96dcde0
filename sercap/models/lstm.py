"""``lstm``: a recurrent network on per-frame descriptor sequences of varying length.

At prediction, sequences are packed (``pack_padded_sequence``) so padding never enters the
recurrence, and the pooling head masks padded steps: an utterance gets the same prediction
alone or in a batch. Training batches hold sequences of similar length cropped to one length,
so no padding exists there and the LSTM runs dense (packed backward passes are ~4x slower on
a CPU).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import optuna
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sercap.errors import BadParameterError
from sercap.models.base import Range
from sercap.models.torch_common import (
    TORCH_RANGES,
    TorchModel,
    common_params,
    common_search_space,
    crop_sequence,
    length_batches,
    pad_sequences,
)

HEADS = ("mean", "attention", "stats")


class LSTMNet(nn.Module):
    """(Bi)LSTM over packed sequences → masked mean, attention or statistics (mean and standard
    deviation) pooling → dropout → linear."""

    def __init__(
        self,
        n_in: int,
        n_classes: int,
        hidden: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
        head: str,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_in,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        width = hidden * (2 if bidirectional else 1)
        self.attention = nn.Linear(width, 1) if head == "attention" else None
        self.drop = nn.Dropout(dropout)
        self.stats = head == "stats"
        self.fc = nn.Linear(width * (2 if self.stats else 1), n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if bool((lengths == x.shape[1]).all()):  # no padding: the dense path is the same sum
            out, _ = self.lstm(x)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        if self.attention is None:
            n = lengths.to(out.device)[:, None].to(out.dtype)
            pooled = (out * mask[..., None]).sum(1) / n
            if self.stats:
                var = (((out - pooled[:, None]) ** 2) * mask[..., None]).sum(1) / n
                pooled = torch.cat([pooled, torch.sqrt(var + 1e-6)], dim=1)
        else:
            scores = self.attention(out).squeeze(-1).float().masked_fill(~mask, float("-inf"))
            w = torch.softmax(scores, dim=1).to(out.dtype)
            pooled = (w[..., None] * out).sum(1)
        return self.fc(self.drop(pooled))


class LSTMModel(TorchModel):
    """LSTM on frame sequences standardised with training-frame statistics (NaN → 0 after)."""

    name: ClassVar[str] = "lstm"
    input_kind: ClassVar[str] = "sequence"
    param_ranges: ClassVar[dict[str, Range]] = {
        **TORCH_RANGES,
        "hidden_size": (1, True, None, False),
        "num_layers": (1, True, None, False),
        "max_frames": (1, True, None, False),
        "frame_stride": (1, True, None, False),
    }
    legacy_params: ClassVar[dict] = {"frame_stride": 1}

    @classmethod
    def default_params(cls) -> dict:
        return {
            **common_params(),
            "epochs": 30,
            "batch_size": 32,
            "lr": 2e-3,
            "weight_decay": 1e-2,
            "scheduler": "onecycle",
            "patience": 10,
            "hidden_size": 128,
            "num_layers": 1,  # two layers doubled the time for no gain on EmoDB-sized corpora
            "bidirectional": True,
            "dropout": 0.3,
            "head": "stats",
            "label_smoothing": 0.1,
            "max_frames": 400,  # training crop (4 s at a 10 ms hop); prediction uses it all
            "frame_stride": 2,  # keep every 2nd frame: 20 ms steps, half the recurrence
        }

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {
            **common_search_space(trial),
            "hidden_size": trial.suggest_int("hidden_size", 32, 256, log=True),
            "num_layers": trial.suggest_int("num_layers", 1, 3),
            "bidirectional": trial.suggest_categorical("bidirectional", [True, False]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "head": trial.suggest_categorical("head", list(HEADS)),
            "frame_stride": trial.suggest_int("frame_stride", 1, 3),
        }

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.params["head"] not in HEADS:
            raise BadParameterError(
                f"lstm: head must be one of {HEADS}, got {self.params['head']!r}"
            )
        if float(self.params["mixup"]) != 0.0:  # (it was stored, and never applied)
            raise BadParameterError("lstm: mixup does not apply to sequences; leave it 0")

    def _check_input(self, X: Any, fitting: bool) -> list[np.ndarray]:
        if isinstance(X, np.ndarray) and X.ndim == 3:
            X = list(X)
        if not isinstance(X, list | tuple) or not X:
            raise BadParameterError("lstm: X must be a non-empty list of (frames, features) arrays")
        d = None if fitting else len(self.mean_)
        out = []
        for i, seq in enumerate(X):
            arr = np.asarray(seq, dtype=np.float32)
            if arr.ndim != 2 or len(arr) == 0:
                raise BadParameterError(
                    f"lstm: sequence {i} has shape {arr.shape}; need (frames ≥ 1, d)"
                )
            if d is not None and arr.shape[1] != d:
                raise BadParameterError(
                    f"lstm: sequence {i} has {arr.shape[1]} features, expected {d}"
                )
            d = arr.shape[1]
            out.append(arr)
        return out

    def _fit_stats(self, X: list[np.ndarray]) -> None:
        # Streaming sums in float64 (a corpus of frames can be several GB as one array).
        d = X[0].shape[1]
        count, total, squares = np.zeros(d), np.zeros(d), np.zeros(d)
        for seq in X:
            frames = seq.astype(np.float64)
            valid = np.isfinite(frames)
            frames = np.where(valid, frames, 0.0)
            count += valid.sum(axis=0)
            total += frames.sum(axis=0)
            squares += (frames**2).sum(axis=0)
        mean = np.divide(total, count, out=np.zeros(d), where=count > 0)
        var = np.divide(squares, count, out=np.zeros(d), where=count > 0) - mean**2
        std = np.sqrt(np.clip(var, 0.0, None))
        self.mean_ = mean.astype(np.float32)
        self.std_ = np.where(std > 1e-6 * (1 + np.abs(mean)), std, 1.0).astype(np.float32)

    def _transform(self, seq: np.ndarray) -> np.ndarray:
        stride = max(1, int(self.params.get("frame_stride", 1)))
        z = (seq[::stride] - self.mean_) / self.std_
        return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def _stats(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "std": self.std_}

    def _set_stats(self, stats: dict[str, np.ndarray], arch: dict) -> None:
        self.mean_, self.std_ = stats["mean"], stats["std"]

    def _build(self, n_classes: int) -> nn.Module:
        p = self.params
        return LSTMNet(
            len(self.mean_),
            n_classes,
            int(p["hidden_size"]),
            int(p["num_layers"]),
            bool(p["bidirectional"]),
            float(p["dropout"]),
            str(p["head"]),
        )

    def _tensors(
        self, seqs: list[np.ndarray], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        padded, lengths = pad_sequences([self._transform(s) for s in seqs])
        return torch.from_numpy(padded).to(device), torch.from_numpy(lengths)

    def _batch_order(
        self, X: list[np.ndarray], indices: np.ndarray, batch_size: int, rng: np.random.Generator
    ) -> list[np.ndarray]:
        lengths = np.array([len(seq) for seq in X])
        return length_batches(indices, lengths, batch_size, rng)

    def _train_batch(
        self, X: list[np.ndarray], idx: np.ndarray, rng: np.random.Generator, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        # Every sequence of the batch gets a random window of the same length (the shortest
        # one's, at most max_frames > 0): no padding, so the LSTM runs dense (see
        # length_batches).
        length = min(len(X[i]) for i in idx)
        cap = int(self.params["max_frames"])
        length = min(length, cap) if cap > 0 else length
        return self._tensors([crop_sequence(X[i], length, rng) for i in idx], device)

    def _proba(self, X: list[np.ndarray], device: torch.device) -> np.ndarray:
        # Full sequences, batched by similar length to keep padding (wasted work) small.
        order = np.argsort([len(s) for s in X], kind="stable")
        step = max(64, int(self.params["batch_size"]))
        parts = [
            self._run(self._tensors([X[j] for j in order[i : i + step]], device), device)
            for i in range(0, len(order), step)
        ]
        if not parts:
            return np.zeros((0, int(self.n_classes_ or 0)))
        out = np.empty((len(X), parts[0].shape[1]))
        out[order] = np.concatenate(parts)
        return out
