"""Text models: tf-idf fitted on training folds only, learning from the synthetic words, and
the text dataset end to end (issue 17)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from sercap.corpora import synthetic
from sercap.corpora.ingest import ingest
from sercap.data import Dataset
from sercap.errors import SercapError
from sercap.evaluate import cross_validate, outer_splits
from sercap.experiment import run_model
from sercap.models import get_model, load_model, model_names
from sercap.store import Warehouse
from sercap.textdata import load_text_dataset

TEXT = ["text-lr", "text-svm"]
SMALL = {"word_max_n": 1, "char_max_n": 3}


def synthetic_text_dataset(sessions: int = 5, per_speaker: int = 36, seed: int = 0) -> Dataset:
    """The synthetic corpus' words and majority labels under iemocap4, without its audio."""
    merge = {"exc": "hap"}
    rows = []
    for utt in synthetic.plan_corpus(sessions, per_speaker, seed):
        synthetic.annotate(utt, np.random.default_rng([*utt.seed, 1]))
        label = merge.get(utt.label, utt.label)
        if label in ("ang", "hap", "neu", "sad"):
            words = synthetic.utterance_words(utt.emotion, np.random.default_rng([*utt.seed, 2]))
            rows.append((utt.utt_id, words, label, utt.speaker.session, utt.speaker.gender))
    classes = ["ang", "hap", "neu", "sad"]
    return Dataset(
        utt_ids=np.array([r[0] for r in rows]),
        X=np.array([r[1] for r in rows], dtype=object),
        y=np.array([classes.index(r[2]) for r in rows]),
        classes=classes,
        speakers=np.array([f"Ses{r[3]:02d}{r[4]}" for r in rows]),
        folds=np.array([f"Ses{r[3]:02d}" for r in rows]),
        corpus="synthetic",
        label_map="iemocap4",
        protocol="leave-one-session-out",
        input_kind="text",
    )


def test_registered_as_text_models() -> None:
    assert model_names("text") == [*TEXT, "text-cnn"]
    assert all(get_model(n).input_kind == "text" for n in TEXT)


def test_tfidf_is_fitted_on_training_rows_only(monkeypatch) -> None:
    """A spy on every vectorizer fit: the documents it learns vocabulary and IDF from are
    training rows of the fold being fitted, never a test row (also not at predict time)."""
    data = synthetic_text_dataset(sessions=3, per_speaker=6)
    data.X = np.array([f"{text} id{i}" for i, text in enumerate(data.X)], dtype=object)
    seen: list[set[str]] = []
    original_fit_transform, original_fit = TfidfVectorizer.fit_transform, TfidfVectorizer.fit

    def spy_fit_transform(self, raw_documents, y=None):
        seen.append(set(raw_documents))
        return original_fit_transform(self, raw_documents, y)

    def spy_fit(self, raw_documents, y=None):
        seen.append(set(raw_documents))
        return original_fit(self, raw_documents, y)

    monkeypatch.setattr(TfidfVectorizer, "fit_transform", spy_fit_transform)
    monkeypatch.setattr(TfidfVectorizer, "fit", spy_fit)
    splits = list(outer_splits(data))
    for name in TEXT:
        seen.clear()
        cross_validate(data, name, SMALL, progress=False)
        assert len(seen) == 2 * len(splits)  # words and characters, once per fold
        for (_, train, test), fitted in zip(splits, seen[::2], strict=True):
            assert fitted == set(data.X[train])
            assert not fitted & set(data.X[test])
        for (_, train, _), fitted in zip(splits, seen[1::2], strict=True):
            assert fitted == set(data.X[train])


def test_text_lr_learns_the_words_well_above_chance_but_not_everything() -> None:
    data = synthetic_text_dataset()
    result = cross_validate(data, "text-lr", progress=False)
    assert len(result.fold_names) == 5
    assert 0.45 < result.pooled.ua < 0.9  # chance is 0.25 with four classes


@pytest.mark.parametrize("name", TEXT)
def test_probabilities_save_load_and_errors(name: str, tmp_path: Path) -> None:
    data = synthetic_text_dataset(sessions=2, per_speaker=8)
    cls = get_model(name)
    model = cls(SMALL).fit(data.X, data.y, n_classes=5)
    proba = model.predict_proba(["I hate this, damn it!", "", "café naïve"])
    assert proba.shape == (3, 5) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.all(proba[:, 4] == 0)  # a class absent from training gets no probability
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is cls
    assert np.allclose(loaded.predict_proba(list(data.X[:5])), model.predict_proba(data.X[:5]))
    with pytest.raises(SercapError, match="strings"):
        model.predict_proba([1.0, 2.0])
    with pytest.raises(SercapError, match="empty"):
        cls().fit(["", " "], [0, 1])
    with pytest.raises(SercapError, match="C must be positive"):
        cls({"C": 0}).fit(data.X, data.y)


@pytest.mark.parametrize("name", TEXT)
def test_search_space_gives_valid_params(name: str) -> None:
    cls = get_model(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        params = cls.search_space(trial)
        assert set(params) <= set(cls.default_params()) and trial.params == params
        assert cls.search_space(optuna.trial.FixedTrial(trial.params)) == params


def test_text_dataset_from_the_warehouse_and_a_stored_run(wh: Warehouse, tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "c", sessions=2, per_speaker=4, seed=2)
    ingest(wh, "iemocap", tmp_path / "c")
    data = load_text_dataset(wh)
    assert data.input_kind == "text" and data.feature_set == "transcripts"
    words = dict(wh.query("SELECT utt_id, text FROM transcripts").rows())
    assert [words[u] for u in data.utt_ids] == list(data.X)
    assert set(data.utt_ids) == set(wh.query("SELECT utt_id FROM iemocap4")["utt_id"])
    outcome = run_model(wh, "text-lr", data, params=SMALL, progress=False)
    stored = wh.query("SELECT model, feature_set, feature_set_hash FROM runs").rows()
    assert stored == [("text-lr", "transcripts", data.feature_set_hash)]
    assert outcome.result.evaluated.size == len(data)


def test_composed_and_decomposed_accents_are_the_same_word() -> None:
    """ "café" pasted with a combining accent (NFD) split into "cafe" + an accent and got
    other probabilities than the corpus' precomposed spelling."""
    import unicodedata

    from sercap.models import get_model

    texts = ["the café was great", "awful day again", "the café was awful", "great day"] * 4
    y = np.array([0, 1, 1, 0] * 4)
    model = get_model("text-lr")({}, seed=0).fit(texts, y)
    nfd = unicodedata.normalize("NFD", "the café was great")
    assert nfd != "the café was great"
    np.testing.assert_array_equal(
        model.predict_proba([nfd]), model.predict_proba(["the café was great"])
    )
