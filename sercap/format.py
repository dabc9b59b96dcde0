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

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from sercap.errors import SercapError

if TYPE_CHECKING:
    from sercap.corpora.ingest import IngestSummary


#: Each date/time type's physical values (days, or the unit's ticks, from 1970) at Python's
#: first and last representable day: polars panics turning a value outside them into Python.
_PYTHON_DAYS = (-719_162, 2_932_896)
_TICKS_PER_DAY = {"ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _as_str(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A date or timestamp column as Python's ``str`` writes each value, which the table
    and JSON show: microseconds only where there are any, the zone as ``+00:00``."""
    if isinstance(dtype, pl.Date):
        return column.dt.to_string("%Y-%m-%d")
    zone = "%:z" if dtype.time_zone else ""  # type: ignore[attr-defined]
    whole = column.dt.to_string(f"%Y-%m-%d %H:%M:%S{zone}")
    fraction = column.dt.to_string(f"%Y-%m-%d %H:%M:%S%.6f{zone}")
    # (Python's str stops at microseconds)
    if dtype.time_unit == "ns":  # type: ignore[attr-defined]
        nanos = column.dt.to_string(f"%Y-%m-%d %H:%M:%S%.9f{zone}")
        fraction = pl.when(column.dt.nanosecond() % 1000 == 0).then(fraction).otherwise(nanos)
    return pl.when(column.dt.nanosecond() == 0).then(whole).otherwise(fraction)


def _python_range(frame: pl.DataFrame, all_text: bool = False) -> pl.DataFrame:
    """``frame`` with each date or timestamp column that holds a value Python cannot (DuckDB's
    ``'infinity'``, year 10000…) written as text: ``infinity``, ``-infinity`` or
    ``out of range`` there, the date or time elsewhere, as Python's ``str`` writes it (so a
    slice of a result that needed the text prints its times as the other slices do). polars'
    Rust panic on such a value printed a stack trace before sercap's error line.
    ``all_text`` writes every date or timestamp column as text (CSV: polars' own writer
    has another format for times). A timestamp or time column with nanoseconds
    (``TIMESTAMP_NS``, ``TIME_NS``) is text too, with all nine digits where there are any:
    Python's ``datetime`` and ``time`` keep microseconds only.

    >>> days = pl.Series("d", [18263, 2**31 - 1, None]).cast(pl.Date)
    >>> _python_range(pl.DataFrame([days]))["d"].to_list()
    ['2020-01-02', 'infinity', None]
    >>> _python_range(pl.DataFrame([days.head(1)]))["d"].dtype  # all in range: as it was
    Date
    >>> at = pl.Series("t", [0, 2**63 - 1, 1]).cast(pl.Datetime("us"))
    >>> _python_range(pl.DataFrame([at]))["t"].to_list()  # as str() of each in-range value
    ['1970-01-01 00:00:00', 'infinity', '1970-01-01 00:00:00.000001']
    >>> _python_range(pl.DataFrame([at.head(1)]), all_text=True)["t"].to_list()
    ['1970-01-01 00:00:00']
    >>> ns = pl.Series("t", [1, 1000, 0]).cast(pl.Datetime("ns"))
    >>> _python_range(pl.DataFrame([ns]))["t"].to_list()
    ['1970-01-01 00:00:00.000000001', '1970-01-01 00:00:00.000001', '1970-01-01 00:00:00']
    >>> clock = pl.Series("c", [43_200_123_456_789, 43_200_000_000_000]).cast(pl.Time)
    >>> _python_range(pl.DataFrame([clock]))["c"].to_list()
    ['12:00:00.123456789', '12:00:00']
    """
    changed = {}
    for name, dtype in frame.schema.items():
        nanos = False  # a value with nanoseconds, which Python's datetime and time drop
        if isinstance(dtype, pl.Time):
            if frame.select((pl.col(name).to_physical() % 1000 != 0).any()).item():
                whole = pl.col(name).dt.to_string("%H:%M:%S")
                fraction = pl.col(name).dt.to_string("%H:%M:%S%.6f")
                nanos_text = pl.col(name).dt.to_string("%H:%M:%S%.9f")
                changed[name] = (
                    pl.when(pl.col(name).to_physical() % 1_000_000_000 == 0)
                    .then(whole)
                    .when(pl.col(name).to_physical() % 1000 == 0)
                    .then(fraction)
                    .otherwise(nanos_text)
                )
            continue
        if isinstance(dtype, pl.Date):
            (low, high), infinite = _PYTHON_DAYS, 2**31 - 1
        elif isinstance(dtype, pl.Datetime) and dtype.time_unit in _TICKS_PER_DAY:
            per_day = _TICKS_PER_DAY[dtype.time_unit]
            low, high = _PYTHON_DAYS[0] * per_day, (_PYTHON_DAYS[1] + 1) * per_day - 1
            infinite = 2**63 - 1
        else:
            continue
        low, high = max(low, -infinite + 1), min(high, infinite - 1)  # (ns: all of int64)
        ticks = pl.col(name).to_physical().cast(pl.Int64)
        inside = ticks.is_between(low, high) | ticks.is_null()
        if isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns":
            nanos = frame.select((ticks % 1000 != 0).any()).item()
        if not (all_text or nanos) and frame.select(inside.all()).item():
            continue
        word = (
            pl.when(ticks >= infinite)
            .then(pl.lit("infinity"))
            .when(ticks <= -infinite)
            .then(pl.lit("-infinity"))
            .otherwise(pl.lit("out of range"))
        )
        text = _as_str(pl.when(inside).then(pl.col(name)), dtype)  # (after the mask)
        changed[name] = pl.when(inside).then(text).otherwise(word)
    return frame.with_columns(**changed) if changed else frame


def format_table(
    frame: pl.DataFrame, limit: int | None = 50, float_digits: int = 4, rows: int | None = None
) -> str:
    """A plain-text table with aligned columns (lists and long strings shortened).

    ``rows`` is the result's number of rows when ``frame`` holds only its first ones (what
    :func:`sercap.api.sql_preview` gives); by default, ``frame.height``.
    """
    total = frame.height if rows is None else rows
    shown = _python_range(frame if limit is None else frame.head(limit))

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
        if len(text) <= 60:
            return text
        # a path keeps its end: four files of one folder all read ".../Ses01F_impro…"
        # (a path: no spaces; a message naming `sercap x` / `sercap.x()` keeps its start)
        path = "/" in text and not any(c.isspace() for c in text)
        return "…" + text[-59:] if path else text[:57] + "…"

    header = shown.columns
    # once: polars builds the schema anew at each access (2,853 columns: 15 s squared)
    types = list(shown.schema.values())
    body = [[cell(v) for v in row] for row in shown.iter_rows()]
    for i, _ in enumerate(header):  # 24.8000 → 24.8: a float column drops shared zeros
        if types[i].is_float() and float_digits > 1:
            cells = [r[i] for r in body if "." in r[i] and r[i][-1:].isdigit()]
            if cells:
                keep = max(max(len(v.rstrip("0").split(".")[1]) for v in cells), 1)
                for r in body:
                    if "." in r[i] and r[i][-1:].isdigit():
                        r[i] = r[i][: len(r[i]) - (float_digits - keep)]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    numeric = [t.is_numeric() for t in types]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in body]
    if total > shown.height:
        out.append(f"… {total - shown.height} more rows ({total} in all)")
    else:
        out.append(f"({total} row{'s' if total != 1 else ''})")
    return "\n".join(out)


def print_frame(frame: pl.DataFrame, fmt: str = "table", limit: int | None = 50) -> None:
    """Print a result as an aligned table, CSV or JSON (one object per row).

    JSON is strict: NaN and infinities are ``null``, bytes are hexadecimal text.

    >>> print_frame(pl.DataFrame({"x": [float("nan")], "b": [b"\\x01"]}), "json")
    [
     {
      "x": null,
      "b": "01"
     }
    ]
    """
    if fmt in ("csv", "json"):
        print_frames([frame], fmt)
    else:
        click.echo(format_table(frame, limit=limit))


def print_frames(frames: Iterable[pl.DataFrame], fmt: str) -> None:
    """Print one result, given as consecutive frames of its rows, as CSV or JSON (as
    :func:`print_frame` does), holding one frame at a time."""
    for text in (csv_chunks if fmt == "csv" else json_chunks)(frames):
        click.echo(text, nl=False)
    if fmt == "json":
        click.echo()


#: Rows turned into text at a time when a result is printed as CSV or JSON.
PRINT_SLICE_ROWS = 10_000


def _slices(frames: pl.DataFrame | Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    """The rows of a frame, or of consecutive frames of one result, in slices of at most
    :data:`PRINT_SLICE_ROWS`; a result without rows is one empty slice with its columns."""
    empty = None
    for frame in [frames] if isinstance(frames, pl.DataFrame) else frames:
        if frame.height == 0:
            empty = frame if empty is None else empty
            continue
        empty = False
        yield from frame.iter_slices(PRINT_SLICE_ROWS)
    if empty is not False:
        yield pl.DataFrame() if empty is None else empty


def csv_chunks(frames: pl.DataFrame | Iterable[pl.DataFrame]) -> Iterator[str]:
    """A result (a frame, or consecutive frames of its rows) as CSV text (nested values as
    JSON, bytes as hex: :func:`_flatten`), a slice of rows at a time: the whole text is
    never held (it took twice the result's size).

    >>> "".join(csv_chunks(pl.DataFrame({"a": [1, 2]})))
    'a\\n1\\n2\\n'
    """
    for i, part in enumerate(_slices(frames)):
        yield _flatten(_python_range(part, all_text=True)).write_csv(include_header=i == 0)


def json_chunks(frames: pl.DataFrame | Iterable[pl.DataFrame]) -> Iterator[str]:
    """A result (a frame, or consecutive frames of its rows) as a JSON array of row
    objects, indented as ``json.dumps(rows, indent=1)`` writes it, a row at a time: one
    ``json.dumps`` of every row held about eight times the text's size (7 GB for 860 MB of
    frames).

    >>> "".join(json_chunks(pl.DataFrame({"a": [1]})))
    '[\\n {\\n  "a": 1\\n }\\n]'
    """
    import textwrap

    sep = "[\n"
    for part in _slices(frames):
        for row in _python_range(part).iter_rows(named=True):
            text = json.dumps(_json_value(row), default=str, indent=1, allow_nan=False)
            yield sep + textwrap.indent(text, " ")
            sep = ",\n"
    yield "[]" if sep == "[\n" else "\n]"


def write_frame(frame: pl.DataFrame, path: Path, warehouse: Path | None = None) -> None:
    """Write a result to .csv or .parquet, chosen by the file's extension (under a
    temporary name renamed into place: a failed write leaves no partial file). ``warehouse``
    (its folder) refuses a path among its files: see
    :func:`sercap.store.layout.writable_output`."""
    write_frames([frame], path, warehouse)


#: Rows a Parquet row group written by :func:`write_frames` gathers before it is written
#: (the last one excepted), or fewer once they hold :data:`ROW_GROUP_BYTES`: the functionals
#: view is 2,854 columns wide, so 65,536 of its rows were an IEMOCAP-sized result whole (1.1
#: GB peak memory for a 114 MB file).
ROW_GROUP_ROWS = 65_536
ROW_GROUP_BYTES = 64 * 2**20


def write_frames(frames: Iterable[pl.DataFrame], path: Path, warehouse: Path | None = None) -> int:
    """:func:`write_frame` of one result given as consecutive frames of its rows, holding
    about a row group at a time; returns the number of rows written."""
    check_output_file(path, warehouse)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            rows = _write_parquet(frames, tmp)
        else:
            rows = 0

            def counted() -> Iterator[pl.DataFrame]:
                nonlocal rows
                for frame in frames:
                    rows += frame.height
                    yield frame

            with open(tmp, "w", encoding="utf-8", newline="") as out:
                for text in csv_chunks(counted()):
                    out.write(text)
        tmp.replace(path)
    except OSError as exc:  # said "Permission denied (os error 13): …/.x.csv.tmp"
        why = exc.strerror or str(exc).split(" (os error")[0]
        raise SercapError(f"{path}: cannot write the result ({why})") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return rows


def _write_parquet(frames: Iterable[pl.DataFrame], path: Path) -> int:
    """The frames' rows into one Parquet file, a row group of at least
    :data:`ROW_GROUP_ROWS` rows or :data:`ROW_GROUP_BYTES` at a time; the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    pending: list[pl.DataFrame] = []
    rows = pending_rows = held = 0  # held: the pending frames' bytes

    def flush() -> None:
        nonlocal writer, pending_rows, held
        table = pl.concat(pending, how="vertical").to_arrow()
        if writer is None:  # (dictionaries for text only: on floats they tripled the time)
            kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
            text = [f.name for f in table.schema if any(k(f.type) for k in kinds)]
            writer = pq.ParquetWriter(
                path, table.schema, compression="zstd", use_dictionary=text or False
            )
        writer.write_table(table)
        pending.clear()
        pending_rows = held = 0

    try:
        for frame in frames:
            if frame.height == 0 and (rows or pending):
                continue
            pending.append(frame)
            rows += frame.height
            pending_rows += frame.height
            held += int(frame.estimated_size())
            if pending_rows >= ROW_GROUP_ROWS or held >= ROW_GROUP_BYTES:
                flush()
        if pending or writer is None:
            if not pending:
                pending.append(pl.DataFrame())
            flush()
    finally:
        if writer is not None:
            writer.close()
    return rows


def make_output_dir(out: Path) -> Path:
    """Create the folder a report goes to, or one line why not (called before the work
    whose results it holds: a bench that could not write its report had stored its runs)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SercapError(
            f"{out}: cannot create the report folder ({exc.strerror or exc})"
        ) from exc
    return out


def check_output_file(
    path: Path, warehouse: Path | None, suffixes: tuple[str, ...] = (".csv", ".parquet")
) -> None:
    """One line when ``path`` cannot take a table: an extension other than ``suffixes``, a
    place among the warehouse's files, or a folder that does not exist. Commands that
    time or compute for minutes call it first (it was found only after all the work)."""
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise SercapError(f"{path}: unknown output format {suffix!r}; use {' or '.join(suffixes)}")
    refuse_inside(path, warehouse)
    if not path.parent.is_dir():  # else the error named the temporary file
        raise SercapError(f"{path.parent}: no such folder to write {path.name} into")


def refuse_inside(path: Path, warehouse: Path | None) -> None:
    """One line when ``path`` lies among the files of the warehouse at ``warehouse``."""
    from sercap.store.layout import writable_output

    if warehouse is not None and (why := writable_output(warehouse, path)):
        raise SercapError(f"{path}: not written: {why}; choose a path outside it")


def _json_value(value: object) -> object:
    """A value JSON can hold: NaN and infinities as None, bytes as hex, nested kept."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, pl.Series):  # a list cell, as map_elements passes it
        value = value.to_list()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no nested values or bytes: lists, structs and maps are written as JSON text
    (dates and other values as their text), bytes as hexadecimal.

    >>> frame = pl.DataFrame({"s": [{"a": 1, "b": 2}], "l": [[1.5]], "b": [b"\\xff"]})
    >>> _flatten(frame).row(0)
    ('{"a": 1, "b": 2}', '[1.5]', 'ff')
    """
    nested = [c for c, t in frame.schema.items() if t.is_nested()]  # lists, structs, maps
    binary = [c for c, t in frame.schema.items() if t == pl.Binary]
    # a fixed-size ARRAY as a list: map_elements hands its cells over as raw PySeries, which
    # json.dumps wrote as "<builtins.PySeries object at 0x…>"
    frame = frame.with_columns(
        pl.col(c).arr.to_list() for c, t in frame.schema.items() if isinstance(t, pl.Array)
    )
    return frame.with_columns(
        *(
            pl.col(c).map_elements(
                lambda v: json.dumps(_json_value(v), default=str), return_dtype=pl.String
            )
            for c in nested
        ),
        *(pl.col(c).bin.encode("hex") for c in binary),
    )


def format_confusion(confusion: list[list[int]], classes: list[str]) -> str:
    """A confusion matrix as text: rows are true classes, columns predictions.

    >>> print(format_confusion([[3, 1], [0, 2]], ["irritation", "amusement_long"]))
    true\\pred           irritation amusement_long  recall
    irritation                   3              1   0.750
    amusement_long               0              2   1.000
    """
    width = max(5, *(len(c) for c in classes), *(len(str(v)) for r in confusion for v in r))
    first = max(10, *(len(c) + 1 for c in classes))  # (ljust(10): longer names shifted rows)
    head = "true\\pred".ljust(first) + "".join(c.rjust(width + 1) for c in classes) + "  recall"
    lines = [head]
    for name, row in zip(classes, confusion, strict=True):
        total = sum(row)
        recall = row[classes.index(name)] / total if total else 0.0
        cells = "".join(str(v).rjust(width + 1) for v in row)
        lines.append(f"{name.ljust(first)}{cells}  {recall:6.3f}")
    return "\n".join(lines)


def mixed_norm(run: dict) -> bool:
    """Whether a run is an ensemble of members with and without speaker normalisation.

    Its ``speaker_norm`` is true (it needs each speaker's statistics, as its normalised
    members do), but a "speaker-norm" label would read as if every member were normalised:
    its name marks those members with ``[sn]`` instead (``avg(svm+dnn[sn])``). ``run`` is a
    row with ``members_norm``, as :func:`sercap.store.runs.bench_rows` and
    :func:`sercap.store.runs.find_run` return it.

    Examples
    --------
    >>> two = ["svm-1", "dnn-2"]
    >>> mixed_norm({"members": two, "members_norm": [False, True]})
    True
    >>> mixed_norm({"members": two, "members_norm": [True, True]})
    False

    A member run that is gone leaves the mix unknown (False: the run keeps its label).
    """
    norms = run.get("members_norm") or []
    return len(norms) == len(run.get("members") or []) and any(norms) and not all(norms)


def mark_normalised(names: list[str], run: dict) -> list[str]:
    """An ensemble's member names with ``[sn]`` after each speaker-normalised one when the
    members mix both (:func:`mixed_norm`); else as given.

    >>> mark_normalised(["svm", "dnn"], {"members": ["a", "b"], "members_norm": [False, True]})
    ['svm', 'dnn[sn]']
    """
    if not mixed_norm(run):
        return list(names)
    return [m + ("[sn]" if n else "") for m, n in zip(names, run["members_norm"], strict=True)]


def norm_label(run: dict) -> str:
    """``yes``, ``no`` or ``mixed`` (an ensemble of both): the ``spk_norm`` column of
    ``sercap runs`` and ``sercap bench``.

    >>> norm_label({"speaker_norm": True, "members": ["a", "b"], "members_norm": [True, False]})
    'mixed'
    """
    return "mixed" if mixed_norm(run) else "yes" if run["speaker_norm"] else "no"


def norm_tag(run: dict) -> str:
    """`` (speaker-norm)`` after the name of a speaker-normalised run, else nothing (also for
    an ensemble that mixes both: its name marks the members, see :func:`mixed_norm`)."""
    return " (speaker-norm)" if run["speaker_norm"] and not mixed_norm(run) else ""


def format_run(run: dict) -> str:
    """A stored run for a person: what was trained how, and how well."""
    if run.get("target"):
        return format_regression_run(run)
    mixed = mixed_norm(run)
    norm = (
        "members with and without speaker normalisation ([sn]: with)"
        if mixed
        else "with speaker normalisation"
        if run["speaker_norm"]
        else "no speaker normalisation"
    )
    params = json.loads(run["params_json"] or "{}")
    what = run["kind"] if run["kind"] == run["model"] else f"{run['kind']}: {run['model']}"
    lines = [
        f"run {run['run_id']}  ({what})",
        f"  corpus {run['corpus']}, labels {run['label_map']} ({', '.join(run['classes'])}), "
        f"{run['n_utterances']} utterances",
        f"  protocol {run['protocol']}, {run['n_folds']} folds, {norm}",
    ]
    if run.get("cross_matrix"):
        lines.append(
            f"  cross-corpus: trained on {run['train_corpus']}, scored on {run['corpus']} "
            f"(matrix {run['cross_matrix']})"
        )
    if run.get("feature_set"):
        cols = f", columns {run['columns']}" if run.get("columns") else ""
        lines.append(f"  features {run['feature_set']} ({run['feature_set_hash']}){cols}")
    if run.get("members"):
        weights = run.get("weights")
        shown = "equal" if not weights else ", ".join(f"{float(w):.3g}" for w in weights)
        members = mark_normalised(list(run["members"]), run)
        lines.append(f"  members {', '.join(members)}  weights {shown}")
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
    lines += _torch_compute_lines(run)
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


def regression_caption(table: pl.DataFrame, corpus: str) -> str:
    """The line under a regression bench table (see :mod:`sercap.regression`)."""
    from sercap.regression import regression_caption as caption

    return caption(table, corpus)


def format_regression_run(run: dict) -> str:
    """A stored regression run (``target`` set) for a person: CCC, Pearson's r and MAE."""
    norm = "with speaker normalisation" if run["speaker_norm"] else "no speaker normalisation"
    params = json.loads(run["params_json"] or "{}")
    chosen = run["label_map"].partition(".")[2]
    which = f"utterances of label map {chosen}" if chosen else "utterances with a rating"
    lines = [
        f"run {run['run_id']}  ({run['kind']}: {run['model']} regressor)",
        f"  corpus {run['corpus']}, target {run['target']}, {run['n_utterances']} {which}",
        f"  protocol {run['protocol']}, {run['n_folds']} folds, {norm}",
    ]
    if run.get("feature_set"):
        cols = f", columns {run['columns']}" if run.get("columns") else ""
        lines.append(f"  features {run['feature_set']} ({run['feature_set_hash']}){cols}")
    if params:
        lines.append(f"  params {json.dumps(params, sort_keys=True)}")
    if run.get("fold_params_json"):
        lines.append(
            f"  nested tuning {run.get('tuned_from')} (on CCC): each outer fold scored with "
            "the best parameters of its own study"
        )
        folds = json.loads(run["fold_params_json"])
        lines += [f"    {fold}: {json.dumps(p, sort_keys=True)}" for fold, p in folds.items()]
    lines.append(f"  seed {run['seed']}, fit {run['fit_s']:.1f} s, total {run['duration_s']:.1f} s")
    lines += _torch_compute_lines(run)
    r = run["pearson"]
    lines += [
        "",
        "              pooled   per fold (mean ± std)",
        f"  CCC        {run['ccc']:.4f}   {run['ccc_fold_mean']:.4f} ± {run['ccc_fold_std']:.4f}",
        f"  Pearson r  {'nan' if r is None else format(r, '.4f')}",
        f"  MAE        {run['mae']:.4f}",
    ]
    return "\n".join(lines)


def format_study(summary) -> str:
    """An Optuna study summary (see :func:`sercap.tuning.summarise`) for a person."""
    lines = [
        f"study {summary.name}: {summary.n_trials} trials "
        f"({summary.n_complete} complete, {summary.n_pruned} pruned)",
        f"best trial {summary.best_number}: inner UA {summary.best_value:.4f} (the best of "
        "its trials, on the speakers it tuned on: optimistic, not a score for new speakers)",
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
    from sercap.tuning import DEFAULT_TRIALS, MIN_GAIN, summarise

    model = next(iter(nested.folds.values())).user_attrs.get("model") if nested.folds else None
    rule = (
        f"the default unless the best beats it by ≥ {MIN_GAIN} inner UA"
        if model in DEFAULT_TRIALS
        else "the best trial's"
    )
    lines = [
        f"nested tuning {nested.base}: one study per outer fold, objective = mean UA of an "
        "inner CV grouped by speaker (by session where folds keep sessions whole, from three) "
        "over that fold's training speakers",
        f"  fold        trials  complete  pruned  inner UA (best)  chosen params ({rule})",
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
    final = None
    if nested.final is not None:
        try:  # a tuning stopped early (Ctrl-C, a --timeout) may have none yet
            final = summarise(nested.final)
        except SercapError:
            lines += ["", f"final study: {len(nested.final.trials)} trials, no completed trial yet"]
    if final is not None:
        lines += [
            "",
            "final study (all speakers; its parameters serve `predict` and are never scored):",
            format_study(final),
            # the best trial above is not always what predict fits (the default is kept
            # unless clearly beaten): a reader took C=4.43 for the final model's
            f"chosen params (what `predict` fits): {_chosen(nested.final)}",
        ]
    lines.append(
        "inner UA is a validation figure: an outer fold's on that fold's training speakers, the "
        "final study's on every speaker (the outer folds' test speakers too), so neither is a "
        "score for new speakers; the tuned figure is the outer UA of `train MODEL --tuned`"
    )
    studies = [*nested.folds.values(), *([nested.final] if nested.final is not None else [])]
    if any(s.user_attrs.get("metric") == "ccc" for s in studies):  # tuned for a rating
        return "\n".join(lines).replace("UA", "CCC").replace("--tuned", "--target … --tuned")
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


def md_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: a ``|`` (as in a ``--columns`` pattern
    such as ``^(mfcc|logmel)_``) would start a new cell.

    >>> print(md_cell("rf columns /^(mfcc|logmel)_/"))
    rf columns /^(mfcc\\|logmel)_/
    """
    return text.replace("\\", "\\\\").replace("|", "\\|")


def format_tuning_comparison(comparisons) -> str:
    """Default vs nested-tuned outer UA side by side, with the paired bootstrap 95 % CI of
    the difference; one plain line for every model where tuning gained nothing within noise."""
    if not comparisons:
        return ""
    if hasattr(comparisons[0], "ccc_default"):  # regressions (sercap.regression.TunedCCC)
        return "\n\n".join(format_tuned_ccc(c) for c in comparisons)
    lines = [
        "default vs nested-tuned (pooled outer UA on the same utterances; CI: paired bootstrap "
        "over speakers and over utterances, the span of both)",
        f"  {'model':<8} {'default':>8} {'tuned':>8} {'diff':>8}   95% CI",
    ]
    verdicts = []
    for c in comparisons:
        d = c.difference
        lines.append(
            f"  {c.model:<8} {d.ua_a:>8.4f} {d.ua_b:>8.4f} {d.diff:>+8.4f}   "
            f"[{d.low:+.4f}, {d.high:+.4f}]"
        )
        verdicts.append(_tuning_verdict(c.model, d.diff, d.within_noise))
    runs = ", ".join(f"{c.default.run_id} / {c.tuned.run_id}" for c in comparisons)
    return "\n".join(lines + verdicts + [f"runs (default / tuned): {runs}"])


def _tuning_verdict(model: str, diff: float, within_noise: bool) -> str:
    if within_noise:
        return (
            f"{model}: tuning gained nothing within noise (the CI includes 0); "
            "prefer the default parameters"
        )
    if diff < 0:
        return f"{model}: tuning made it worse (the CI is below 0)"
    return f"{model}: tuning helped (the CI is above 0)"


def format_tuned_ccc(c) -> str:
    """A regression's default vs nested-tuned pooled CCC (a :class:`TunedCCC`), as
    :func:`format_tuning_comparison` shows a classifier's UA."""
    return "\n".join(
        [
            "default vs nested-tuned (pooled outer CCC on the same utterances; CI: paired "
            "bootstrap over speakers and over utterances, the span of both)",
            f"  {'model':<8} {'default':>8} {'tuned':>8} {'diff':>8}   95% CI",
            f"  {c.model:<8} {c.ccc_default:>8.4f} {c.ccc_tuned:>8.4f} {c.diff:>+8.4f}   "
            f"[{c.low:+.4f}, {c.high:+.4f}]",
            _tuning_verdict(c.model, c.diff, c.within_noise),
            f"runs (default / tuned): {c.default_run} / {c.tuned_run}",
        ]
    )


def _shorten(name: str, most: int = 40) -> str:
    """``name``, cut to ``most`` characters with an ellipsis (an average of 15 models)."""
    return name if len(name) <= most else name[: most - 1] + "…"


def _difference_ci(row: dict) -> str:
    """``+0.0103   [-0.0108, +0.0329]``: a comparison row's difference and its CI."""
    return f"{row['difference']:>+8.4f}   [{row['low']:+.4f}, {row['high']:+.4f}]"


def _verdict(name: str, baseline: str, difference: float, within_noise: bool) -> str:
    """One line on ``name`` against ``baseline`` from their paired bootstrap CI."""
    if within_noise:
        return f"{name}: no better than {baseline} within noise"
    if difference > 0:
        return f"{name}: beats {baseline} (the CI is above 0)"
    return f"{name}: worse than {baseline} (the CI is below 0)"


def format_ensemble_comparison(frame: pl.DataFrame) -> str:
    """Each ensemble minus its best member, with the paired bootstrap 95 % CI
    (:func:`sercap.compare.ensembles_vs_best_member`); one verdict per ensemble."""
    if frame.is_empty():
        return "ensembles vs their best member: no ensemble to compare"
    rows = [r | {"ensemble": _shorten(r["ensemble"])} for r in frame.iter_rows(named=True)]
    width = max(8, *(len(r["ensemble"]) for r in rows))
    lines = [
        "each ensemble minus its best member (CI: paired bootstrap over speakers and over "
        "utterances, the span of both)",
        f"  {'ensemble':<{width}} {'UA':>8} {'best member':<12} {'UA':>8} {'diff':>8}   95% CI",
    ]
    lines += [
        f"  {r['ensemble']:<{width}} {r['ua_ensemble']:>8.4f} {r['member']:<12} "
        f"{r['ua_member']:>8.4f} {_difference_ci(r)}"
        for r in rows
    ]
    verdicts = [
        _verdict(r["ensemble"], r["member"], r["difference"], r["within_noise"]) for r in rows
    ]
    return "\n".join(lines + verdicts)


def format_fusion_comparison(frame: pl.DataFrame) -> str:
    """Fused runs minus the best single modality, with the paired bootstrap 95 % CI
    (:func:`sercap.compare.fusion_vs_single`); one verdict per fused run."""
    if frame.is_empty():
        return "fusion vs single modality: nothing to compare (needs fused and single rows)"
    first = frame.row(0, named=True)
    # (both UAs on the utterances both runs predicted: a fused run reads transcripts, so it
    # can have fewer than the audio run, whose UA in the table is then another figure)
    on = (
        f" on the {first['n_common']} utterances both predicted"
        if "n_common" in frame.columns
        else ""
    )
    lines = [
        f"fusion minus the best single modality ({first['single']}, {first['single_modality']},"
        f" UA {first['ua_single']:.4f}{on}; CI: paired bootstrap over speakers and over "
        "utterances, the span of both)",
        f"  {'fused':<14} {'UA':>8} {'diff':>8}   95% CI",
    ]
    rows = list(frame.iter_rows(named=True))
    lines += [f"  {r['fused']:<14} {r['ua_fused']:>8.4f} {_difference_ci(r)}" for r in rows]
    verdicts = [_verdict(r["fused"], r["single"], r["difference"], r["within_noise"]) for r in rows]
    return "\n".join(lines + verdicts)


def format_ingest_summary(summary: IngestSummary) -> str:
    """Counts, utterances per label and per speaker, and the first problems of an ingest."""
    lines = [
        f"corpus {summary.corpus} ({summary.kind}) from {summary.root}",
        f"read {summary.read}: added {summary.added}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}; {summary.stored} stored, {summary.in_label_map} in "
        f"label map {summary.label_map}; protocol {summary.protocol}",
        *filter(
            None,
            [
                summary.audio_line(),
                summary.words_line(),
                summary.rare_labels_line(),
                summary.kept_line(),
                summary.same_audio_line(),
            ],
        ),
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
    """One line saying how the figures of a comparison table were obtained."""
    first = table.row(0, named=True)
    norm = (
        "speaker normalisation in every row"
        if table["speaker_norm"].all()
        else "some rows use speaker normalisation (marked)"
        if table["speaker_norm"].any()
        else "no speaker normalisation"
    )
    where = f"Corpus {corpus} · " if corpus else ""
    return (
        f"{where}labels {first['label_map']} ({', '.join(first['classes'])}) · "
        f"protocol {first['protocol']} (speaker-independent) · pooled out-of-fold scores · "
        f"{norm}."
    )


def format_cross_matrix(matrix: pl.DataFrame, caption: str = "") -> str:
    """A cross-corpus UA matrix (rows: train corpus, columns: test corpus), one block per
    speaker normalisation setting, the diagonal marked with ``*``."""
    corpora = [c for c in matrix.columns if c not in ("speaker_norm", "train")]
    width = max(7, *(len(c) for c in corpora))
    first = max(len("train \\ test"), *(len(t) for t in matrix["train"].to_list()))
    blocks = []
    for norm in sorted(set(matrix["speaker_norm"].to_list())):
        block = matrix.filter(pl.col("speaker_norm") == norm)
        lines = ["speaker-normalised" if norm else "no speaker normalisation"]
        lines.append("train \\ test".ljust(first) + "".join(c.rjust(width + 2) for c in corpora))
        for r in block.iter_rows(named=True):
            cells = []
            for c in corpora:
                value = "-" if r[c] is None else f"{r[c]:.3f}" + ("*" if c == r["train"] else " ")
                cells.append(value.rjust(width + 2))
            lines.append(r["train"].ljust(first) + "".join(cells))
        blocks.append("\n".join(lines))
    text = "\n\n".join(blocks)
    return text + ("\n" + caption if caption else "")


def comparison_verdict(comparison) -> str:
    """One line: ``within noise`` when the UA difference's interval contains 0, else which
    run is better (see :class:`sercap.analysis_store.RunComparison`)."""
    ci = comparison.ua
    pct = f"{100 * ci.level:g}%"
    if ci.within_noise:
        return (
            f"verdict: within noise (the {pct} CI of the UA difference, "
            f"[{ci.low:+.4f}, {ci.high:+.4f}], contains 0)"
        )
    better, worse = ("A", "B") if ci.difference > 0 else ("B", "A")
    return (
        f"verdict: {better} better (UA {better} - {worse} = {abs(ci.difference):.4f}, "
        f"{pct} CI excludes 0)"
    )


def _torch_compute_lines(run: dict) -> list[str]:
    """What a torch run's folds were fitted with (its threads and device): its scores
    depend on both, so they are what reproduces it. Nothing for other runs, or runs
    stored before sercap recorded them.

    >>> line, = _torch_compute_lines(
    ...     {"versions_json": '{"torch_threads": "2", "torch_device": "cpu"}'}
    ... )
    >>> line[:61]
    '  fitted with 2 torch thread(s) on cpu (torch sums in another'
    >>> _torch_compute_lines({"versions_json": '{"numpy": "2.4"}'})
    []
    """
    versions = json.loads(run.get("versions_json") or "{}")
    threads, device = versions.get("torch_threads"), versions.get("torch_device")
    if threads is None:
        return []
    how = f"--jobs {threads}" if str(threads).isdigit() else "the same cluster"
    return [
        f"  fitted with {threads} torch thread(s) on {device} (torch sums in another order "
        f"with other threads: train with {how} on {device} to reproduce it)"
    ]


def format_comparison(comparison) -> str:
    """Run A against run B: UA and macro-F1 of each, the paired bootstrap interval of their
    difference, McNemar's test and a one-line verdict."""
    c = comparison
    ci = c.ua
    pct = f"{100 * ci.level:g}%"
    m = c.mcnemar
    lines = [
        f"A: run {c.run_a}" + (f" ({c.about_a})" if c.about_a else ""),
        f"B: run {c.run_b}" + (f" ({c.about_b})" if c.about_b else ""),
        f"{c.n_common} utterances predicted by both; paired bootstrap ({ci.n_boot} resamples, "
        f"seed {ci.seed}) "
        + (
            f"over speakers ({ci.n_units}, each with all its utterances) and over utterances: "
            "each CI spans both, so a difference counts only when neither contains 0"
            if ci.unit == "speaker and utterance"
            else "over utterances"
        ),
        "",
        f"            {'A':>7} {'B':>7}  {'A - B':>8}  {pct} CI",
    ]
    for name, d in (("UA", c.ua), ("macro-F1", c.macro_f1)):
        noise = "within noise" if d.within_noise else "significant"
        lines.append(
            f"  {name:<9} {d.a:7.4f} {d.b:7.4f}  {d.difference:+8.4f}  "
            f"[{d.low:+.4f}, {d.high:+.4f}]  {noise}"
        )
    test = "exact binomial" if m.method == "exact" else "chi-square, continuity-corrected"
    lines.append("")
    s, u = getattr(c, "ua_by_speaker", None), getattr(c, "ua_by_utterance", None)
    if s is not None and u is not None:
        lines.append(
            f"UA over speakers [{s.low:+.4f}, {s.high:+.4f}], over utterances "
            f"[{u.low:+.4f}, {u.high:+.4f}]"
        )
    lines += [
        f"McNemar ({test}, utterances as independent): only A right {m.only_a_right}, "
        f"only B right {m.only_b_right}, p = {m.p_value:.4g}",
        comparison_verdict(c),
    ]
    protocols = getattr(c, "protocols", None)
    if protocols:
        lines.append(
            f"note: A was scored under {protocols[0]}, B under {protocols[1]}: other folds "
            "(an older sercap dealt them otherwise, or the corpus changed), so the difference "
            "holds the change of folds too; train both again to compare the models"
        )
    return "\n".join(lines)


def format_fairness(summary: pl.DataFrame, table: pl.DataFrame) -> str:
    """A run's UA per gender and per speaker and the worst-group gap of each grouping.

    ``summary`` and ``table`` are :func:`sercap.fairness` with and without ``summary=True``.
    """
    lines = ["fairness (from stored predictions)"]
    for r in summary.iter_rows(named=True):
        groups = table.filter(pl.col("group_by") == r["group_by"]).sort("group_name")
        per = ", ".join(f"{g} {ua:.3f}" for g, ua in zip(groups["group_name"], groups["ua"],
                                                          strict=True))  # fmt: skip
        lines += [
            f"  UA per {r['group_by']}: {per}",
            f"    worst {r['worst_group']} {r['worst_ua']:.3f}, best {r['best_group']} "
            f"{r['best_ua']:.3f}: gap {r['worst_gap']:.3f}",
        ]
    return "\n".join(lines)


def mark_abstained(table: pl.DataFrame) -> pl.DataFrame:
    """A prediction table for a person: ``?`` as the emotion of abstained files, and no
    ``abstained`` column (the ``?`` says it)."""
    if "abstained" not in table.columns:
        return table
    return table.with_columns(
        pl.when(pl.col("abstained")).then(pl.lit("?")).otherwise(pl.col("emotion"))
        .alias("emotion")
    ).drop("abstained")  # fmt: skip
