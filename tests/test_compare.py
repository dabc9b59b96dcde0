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
    _display_name,
    _ensemble_members,
    bench_table,
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


def test_display_names_say_what_a_row_is() -> None:
    assert BenchSpec("svm", "compare2016").label == "svm [compare2016]"
    assert _display_name({"kind": "model", "model": "svm", "feature_set": "default"}) == "svm"
    assert _display_name({"kind": "model", "model": "cnn", "feature_set": "mel"}) == "cnn"
    named = {"kind": "model", "model": "lgbm", "feature_set": "egemaps02"}
    assert _display_name(named) == "lgbm [egemaps02]"
    ensemble = {"kind": "ensemble", "params_json": json.dumps({"members": ["svm", "dnn"]})}
    assert _display_name(ensemble) == "avg(svm+dnn)"


def test_ensembles_take_the_best_run_per_family_and_the_seed_combination(wh) -> None:
    runs = [
        ("svm", "r-svm", 0.70),
        ("rf", "r-rf", 0.60),
        ("xgb", "r-xgb", 0.66),
        ("trees", "r-trees", 0.64),
        ("dnn", "r-dnn", 0.50),
        ("resnet34", "r-r34", 0.40),
    ]
    for model, run_id, ua in runs:
        add_run(wh, run_id, model, ua)
    groups = _ensemble_members(wh, [(m, r) for m, r, _ in runs])
    # Trees family: xgb (0.66) beats trees (0.64) and rf; cnn family: resnet34.
    assert sorted(groups[0]) == ["r-dnn", "r-r34", "r-svm", "r-xgb"]
    assert groups[1] == ["r-r34", "r-dnn", "r-trees"]
    assert len(groups) == 2


def test_no_ensemble_of_one_family(wh) -> None:
    add_run(wh, "a", "rf", 0.6)
    add_run(wh, "b", "xgb", 0.7)
    assert _ensemble_members(wh, [("rf", "a"), ("xgb", "b")]) == []
    add_run(wh, "c", "svm", 0.5)
    assert _ensemble_members(wh, [("rf", "a"), ("xgb", "b"), ("svm", "c")]) == [["b", "c"]]


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
    plain = protocol_caption(table.with_columns(speaker_norm=pl.lit(False)))
    assert plain.startswith("labels emodb7") and plain.endswith("no speaker normalisation.")
    with pytest.raises(SercapError, match="nothing to compare"):
        bench_table(wh, [])
