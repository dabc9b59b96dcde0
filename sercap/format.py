"""Text the command line prints, as pure functions of results (tables, runs, studies).

Every function here takes a result (a polars DataFrame, a run record, a study summary, an
ingest summary) and returns text, or prints/writes it: nothing reads the warehouse.

>>> import polars as pl
>>> from sercap.format import format_table
>>> print(format_table(pl.DataFrame({"label": ["ang", "sad"], "n": [3, 12]})))
label   n
-----  --
ang     3
sad    12
(2 rows)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from sercap.errors import SercapError

if TYPE_CHECKING:
    from sercap.corpora.ingest import IngestSummary


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
    if run.get("tuned_from"):
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


def format_ingest_summary(summary: IngestSummary) -> str:
    """Counts, utterances per label and per speaker, and the first problems of an ingest."""
    lines = [
        f"corpus {summary.corpus} ({summary.kind}) from {summary.root}",
        f"read {summary.read}: added {summary.added}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}; {summary.stored} stored, {summary.in_label_map} in "
        f"label map {summary.label_map}; protocol {summary.protocol}",
        *filter(None, [summary.audio_line()]),
        "",
        "utterances per label",
        format_table(summary.per_label, limit=None),
        "",
        "utterances per speaker",
        format_table(summary.per_speaker, limit=None, float_digits=1),
    ]
    if summary.problems:
        shown = summary.problems[:5]
        lines += ["", f"{len(summary.problems)} problem(s):"] + [f"  {p}" for p in shown]
        more = len(summary.problems) - len(shown)
        query = f"SELECT * FROM ingest_problems WHERE corpus = '{summary.corpus}'"
        lead = f"  … {more} more; " if more else "  "
        lines.append(f'{lead}all of them: sercap sql "{query}"')
    return "\n".join(lines)


def protocol_caption(table: pl.DataFrame, corpus: str | None = None) -> str:
    """The line under a bench table naming the protocol (see :mod:`sercap.compare`)."""
    from sercap.compare import protocol_caption as caption

    return caption(table, corpus)
