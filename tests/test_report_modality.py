"""The report's modality section (issue 17 item 5): UA per modality and where audio and text
disagree, from stored predictions only (a spy fails any refit)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sercap.data import Dataset
from sercap.ensemble import ensemble_runs
from sercap.evaluate import CVResult, score, store_run
from sercap.modality import disagreement, input_modality, modality_section, run_modality
from sercap.models.registry import MODELS, TEXT_MODELS
from sercap.store import Warehouse
from sercap.store.runs import get_run
from tests.helpers import add_corpus

CLASSES = ["ang", "neu", "sad"]


def _store(wh: Warehouse, utts: pl.DataFrame, model: str, predicted: list[str]) -> str:
    """A stored model run whose out-of-fold predictions are ``predicted`` (one-hot)."""
    y = np.array([CLASSES.index(e) for e in utts["emotion"]])
    guess = np.array([CLASSES.index(p) for p in predicted])
    proba = np.eye(len(CLASSES))[guess] * 0.8 + 0.2 / len(CLASSES)
    folds = utts["session"].to_numpy()
    names = sorted(set(folds))
    data = Dataset(
        utt_ids=utts["utt_id"].to_numpy(),
        X=None,
        y=y,
        classes=CLASSES,
        speakers=utts["speaker"].to_numpy(),
        folds=folds,
        corpus="toy",
        label_map="emodb7",
        protocol="leave-one-speaker-out",
        input_kind="text" if model.startswith("text") else "tabular",
    )
    result = CVResult(
        proba=proba,
        fold_names=names,
        fold_metrics=[score(y[folds == f], guess[folds == f], len(CLASSES)) for f in names],
        pooled=score(y, guess, len(CLASSES)),
        fit_s=0.0,
        duration_s=0.0,
        evaluated=np.arange(len(y)),
    )
    return store_run(wh, data, model, result, params={}, seed=0)


@pytest.fixture
def no_refit(monkeypatch) -> None:
    """Any fit, cross-validation or final model during the test fails it."""

    def refit(*args, **kwargs):
        raise AssertionError("the modality section refitted a model")

    for cls in {**MODELS, **TEXT_MODELS}.values():
        monkeypatch.setattr(cls, "fit", refit)
    monkeypatch.setattr("sercap.evaluate.cross_validate", refit)
    monkeypatch.setattr("sercap.prediction.final_model", refit)


def test_disagreement_by_hand() -> None:
    audio = pl.DataFrame(
        {
            "utt_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
            "label": ["ang", "ang", "sad", "sad", "neu", "neu"],
            "predicted": ["ang", "sad", "sad", "ang", "neu", "sad"],
        }
    )
    text = pl.DataFrame(  # u6 is not in the text run: only common utterances count
        {"utt_id": ["u1", "u2", "u3", "u4", "u5"], "predicted": ["sad", "ang", "sad", "neu", "neu"]}
    )
    fused = pl.DataFrame({"utt_id": ["u1", "u2", "u4"], "predicted": ["ang", "ang", "sad"]})
    d = disagreement(audio, text, fused, audio_run="a", text_run="t", fused_run="f")
    # they differ on u1 (audio right), u2 (text right), u4 (neither)
    assert (d.n_common, d.n_disagree, d.share) == (5, 3, 0.6)
    assert (d.audio_right, d.text_right, d.neither) == (1, 1, 1)
    assert d.audio_ua == pytest.approx((1 / 2 + 0) / 2)  # ang 1/2, sad 0/1
    assert d.text_ua == pytest.approx((1 / 2 + 0) / 2)
    assert d.fused_ua == pytest.approx((2 / 2 + 1 / 1) / 2)
    assert disagreement(audio, text.head(0)).n_common == 0


def test_modality_of_kinds_and_runs(wh: Warehouse) -> None:
    assert [input_modality(k) for k in ("tabular", "sequence", "image", "text", "fusion")] == [
        "audio",
        "audio",
        "audio",
        "text",
        "fused",
    ]
    utts = add_corpus(wh)
    labels = utts["emotion"].to_list()
    audio = _store(wh, utts, "svm", labels)
    text = _store(wh, utts, "text-lr", labels)
    both, _ = ensemble_runs(wh, [audio, text])
    two_audio, _ = ensemble_runs(wh, [audio, _store(wh, utts, "rf", labels)])
    assert [run_modality(wh, get_run(wh, r)) for r in (audio, text, both, two_audio)] == [
        "audio",
        "text",
        "fused",
        "audio",
    ]


def test_modality_section_from_stored_predictions(wh: Warehouse, no_refit) -> None:
    utts = add_corpus(wh)  # 4 speakers × 3 classes × 3 utterances
    labels = utts["emotion"].to_list()
    rng = np.random.default_rng(0)
    noisy = [c if rng.random() < 0.6 else str(rng.choice(CLASSES)) for c in labels]
    _store(wh, utts, "svm", labels)  # an older audio run: not the one compared
    audio = _store(wh, utts, "rf", noisy)
    words = [c if rng.random() < 0.5 else str(rng.choice(CLASSES)) for c in labels]
    text = _store(wh, utts, "text-svm", words)
    fused, _ = ensemble_runs(wh, [audio, text], fixed_rule=True)
    # a newer ensemble whose members and weights a person chose (perhaps after reading the
    # members' scores) is not "the fused run" of the report, nor one of its rows
    hand, _ = ensemble_runs(wh, [audio, text], weights=[0.1, 0.9])
    lines = modality_section(wh, "toy", "emodb7")
    doc = "\n".join(lines)
    assert hand not in doc
    table = [line for line in lines if line.startswith("| audio") or line.startswith("| text")]
    assert any(f"| {audio} | rf |" in line for line in table)
    assert any(f"| {text} | text-svm |" in line for line in table)
    assert f"| fused | {fused} | ensemble |" in doc
    # the numbers are those of the stored predictions of the newest audio and text runs
    truth, a, t = np.array(labels), np.array(noisy), np.array(words)
    differ = a != t
    assert f"for {differ.sum()} of their {len(labels)} common utterances" in doc
    assert f"`{audio}`" in doc and f"`{text}`" in doc

    def ua(pred: np.ndarray) -> float:
        keep = truth[differ]
        return np.mean([np.mean(pred[differ][keep == c] == c) for c in np.unique(keep)])

    assert f"| audio (`{audio}`) | {ua(a):.3f} | {int((a == truth)[differ].sum())} |" in doc
    assert f"| text (`{text}`) | {ua(t):.3f} | {int((t == truth)[differ].sum())} |" in doc
    assert f"| fused (`{fused}`) |" in doc


def test_modality_table_compares_runs_on_the_utterances_all_of_them_predicted(
    wh: Warehouse, no_refit
) -> None:
    """The table put an audio run's UA over every utterance beside a text run's over those
    with words, without a word on the sets differing."""
    utts = add_corpus(wh)
    labels = utts["emotion"].to_list()
    rng = np.random.default_rng(1)
    noisy = [c if rng.random() < 0.6 else str(rng.choice(CLASSES)) for c in labels]
    audio = _store(wh, utts, "rf", noisy)
    some = utts.slice(6)  # the text run lacks six utterances (no words)
    words = [c if rng.random() < 0.5 else str(rng.choice(CLASSES)) for c in labels[6:]]
    text = _store(wh, some, "text-svm", words)
    doc = "\n".join(modality_section(wh, "toy", "emodb7"))
    truth, a = np.array(labels[6:]), np.array(noisy[6:])
    on_common = np.mean([np.mean(a[truth == c] == c) for c in np.unique(truth)])
    assert f"| {audio} | rf | " in doc
    row = next(line for line in doc.splitlines() if f"| {audio} | rf |" in line)
    assert row.endswith(f"| {len(labels)} | {on_common:.3f} |"), row
    assert f"compare them on the {len(labels) - 6} all of them predicted" in doc
    assert f"| {text} | text-svm |" in doc


def test_modality_section_is_one_line_without_text_runs(wh: Warehouse, no_refit) -> None:
    utts = add_corpus(wh)
    _store(wh, utts, "svm", utts["emotion"].to_list())
    lines = [line for line in modality_section(wh, "toy", "emodb7") if line]
    assert lines == [
        "No modality section: toy (emodb7) has no text run "
        "(`sercap train text-lr` on a corpus with transcripts)."
    ]


def test_modality_section_with_text_runs_only(wh: Warehouse, no_refit) -> None:
    utts = add_corpus(wh)
    text = _store(wh, utts, "text-lr", utts["emotion"].to_list())
    doc = "\n".join(modality_section(wh, "toy", "emodb7"))
    assert f"| text | {text} | text-lr | 1.000 |" in doc
    assert "No audio run to compare the text runs with." in doc and "disagree" not in doc


def test_report_has_the_modality_section(wh: Warehouse, tmp_path, no_refit, monkeypatch) -> None:
    from sercap.report import write_report

    for name in ("sercap.compare.write_bench_report", "sercap.plots.counts_png"):
        monkeypatch.setattr(name, lambda *args, **kwargs: {})  # pictures: not tested here
    utts = add_corpus(wh)
    labels = utts["emotion"].to_list()
    _store(wh, utts, "svm", labels)
    _store(wh, utts, "text-lr", labels[::-1])
    text = write_report(wh, tmp_path / "r", corpus="toy").read_text()
    assert "## Audio, text and fused" in text and "### Where audio and text disagree" in text
