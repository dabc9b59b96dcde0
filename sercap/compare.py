"""Benchmark models side by side: one run each, one table, pictures a person can read.

Models that read the same inputs share one read of the warehouse. Every row of the table is
a stored run, so `sercap runs show ID` explains any figure, and `report` can redraw it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from tqdm.auto import tqdm

from sercap.data import Dataset
from sercap.errors import SercapError
from sercap.experiment import DataRequest, data_request, load_for, run_model
from sercap.warehouse import Warehouse

TABULAR_MODELS = ("svm", "rf", "xgb", "lgbm", "trees")


@dataclass(frozen=True)
class BenchSpec:
    """One line of a benchmark: a model, optionally on another feature set."""

    model: str
    feature_set: str | None = None

    @property
    def label(self) -> str:
        return self.model if self.feature_set is None else f"{self.model} [{self.feature_set}]"


def bench_models(
    wh: Warehouse,
    specs: Sequence[BenchSpec],
    *,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    speaker_norm: bool = False,
    tuned: bool = False,
    params: dict[str, dict] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
) -> list[str]:
    """Cross-validate every spec under the corpus' protocol; return the stored run ids."""
    cache: dict[DataRequest, Dataset] = {}
    run_ids = []
    bar = tqdm(specs, desc="bench", unit="model", disable=not progress)
    for spec in bar:
        bar.set_postfix_str(spec.label)
        request = data_request(
            spec.model,
            corpus=corpus,
            label_map=label_map,
            feature_set=spec.feature_set or feature_set,
            image_set=image_set,
            speaker_norm=speaker_norm,
        )
        if request not in cache:
            cache[request] = load_for(wh, request)
        outcome = run_model(
            wh,
            spec.model,
            cache[request],
            params=(params or {}).get(spec.model),
            tuned=tuned,
            seed=seed,
            n_jobs=n_jobs,
            device=device,
            progress=progress,
        )
        run_ids.append(outcome.run_id)
    return run_ids


def bench_table(wh: Warehouse, run_ids: Sequence[str]) -> pl.DataFrame:
    """The comparison table of some runs, best UA first."""
    if not run_ids:
        raise SercapError("nothing to compare")
    frame = wh.query(
        "SELECT run_id, model, kind, feature_set, label_map, protocol, speaker_norm, "
        "tuned_from IS NOT NULL AS tuned, ua, wa, macro_f1, ua_fold_mean, ua_fold_std, fit_s, "
        "classes, confusion_json, members, params_json FROM runs WHERE list_contains(?, run_id)",
        [list(run_ids)],
    )
    names = [_display_name(r) for r in frame.iter_rows(named=True)]
    return frame.with_columns(name=pl.Series(names, dtype=pl.String)).sort("ua", descending=True)


def _display_name(run: dict) -> str:
    """``svm``, ``svm [compare2016]`` or ``avg(svm+xgb)``: what a row of the table is."""
    if run["kind"] == "ensemble":
        members = json.loads(run["params_json"] or "{}").get("members", [])
        return "avg(" + "+".join(members) + ")"
    if run["feature_set"] in (None, "default", "mel"):
        return run["model"]
    return f"{run['model']} [{run['feature_set']}]"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def table_markdown(table: pl.DataFrame, corpus: str | None = None) -> str:
    """The comparison as a Markdown table with the protocol stated under it."""
    lines = [
        "| model | UA | WA | macro-F1 | UA per fold (mean ± std) | fit time (s) | run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.iter_rows(named=True):
        tags = []
        if r["speaker_norm"]:
            tags.append("speaker-norm")
        if r["tuned"]:
            tags.append("tuned")
        name = r["name"] + (f" ({', '.join(tags)})" if tags else "")
        lines.append(
            f"| {name} | {r['ua']:.4f} | {r['wa']:.4f} | {r['macro_f1']:.4f} | "
            f"{r['ua_fold_mean']:.3f} ± {r['ua_fold_std']:.3f} | {r['fit_s']:.1f} | "
            f"`{r['run_id']}` |"
        )
    first = table.row(0, named=True)
    norm = (
        "some rows use speaker normalisation (marked)"
        if table["speaker_norm"].any()
        else "no speaker normalisation"
    )
    lines += [
        "",
        f"Corpus {corpus or ''} · labels {first['label_map']} ({', '.join(first['classes'])}) · "
        f"protocol {first['protocol']} (speaker-independent) · pooled out-of-fold scores · {norm}.",
        "UA = mean per-class recall, WA = accuracy.",
    ]
    return "\n".join(lines)


def write_bench_report(
    wh: Warehouse, run_ids: Sequence[str], out_dir: Path, corpus: str | None = None
) -> dict[str, Path]:
    """bench.md, bench.csv, comparison.png, recall.png and one confusion PNG per run."""
    from sercap.plots import comparison_png, confusion_png, recall_png

    table = bench_table(wh, run_ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = list(table["classes"][0])
    written: dict[str, Path] = {}
    md = table_markdown(table, corpus)
    pictures = [
        "",
        "![model comparison](comparison.png)",
        "",
        "![per-class recall](recall.png)",
        "",
    ]
    recalls = {}
    for r in table.iter_rows(named=True):
        cm = json.loads(r["confusion_json"])
        slug = _slug(r["name"])
        png = confusion_png(
            cm, classes, f"{r['name']}: UA {r['ua']:.3f}", out_dir / f"confusion-{slug}.png"
        )
        written[f"confusion-{slug}"] = png
        pictures.append(f"![confusion {r['name']}]({png.name})")
        recalls[r["name"]] = [row[i] / max(sum(row), 1) for i, row in enumerate(cm)]
    written["comparison"] = comparison_png(
        [
            {"model": r["name"], "ua": r["ua"], "wa": r["wa"], "macro_f1": r["macro_f1"]}
            for r in table.iter_rows(named=True)
        ],
        out_dir / "comparison.png",
        n_classes=len(classes),
    )
    written["recall"] = recall_png(recalls, classes, out_dir / "recall.png")
    (out_dir / "bench.md").write_text("# Benchmark\n\n" + md + "\n" + "\n".join(pictures) + "\n")
    written["markdown"] = out_dir / "bench.md"
    csv = table.select(
        "name", "run_id", "feature_set", "label_map", "protocol", "speaker_norm", "tuned",
        "ua", "wa", "macro_f1", "ua_fold_mean", "ua_fold_std", "fit_s",
    )  # fmt: skip
    csv.write_csv(out_dir / "bench.csv")
    written["csv"] = out_dir / "bench.csv"
    return written
