"""Tables for people and machines: printing query results and warehouse summaries."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import polars as pl

from sercap.errors import SercapError
from sercap.store import Warehouse, catalog
from sercap.store import runs as store_runs


def format_table(frame: pl.DataFrame, limit: int | None = 50, float_digits: int = 4) -> str:
    """A plain-text table with aligned columns (lists and long strings shortened)."""
    shown = frame if limit is None else frame.head(limit)

    def cell(value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, float):
            return f"{value:.{float_digits}f}"
        if isinstance(value, list):
            inner = ", ".join(cell(v) for v in value[:6])
            return f"[{inner}{', …' if len(value) > 6 else ''}]"
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        text = str(value)
        return text if len(text) <= 60 else text[:57] + "…"

    header = shown.columns
    rows = [[cell(v) for v in row] for row in shown.iter_rows()]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    numeric = [shown.schema[c].is_numeric() for c in header]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if limit is not None and frame.height > limit:
        out.append(f"… {frame.height - limit} more rows ({frame.height} in all)")
    else:
        out.append(f"({frame.height} row{'s' if frame.height != 1 else ''})")
    return "\n".join(out)


def print_frame(frame: pl.DataFrame, fmt: str = "table", limit: int | None = 50) -> None:
    """Print a result as an aligned table, CSV or JSON (one object per row)."""
    if fmt == "csv":
        click.echo(_flatten(frame).write_csv(), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(frame.to_dicts(), default=str, indent=1))
    else:
        click.echo(format_table(frame, limit=limit))


def write_frame(frame: pl.DataFrame, path: Path) -> None:
    """Write a result to .csv or .parquet, chosen by the file's extension."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame.write_parquet(path)
    elif suffix == ".csv":
        _flatten(frame).write_csv(path)
    else:
        raise SercapError(f"{path}: unknown output format {suffix!r}; use .csv or .parquet")


def _flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists: write them as JSON text."""
    nested = [c for c, t in frame.schema.items() if isinstance(t, pl.List | pl.Array | pl.Struct)]
    return frame.with_columns(
        pl.col(c).map_elements(lambda v: json.dumps(list(v)), return_dtype=pl.String)
        for c in nested
    )


def warehouse_summary(wh: Warehouse) -> str:
    """What a warehouse holds, in a few small tables."""
    sections = [f"warehouse: {wh.root.resolve()}"]
    corpora = wh.query(
        "SELECT c.name AS corpus, c.kind, c.label_map, c.protocol, count(u.utt_id) AS utterances, "
        "count(DISTINCT u.speaker) AS speakers, round(sum(u.duration_s) / 60, 1) AS minutes "
        "FROM corpora c LEFT JOIN utterances u ON u.corpus = c.name GROUP BY ALL ORDER BY 1"
    )
    if corpora.is_empty():
        sections.append("no corpus yet: run `sercap ingest KIND DIR` (or `sercap demo`)")
        return "\n\n".join(sections)
    sections.append("corpora\n" + format_table(corpora, limit=None))
    for corpus in corpora["corpus"]:
        counts = wh.query(
            "SELECT u.speaker, l.emotion, count(*) AS n FROM utterances u "
            "JOIN labels l USING (utt_id) WHERE u.corpus = ? GROUP BY ALL",
            [corpus],
        )
        per_label = counts.pivot(on="emotion", index="speaker", values="n", sort_columns=True)
        per_label = per_label.fill_null(0).sort("speaker")
        sections.append(f"{corpus}: utterances per speaker and emotion\n" + format_table(per_label))
    sets = catalog.feature_set_overview(wh)
    if sets.height:
        sections.append("feature sets\n" + format_table(sets, limit=None))
    if store_runs.count_runs(wh):
        latest = store_runs.latest_runs(wh, 10)
        sections.append("latest runs\n" + format_table(latest, limit=None))
    return "\n\n".join(sections)


# ----------------------------------------------------------------------------- runs
def format_confusion(confusion: list[list[int]], classes: list[str]) -> str:
    """A confusion matrix as text: rows are true classes, columns predictions."""
    width = max(5, *(len(c) for c in classes), *(len(str(v)) for r in confusion for v in r))
    head = "true\\pred".ljust(10) + "".join(c.rjust(width + 1) for c in classes) + "  recall"
    lines = [head]
    for name, row in zip(classes, confusion, strict=True):
        total = sum(row)
        recall = row[classes.index(name)] / total if total else 0.0
        cells = "".join(str(v).rjust(width + 1) for v in row)
        lines.append(f"{name.ljust(10)}{cells}  {recall:6.3f}")
    return "\n".join(lines)


def format_run(run: dict) -> str:
    """A stored run for a person: what was trained how, and how well."""
    norm = "with speaker normalisation" if run["speaker_norm"] else "no speaker normalisation"
    params = json.loads(run["params_json"] or "{}")
    lines = [
        f"run {run['run_id']}  ({run['kind']}: {run['model']})",
        f"  corpus {run['corpus']}, labels {run['label_map']} ({', '.join(run['classes'])}), "
        f"{run['n_utterances']} utterances",
        f"  protocol {run['protocol']}, {run['n_folds']} folds, {norm}",
    ]
    if run.get("feature_set"):
        cols = f", columns {run['columns']}" if run.get("columns") else ""
        lines.append(f"  features {run['feature_set']} ({run['feature_set_hash']}){cols}")
    if run.get("members"):
        lines.append(f"  members {', '.join(run['members'])}  weights {run.get('weights')}")
    if params:
        lines.append(f"  params {json.dumps(params, sort_keys=True)}")
    if run.get("fold_params_json"):
        folds = json.loads(run["fold_params_json"])
        lines.append(
            f"  nested tuning {run.get('tuned_from')}: each outer fold scored with the best "
            "parameters of its own study (tuned on its training speakers only)"
        )
        lines += [f"    {fold}: {json.dumps(p, sort_keys=True)}" for fold, p in folds.items()]
        if "(no final study)" in (run.get("tuned_from") or ""):
            lines.append("  params above: for `predict` (no final study was tuned: the defaults)")
        else:
            lines.append(
                "  params above: the final study's (all speakers), used by `predict`, never scored"
            )
    elif run.get("tuned_from"):
        lines.append(f"  tuned parameters from {run['tuned_from']}")
    lines.append(f"  seed {run['seed']}, fit {run['fit_s']:.1f} s, total {run['duration_s']:.1f} s")
    lines += [
        "",
        "            pooled   per fold (mean ± std)",
        f"  UA        {run['ua']:.4f}   {run['ua_fold_mean']:.4f} ± {run['ua_fold_std']:.4f}",
        f"  WA        {run['wa']:.4f}   {run['wa_fold_mean']:.4f} ± {run['wa_fold_std']:.4f}",
        f"  macro-F1  {run['macro_f1']:.4f}   {run['f1_fold_mean']:.4f} ± {run['f1_fold_std']:.4f}",
        "",
        format_confusion(json.loads(run["confusion_json"]), list(run["classes"])),
    ]
    return "\n".join(lines)


def runs_table(wh: Warehouse, corpus: str | None = None, model: str | None = None) -> pl.DataFrame:
    """Stored runs, newest first, with the facts needed to read their figures."""
    return store_runs.list_runs(wh, corpus, model)


def format_study(summary) -> str:
    """An Optuna study summary (see :func:`sercap.tuning.summarise`) for a person."""
    lines = [
        f"study {summary.name}: {summary.n_trials} trials "
        f"({summary.n_complete} complete, {summary.n_pruned} pruned)",
        f"best trial {summary.best_number}: validation UA {summary.best_value:.4f}",
        f"  params {json.dumps(summary.best_params, sort_keys=True)}",
    ]
    if summary.importances:
        lines.append("parameter importances")
        lines += [f"  {k:<28} {v:.3f}" for k, v in summary.importances.items()]
    lines.append("history (trial, state, UA)")
    for number, state, value in summary.history[-15:]:
        shown = f"{value:.4f}" if value is not None else "-"
        lines.append(f"  {number:>4}  {state:<9} {shown}")
    if len(summary.history) > 15:
        lines.append(f"  … {len(summary.history) - 15} earlier trials")
    return "\n".join(lines)


def format_nested(nested) -> str:
    """Every study of a nested tuning (see :func:`sercap.tuning.run_nested`) for a person:
    one line per outer fold's study, then the final study in full."""
    from sercap.tuning import MIN_GAIN, summarise

    lines = [
        f"nested tuning {nested.base}: one study per outer fold, objective = mean UA of an "
        "inner speaker-grouped CV over that fold's training speakers",
        "  fold        trials  complete  pruned  inner UA (best)  chosen params "
        f"(the default unless the best beats it by ≥ {MIN_GAIN} inner UA)",
    ]
    for fold, study in sorted(nested.folds.items()):
        try:
            summary = summarise(study)
        except SercapError:
            lines.append(f"  {fold:<10}  {len(study.trials):>6}  no completed trial yet")
            continue
        lines.append(
            f"  {fold:<10}  {summary.n_trials:>6}  {summary.n_complete:>8}  {summary.n_pruned:>6}"
            f"  {summary.best_value:>15.4f}  {_chosen(study)}"
        )
    if nested.final is not None:
        lines += [
            "",
            "final study (all speakers; its parameters serve `predict` and are never scored):",
            format_study(summarise(nested.final)),
        ]
    lines.append(
        "inner UA is a validation figure on training speakers; the tuned figure is the outer UA "
        "of `train MODEL --tuned`"
    )
    return "\n".join(lines)


def _chosen(study) -> str:
    from sercap.tuning import best_params, chosen_trial

    trial = chosen_trial(study)
    note = " (default kept)" if trial.user_attrs.get("default") else ""
    return _short_params(best_params(study)) + note


def _short_params(params: dict) -> str:
    def value(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={value(v)}" for k, v in sorted(params.items()))


def format_tuning_comparison(comparisons) -> str:
    """Default vs nested-tuned outer UA side by side, with the paired bootstrap 95 % CI of
    the difference; one plain line for every model where tuning gained nothing within noise."""
    if not comparisons:
        return ""
    lines = [
        "default vs nested-tuned (pooled outer UA on the same utterances; CI: paired bootstrap "
        "over utterances)",
        f"  {'model':<8} {'default':>8} {'tuned':>8} {'diff':>8}   95% CI",
    ]
    verdicts = []
    for c in comparisons:
        d = c.difference
        lines.append(
            f"  {c.model:<8} {d.ua_a:>8.4f} {d.ua_b:>8.4f} {d.diff:>+8.4f}   "
            f"[{d.low:+.4f}, {d.high:+.4f}]"
        )
        if d.within_noise:
            verdicts.append(
                f"{c.model}: tuning gained nothing within noise (the CI includes 0); "
                "prefer the default parameters"
            )
        elif d.diff < 0:
            verdicts.append(f"{c.model}: tuning made it worse (the CI is below 0)")
        else:
            verdicts.append(f"{c.model}: tuning helped (the CI is above 0)")
    runs = ", ".join(f"{c.default.run_id} / {c.tuned.run_id}" for c in comparisons)
    return "\n".join(lines + verdicts + [f"runs (default / tuned): {runs}"])


# ----------------------------------------------------------------------------- report
def feature_ranking(
    X: np.ndarray, y: np.ndarray, columns: list[str], top: int = 15
) -> pl.DataFrame:
    """Features that separate the classes most: one-way ANOVA F (NaN imputed by medians)."""
    from sklearn.feature_selection import f_classif

    X = np.asarray(X, dtype=np.float64)
    medians = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
    X = np.where(np.isfinite(X), X, np.nan_to_num(medians)[None, :])
    keep = X.std(axis=0) > 0
    f, p = f_classif(X[:, keep], y)
    names = np.asarray(columns)[keep]
    order = np.argsort(-np.nan_to_num(f))[:top]
    return pl.DataFrame({"feature": names[order], "anova_f": f[order], "p_value": p[order]})


def newest_runs(wh: Warehouse, corpus: str, label_map: str) -> list[str]:
    """The newest run of each (model, feature set, speaker norm, tuned, kind, members):
    chosen by time, never by UA."""
    return store_runs.newest_per_configuration(wh, corpus, label_map)


def write_report(
    wh: Warehouse,
    out_dir: Path,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
) -> Path:
    """A Markdown report with pictures: results, per-class recall, features, the corpus."""
    import warnings

    from sercap.compare import table_markdown, write_bench_report
    from sercap.data import load_dataset, resolve_corpus, resolve_label_map
    from sercap.plots import boxplots_png, counts_png

    corpus = resolve_corpus(wh, corpus)
    label_map = resolve_label_map(wh, corpus, label_map)
    out_dir.mkdir(parents=True, exist_ok=True)
    best = newest_runs(wh, corpus, label_map)
    sections = [f"# sercap report: {corpus} ({label_map})", ""]
    if best:
        from sercap.compare import bench_table

        write_bench_report(wh, best, out_dir, corpus)
        sections += [
            "## Results",
            "",
            "The newest stored run of each model, setting and ensemble on this corpus and "
            "label map (chosen by time, never by score: picking the best of several runs by "
            "their test UA would be selection on the test set).",
            "",
            table_markdown(bench_table(wh, best), corpus),
            "",
            "![model comparison](comparison.png)",
            "",
            "![per-class recall](recall.png)",
            "",
            "Confusion matrices: "
            + ", ".join(f"[{p.name}]({p.name})" for p in sorted(out_dir.glob("confusion-*.png"))),
            "",
        ]
    else:
        sections += ["No runs yet: `sercap train MODEL` or `sercap bench` first.", ""]
    try:
        data = load_dataset(
            wh, "tabular", corpus=corpus, label_map=label_map, feature_set=feature_set
        )
    except SercapError as exc:
        sections += ["## Features", "", f"No feature analysis: {exc}", ""]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ranking = feature_ranking(data.X, data.y, data.columns)
        top = ranking["feature"].head(6).to_list()
        boxes = {
            name: {
                c: data.X[data.y == k, data.columns.index(name)] for k, c in enumerate(data.classes)
            }
            for name in top
        }
        boxplots_png(boxes, out_dir / "features-top.png")
        sections += [
            "## Which functionals separate the emotions",
            "",
            f"One-way ANOVA F of each of the {len(data.columns)} functionals of feature set "
            f"`{data.feature_set}` against the emotion, over all {len(data)} labelled "
            "utterances (descriptive: no model was selected with it).",
            "",
            "| feature | ANOVA F | p |",
            "| --- | --- | --- |",
            *[
                f"| {r['feature']} | {r['anova_f']:.1f} | {r['p_value']:.2g} |"
                for r in ranking.iter_rows(named=True)
            ],
            "",
            "![top features per class](features-top.png)",
            "",
        ]
    glance = wh.query(
        f"SELECT u.speaker, l.label, count(*) AS n, sum(u.duration_s) / 60 AS minutes "
        f"FROM {label_map} l JOIN utterances u USING (utt_id) WHERE l.corpus = ? GROUP BY ALL",
        [corpus],
    )
    if glance.height:
        counts: dict[str, dict[str, float]] = {}
        minutes: dict[str, dict[str, float]] = {}
        for r in glance.sort("speaker").iter_rows(named=True):
            counts.setdefault(r["speaker"], {})[r["label"]] = r["n"]
            minutes.setdefault(r["speaker"], {})[r["label"]] = r["minutes"] or 0.0
        counts_png(
            counts,
            "utterances per speaker and class",
            "utterances",
            out_dir / "corpus-utterances.png",
        )
        counts_png(
            minutes, "speech per speaker and class", "minutes", out_dir / "corpus-minutes.png"
        )
        per_class = (
            glance.group_by("label").agg(pl.col("n").sum(), pl.col("minutes").sum()).sort("label")
        )
        sections += [
            "## The corpus at a glance",
            "",
            "| class | utterances | minutes |",
            "| --- | --- | --- |",
            *[
                f"| {r['label']} | {r['n']} | {r['minutes']:.1f} |"
                for r in per_class.iter_rows(named=True)
            ],
            "",
            "![utterances per speaker](corpus-utterances.png)",
            "",
            "![minutes per speaker](corpus-minutes.png)",
            "",
        ]
    path = out_dir / "report.md"
    path.write_text("\n".join(sections))
    return path
