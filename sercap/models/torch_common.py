"""Shared torch machinery: device choice, seeding, the training loop with early stopping on an
inner speaker-grouped (session-grouped) split, and the crop / pad / window / augmentation helpers.

dnn, lstm and cnn only describe their network, how a batch is built and how inputs are
normalised; everything that decides *how* a model is trained lives here, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import optuna
import torch
from torch import nn
from tqdm.auto import tqdm

from sercap.errors import BadParameterError, DivergedError
from sercap.models.base import (
    Range,
    SERModel,
    check_labels,
    class_weights,
    inner_split,
    normalise_rows,
    unweighted_accuracy,
)

#: Version of the training/input recipe, saved with every model (absent = saved before 2).
RECIPE = 2

WEIGHTS_FILE = "weights.pt"
STATS_FILE = "stats.npz"

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("cosine", "onecycle", "step", "none")


# ------------------------------------------------------------------------- device & threads
def resolve_device(device: str | None) -> torch.device:
    """ "cuda" when available and nothing was asked for, else the CPU; a bad request is an error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BadParameterError(f"unknown torch device {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadParameterError(f"device {device!r} requested but no CUDA GPU is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BadParameterError(f"device {device!r} requested but this torch has no MPS support")
    if dev.type not in ("cpu", "cuda", "mps"):  # meta, xpu…: a traceback deep in training
        raise BadParameterError(f"device {device!r}: sercap trains on cpu, cuda or mps")
    return dev


@contextlib.contextmanager
def torch_threads(n_jobs: int) -> Iterator[None]:
    """Use exactly n_jobs intra-op threads while inside, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n_jobs)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[np.random.Generator]:
    """Seed torch (CPU and the used GPU) without disturbing the caller's global RNG state.

    Yields the numpy generator that decides shuffling, crops and masks.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed_all(seed)
            old = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            yield np.random.default_rng(seed)
        finally:
            if device.type == "cuda":
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision (float16) on CUDA only; full float32 on the CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


# ------------------------------------------------------------------------- sequence helpers
def pad_sequences(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack (T_i, d) arrays into a zero-padded (B, T_max, d) array plus the lengths."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    d = seqs[0].shape[1]
    out = np.zeros((len(seqs), int(lengths.max()), d), dtype=np.float32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


def crop_sequence(seq: np.ndarray, max_frames: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of at most max_frames frames (training only; 0 = no crop)."""
    if max_frames <= 0 or len(seq) <= max_frames:
        return seq
    start = int(rng.integers(0, len(seq) - max_frames + 1))
    return seq[start : start + max_frames]


# ------------------------------------------------------------------------- image helpers
def random_crop(image: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """A (H, width) training crop: a random window, or the image at a random offset padded with 0.

    0 is the quietest value of a uint8 log-mel image, so padding looks like silence.
    """
    h, w = image.shape
    if w >= width:
        start = int(rng.integers(0, w - width + 1))
        return image[:, start : start + width]
    out = np.zeros((h, width), dtype=image.dtype)
    offset = int(rng.integers(0, width - w + 1))
    out[:, offset : offset + w] = image
    return out


def window_starts(length: int, width: int, stride: int) -> np.ndarray:
    """Start columns of windows that together cover [0, length): regular steps (at most one
    window wide, or frames between windows would be left out) plus one flush with the end,
    so the last frames are never dropped."""
    if length <= width:
        return np.zeros(1, dtype=np.int64)
    stride = min(max(1, int(stride)), width)
    starts = list(range(0, length - width + 1, stride))
    if starts[-1] != length - width:
        starts.append(length - width)
    return np.asarray(starts, dtype=np.int64)


def image_windows(image: np.ndarray, width: int, stride: int) -> np.ndarray:
    """(n_windows, H, width) windows covering the whole image; a short image is centred and
    zero-padded into a single window."""
    h, w = image.shape
    if w <= width:
        out = np.zeros((1, h, width), dtype=image.dtype)
        offset = (width - w) // 2
        out[0, :, offset : offset + w] = image
        return out
    return np.stack([image[:, s : s + width] for s in window_starts(w, width, stride)])


def spec_augment(
    x: torch.Tensor,
    freq_mask: int,
    time_mask: int,
    n_masks: int,
    rng: np.random.Generator,
) -> torch.Tensor:
    """SpecAugment on a standardised (B, 1, H, W) batch: zero (= the band mean) n_masks random
    bands of up to freq_mask mel bins and n_masks spans of up to time_mask frames per example."""
    b, _, h, w = x.shape
    keep = np.ones((b, h, w), dtype=bool)
    rows, cols = np.arange(h)[None, :], np.arange(w)[None, :]
    for _ in range(max(0, n_masks)):
        if freq_mask > 0:
            width = rng.integers(0, min(freq_mask, h) + 1, size=b)
            start = rng.integers(0, h - width + 1)
            band = (rows >= start[:, None]) & (rows < (start + width)[:, None])
            keep &= ~band[:, :, None]
        if time_mask > 0:
            width = rng.integers(0, min(time_mask, w) + 1, size=b)
            start = rng.integers(0, w - width + 1)
            span = (cols >= start[:, None]) & (cols < (start + width)[:, None])
            keep &= ~span[:, None, :]
    return x * torch.from_numpy(keep).to(x.device)[:, None].to(x.dtype)


def batch_indices(
    indices: np.ndarray, batch_size: int, rng: np.random.Generator | None, drop_single: bool
) -> list[np.ndarray]:
    """Shuffled (when rng is given) mini-batches; a trailing batch of one row is dropped when
    drop_single (BatchNorm cannot train on a single example)."""
    order = rng.permutation(indices) if rng is not None else np.asarray(indices)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_single and len(batches) > 1 and len(batches[-1]) == 1:
        batches = batches[:-1]
    return batches


def length_batches(
    indices: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    pool: int = 4,
) -> list[np.ndarray]:
    """Shuffled mini-batches of rows of similar length.

    The rows are shuffled, cut into pools of ``pool`` batches, each pool sorted by length and
    cut into batches; the batches are then shuffled. Rows of a batch are close in length, so
    cropping them to a common length (the shortest) loses little, and a recurrent network
    then runs on an unpadded tensor: on a CPU, PyTorch's LSTM backward pass over a packed
    (varying-length) batch is about 4x slower than over a dense one.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> batches = length_batches(np.arange(8), np.array([5, 1, 7, 2, 8, 3, 6, 4]), 2, rng)
    >>> sorted(int(i) for b in batches for i in b)
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    order = rng.permutation(np.asarray(indices))
    size = max(1, pool) * batch_size
    batches: list[np.ndarray] = []
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


# ------------------------------------------------------------------------- training
def common_params() -> dict:
    """Parameters of every torch model (subclasses override the defaults they need)."""
    return {
        "epochs": 30,
        "batch_size": 32,
        "lr": 1e-3,
        "weight_decay": 1e-2,
        "optimizer": "adamw",
        "momentum": 0.9,
        "nesterov": False,
        "scheduler": "cosine",
        "patience": 10,
        "valid_fraction": 0.2,  # 2 of EmoDB's 9 training speakers: 1 is too noisy to stop on
        "class_weight": "balanced",
        "label_smoothing": 0.0,  # cross-entropy target smoothing (0 = hard labels)
        "mixup": 0.0,  # mixup Beta(a, a) concentration on single-tensor inputs (0 = off)
        "n_seeds": 1,  # networks trained with seeds seed, seed + 1, …; probabilities averaged
    }


#: Ranges of the parameters every torch model shares (see ``ModelParams.param_ranges``):
#: torch refuses a negative lr or weight decay inside the first fit, with a traceback, and
#: takes a negative patience or a validation share above 1 without a word.
TORCH_RANGES: dict[str, Range] = {
    "epochs": (1, True, None, False),
    "batch_size": (1, True, None, False),
    "lr": (0, False, None, False),
    "weight_decay": (0, True, None, False),
    "momentum": (0, True, 1, False),
    "patience": (0, True, None, False),
    "valid_fraction": (0, True, 1, False),  # 0: no validation, no early stopping
    "label_smoothing": (0, True, 1, False),
    "mixup": (0, True, None, False),
    "n_seeds": (1, True, None, False),
}


def common_search_space(trial: optuna.Trial, *, sgd: bool = False) -> dict:
    """lr, weight decay and batch size; SGD gets a higher lr range and momentum."""
    params: dict[str, Any] = {}
    if sgd:
        params["lr"] = trial.suggest_float("lr", 1e-3, 0.1, log=True)
        params["momentum"] = trial.suggest_float("momentum", 0.8, 0.99)
        params["nesterov"] = trial.suggest_categorical("nesterov", [True, False])
    else:
        params["lr"] = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    params["weight_decay"] = trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
    params["batch_size"] = trial.suggest_categorical("batch_size", [16, 32, 64])
    return params


def _optimizer(module: nn.Module, p: dict) -> torch.optim.Optimizer:
    if p["optimizer"] == "adamw":
        return torch.optim.AdamW(module.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    return torch.optim.SGD(
        module.parameters(),
        lr=p["lr"],
        momentum=p["momentum"],
        nesterov=bool(p["nesterov"]) and p["momentum"] > 0,
        weight_decay=p["weight_decay"],
    )


def _scheduler(opt: torch.optim.Optimizer, p: dict) -> Any:
    epochs = max(1, int(p["epochs"]))
    if p["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if p["scheduler"] == "onecycle":  # linear warm-up over 30 % of the epochs, then cosine to 0
        warm = max(1, round(0.3 * epochs))

        def factor(e: int) -> float:
            if e < warm:
                return 0.1 + 0.9 * e / warm
            return 0.5 * (1.0 + np.cos(np.pi * (e - warm) / max(1, epochs - warm)))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)
    if p["scheduler"] == "step":  # divide by 10 at one and two thirds of training
        milestones = sorted({max(1, epochs // 3), max(1, 2 * epochs // 3)})
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    return None


Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]


def mixup_batch(
    inputs: tuple[torch.Tensor, ...], alpha: float, rng: np.random.Generator
) -> tuple[tuple[torch.Tensor, ...], np.ndarray | None, float]:
    """Mixup (Zhang et al. 2018): blend each example with a shuffled partner by one
    lambda ~ Beta(alpha, alpha), kept >= 0.5 so the first label dominates.

    Only single-tensor inputs are mixed (images, feature rows); sequences with lengths are
    returned unchanged. Returns (inputs, partner order or None, lambda).
    """
    if alpha <= 0 or len(inputs) != 1 or len(inputs[0]) < 2:
        return inputs, None, 1.0
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    order = rng.permutation(len(inputs[0]))
    x = inputs[0]
    return (lam * x + (1.0 - lam) * x[torch.from_numpy(order).to(x.device)],), order, lam


def check_not_diverged(module: nn.Module, name: str, epoch: int, lr: Any) -> None:
    """Stop with one line when training has blown the weights up (NaN or infinite).

    Every later prediction would be NaN, which scoring can only refuse with a traceback;
    a learning rate far too high is the usual cause.
    """
    tensors = [*module.parameters(), *module.buffers()]  # batch-norm statistics too
    if all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point()):
        return
    raise DivergedError(
        f"{name}: training diverged in epoch {epoch} (the weights are no longer finite); "
        f"try a lower lr (now {lr!r})"
    )


def train_classifier(
    module: nn.Module,
    *,
    params: dict,
    device: torch.device,
    weights: np.ndarray,
    train_batches: Callable[[np.random.Generator], Iterable[Batch]],
    valid_proba: Callable[[], np.ndarray] | None,
    y_valid: np.ndarray | None,
    rng: np.random.Generator,
    verbose: bool,
    desc: str,
    name: str = "model",
) -> list[dict]:
    """Weighted cross-entropy training; keeps the epoch with the best inner-validation UA.

    Ties in UA (frequent on a small validation set) go to the lower class-balanced validation
    loss. Without a validation split all epochs run and the last weights are kept. Returns the
    per-epoch history (loss, val_ua, val_loss).
    """
    opt = _optimizer(module, params)
    sched = _scheduler(opt, params)
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.as_tensor(weights, dtype=torch.float32, device=device),
        label_smoothing=float(params.get("label_smoothing", 0.0)),
    )
    alpha = float(params.get("mixup", 0.0))
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    patience = int(params["patience"])
    best: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    since_best = 0
    history: list[dict] = []
    bar = tqdm(
        range(int(params["epochs"])), desc=desc, unit="epoch", disable=not verbose, leave=False
    )
    for epoch in bar:
        module.train()
        total, count = 0.0, 0
        for inputs, targets in train_batches(rng):
            opt.zero_grad(set_to_none=True)
            inputs, partner, lam = mixup_batch(inputs, alpha, rng)
            with autocast(device):
                logits = module(*inputs)
            loss = loss_fn(logits.float(), targets)
            if partner is not None:
                other = targets[torch.from_numpy(partner).to(targets.device)]
                loss = lam * loss + (1.0 - lam) * loss_fn(logits.float(), other)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach()) * len(targets)
            count += len(targets)
        if sched is not None:
            sched.step()
        check_not_diverged(module, name, epoch + 1, params["lr"])
        record: dict[str, float] = {"epoch": epoch + 1, "loss": total / max(count, 1)}
        if valid_proba is not None and y_valid is not None:
            proba = valid_proba()
            ua = unweighted_accuracy(y_valid, proba.argmax(axis=1))
            nll = -np.log(np.clip(proba[np.arange(len(y_valid)), y_valid], 1e-12, None))
            vloss = float(np.mean([nll[y_valid == c].mean() for c in np.unique(y_valid)]))
            record.update(val_ua=ua, val_loss=vloss)
            if best is None or ua > best[0] or (ua == best[0] and vloss < best[1]):
                best = (ua, vloss)
                best_state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
                since_best = 0
                record["best"] = 1.0
            else:
                since_best += 1
        history.append(record)
        bar.set_postfix({k: round(v, 3) for k, v in record.items() if k in ("loss", "val_ua")})
        if best is not None and patience > 0 and since_best >= patience:
            break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    return history


# ------------------------------------------------------------------------- model base
class SeedAverage(nn.Module):
    """Networks of one architecture trained with different seeds (a deep ensemble).

    The forward pass returns the log of the members' mean softmax, so that the softmax every
    model applies to its network's output is exactly the mean of their probabilities.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        probs = [torch.softmax(member(*inputs).float(), dim=1) for member in self.members]
        return torch.log(torch.stack(probs).mean(dim=0))


class TorchModel(SERModel):
    """Fit skeleton for torch models: validate, seed, inner split, build, train, restore best.

    Subclasses implement ``_check_input``, ``_fit_stats`` (normalisation from all training
    inputs — no labels involved), ``_build``, ``_train_batches`` and ``_proba`` (eval mode,
    softmax probabilities), plus ``_arch_meta`` for what ``_build`` needs after ``load``.
    """

    param_ranges: ClassVar[dict[str, Range]] = TORCH_RANGES

    def _check_on_init(self) -> None:
        self._validate_params()  # choices too (optimizer, stem…), before any data is read

    uses_batchnorm: ClassVar[bool] = False
    #: Layout of 4-d weights and inputs; image models use channels_last (NHWC), with which
    #: convolutions and max-pooling run 1.3x (training) to 2.6x (inference) faster on a CPU.
    memory_format: ClassVar[torch.memory_format] = torch.contiguous_format
    #: What parameters added with RECIPE 2 meant before, for models saved earlier: loading
    #: fills absent keys with today's defaults, which would change the network they describe.
    legacy_params: ClassVar[dict] = {}
    #: ``_run`` returns the network's raw output instead of its softmax: set on the instance
    #: a regressor (:class:`sercap.models.regressors.TorchRegressor`) trains and predicts with.
    raw_output: bool = False

    def fit(
        self,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> Self:
        X = self._check_input(X, fitting=True)
        y, k = check_labels(self.name, y, len(X), n_classes)
        self._validate_params()
        if groups is not None and len(groups) != len(y):
            raise BadParameterError(
                f"{self.name}: groups has {len(groups)} entries for {len(y)} rows"
            )
        device = resolve_device(self.device)
        self.n_classes_ = None
        members: list[nn.Module] = []
        # Per-epoch records of every member in turn, each with its ``member`` index.
        self.history_: list[dict] = []
        with torch_threads(self.n_jobs):
            self._fit_stats(X)
            n = int(self.params.get("n_seeds", 1))
            for i in range(n):
                desc = self.name if n == 1 else f"{self.name} {i + 1}/{n}"
                history = self._fit_member(X, y, groups, k, device, self.seed + i, desc)
                self.history_ += [{"member": i, **record} for record in history]
                members.append(self.module_)
        self.module_ = members[0] if len(members) == 1 else SeedAverage(members)
        self.module_.eval()
        self.device_ = device
        self.n_classes_ = k
        return self

    def _fit_member(
        self,
        X: Any,
        y: np.ndarray,
        groups: np.ndarray | None,
        k: int,
        device: torch.device,
        seed: int,
        desc: str,
    ) -> list[dict]:
        """Build and train one network (``self.module_``) exactly as a fit with ``seed``
        would: its initial weights, inner validation speakers, batch order and augmentation
        all follow ``seed``. Returns its per-epoch history."""
        with seeded(seed, device) as rng:
            self.module_ = self._placed(self._build(k), device)
            split = inner_split(y, groups, float(self.params["valid_fraction"]), seed)
            train_idx, valid_idx = split if split is not None else (np.arange(len(y)), None)
            weights = (
                class_weights(y[train_idx], k)
                if self.params["class_weight"] == "balanced"
                else np.ones(k)
            )
            weights = np.where(weights > 0, weights, 1.0)  # absent classes never occur anyway
            bs = int(self.params["batch_size"])

            def batches(r: np.random.Generator) -> Iterator[Batch]:
                for idx in self._batch_order(X, train_idx, bs, r):
                    inputs = self._train_batch(X, idx, r, device)
                    yield inputs, torch.as_tensor(y[idx], dtype=torch.long, device=device)

            valid = None
            if valid_idx is not None:
                X_valid = [X[i] for i in valid_idx] if isinstance(X, list) else X[valid_idx]

                def valid() -> np.ndarray:
                    return self._proba(X_valid, device)

            return train_classifier(
                self.module_,
                params=self.params,
                device=device,
                weights=weights,
                train_batches=batches,
                valid_proba=valid,
                y_valid=None if valid_idx is None else y[valid_idx],
                rng=rng,
                verbose=self.verbose,
                desc=desc,
                name=self.name,
            )

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = self._check_input(X, fitting=False)
        with torch_threads(self.n_jobs):
            return normalise_rows(self._proba(X, self.device_))

    def _validate_params(self) -> None:
        p = self.params
        if p["optimizer"] not in OPTIMIZERS:
            raise BadParameterError(
                f"{self.name}: optimizer must be one of {OPTIMIZERS}, got {p['optimizer']!r}"
            )
        if p["scheduler"] not in SCHEDULERS:
            raise BadParameterError(
                f"{self.name}: scheduler must be one of {SCHEDULERS}, got {p['scheduler']!r}"
            )
        if p["class_weight"] not in ("balanced", None):
            raise BadParameterError(f"{self.name}: class_weight must be 'balanced' or null")
        # numeric bounds (epochs, lr, label_smoothing, n_seeds…): ``param_ranges``, checked
        # by the constructor

    @torch.no_grad()
    def _run(self, inputs: tuple[torch.Tensor, ...], device: torch.device) -> np.ndarray:
        """Softmax of one eval-mode forward pass (its raw output with ``raw_output``, as a
        regressor's one-unit head wants), as float64 numpy."""
        self.module_.eval()
        with autocast(device):
            logits = self.module_(*inputs)
        out = logits.float() if self.raw_output else torch.softmax(logits.float(), dim=1)
        return out.double().cpu().numpy()

    # ---- persistence
    def _state_meta(self) -> dict:
        members = len(self.module_.members) if isinstance(self.module_, SeedAverage) else 1
        return {"arch": self._arch_meta(), "recipe": RECIPE, "members": members}

    def _save_state(self, path: Path) -> None:
        import io

        state = {k: v.detach().cpu() for k, v in self.module_.state_dict().items()}
        # serialised in memory and written by Python: on a full disk torch.save to a file
        # raises a RuntimeError ("unexpected pos …"), Python's write an OSError with errno
        encoded = io.BytesIO()
        torch.save(state, encoded)
        (path / WEIGHTS_FILE).write_bytes(encoded.getvalue())
        np.savez(path / STATS_FILE, **self._stats())

    def _load_state(self, path: Path, state: dict) -> None:
        if "recipe" not in state:  # saved before the recipe parameters existed
            self.params.update({k: v for k, v in self.legacy_params.items() if k in self.params})
        self.device_ = resolve_device(self.device)
        with np.load(path / STATS_FILE) as stats:
            self._set_stats({k: stats[k] for k in stats.files}, state["arch"])
        # The saved network decides how many members to build (models saved before n_seeds
        # existed hold one, whatever today's default is).
        members = int(state.get("members", 1))
        self.params["n_seeds"] = members
        built = [self._build(int(self.n_classes_)) for _ in range(members)]
        module = built[0] if members == 1 else SeedAverage(built)
        self.module_ = self._placed(module, torch.device("cpu"))
        weights = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.module_.load_state_dict(weights)
        self.module_.to(self.device_).eval()

    # ---- hooks
    def _check_input(self, X: Any, fitting: bool) -> Any:
        raise NotImplementedError

    def _fit_stats(self, X: Any) -> None:
        raise NotImplementedError

    def _stats(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_stats(self, stats: dict[str, np.ndarray], arch: dict) -> None:
        raise NotImplementedError

    def _arch_meta(self) -> dict:
        return {}

    def _build(self, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _placed(self, module: nn.Module, device: torch.device) -> nn.Module:
        """The network on ``device``, its 4-d weights in :attr:`memory_format`."""
        return module.to(device, memory_format=self.memory_format)

    def _batch_order(
        self, X: Any, indices: np.ndarray, batch_size: int, rng: np.random.Generator
    ) -> list[np.ndarray]:
        """One epoch's training mini-batches (rows of X), shuffled."""
        return batch_indices(indices, batch_size, rng, drop_single=self.uses_batchnorm)

    def _train_batch(
        self, X: Any, idx: np.ndarray, rng: np.random.Generator, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def _proba(self, X: Any, device: torch.device) -> np.ndarray:
        raise NotImplementedError
