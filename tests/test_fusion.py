"""The torch text model, late and early fusion of audio and text, and the bench of modalities
(issue 17). Spies prove that no outer-test row reaches a fit or the choice of a fusion weight."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import StandardScaler

import sercap.models.fusion as fusion_module
from cli import main
from sercap.data import Dataset
from sercap.errors import SercapError
from sercap.evaluate import cross_validate, outer_splits
from sercap.experiment import data_request, load_for, run_model
from sercap.models import get_model, load_model
from sercap.models.base import SERModel
from sercap.models.text_cnn import build_vocabulary, tokenize
from sercap.store import connect
from tests.helpers import add_corpus, add_features, add_transcripts

WORDS = {0: "alpha", 1: "beta", 2: "gamma"}


def separable_texts(n: int = 90, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Class c says its own word somewhere among shared filler."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    filler = ["the", "a", "well", "you", "know", "car", "today"]
    texts = []
    for c in y:
        words = list(rng.choice(filler, size=int(rng.integers(2, 6))))
        words.insert(int(rng.integers(0, len(words) + 1)), WORDS[int(c)])
        texts.append(" ".join(words))
    return texts, y


# ----------------------------------------------------------------------------- text-cnn
def test_text_cnn_learns_a_separable_text_task(tmp_path: Path) -> None:
    texts, y = separable_texts()
    train, test = np.arange(60), np.arange(60, 90)
    params = {"epochs": 30, "valid_fraction": 0.0, "lr": 1e-2}
    model = get_model("text-cnn")(params, seed=0).fit([texts[i] for i in train], y[train])
    proba = model.predict_proba([texts[i] for i in test])
    assert proba.shape == (30, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.mean(proba.argmax(axis=1) == y[test]) >= 0.9
    # the vocabulary holds training tokens only
    seen = {t for i in train for t in tokenize(texts[i])}
    assert set(model.vocab_) <= seen
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert np.allclose(
        loaded.predict_proba(["beta well", ""]), model.predict_proba(["beta well", ""])
    )


def test_vocabulary_counts_and_unknown_words() -> None:
    assert tokenize("Well, I can't!  Café?") == ["well", "i", "can't", "!", "café", "?"]
    assert build_vocabulary(["b a a", "c a b"], min_count=2) == ["a", "b"]
    model = get_model("text-cnn")({"epochs": 1}).fit(["hate it", "love it"], [0, 1])
    assert model.predict_proba(["never seen words"]).shape == (1, 2)
    with pytest.raises(SercapError, match="mixup"):
        get_model("text-cnn")({"mixup": 0.2}).fit(["a", "b"], [0, 1])


# ----------------------------------------------------------------------------- spies
LOG: list[tuple[str, frozenset[int]]] = []


def _ids_audio(X) -> list[int]:
    return [int(v) for v in np.asarray(X)[:, 0]]


def _ids_text(X) -> list[int]:
    return [int(t.split()[0][3:]) for t in X]


def _rows_audio(X) -> frozenset[int]:
    return frozenset(_ids_audio(X))


def _rows_text(X) -> frozenset[int]:
    return frozenset(_ids_text(X))


def _decode_rows(proba: np.ndarray) -> frozenset[int]:
    """The row numbers a spy wrote into column 0 of its probabilities."""
    return frozenset(int(v) for v in np.rint(proba[:, 0] * 1e6 - 1))


class _Spy(SERModel):
    """Predicts the training prior with the row's number written into column 0 (so whoever
    receives its probabilities can tell which rows they are); logs the rows it is fitted and
    scored on and refuses to score a row it was fitted on."""

    ids_of = staticmethod(_ids_audio)

    @classmethod
    def default_params(cls) -> dict:
        return {}

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {}

    def fit(self, X, y, groups=None, n_classes=None):
        self.fitted = frozenset(self.ids_of(X))
        LOG.append((f"{self.name}:fit", self.fitted))
        self.n_classes_ = n_classes
        self.prior = np.bincount(y, minlength=n_classes) / len(y)
        return self

    def predict_proba(self, X):
        ids = np.array(self.ids_of(X))
        LOG.append((f"{self.name}:score", frozenset(ids.tolist())))
        assert not set(ids.tolist()) & self.fitted, "scored on a row it was fitted on"
        p = np.tile(self.prior, (len(ids), 1))
        p[:, 0] = (ids + 1) * 1e-6
        return p

    def _save_state(self, path: Path) -> None:  # pragma: no cover - never saved
        pass

    def _load_state(self, path: Path, state: dict) -> None:  # pragma: no cover
        pass


class SpyAudio(_Spy):
    name = "spy-audio"
    input_kind = "tabular"


class SpyText(_Spy):
    name = "spy-text"
    input_kind = "text"
    ids_of = staticmethod(_ids_text)


def pair_dataset(n_speakers: int = 5, per_speaker: int = 9) -> Dataset:
    """(features, text) pairs whose first feature and first word name the row."""
    n = n_speakers * per_speaker
    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{i}" for i in range(n_speakers)], per_speaker)
    y = np.arange(n) % 3
    X = [
        (np.array([i, rng.normal() + y[i]], dtype=np.float32), f"row{i} {WORDS[int(y[i])]} ok")
        for i in range(n)
    ]
    return Dataset(
        utt_ids=np.array([f"u{i:03d}" for i in range(n)]),
        X=X,
        y=y,
        classes=["a", "b", "c"],
        speakers=speakers,
        folds=speakers.copy(),
        corpus="toy",
        label_map="toy3",
        protocol="leave-one-speaker-out",
        input_kind="multimodal",
    )


@pytest.fixture
def spies(monkeypatch):
    LOG.clear()
    monkeypatch.setitem(fusion_module.AUDIO_MEMBERS, "spy-audio", SpyAudio)
    monkeypatch.setitem(fusion_module.TEXT_MEMBERS, "spy-text", SpyText)
    real_choose = fusion_module.choose_weight

    def choose(p_audio, p_text, y, steps=11):
        rows = _decode_rows(p_audio)  # the rows whose predictions choose the weight
        assert rows == _decode_rows(p_text) and len(rows) == len(y)
        LOG.append(("choose", rows))
        return real_choose(p_audio, p_text, y, steps)

    monkeypatch.setattr(fusion_module, "choose_weight", choose)
    cls = fusion_module.LateFusionModel
    real_fit, real_proba = cls.fit, cls.predict_proba

    def fit(self, X, y, groups=None, n_classes=None):
        LOG.append(("fusion:fit", frozenset(int(a[0]) for a, _ in X)))
        out = real_fit(self, X, y, groups, n_classes)
        LOG.append(("fusion:fitted", frozenset()))
        return out

    def proba(self, X):
        LOG.append(("fusion:score", frozenset(int(a[0]) for a, _ in X)))
        return real_proba(self, X)

    monkeypatch.setattr(cls, "fit", fit)
    monkeypatch.setattr(cls, "predict_proba", proba)
    return LOG


def test_late_fusion_never_sees_outer_test_rows(spies) -> None:
    """For each outer fold: the fusion, both members (inner fits and refit) and the weight
    choice see only that fold's training rows; every training row is scored once by each
    member's inner model before the weight is chosen on exactly those rows; the test rows
    are scored only after the weight is fixed."""
    data = pair_dataset()
    params = {"audio_model": "spy-audio", "text_model": "spy-text", "inner_folds": 3}
    cross_validate(data, "fusion", params, progress=False)
    splits = list(outer_splits(data))
    starts = [i for i, (event, _) in enumerate(spies) if event == "fusion:fit"]
    assert len(starts) == len(splits)
    for (_, train, test), start, end in zip(splits, starts, [*starts[1:], len(spies)], strict=True):
        train_rows, test_rows = frozenset(train.tolist()), frozenset(test.tolist())
        block = spies[start:end]
        assert block[0][1] == train_rows  # the fusion is fitted on the training rows
        done = [e for e, _ in block].index("fusion:fitted")
        inside, after = block[1:done], block[done + 1 :]
        for event, rows in inside:
            assert not rows & test_rows, f"{event} saw an outer-test row"
        for member in ("spy-audio", "spy-text"):
            inner = [r for e, r in inside if e == f"{member}:score"]
            assert sorted(r for rows in inner for r in rows) == sorted(train_rows)
            fits = [r for e, r in inside if e == f"{member}:fit"]
            assert fits[-1] == train_rows  # the refit on every training row
        chooses = [(i, r) for i, (e, r) in enumerate(inside) if e == "choose"]
        assert len(chooses) == 1 and chooses[0][1] == train_rows
        last_inner = max(i for i, (e, _) in enumerate(inside) if e.endswith(":score"))
        assert chooses[0][0] > last_inner  # chosen after the inner predictions, before refit
        assert after[0] == ("fusion:score", test_rows)
        assert {r for e, r in after if e.endswith(":score")} == {test_rows}


def test_choose_weight_prefers_the_better_modality_and_ties_to_even() -> None:
    y = np.array([0, 1, 0, 1])
    good = np.eye(2)[y]
    bad = np.eye(2)[1 - y]
    assert fusion_module.choose_weight(good, bad, y) == (pytest.approx(0.6), 1.0)
    assert fusion_module.choose_weight(bad, good, y) == (pytest.approx(0.4), 1.0)
    assert fusion_module.choose_weight(good, good, y)[0] == 0.5
    audio = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.55, 0.45]])  # wrong on row 3
    text = np.array([[0.4, 0.6], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])  # wrong on row 0
    weight, ua = fusion_module.choose_weight(audio, text, y)
    assert ua == 1.0 and 0.2 < weight < 0.89  # only a mix gets every row right


def test_early_fusion_fits_scaler_and_tfidf_on_training_rows_only(monkeypatch) -> None:
    data = pair_dataset()
    fitted: list[tuple[str, frozenset]] = []
    real_scaler, real_tfidf = StandardScaler.fit, TfidfVectorizer.fit_transform

    def scaler_fit(self, X, y=None, sample_weight=None):
        fitted.append(("scaler", _rows_audio(X)))
        return real_scaler(self, X, y, sample_weight)

    def tfidf_fit(self, docs, y=None):
        fitted.append(("tfidf", _rows_text(docs)))
        return real_tfidf(self, docs, y)

    monkeypatch.setattr(StandardScaler, "fit", scaler_fit)
    monkeypatch.setattr(TfidfVectorizer, "fit_transform", tfidf_fit)
    result = cross_validate(data, "early-fusion", {"char_max_n": 3}, progress=False)
    splits = list(outer_splits(data))
    assert [k for k, _ in fitted] == ["scaler", "tfidf", "tfidf"] * len(splits)
    for i, (_, train, _) in enumerate(splits):
        for kind, rows in fitted[3 * i : 3 * i + 3]:
            assert rows == frozenset(train.tolist()), kind
    assert result.pooled.ua > 0.8  # the words separate the classes


def test_fusion_models_learn_save_and_refuse_bad_members(tmp_path: Path) -> None:
    data = pair_dataset()
    for name in ("fusion", "early-fusion"):
        model = get_model(name)({}, seed=0).fit(data.X[:36], data.y[:36], data.speakers[:36], 3)
        proba = model.predict_proba(data.X[36:])
        assert proba.shape == (9, 3) and np.mean(proba.argmax(axis=1) == data.y[36:]) > 0.8
        model.save(tmp_path / name)
        assert np.allclose(load_model(tmp_path / name).predict_proba(data.X[36:]), proba)
    late = get_model("fusion")({"text_model": "text-svm", "text__C": 0.5})
    assert late.params["text__C"] == 0.5 and "text__word_max_n" in late.params
    assert 0.0 <= get_model("fusion")().fit(data.X, data.y, data.speakers, 3).weight_ <= 1.0
    with pytest.raises(SercapError, match="audio_model 'lstm' is not one of"):
        get_model("fusion")({"audio_model": "lstm"})
    with pytest.raises(SercapError, match="unknown parameter 'audio__nope'"):
        get_model("fusion")({"audio__nope": 1})
    with pytest.raises(SercapError, match="pairs"):
        get_model("fusion")().fit(np.zeros((3, 2)), np.array([0, 1, 0]))


# ----------------------------------------------------------------------------- warehouse
def _toy_warehouse(root: Path, words: bool = True) -> Path:
    wh = connect(root)
    utts = add_corpus(wh, n_speakers=4, per_class=4)
    add_features(wh, utts)
    if words:
        add_transcripts(wh, utts)
    wh.close()
    return root


def test_multimodal_dataset_and_run_from_the_warehouse(tmp_path: Path) -> None:
    wh = connect(_toy_warehouse(tmp_path / "wh"))
    try:
        data = load_for(wh, data_request("early-fusion"))
        audio = load_for(wh, data_request("svm"))
        text = load_for(wh, data_request("text-lr"))
        assert data.input_kind == "multimodal" and data.feature_set == "default+transcripts"
        assert list(data.utt_ids) == list(audio.utt_ids) == list(text.utt_ids)
        assert all(np.array_equal(a, audio.X[i]) for i, (a, _) in enumerate(data.X))
        assert [t for _, t in data.X] == list(text.X)
        outcome = run_model(wh, "early-fusion", data, progress=False)
        stored = wh.query("SELECT model, feature_set FROM runs").rows()
        assert stored == [("early-fusion", "default+transcripts")]
        assert outcome.result.evaluated.size == len(data)
    finally:
        wh.close()


def test_bench_modalities_side_by_side_with_a_ci(tmp_path: Path) -> None:
    wh_dir = _toy_warehouse(tmp_path / "wh")
    runner = CliRunner()
    args = ["-w", str(wh_dir), "bench", "svm", "text-lr", "fusion",
            "--modalities", "audio,text,fusion", "--out", str(tmp_path / "r")]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for modality, model in (("audio", "svm"), ("text", "text-lr"), ("fusion", "fusion")):
        assert any(modality in line and f" {model} " in line for line in lines), result.output
    assert "fusion minus the best single modality" in result.output
    assert "95% CI" in result.output
    # the single run's UA is on the utterances both predicted (fewer than its own row's
    # where a transcript is missing): the line says on how many
    assert re.search(r"UA \d\.\d{4} on the \d+ utterances both predicted", result.output)
    assert "fusion minus the best single modality" in (tmp_path / "r" / "bench.md").read_text()


def test_bench_text_on_a_corpus_without_words_is_one_line(tmp_path: Path) -> None:
    wh_dir = _toy_warehouse(tmp_path / "wh", words=False)
    result = CliRunner().invoke(main, ["-w", str(wh_dir), "bench", "--modalities", "audio,text"])
    assert result.exit_code != 0
    assert result.output.startswith("error: corpus 'toy' has no transcripts")
    assert len(result.output.strip().splitlines()) == 1
    bad = CliRunner().invoke(main, ["-w", str(wh_dir), "bench", "--modalities", "video"])
    assert "unknown modality 'video'" in bad.output
    from sercap.compare import available_models

    wh = connect(wh_dir, read_only=True)
    try:  # bench --all and the demo leave the text and fusion models out here
        assert available_models(wh, "toy", ["svm", "text-lr", "fusion", "cnn"]) == ["svm", "cnn"]
    finally:
        wh.close()


@pytest.mark.slow
def test_demo_shows_audio_text_and_fused_rows(tmp_path: Path) -> None:
    args = ["demo", "--dir", str(tmp_path / "demo"), "--sessions", "2", "--per-speaker", "8",
            "--models", "svm,text-lr,fusion", "--jobs", "1"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = result.output[result.output.index("6/6") :].splitlines()
    for modality, name in (("audio", "svm"), ("text", "text-lr"), ("fusion", "fusion")):
        assert any(line.split()[:2] == [modality, name] for line in rows if line), result.output
    assert any(line.startswith("ensemble") for line in rows)
    assert "fusion minus the best single modality" in result.output


def test_the_seed_pool_with_text_is_a_fixed_ensemble_and_modalities_plan() -> None:
    from sercap.compare import fixed_ensembles, plan_modalities

    runs = [("resnet34", "r1"), ("dnn", "r2"), ("trees", "r3"), ("text-lr", "r4"), ("svm", "r5")]
    groups = fixed_ensembles(runs)
    assert ["r1", "r2", "r3"] in groups and ["r1", "r2", "r3", "r4"] in groups
    assert plan_modalities([], ["audio", "text", "fusion"]) == [
        "svm", "text-lr", "text-svm", "text-cnn", "fusion", "early-fusion",
    ]  # fmt: skip
    assert plan_modalities(["rf", "text-svm"], ["audio", "text"]) == ["rf", "text-svm"]
    with pytest.raises(
        SercapError, match="text-lr is a text model; add text to --modalities / modalities="
    ):
        plan_modalities(["text-lr"], ["audio"])


@pytest.mark.parametrize(
    ("key", "value"), [("weight_steps", -5), ("weight_steps", 1), ("inner_folds", 1)]
)
def test_fusion_parameters_out_of_range_are_refused_before_any_data(key, value) -> None:
    """weight_steps -5 was stored as given and quietly used as a 2-point grid."""
    from sercap.errors import BadParameterError
    from sercap.models.fusion import LateFusionModel

    with pytest.raises(BadParameterError, match=f"fusion: {key} must be at least 2"):
        LateFusionModel({key: value})


def test_tuning_late_fusion_searches_the_members_it_is_given() -> None:
    """`tune fusion --params '{"text_model": "text-cnn"}'` drew text-lr's parameters for a
    text-cnn member, and every trial failed on an unknown parameter."""
    import optuna

    from sercap.models.fusion import LateFusionModel
    from sercap.tuning import suggest

    fixed = {"audio_model": "lgbm", "text_model": "text-cnn", "text__epochs": 1}
    trial = optuna.create_study().ask()
    params = {**suggest("fusion", trial, 10, fixed=fixed), **fixed}
    LateFusionModel(params)  # every drawn parameter is one its members know
    assert any(k.startswith("audio__") for k in params) and "audio__C" not in params
    default = suggest("fusion", optuna.create_study().ask(), 10)
    assert "audio__C" in default  # the default members' spaces otherwise (svm + text-lr)
    with pytest.raises(SercapError, match="text_model must be one of"):
        suggest("fusion", optuna.create_study().ask(), 10, fixed={"text_model": "nope"})
