"""Benchmark planning, ensemble membership, table names and the protocol caption.

The full bench (models trained, report written) is exercised in test_report and test_demo;
here are the decisions in between, on hand-made runs.
"""

import json

import polars as pl
import pytest

from sercap.compare import (
    TABULAR_MODELS,
    BenchSpec,
    bench_table,
    fixed_ensembles,
    plan_bench,
    protocol_caption,
    table_markdown,
)
from sercap.errors import SercapError
from sercap.models.registry import MODELS


def add_run(wh, run_id: str, model: str, ua: float, **extra) -> None:
    row = {
        "run_id": run_id, "kind": "model", "model": model, "corpus": "c", "label_map": "emodb7",
        "protocol": "leave-one-speaker-out", "speaker_norm": False, "ua": ua, "wa": ua,
        "macro_f1": ua, "ua_fold_mean": ua, "ua_fold_std": 0.01, "fit_s": 1.0,
        "classes": ["ang", "neu"], "feature_set": "default",
    } | extra  # fmt: skip
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    wh.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", list(row.values()))


def test_plan_bench_defaults_dedupes_and_checks_names() -> None:
    assert [s.model for s in plan_bench([])] == list(TABULAR_MODELS)
    assert [s.model for s in plan_bench([], all_models=True)] == list(MODELS)
    assert plan_bench(["svm", "xgb", "svm"]) == [BenchSpec("svm"), BenchSpec("xgb")]
    with pytest.raises(SercapError, match="unknown model 'svn'"):
        plan_bench(["svn"])


def test_bench_ensembles_are_fixed_before_any_score(wh) -> None:
    """Members are every default model of the bench and the seed's combination."""
    runs = [
        ("svm", "r-svm"), ("rf", "r-rf"), ("xgb", "r-xgb"), ("trees", "r-trees"),
        ("dnn", "r-dnn"), ("resnet34", "r-r34"),
    ]  # fmt: skip
    groups = fixed_ensembles(runs)
    assert groups == [[r for _, r in runs], ["r-r34", "r-dnn", "r-trees"]]
    assert fixed_ensembles([("rf", "a")]) == []
    assert fixed_ensembles([("rf", "a"), ("xgb", "b")]) == [["a", "b"]]


def test_bench_ensemble_members_do_not_follow_the_test_scores(wh, monkeypatch) -> None:
    """Through run_bench: runs whose UAs favour different members give the same ensemble
    (the old code took the best run per family by outer-fold UA: selection on the test set)."""
    import sercap.compare as compare

    members_seen = []
    runs = [("rf", "a"), ("xgb", "b"), ("svm", "c")]
    monkeypatch.setattr(
        compare,
        "bench_runs",
        lambda *a, **k: compare.BenchRuns(default=[(BenchSpec(m), r) for m, r in runs]),
        raising=False,
    )
    monkeypatch.setattr(
        compare,
        "bench_models",
        lambda *a, **k: [r for _, r in runs],
    )
    monkeypatch.setattr(
        "sercap.ensemble.ensemble_runs",
        lambda wh_, ids, fixed_rule: (members_seen.append(ids) if fixed_rule else None, None),
    )
    monkeypatch.setattr(compare, "write_bench_report", lambda *a, **k: {})
    monkeypatch.setattr(compare, "bench_table", lambda *a, **k: None)
    for uas in ((0.9, 0.5, 0.6), (0.5, 0.9, 0.6)):
        wh.execute("DELETE FROM runs")
        for (model, run_id), ua in zip(runs, uas, strict=True):
            add_run(wh, run_id, model, ua)
        compare.run_bench(wh, [BenchSpec(m) for m, _ in runs], None, corpus="c", ensemble=True)
    assert (
        members_seen
        and members_seen[: len(members_seen) // 2] == members_seen[len(members_seen) // 2 :]
    )


def test_table_is_sorted_and_its_caption_states_the_protocol(wh) -> None:
    add_run(wh, "low", "rf", 0.55)
    add_run(wh, "high", "svm", 0.75, speaker_norm=True)
    table = bench_table(wh, ["low", "high"])
    assert table["run_id"].to_list() == ["high", "low"]
    caption = protocol_caption(table, "emodb")
    assert caption.startswith("Corpus emodb · labels emodb7 (ang, neu)")
    assert "protocol leave-one-speaker-out" in caption
    assert "some rows use speaker normalisation" in caption
    markdown = table_markdown(table, "emodb")
    assert "| svm (speaker-norm) | 0.7500 |" in markdown
    assert "| rf | 0.5500 |" in markdown
    every = protocol_caption(table.with_columns(speaker_norm=pl.lit(True)))
    assert every.endswith("speaker normalisation in every row.")
    plain = protocol_caption(table.with_columns(speaker_norm=pl.lit(False)))
    assert plain.startswith("labels emodb7") and plain.endswith("no speaker normalisation.")
    with pytest.raises(SercapError, match="nothing to compare"):
        bench_table(wh, [])


def test_each_ensemble_is_compared_with_its_best_member(wh, tmp_path) -> None:
    """The member with the higher pooled UA is the baseline, whatever the order of the
    members; the difference and CI are compare_runs' on the two runs' stored predictions."""
    import numpy as np

    from sercap.analysis_store import compare_runs
    from sercap.compare import ensembles_vs_best_member
    from sercap.ensemble import ensemble_runs
    from sercap.format import format_ensemble_comparison
    from tests.test_analysis_store import CLASSES, _corpus, _proba, _store

    utts = _corpus(wh)
    y = np.array([CLASSES.index(e) for e in utts["emotion"]])
    rng = np.random.default_rng(1)
    weak = _store(wh, utts, _proba(rng, y, 0.3), "rf")
    strong = _store(wh, utts, _proba(rng, y, 0.9), "svm")
    ens, _ = ensemble_runs(wh, [weak, strong])
    table = bench_table(wh, [weak, strong, ens])
    frame = ensembles_vs_best_member(wh, table, n_boot=200, seed=2)
    assert frame.height == 1
    row = frame.row(0, named=True)
    assert (row["ensemble_run"], row["member"], row["member_run"]) == (ens, "svm", strong)
    want = compare_runs(wh, ens, strong, n_boot=200, seed=2).ua
    assert (row["difference"], row["low"], row["high"]) == (want.difference, want.low, want.high)
    assert row["ua_member"] == pytest.approx(table.filter(pl.col("run_id") == strong)["ua"][0])
    text = format_ensemble_comparison(frame)
    assert "avg(rf+svm)" in text and "svm" in text
    verdict = "no better than svm within noise" if row["within_noise"] else "svm"
    assert verdict in text.splitlines()[-1]
    assert ensembles_vs_best_member(wh, bench_table(wh, [weak, strong])).is_empty()
    # ensemble_runs without fixed_rule: members chosen by hand, listed after every ranked
    # row whatever its UA (the report's table and the bench table are this one)
    assert table["run_id"].to_list()[-1] == ens
    # members tied for best: the first was named alone, as if it stood out
    twin = _store(wh, utts, _proba(np.random.default_rng(1), y, 0.9), "xgb")
    wh.execute("UPDATE runs SET ua = (SELECT ua FROM runs WHERE run_id = ?) WHERE run_id = ?",
               [strong, twin])  # fmt: skip
    both, _ = ensemble_runs(wh, [strong, twin])
    tied = ensembles_vs_best_member(wh, bench_table(wh, [strong, twin, both]), n_boot=50)
    assert tied["member"][0] in ("svm (= xgb)", "xgb (= svm)")
    fixed, _ = ensemble_runs(wh, [weak, strong], fixed_rule=True)
    ranked = bench_table(wh, [weak, strong, ens, fixed])
    assert ranked["run_id"].to_list()[-1] == ens
    assert ranked.filter(pl.col("run_id") != ens)["ua"].to_list() == sorted(
        ranked.filter(pl.col("run_id") != ens)["ua"].to_list(), reverse=True
    )
    # bench.csv says who chose each ensemble's members: the two averages of rf and svm
    # read alike there otherwise
    from sercap.compare import write_bench_report

    write_bench_report(wh, [weak, strong, ens, fixed], tmp_path / "bench", table=ranked)
    rows = pl.read_csv(tmp_path / "bench" / "bench.csv").select("run_id", "members_chosen_by")
    assert dict(rows.iter_rows()) == {weak: None, strong: None, ens: "hand", fixed: "fixed rule"}


def test_ensemble_comparison_cuts_long_names() -> None:
    from sercap.format import format_ensemble_comparison

    name = "avg(" + "+".join(["resnet34"] * 12) + ")"
    frame = pl.DataFrame(
        [{"ensemble": name, "ensemble_run": "e", "member": "svm", "member_run": "s",
          "ua_ensemble": 0.7, "ua_member": 0.6, "difference": 0.1, "low": 0.02, "high": 0.2,
          "within_noise": False}]
    )  # fmt: skip
    text = format_ensemble_comparison(frame)
    assert name not in text and name[:39] + "…" in text
    assert text.splitlines()[-1] == name[:39] + "…: beats svm (the CI is above 0)"


def test_bench_passes_progress_on_to_the_extractions_it_starts(monkeypatch) -> None:
    """bench(opensmile=True, progress=False) drew two tqdm bars into a notebook or a log."""
    import sercap.features.extract as extract_module
    from sercap.compare import ensure_feature_sets

    calls = []
    monkeypatch.setattr(extract_module, "extract", lambda *a, **k: calls.append((a[1], k)))
    specs = [BenchSpec("svm", "compare2016"), BenchSpec("svm"), BenchSpec("lgbm", "egemaps02")]
    ensure_feature_sets(None, specs, "toy", 1, progress=False)
    assert [(name, k["progress"]) for name, k in calls] == [
        ("compare2016", False),
        ("egemaps02", False),
    ]


def test_bench_says_a_line_per_model_where_no_bar_shows(wh) -> None:
    """The demo's "5/6 benchmarking 15 models" step printed nothing for its whole length
    (17 minutes on a loaded machine) when stderr was not a terminal."""
    from sercap.compare import BenchSpec, bench_runs
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    lines: list[str] = []
    runs = bench_runs(wh, [BenchSpec("svm"), BenchSpec("rf")], progress=False, say=lines.append)
    uas = [wh.scalar("SELECT ua FROM runs WHERE run_id = ?", [r]) for r in runs.run_ids]
    assert [line.split(" (")[0] for line in lines] == [
        f"    svm: UA {uas[0]:.3f}",
        f"    rf: UA {uas[1]:.3f}",
    ]


def test_a_resumed_bench_fits_only_what_is_not_stored_with_the_same_data(wh, monkeypatch):
    """A Ctrl-C during a bench kept the runs stored so far, but the rerun fitted every
    model again (the line said "rerun to resume"): with resume, a run with the same data,
    parameters, seed, library versions and sercap code is taken instead."""
    import sercap.compare
    from sercap.compare import BenchSpec, bench_runs
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    wh.execute("UPDATE utterances SET audio_sha256 = 'bytes of ' || utt_id")  # as ingest does
    real = sercap.compare.run_model

    def stopped_at_lgbm(wh, model, *args, **kwargs):
        if model == "lgbm":
            raise KeyboardInterrupt
        return real(wh, model, *args, **kwargs)

    monkeypatch.setattr(sercap.compare, "run_model", stopped_at_lgbm)
    specs = [BenchSpec("svm"), BenchSpec("lgbm")]
    with pytest.raises(KeyboardInterrupt):
        bench_runs(wh, specs, progress=False)
    monkeypatch.undo()
    (svm,) = [r for (r,) in wh.con.execute("SELECT run_id FROM runs").fetchall()]
    lines: list[str] = []
    resumed = bench_runs(wh, specs, progress=False, resume=True, say=lines.append)
    assert resumed.run_ids[0] == svm and "reused: --resume" in lines[0]
    assert wh.scalar("SELECT count(*) FROM runs") == 2  # lgbm fitted, svm not again
    # other parameters, or a label changed since: fitted again, not taken
    other = bench_runs(wh, [BenchSpec("svm")], params={"svm": {"C": 3.0}}, progress=False,
                       resume=True)  # fmt: skip
    assert other.run_ids[0] != svm
    wh.execute("UPDATE labels SET emotion = 'sad' WHERE utt_id = (SELECT min(utt_id) FROM "
               "labels WHERE emotion <> 'sad')")  # fmt: skip
    relabelled = bench_runs(wh, [BenchSpec("svm")], progress=False, resume=True)
    assert relabelled.run_ids[0] not in (svm, other.run_ids[0])
    # sercap's own code changed (a recipe edited without a version change): fitted again
    import sercap.evaluate

    monkeypatch.setattr(sercap.evaluate, "source_fingerprint", lambda: "x", raising=False)
    edited = bench_runs(wh, [BenchSpec("svm")], progress=False, resume=True)
    assert edited.run_ids[0] != relabelled.run_ids[0]
    monkeypatch.undo()
    # a recording replaced (re-ingested and re-extracted: same ids and labels, other
    # features): the stored run read the old audio's features, so it is fitted again
    kept = bench_runs(wh, [BenchSpec("svm")], progress=False, resume=True)
    assert kept.run_ids[0] == relabelled.run_ids[0]
    wh.execute("UPDATE utterances SET audio_sha256 = 'other bytes' WHERE utt_id = "
               "(SELECT min(utt_id) FROM utterances)")  # fmt: skip
    replaced = bench_runs(wh, [BenchSpec("svm")], progress=False, resume=True)
    assert replaced.run_ids[0] not in (relabelled.run_ids[0], edited.run_ids[0])
    with pytest.raises(SercapError, match="--resume / resume= reuses default runs"):
        bench_runs(wh, specs, progress=False, resume=True, tuned=True)


def test_the_bench_report_draws_runs_of_different_classes(wh, tmp_path) -> None:
    """A text run of a corpus where one emotion has no transcripts has a class fewer than
    the audio runs: its confusion matrix was drawn with the first run's classes, and bench
    and report ended in an IndexError after every model was fitted."""
    from sercap.compare import write_bench_report

    three = [[3, 1, 0], [0, 4, 1], [1, 0, 4]]
    add_run(wh, "svm-1", "svm", 0.7, classes=["ang", "hap", "neu"],
            confusion_json=json.dumps(three))  # fmt: skip
    add_run(wh, "text-lr-1", "text-lr", 0.6, classes=["ang", "neu"],
            confusion_json=json.dumps([[3, 1], [1, 4]]))  # fmt: skip
    written = write_bench_report(wh, ["svm-1", "text-lr-1"], tmp_path / "bench")
    assert {"confusion-svm", "confusion-text-lr"} <= set(written)
    assert written["recall"].is_file()
