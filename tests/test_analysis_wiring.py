"""`compare`, fairness in `runs show`, the report's analysis sections and abstaining predictions,
as a user meets them: CLI, API and report, from stored predictions only."""

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import sercap
import sercap.evaluate
import sercap.models.registry
from cli import main
from sercap import analysis
from sercap.api import with_confidence
from sercap.compare import bench_table, table_markdown
from sercap.data import Dataset
from sercap.evaluate import CVResult, score, store_run
from sercap.report_analysis import analysis_sections, significance_marks
from sercap.store import connect
from tests.helpers import add_corpus

CLASSES = ["ang", "neu", "sad"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and pattern in lines[-1], result.output
    assert "Traceback" not in result.output


@pytest.fixture
def no_refit(monkeypatch):
    """A spy: any attempt to build or cross-validate a model fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built or refitted")

    monkeypatch.setattr(sercap.models.registry, "get_model", refuse)
    monkeypatch.setattr(sercap.evaluate, "cross_validate", refuse)
    with pytest.raises(AssertionError, match="refitted"):  # the spy is armed
        sercap.models.registry.get_model("svm")


def _store(wh, utts: pl.DataFrame, proba: np.ndarray, model: str, classes=CLASSES) -> str:
    y = np.array([classes.index(e) if e in classes else 0 for e in utts["emotion"]])
    folds = utts["speaker"].to_numpy()
    data = Dataset(
        utt_ids=utts["utt_id"].to_numpy(), X=None, y=y, classes=list(classes), speakers=folds,
        folds=folds, corpus="toy", label_map="emodb7", protocol="leave-one-speaker-out",
        input_kind="tabular",
    )  # fmt: skip
    names = sorted(set(folds))
    k = len(classes)
    metrics = [score(y[folds == f], proba[folds == f].argmax(1), k) for f in names]
    result = CVResult(proba=proba, fold_names=names, fold_metrics=metrics,
                      pooled=score(y, proba.argmax(1), k), fit_s=1.0, duration_s=1.0,
                      evaluated=np.arange(len(y)))  # fmt: skip
    return store_run(wh, data, model, result, params={}, seed=0)


def _proba(rng, y, right: float) -> np.ndarray:
    p = rng.dirichlet(np.ones(3), size=len(y))
    hit = rng.random(len(y)) < right
    p[hit, y[hit]] += 1.0
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A file warehouse with 4 speakers (2 F, 2 M) × 3 classes × 6 and three runs:
    ``good`` (90 % right), ``twin`` (``good`` with 2 predictions changed), ``poor`` (40 %).
    Tests only read it."""
    tmp_path = tmp_path_factory.mktemp("stored")
    wh = connect(tmp_path / "wh")
    utts = add_corpus(wh, n_speakers=4, per_class=6).sort("utt_id")
    wh.execute("UPDATE utterances SET gender = CASE WHEN speaker IN ('01', '02') THEN 'F' "
               "ELSE 'M' END")  # fmt: skip
    y = np.array([CLASSES.index(e) for e in utts["emotion"]])
    rng = np.random.default_rng(0)
    good = _proba(rng, y, 0.9)
    twin = good.copy()
    twin[[0, 1]] = twin[[0, 1]][:, ::-1]
    poor = _proba(rng, y, 0.4)
    ids = {
        "good": _store(wh, utts, good, "svm"),
        "twin": _store(wh, utts, twin, "rf"),
        "poor": _store(wh, utts, poor, "xgb"),
    }
    wh.close()
    return tmp_path / "wh", ids, y, {"good": good, "twin": twin, "poor": poor}, utts


def test_compare_cli_gives_interval_mcnemar_and_verdict_without_refit(stored, no_refit) -> None:
    wh_dir, ids, y, proba, utts = stored
    out = run("-w", wh_dir, "compare", ids["good"], ids["poor"], "--n-boot", 300)
    assert out.exit_code == 0, out.output
    ref = analysis.paired_bootstrap(y, proba["good"].argmax(1), proba["poor"].argmax(1),
                                    n_classes=3, n_boot=300,
                                    groups=utts["speaker"].to_numpy())  # fmt: skip
    assert f"[{ref.low:+.4f}, {ref.high:+.4f}]" in out.output
    m = analysis.mcnemar(y, proba["good"].argmax(1), proba["poor"].argmax(1))
    assert f"only A right {m.only_a_right}, only B right {m.only_b_right}" in out.output
    assert out.output.splitlines()[-1].startswith("verdict: A better")
    flipped = run("-w", wh_dir, "compare", ids["poor"][:8], ids["good"], "--n-boot", 300)
    assert flipped.output.splitlines()[-1].startswith("verdict: B better")
    twins = run("-w", wh_dir, "compare", ids["good"], ids["twin"], "--n-boot", 300)
    assert twins.output.splitlines()[-1].startswith("verdict: within noise"), twins.output


def test_compare_api_matches_the_library_and_json(stored, no_refit) -> None:
    wh_dir, ids, y, proba, utts = stored
    wh = sercap.connect(wh_dir, read_only=True)
    c = sercap.compare_runs(wh, ids["good"], ids["twin"], n_boot=200, seed=3)
    wh.close()
    ref = analysis.paired_bootstrap(y, proba["good"].argmax(1), proba["twin"].argmax(1),
                                    n_classes=3, metric="macro_f1", n_boot=200, seed=3,
                                    groups=utts["speaker"].to_numpy())  # fmt: skip
    assert (c.macro_f1.low, c.macro_f1.high) == (ref.low, ref.high)
    assert c.ua.within_noise and c.n_common == len(y)
    out = run("-w", wh_dir, "compare", ids["good"], ids["twin"], "--json", "--n-boot", 200)
    assert '"ua_within_noise": true' in out.output


def test_compare_refuses_unknown_runs_other_classes_and_other_utterances(tmp_path) -> None:
    wh = connect(tmp_path / "wh")
    a = add_corpus(wh, name="toy", n_speakers=2, per_class=2).sort("utt_id")
    b = add_corpus(wh, name="other", n_speakers=2, per_class=2).sort("utt_id")
    ra = _store(wh, a, np.eye(3)[[CLASSES.index(e) for e in a["emotion"]]], "svm")
    rb = _store(wh, b, np.eye(3)[[CLASSES.index(e) for e in b["emotion"]]], "svm")
    four = ["ang", "neu", "sad", "hap"]
    r4 = _store(wh, a, np.full((a.height, 4), 0.25), "svm", classes=four)
    wh.close()
    wh_dir = tmp_path / "wh"
    _one_line_error(run("-w", wh_dir, "compare", ra, "nope"), "no run 'nope'")
    _one_line_error(run("-w", wh_dir, "compare", ra, rb), "share no utterance")
    _one_line_error(run("-w", wh_dir, "compare", ra, r4), "different classes")


def test_runs_show_prints_ua_per_gender_and_speaker_without_refit(stored, no_refit) -> None:
    wh_dir, ids, y, proba, utts = stored
    out = run("-w", wh_dir, "runs", "show", ids["poor"])
    assert out.exit_code == 0, out.output
    pred = proba["poor"].argmax(1)
    speakers = utts["speaker"].to_numpy()
    ua = {s: analysis.unweighted_accuracy(y[speakers == s], pred[speakers == s], 3)
          for s in ["01", "02", "03", "04"]}  # fmt: skip
    line = next(x for x in out.output.splitlines() if "UA per speaker" in x)
    assert line.strip() == "UA per speaker: " + ", ".join(f"{s} {v:.3f}" for s, v in ua.items())
    gap = max(ua.values()) - min(ua.values())
    assert f"gap {gap:.3f}" in out.output
    female = speakers <= "02"
    assert f"F {analysis.unweighted_accuracy(y[female], pred[female], 3):.3f}" in out.output


def test_report_sections_mark_noise_show_fairness_and_coverage_without_refit(
    stored, no_refit, tmp_path
) -> None:
    wh_dir, ids, _, _, _ = stored
    wh = connect(wh_dir, read_only=True)
    order = [ids["good"], ids["twin"], ids["poor"]]
    table = bench_table(wh, order)
    marks = significance_marks(wh, order)
    lines = analysis_sections(wh, order, tmp_path, importance=False)
    wh.close()
    rows = {r.split("|")[1].strip(): r for r in table_markdown(table, marks=marks).splitlines()
            if r.startswith("| ") and "`" in r}  # fmt: skip
    assert "| best |" in rows["svm"]
    assert "| within noise |" in rows["rf"]
    assert "| below best |" in rows["xgb"]
    text = "\n".join(lines)
    assert "## Fairness" in text and "UA F | UA M" in text and "speaker gap" in text
    assert "![UA against coverage](coverage.png)" in text
    assert (tmp_path / "coverage.png").stat().st_size > 1000


def test_with_confidence_abstains_below_the_threshold() -> None:
    table = pl.DataFrame(
        {"run_id": ["r"] * 3, "path": ["a", "b", "c"], "emotion": ["ang", "neu", None],
         "ang": [0.9, 0.45, None], "neu": [0.1, 0.55, None], "error": [None, None, "bad"]}
    )  # fmt: skip
    plain = with_confidence(table)
    assert plain.columns == ["run_id", "path", "emotion", "ang", "neu", "confidence", "error"]
    assert "abstained" not in plain.columns
    out = with_confidence(table, 0.6)
    assert out["emotion"].to_list() == ["ang", None, None]
    assert out["abstained"].to_list() == [False, True, False]  # an error is not an abstention
    assert out["confidence"].to_list()[:2] == [0.9, 0.55]


def test_the_report_says_how_many_resamples_its_marks_took(stored, no_refit, tmp_path) -> None:
    """The caption said 1000 resamples whatever the number of runs; three runs take 1,600
    (enough to leave 20 beyond each bound of the Bonferroni-adjusted intervals)."""
    from sercap.report import write_report

    wh_dir, _ids, _, _, _ = stored
    with connect(wh_dir, read_only=True) as wh:
        text = write_report(wh, tmp_path / "r", importance=False).read_text()
    assert "paired bootstrap CI (1,600 resamples;" in text


def test_one_run_that_cannot_be_paired_leaves_the_others_marks(stored, tmp_path) -> None:
    """A run whose utterances the best one's predictions do not share blanked the marks of
    every run; it alone is left unmarked."""
    import shutil

    wh_dir, ids, _, proba, utts = stored
    shutil.copytree(wh_dir, tmp_path / "copy")
    with connect(tmp_path / "copy") as wh:
        other = add_corpus(wh, name="other", n_speakers=2, per_class=2).sort("utt_id")
        lone = _store(wh, other, np.full((other.height, 3), 1 / 3), "lgbm")
        order = [ids["good"], ids["twin"], ids["poor"], lone]
        marks = significance_marks(wh, order)
    assert marks[ids["good"]] == "best" and marks[ids["poor"]] == "below best"
    assert lone not in marks


def test_a_corpus_without_genders_shows_no_gender_gap(stored, tmp_path) -> None:
    """Every utterance's gender unknown ('?'): the table showed a gender gap of 0.000."""
    import shutil

    from sercap.report_analysis import fairness_markdown

    wh_dir, ids, _, _, _ = stored
    shutil.copytree(wh_dir, tmp_path / "copy")
    with connect(tmp_path / "copy") as wh:
        wh.execute("UPDATE utterances SET gender = NULL")
        text = fairness_markdown(wh, [ids["good"]])
    row = text.splitlines()[2].split(" | ")
    assert "UA ?" in text and row[2] == "—"
