"""Torch models (dnn, lstm, cnn, resnet18/34) and their shared helpers, with tiny settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sercap.errors import BadParameterError, SercapError
from sercap.models import get_model, load_model
from sercap.models.cnn import average_windows, stats_pool, time_deltas, with_deltas
from sercap.models.torch_common import (
    batch_indices,
    crop_sequence,
    image_windows,
    length_batches,
    mixup_batch,
    pad_sequences,
    random_crop,
    resolve_device,
    spec_augment,
    window_starts,
)

TINY = {
    "dnn": {"epochs": 40, "hidden_size": 32, "batch_size": 32, "patience": 0, "n_seeds": 1},
    "lstm": {"epochs": 15, "hidden_size": 16, "num_layers": 1, "lr": 1e-2, "patience": 0},
    "cnn": {"epochs": 8, "channels": 8, "crop_frames": 32, "lr": 3e-3, "patience": 0},
    "resnet18": {"epochs": 1, "crop_frames": 32},
    "resnet34": {"epochs": 1, "crop_frames": 32},
}
TORCH = list(TINY)


def tabular(n: int = 150, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(n, 10)) + 3.0 * np.eye(k, 10)[y]
    X[rng.random(X.shape) < 0.05] = np.nan
    return X.astype(np.float32), y, rng.integers(0, 8, n)


def sequences(n: int = 90, k: int = 3, seed: int = 0) -> tuple[list, np.ndarray, np.ndarray]:
    """Frame sequences of 10-50 frames; class c raises descriptor c; descriptor 5 is F0-like
    (NaN on 'unvoiced' frames, large values)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    seqs = []
    for c in y:
        s = rng.normal(size=(int(rng.integers(10, 50)), 6)) + 2.0 * np.eye(k, 6)[c]
        s[:, 5] = 200 + 20 * s[:, 5]
        s[rng.random(len(s)) < 0.3, 5] = np.nan
        seqs.append(s.astype(np.float32))
    return seqs, y, rng.integers(0, 8, n)


def images(
    n: int = 60, k: int = 3, h: int = 24, seed: int = 0
) -> tuple[list, np.ndarray, np.ndarray]:
    """uint8 'spectrograms' of varying width; class c has energy in mel band block c."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    imgs = []
    for c in y:
        img = rng.integers(0, 100, size=(h, int(rng.integers(20, 70))))
        img[c * (h // k) : (c + 1) * (h // k)] += 120
        imgs.append(img.astype(np.uint8))
    return imgs, y, rng.integers(0, 8, n)


DATA = {"dnn": tabular, "lstm": sequences, "cnn": images, "resnet18": images, "resnet34": images}


def subset(X: list | np.ndarray, idx: np.ndarray) -> list | np.ndarray:
    return [X[i] for i in idx] if isinstance(X, list) else X[idx]


# ----------------------------------------------------------------------------- helpers
def test_pad_and_crop_sequences() -> None:
    seqs = [np.ones((3, 2), np.float32), 2 * np.ones((5, 2), np.float32)]
    padded, lengths = pad_sequences(seqs)
    assert padded.shape == (2, 5, 2) and lengths.tolist() == [3, 5]
    assert padded[0, 3:].sum() == 0 and padded[1].sum() == 20
    rng = np.random.default_rng(0)
    long = np.arange(100, dtype=np.float32)[:, None]
    crop = crop_sequence(long, 30, rng)
    assert crop.shape == (30, 1) and np.all(np.diff(crop[:, 0]) == 1)
    assert crop_sequence(long, 0, rng) is long and crop_sequence(long[:10], 30, rng).shape == (
        10,
        1,
    )


def test_crops_windows_and_masks() -> None:
    rng = np.random.default_rng(0)
    img = np.arange(8 * 50, dtype=np.uint8).reshape(8, 50)
    assert random_crop(img, 20, rng).shape == (8, 20)
    short = random_crop(img[:, :5], 20, rng)
    assert short.shape == (8, 20) and (short > 0).sum(axis=1).max() <= 5
    assert window_starts(50, 20, 10).tolist() == [0, 10, 20, 30]
    assert window_starts(55, 20, 10).tolist() == [0, 10, 20, 30, 35]  # flush with the end
    assert window_starts(10, 20, 10).tolist() == [0]
    for length, width, stride in [(400, 64, 200), (100, 20, 21), (57, 16, 16)]:
        covered = np.zeros(length, dtype=bool)
        for start in window_starts(length, width, stride):
            covered[start : start + width] = True
        assert covered.all(), (length, width, stride)
    wins = image_windows(img, 20, 10)
    assert wins.shape == (4, 8, 20) and np.array_equal(wins[-1], img[:, 30:])
    centred = image_windows(img[:, :10], 20, 10)
    assert centred.shape == (1, 8, 20) and np.array_equal(centred[0, :, 5:15], img[:, :10])
    x = torch.ones(4, 1, 8, 20)
    masked = spec_augment(x, freq_mask=3, time_mask=5, n_masks=1, rng=rng)
    assert masked.shape == x.shape and masked.sum() < x.sum()
    assert spec_augment(x, 0, 0, 1, rng).sum() == x.sum()
    batches = batch_indices(np.arange(9), 4, None, drop_single=True)
    assert [len(b) for b in batches] == [4, 4]
    assert [len(b) for b in batch_indices(np.arange(9), 4, rng, False)] == [4, 4, 1]


def test_device_choice() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(SercapError, match="no CUDA GPU"):
            resolve_device("cuda")


# ----------------------------------------------------------------------------- learning
LEARN = [
    ("dnn", {}),
    ("dnn", {"mixup": 0.4, "input_dropout": 0.2, "scheduler": "onecycle"}),
    ("lstm", {}),
    ("lstm", {"head": "attention", "frame_stride": 1}),
    ("cnn", {}),
    ("cnn", {"mixup": 0.4, "pooling": "mean", "deltas": False}),  # band means carry the class
    # resnet18/34: too slow to learn a task in a unit test on 2 CPU cores (tens of seconds, and
    # flaky at a few optimiser steps); covered by the save/load and legacy tests and the bench.
]


@pytest.mark.parametrize(("name", "extra"), LEARN)
def test_torch_models_learn(name: str, extra: dict) -> None:
    X, y, groups = DATA[name]()
    perm = np.random.default_rng(1).permutation(len(y))
    tr, te = perm[: int(0.7 * len(y))], perm[int(0.7 * len(y)) :]
    params = {**TINY[name], **extra}
    model = get_model(name)(params, seed=0, device="cpu").fit(subset(X, tr), y[tr], groups[tr])
    proba = model.predict_proba(subset(X, te))
    assert proba.shape == (len(te), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.mean(proba.argmax(axis=1) == y[te]) > 0.75  # chance is 0.33
    assert "val_ua" in model.history_[0]  # early stopping watched held-out speakers


@pytest.mark.parametrize("name", TORCH)
def test_reproducible_save_load_and_missing_class(name: str, tmp_path: Path) -> None:
    X, y, groups = DATA[name](n=30)
    keep = np.flatnonzero(y != 1)
    params = {**TINY[name], "epochs": 2}
    a = get_model(name)(params, seed=3, device="cpu").fit(subset(X, keep), y[keep], groups[keep], 4)
    b = get_model(name)(params, seed=3, device="cpu").fit(subset(X, keep), y[keep], groups[keep], 4)
    proba = a.predict_proba(X)
    assert proba.shape == (30, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(proba, b.predict_proba(X))
    a.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.pt").is_file()
    loaded = load_model(tmp_path / "m", device="cpu")
    assert type(loaded) is type(a) and loaded.params == a.params
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)


def test_saving_on_a_full_disk_is_an_os_error(tmp_path: Path, monkeypatch) -> None:
    """torch.save to a file on a full disk raised a RuntimeError ("unexpected pos 8448 vs
    8342"), which predict did not take for a disk that cannot keep the final model: it
    printed a traceback instead of predicting with the model it had fitted."""
    import errno

    X, y, groups = DATA["dnn"](n=30)
    model = get_model("dnn")({**TINY["dnn"], "epochs": 1}, seed=0, device="cpu")
    model.fit(X, y, groups, 3)
    real = Path.write_bytes

    def full(self, data):
        if self.name == "weights.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match="No space left on device"):
        model.save(tmp_path / "m")


@pytest.mark.parametrize(
    ("name", "legacy"),
    [
        ("cnn", {"deltas": False, "norm": "global", "pooling": "mean"}),
        ("resnet18", {"deltas": False, "norm": "global", "stem": "7x7"}),
        ("lstm", {"frame_stride": 1}),
        ("dnn", {"n_seeds": 1}),
    ],
)
def test_models_saved_before_the_new_recipe_still_load(
    name: str, legacy: dict, tmp_path: Path
) -> None:
    """A model saved before the recipe parameters existed has none of them in its model.json:
    loading must rebuild the old network (not today's defaults) and predict the same."""
    import json

    X, y, groups = DATA[name](n=24)
    model = get_model(name)({**TINY[name], **legacy, "epochs": 1}, device="cpu").fit(X, y, groups)
    model.save(tmp_path / "old")
    meta_path = tmp_path / "old" / "model.json"
    meta = json.loads(meta_path.read_text())
    for key in legacy:
        meta["params"].pop(key)
    meta["state"].pop("recipe")
    meta["state"].pop("members")
    meta_path.write_text(json.dumps(meta))
    loaded = load_model(tmp_path / "old", device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.params["n_seeds"] == 1  # one network saved, whatever today's default


@pytest.mark.parametrize("name", ["dnn", "lstm"])
def test_n_seeds_averages_the_networks_of_consecutive_seeds(name: str, tmp_path: Path) -> None:
    """``n_seeds = 3`` predicts the mean probabilities of the three models that fits with
    seeds 7, 8 and 9 give (each its own initial weights, validation speakers and batches)."""
    X, y, groups = DATA[name](n=60)
    params = {**TINY[name], "epochs": 3}
    members = [
        get_model(name)({**params, "n_seeds": 1}, seed=s, device="cpu").fit(X, y, groups)
        for s in (7, 8, 9)
    ]
    average = get_model(name)({**params, "n_seeds": 3}, seed=7, device="cpu").fit(X, y, groups)
    want = np.mean([m.predict_proba(X) for m in members], axis=0)
    assert not np.allclose(members[0].predict_proba(X), want, atol=1e-3)  # seeds differ
    np.testing.assert_allclose(average.predict_proba(X), want, atol=1e-6)
    assert {h["member"] for h in average.history_} == {0, 1, 2}
    assert all("val_ua" in h for h in average.history_)
    average.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), average.predict_proba(X))
    with pytest.raises(SercapError, match="n_seeds must be at least 1"):
        get_model(name)({**params, "n_seeds": 0}).fit(X, y, groups)


def test_lstm_same_prediction_alone_or_in_a_batch() -> None:
    X, y, groups = sequences(n=40)
    for head in ("mean", "attention", "stats"):
        params = {**TINY["lstm"], "epochs": 1, "head": head, "bidirectional": True, "num_layers": 2}
        model = get_model("lstm")(params, device="cpu").fit(X, y, groups)
        batch = model.predict_proba(X)
        alone = np.concatenate([model.predict_proba([s]) for s in X[:8]])
        np.testing.assert_allclose(alone, batch[:8], atol=1e-6)


def test_image_prediction_covers_long_utterances() -> None:
    X, y, groups = images(n=30)
    model = get_model("cnn")({**TINY["cnn"], "epochs": 1}, device="cpu").fit(X, y, groups)
    long = np.concatenate([X[0]] * 6, axis=1)  # longer than any training image
    windows = image_windows(long, 32, model._stride())
    means = np.repeat(model.mean_[None], len(windows), axis=0)
    cpu = torch.device("cpu")
    by_hand = model._run((model._to_tensor(windows, means, cpu),), cpu)
    np.testing.assert_allclose(model.predict_proba([long])[0], by_hand.mean(axis=0), atol=1e-9)


def test_windowed_test_time_averaging_by_hand() -> None:
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [1.0, 0.0], [0.1, 0.9], [0.4, 0.6]])
    owner = np.array([0, 0, 1, 2, 2])
    expected = np.array([[0.4, 0.6], [1.0, 0.0], [0.25, 0.75]])  # worked out on paper
    np.testing.assert_allclose(average_windows(probs, owner, 3), expected)
    # an utterance of 100 frames with 32-wide windows every 16: starts 0,16,32,48,64 and 68
    X, y, groups = images(n=30)
    params = {**TINY["cnn"], "epochs": 1, "window_stride": 16, "norm": "utterance"}
    model = get_model("cnn")(params, device="cpu").fit(X, y, groups)
    img = np.random.default_rng(5).integers(0, 255, size=(24, 100)).astype(np.uint8)
    cpu = torch.device("cpu")
    means = (img.mean(axis=1) / 255.0).astype(np.float32)  # norm="utterance": whole image
    per_window = []
    for start in (0, 16, 32, 48, 64, 68):
        crop = img[None, :, start : start + 32]
        per_window.append(model._run((model._to_tensor(crop, means[None], cpu),), cpu)[0])
    np.testing.assert_allclose(
        model.predict_proba([img])[0], np.mean(per_window, axis=0), atol=1e-9
    )


def test_deltas_and_pooling_by_hand() -> None:
    x = torch.tensor([[1.0, 2.0, 4.0, 8.0, 16.0]])
    # width 2, edges repeated: padded 1 1 [1 2 4 8 16] 16 16; d_t = (x+1 - x-1 + 2(x+2 - x-2))/10
    expected = [
        (2 - 1 + 2 * (4 - 1)) / 10,
        (4 - 1 + 2 * (8 - 1)) / 10,
        (8 - 2 + 2 * (16 - 1)) / 10,
        (16 - 4 + 2 * (16 - 2)) / 10,
        (16 - 8 + 2 * (16 - 4)) / 10,
    ]
    np.testing.assert_allclose(time_deltas(x)[0].numpy(), expected, rtol=1e-6)
    stacked = with_deltas(torch.randn(2, 1, 4, 6))
    assert stacked.shape == (2, 3, 4, 6)
    torch.testing.assert_close(stacked[:, 2:], time_deltas(time_deltas(stacked[:, :1])))
    maps = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)
    over_time = maps.numpy().mean(axis=2)
    expected_pool = np.concatenate([over_time.mean(axis=2), over_time.std(axis=2)], axis=1)
    np.testing.assert_allclose(stats_pool(maps).numpy(), expected_pool, rtol=1e-6)


def test_mixup_blends_pairs() -> None:
    rng = np.random.default_rng(0)
    x = torch.arange(8, dtype=torch.float32).reshape(4, 2)
    (mixed,), order, lam = mixup_batch((x,), 0.4, rng)
    assert 0.5 <= lam <= 1.0 and sorted(order.tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[torch.from_numpy(order)])
    same, none, one = mixup_batch((x, torch.ones(4)), 0.4, rng)  # sequences: left alone
    assert none is None and one == 1.0 and same[0] is x


def test_early_stopping_restores_the_best_epoch() -> None:
    X, y, groups = tabular(n=90)
    y = np.random.default_rng(0).permutation(y)  # nothing to learn: UA plateaus
    model = get_model("dnn")(
        {"epochs": 60, "patience": 3, "hidden_size": 16, "n_seeds": 1}, device="cpu"
    )
    model.fit(X, y, groups)
    assert len(model.history_) < 60
    best = [h for h in model.history_ if h.get("best")]
    assert best[-1]["val_ua"] == max(h["val_ua"] for h in model.history_)


def test_without_groups_and_without_validation() -> None:
    X, y, _ = tabular(n=60)
    one = {"epochs": 3, "hidden_size": 8, "n_seeds": 1}
    model = get_model("dnn")(one, device="cpu").fit(X, y)
    assert len(model.history_) == 3 and "val_ua" in model.history_[0]  # stratified split
    model = get_model("dnn")({**one, "valid_fraction": 0.0}).fit(X, y)
    assert "val_ua" not in model.history_[0]


def test_fit_leaves_global_torch_state_alone(capsys: pytest.CaptureFixture) -> None:
    X, y, groups = tabular(n=40)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    get_model("dnn")({"epochs": 2, "hidden_size": 8}, n_jobs=1, verbose=True).fit(X, y, groups)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)
    assert "dnn" in capsys.readouterr().err  # the tqdm bar


def test_torch_input_errors() -> None:
    X, y, groups = images(n=12)
    cnn = get_model("cnn")({**TINY["cnn"], "epochs": 1})
    with pytest.raises(SercapError, match="uint8"):
        cnn.fit([x.astype(np.float32) for x in X], y)
    cnn.fit(X, y, groups)
    with pytest.raises(SercapError, match="mel bands"):
        cnn.predict_proba([np.zeros((10, 40), np.uint8)])
    with pytest.raises(SercapError, match="optimizer must be one of"):
        get_model("dnn")({"optimizer": "lbfgs"}).fit(*tabular(n=20)[:2])
    with pytest.raises(SercapError, match="head must be one of"):
        get_model("lstm")({"head": "max"}).fit(*sequences(n=12)[:2])
    with pytest.raises(SercapError, match="list of"):
        get_model("lstm")().fit([], np.array([], dtype=int))


def test_length_batches_cover_each_row_once_with_rows_of_similar_length() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 500, size=200)
    indices = np.arange(3, 200)  # a subset, as a training split is
    batches = length_batches(indices, lengths, 16, np.random.default_rng(1))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == indices.tolist()
    assert all(len(b) <= 16 for b in batches)
    # Sorted within pools of 4 batches: a batch spans far less than the whole range.
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    shuffled = np.random.default_rng(3).permutation(indices)
    random_spread = np.mean([np.ptp(lengths[shuffled[i : i + 16]]) for i in range(0, 197, 16)])
    assert spread < 0.4 * np.ptp(lengths[indices]) and spread < 0.5 * random_spread
    again = length_batches(indices, lengths, 16, np.random.default_rng(2))
    assert [b.tolist() for b in again] != [b.tolist() for b in batches]  # shuffled per epoch


def test_lstm_trains_on_dense_equal_length_batches(monkeypatch) -> None:
    """Training crops a batch to one length, so the LSTM never packs there (the packed
    backward pass is ~4x slower on a CPU); the dense path gives what packing gives."""
    import sercap.models.lstm as lstm_module

    X, y, groups = sequences(n=40)
    model = get_model("lstm")({**TINY["lstm"], "epochs": 2}, device="cpu")
    model._fit_stats(X)
    rng = np.random.default_rng(0)
    for idx in model._batch_order(X, np.arange(len(X)), 8, rng):
        x, lengths = model._train_batch(X, idx, rng, torch.device("cpu"))
        assert (lengths == x.shape[1]).all(), lengths

    packs = []
    real_pack = lstm_module.pack_padded_sequence

    def counting_pack(*args, **kwargs):
        packs.append(torch.is_grad_enabled())
        return real_pack(*args, **kwargs)

    monkeypatch.setattr(lstm_module, "pack_padded_sequence", counting_pack)
    model.fit(X, y, groups)
    assert packs and not any(packs)  # only prediction (no gradients) packs

    net = model.module_.eval()
    x = torch.randn(4, 30, 6)
    full = torch.full((4,), 30)
    with torch.no_grad():
        dense = net(x, full)
        packed = lstm_module.pad_packed_sequence(
            net.lstm(real_pack(x, full, batch_first=True, enforce_sorted=False))[0],
            batch_first=True,
        )[0]
        np.testing.assert_allclose(net.lstm(x)[0].numpy(), packed.numpy(), atol=1e-6)
    assert dense.shape == (4, 3)


@pytest.mark.parametrize("name", ["cnn", "resnet18"])
def test_image_models_run_channels_last_and_reload_the_same(name, tmp_path) -> None:
    """Image networks keep weights and inputs in NHWC (faster convolutions and pooling on a
    CPU); a saved model loads into the same layout and predicts the same."""
    X, y, groups = images(n=24)
    model = get_model(name)({**TINY[name], "epochs": 1}, device="cpu").fit(X, y, groups)
    conv = next(m for m in model.module_.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    means = np.stack([model._band_means(img) for img in X[:2]])
    crops = np.stack([img[:, :16] for img in X[:2]])
    x = model._to_tensor(crops, means, torch.device("cpu"))
    assert x.is_contiguous(memory_format=torch.channels_last)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", device="cpu")
    conv = next(m for m in loaded.module_.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_a_diverging_network_stops_with_one_line() -> None:
    """lr 1e9 blew the weights up to NaN; every prediction was NaN and scoring the fold
    failed with a traceback ("Found empty input array")."""
    from sercap.models.regressors import DNNRegressor

    X, y, _ = tabular(n=80)
    wild = {"lr": 1e9, "epochs": 3, "hidden_size": 8}
    with pytest.raises(BadParameterError, match=r"^dnn: training diverged in epoch \d"):
        get_model("dnn")({**wild, "n_seeds": 1}).fit(X, y)
    with pytest.raises(BadParameterError, match="dnn regressor: training diverged.*lower lr"):
        DNNRegressor(wild).fit(X, y.astype(float))


def test_parameters_that_could_not_work_are_one_line_before_any_fit() -> None:
    """A review found four that passed the checks: dnn's batch_size 1 with batch
    normalisation (a 94-line torch traceback in the first fold), an mps or meta device (a
    traceback deep in training), lstm's mixup (stored, never applied: the same
    probabilities as without it) and text-cnn's max_vocab 0 (an empty vocabulary, chance
    level, no word)."""
    from sercap.models.regressors import get_regressor

    refused = [
        (lambda: get_model("dnn")({"batch_size": 1}), "batch_size must be at least 2 with batch"),
        (lambda: get_regressor("dnn")({"batch_size": 1}), "batch_size must be at least 2"),
        (lambda: get_model("lstm")({"mixup": 0.4}), "mixup does not apply to sequences"),
        (lambda: get_model("text-cnn")({"max_vocab": 0}), "max_vocab must be at least 1"),
        (lambda: resolve_device("meta"), "sercap trains on cpu, cuda or mps"),
    ]
    if not torch.backends.mps.is_available():
        refused.append((lambda: resolve_device("mps"), "no MPS support"))
    for make, said in refused:
        with pytest.raises(SercapError, match=said):
            make()
    get_model("dnn")({"batch_size": 1, "batchnorm": False})  # without it, one row is fine
