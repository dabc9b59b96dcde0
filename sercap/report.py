"""Tables for people and machines: printing query results and warehouse summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from sercap.errors import SercapError
from sercap.format import (  # noqa: F401  (re-exported: they lived here)
    format_confusion,
    format_nested,
    format_run,
    format_study,
    format_table,
    format_tuning_comparison,
    md_cell,
    print_frame,
    write_frame,
)
from sercap.run_labels import params_tag
from sercap.store import Warehouse, catalog
from sercap.store import runs as store_runs


def warehouse_summary(wh: Warehouse) -> str:
    """What a warehouse holds, in a few small tables."""
    sections = [f"warehouse: {wh.root.resolve()}"]
    corpora = wh.query(
        # (the protocol the folds use: a manifest of dyadic sessions deals them, session-kfold-5)
        "SELECT c.name AS corpus, c.kind, c.label_map, coalesce((SELECT any_value(f.protocol) "
        "FROM folds f WHERE f.corpus = c.name), c.protocol) AS protocol, "
        "count(u.utt_id) AS utterances, count(DISTINCT u.speaker) AS speakers, "
        "round(sum(u.duration_s) / 60, 1) AS minutes "
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
        from sercap.regression import with_regression_scores  # CCC where UA is NULL

        latest = with_regression_scores(wh, store_runs.latest_runs(wh, 10))
        sections.append("latest runs\n" + format_table(latest, limit=None))
    return "\n\n".join(sections)


def runs_table(wh: Warehouse, corpus: str | None = None, model: str | None = None) -> pl.DataFrame:
    """Stored runs, newest first, with the facts needed to read their figures."""
    return store_runs.list_runs(wh, corpus, model)


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


def regression_section(wh: Warehouse, corpus: str) -> list[str]:
    """Markdown lines: the newest regression run of each target, model and setting (CCC,
    Pearson's r, MAE from its stored scores); nothing when the corpus has none."""
    from sercap.store.regression import newest_regression_runs

    runs = newest_regression_runs(wh, corpus)
    if not runs.height:
        return []
    lines = [
        "## Dimensional regression",
        "",
        "The newest run of each rating, model and setting (by time, never by score); pooled "
        "out-of-fold predictions under the corpus' speaker-independent protocol. CCC is Lin's "
        "concordance correlation (the primary score).",
        "",
        "| target | model | tuned | speaker norm | CCC | Pearson r | MAE | CCC per fold | n "
        "| run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs.iter_rows(named=True):
        per_fold = (
            f"{r['ccc_fold_mean']:.3f} ± {r['ccc_fold_std']:.3f}"
            if r["ccc_fold_mean"] is not None and r["ccc_fold_std"] is not None
            else "–"
        )
        pearson = "–" if r["pearson"] is None else f"{r['pearson']:.3f}"
        lines.append(
            f"| {r['target']} | {md_cell(_regression_setting(r))} | "
            f"{'yes' if r['tuned'] else 'no'} | "
            f"{'yes' if r['speaker_norm'] else 'no'} | {r['ccc']:.3f} | {pearson} | "
            f"{r['mae']:.3f} | {per_fold} | {r['n_utterances']} | `{r['run_id']}` |"
        )
    return [*lines, ""]


def _regression_setting(run: dict) -> str:
    """``svm``, ``svm [basic]``, ``svm columns /^mfcc/``, ``svm (C=30)``, ``svm (iemocap4
    utterances)``: what tells two rows of the same target and model apart."""
    name = run["model"]
    if run["feature_set"] not in (None, "default", "mel"):
        name += f" [{run['feature_set']}]"
    if run.get("columns"):
        name += f" columns /{run['columns']}/"
    chosen_by = str(run.get("label_map") or "").partition(".")[2]
    return name + params_tag(run) + (f" ({chosen_by} utterances)" if chosen_by else "")


def write_report(
    wh: Warehouse,
    out_dir: Path,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    importance: bool = True,
    importance_folds: int | None = None,
    progress: bool = False,
) -> Path:
    """A Markdown report with pictures: results (with significance marks against the best
    run), per-class recall, fairness, UA against coverage, feature importance (``importance``:
    refits the newest tabular run's model per outer fold, or only the first
    ``importance_folds``; ``progress``: a bar over those refits), features, the corpus."""
    from sercap._newfiles import write_all_or_nothing
    from sercap.data import feature_set_hash, resolve_corpus, resolve_label_map

    corpus = resolve_corpus(wh, corpus)
    label_map = resolve_label_map(wh, corpus, label_map)
    if feature_set is not None:  # named: an unknown or unextracted set is an error, not a note
        feature_set_hash(wh, feature_set)
    # Written into a folder of its own inside out_dir and moved into place once whole (after
    # the names are checked: a refused report makes no folder). A full disk or a Ctrl-C
    # half-way leaves an earlier report in out_dir as it was, its pictures included (they were
    # overwritten in place, or report.md removed so that it described none of them).
    written = write_all_or_nothing(
        out_dir,
        lambda folder: _write_report_files(
            wh, folder, corpus, label_map, feature_set, importance, importance_folds, progress
        ),
        "the report",
        "run it again (`--out` chooses the folder)",
    )
    return written["report"]


def _write_report_files(
    wh: Warehouse,
    out_dir: Path,
    corpus: str,
    label_map: str,
    feature_set: str | None,
    importance: bool,
    importance_folds: int | None,
    progress: bool = False,
) -> dict[str, Path]:
    """The body of :func:`write_report`, once its names are checked: every file of the
    report written into ``out_dir`` (a new folder), report.md last."""
    import warnings

    from sercap.compare import table_markdown, write_bench_files
    from sercap.data import load_dataset
    from sercap.modality import modality_section
    from sercap.plots import boxplots_png, counts_png

    best = newest_runs(wh, corpus, label_map)
    sections = [f"# sercap report: {corpus} ({label_map})", ""]
    others = store_runs.other_protocol_runs(wh, corpus, label_map)
    if others:  # left out of every table below: scored on other folds
        listed = ", ".join(f"{n} under {p}" for p, n in others.items())
        sections += [
            f"Left out: {sum(others.values())} run(s) scored under another protocol than this "
            f"corpus' folds follow now ({listed}; an older sercap dealt the folds otherwise, "
            "or the corpus changed since). They were scored on other folds, so their figures "
            "are not comparable with these; train those models again to compare them.",
            "",
        ]
    if best:
        from sercap.analysis_store import bonferroni_resamples
        from sercap.compare import bench_table, row_labels
        from sercap.report_analysis import UNRANKED, analysis_sections, significance_marks

        table = bench_table(wh, best)
        marks = significance_marks(wh, best)  # in the chart as in the table
        written = write_bench_files(wh, best, out_dir, corpus, table, marks)
        names = row_labels(table)  # as the results table names them: two svm rows differ
        # k: every run ranked against the best, those whose predictions could not be paired
        # with it (no mark) included, as the adjustment counts them
        resamples = bonferroni_resamples(sum(marks.get(r) not in UNRANKED for r in best))
        sections += [
            "## Results",
            "",
            "The newest stored run of each model, setting and ensemble on this corpus and "
            "label map (chosen by time, never by score: picking the best of several runs by "
            "their test UA would be selection on the test set).",
            "",
            table_markdown(table, corpus, marks=marks),
            "",
            f"vs best: whether the paired bootstrap CI ({resamples:,} resamples; the span of the "
            "intervals over speakers, each with all its utterances, and over single "
            "utterances) of "
            "the run's UA minus the best run's contains 0 (within noise) or not. The best is "
            "the highest UA of these runs, picked on the same test folds, so its UA is "
            "optimistic; the intervals are Bonferroni-adjusted for the comparisons with it "
            "(95% for all of them together). An ensemble whose members no fixed rule chose "
            "(made with `sercap ensemble`, perhaps after reading these scores, or stored "
            "before sercap recorded who chose them) is not ranked. "
            "`sercap compare RUN_A RUN_B` gives one pair's interval and McNemar's test.",
            "",
            "![model comparison](comparison.png)",
            "",
            "![per-class recall](recall.png)",
            "",
            "Confusion matrices: "
            + ", ".join(  # this report's, not those an earlier report left in the folder
                f"[{p.name}]({p.name})"
                for key, p in sorted(written.items())
                if key.startswith("confusion-")
            ),
            "",
        ]
        sections += analysis_sections(
            wh, table["run_id"].to_list(), out_dir, names=names, importance=importance,
            importance_folds=importance_folds, progress=progress,
        )  # fmt: skip
        sections += modality_section(wh, corpus, label_map)
    regression = regression_section(wh, corpus)
    if not best:
        under = " under this protocol" if others else ""
        sections += [
            f"No classification runs{under} yet: `sercap train MODEL` or `sercap bench` first."
            if regression
            else f"No runs{under} yet: `sercap train MODEL` or `sercap bench` first.",
            "",
        ]
    sections += regression
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
        boxplots_png(
            boxes,
            out_dir / "features-top.png",
            title=f"the {len(top)} functionals of largest ANOVA F, per class "
            f"({corpus}, {len(data)} utterances)",
        )
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
    (out_dir / "report.md").write_text("\n".join(sections))
    files = {p.name: p for p in sorted(out_dir.iterdir()) if p.name != "report.md"}
    return {**files, "report": out_dir / "report.md"}  # moved last: it links the others
