"""What a stored run is called in tables, reports and charts: its model, feature set,
columns, the parameters someone set by hand, and for an ensemble its members.

A run whose parameters a person chose (perhaps after reading its score on the outer test
folds) must never read as the model's defaults: every label here says so.
"""

from __future__ import annotations

import json

from sercap.format import mark_normalised

#: Settings small enough for the demo (minutes on 2 cores), large enough to learn.
QUICK_PARAMS: dict[str, dict] = {
    "rf": {"n_estimators": 200},
    "trees": {"rf__n_estimators": 200},
    "dnn": {"epochs": 40, "patience": 10, "n_seeds": 1},
    "lstm": {"epochs": 6, "hidden_size": 64, "num_layers": 1, "max_frames": 200},
    "cnn": {"epochs": 10},
    "resnet18": {"epochs": 5},
    # 4 epochs at 128-frame crops (24 SGD steps on the demo's folds) left resnet34 at chance
    # on the demo corpus (WA 0.283 < the majority share 0.305); twice the steps on half-width
    # crops: UA 0.391, WA 0.323, 191 s instead of 137 s (demo folds, seen: disclosed)
    "resnet34": {"epochs": 8, "crop_frames": 64},
    "text-cnn": {"epochs": 20},
}


_QUICK_TAG = " (quick)"


def display_name(run: dict) -> str:
    """``svm``, ``svm [compare2016]``, ``svm columns /^mfcc_/``, ``avg(svm+xgb)`` or, with
    unequal weights, ``avg(svm×0.67+xgb×0.33)``: what a row of the table is. An ensemble
    names its members as their own rows read; where the demo's quick settings are the only
    ones set by hand, once after it: ``avg(svm+rf+dnn) (quick)``.

    >>> members = {"kind": "ensemble", "params_json": '{"members": ["svm", "rf (quick)"]}'}
    >>> display_name(members)
    'avg(svm+rf) (quick)'
    >>> display_name({**members, "params_json": '{"members": ["svm (C=1)", "rf (quick)"]}'})
    'avg(svm (C=1)+rf (quick))'
    """
    if run["kind"] == "ensemble":
        members = json.loads(run["params_json"] or "{}").get("members", [])
        quick = _QUICK_TAG if any(m.endswith(_QUICK_TAG) for m in members) else ""
        if quick and all(m.endswith(_QUICK_TAG) or "(" not in m for m in members):
            members = [m.removesuffix(_QUICK_TAG) for m in members]  # said once, after
        else:
            quick = ""
        weights = run.get("weights")
        if weights and len(weights) == len(members) and len(set(weights)) > 1:
            total = sum(weights)
            members = [f"{m}×{w / total:.2f}" for m, w in zip(members, weights, strict=True)]
        return "avg(" + "+".join(mark_normalised(members, run)) + ")" + quick
    name = run["model"]
    if run["feature_set"] not in (None, "default", "mel", "transcripts", "default+transcripts"):
        name += f" [{run['feature_set']}]"
    if run.get("columns"):
        name += f" columns /{run['columns']}/"
    tuned = run.get("tuned") or run.get("tuned_from")
    return name + params_tag(run) + (" nested-tuned" if tuned else "")


def params_tag(run: dict) -> str:
    """`` (quick)`` for the demo's settings, `` (C=0.1)`` for parameters set by hand, ``""``
    for the model's defaults: a run whose parameters someone chose (perhaps by its score on
    these folds) never reads as the default recipe. For a nested-tuned run, the parameters
    set by hand over the tuned ones (``overrides_json``); its tuned ones are each fold's own.

    >>> params_tag({"model": "svm", "params_json": '{"C": 0.1}'})
    ' (C=0.1)'
    >>> params_tag({"model": "cnn", "params_json": '{"epochs": 10}'})
    ' (quick)'
    >>> params_tag({"model": "svm", "params_json": "{}"})
    ''
    >>> tuned = {"model": "svm", "tuned_from": "svm-tune", "params_json": '{"C": 3.1}'}
    >>> params_tag(tuned), params_tag({**tuned, "overrides_json": '{"C": 30}'})
    ('', ' (C=30)')
    """
    tuned = run.get("tuned") or run.get("tuned_from")
    params = json.loads(run.get("overrides_json" if tuned else "params_json") or "{}")
    if not params:
        return ""
    if params == QUICK_PARAMS.get(run["model"]):
        return " (quick)"
    shown = ", ".join(
        f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in sorted(params.items())
    )
    return f" ({shown})"
