"""What a stored run is called: model, feature set, parameters set by hand, members."""

import json

from sercap.compare import BenchSpec
from sercap.run_labels import display_name, params_tag


def test_display_names_say_what_a_row_is() -> None:
    assert display_name({"kind": "model", "model": "svm", "feature_set": "default"}) == "svm"
    assert display_name({"kind": "model", "model": "cnn", "feature_set": "mel"}) == "cnn"
    named = {"kind": "model", "model": "lgbm", "feature_set": "egemaps02"}
    assert display_name(named) == "lgbm [egemaps02]"
    ensemble = {"kind": "ensemble", "params_json": json.dumps({"members": ["svm", "dnn"]})}
    assert display_name(ensemble) == "avg(svm+dnn)"
    assert display_name({**ensemble, "weights": [1.0, 1.0]}) == "avg(svm+dnn)"
    weighted = {**ensemble, "weights": [2.0, 1.0]}  # a weighted average says its weights
    assert display_name(weighted) == "avg(svm×0.67+dnn×0.33)"
    tuned = {"kind": "model", "model": "svm", "feature_set": "default", "tuned": True}
    assert display_name(tuned) == "svm nested-tuned"
    assert BenchSpec("svm", "compare2016").label == "svm [compare2016]"


def test_parameters_set_by_hand_over_tuned_ones_are_named() -> None:
    """A tuned run fitted with `--params` over its tuned parameters read as plain
    "svm nested-tuned"; its tuned parameters (each fold's own) are not a tag."""
    tuned = {
        "kind": "model", "model": "svm", "feature_set": "default", "tuned_from": "svm-tune",
        "params_json": json.dumps({"C": 3.2, "gamma": 0.01}),
    }  # fmt: skip
    assert display_name(tuned) == "svm nested-tuned"
    by_hand = {**tuned, "overrides_json": json.dumps({"C": 30, "class_weight": None})}
    assert display_name(by_hand) == "svm (C=30, class_weight=null) nested-tuned"
    assert params_tag({"model": "rf", "params_json": json.dumps({"n_estimators": 200})}) == (
        " (quick)"
    )
