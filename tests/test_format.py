"""How results are printed and written: CSV and JSON of every column type DuckDB gives."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from sercap import format as fmt
from sercap.format import print_frame, write_frame

#: Column types that broke CSV or JSON: a struct (written as its keys), a map, bytes and a
#: list of dates (tracebacks), NaN and infinity (invalid JSON).
ODD = duckdb.sql(
    "SELECT {'a': 1, 'b': 2} AS s, MAP {'k': 1} AS m, 'x'::BLOB AS b, "
    "[DATE '2020-01-02'] AS d, 'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i"
).pl()


def test_csv_writes_nested_values_as_json_and_bytes_as_hex(capsys) -> None:
    print_frame(ODD, "csv")
    out = capsys.readouterr().out
    rows = pl.read_csv(out.encode(), infer_schema=False).row(0, named=True)
    assert json.loads(rows["s"]) == {"a": 1, "b": 2}
    assert json.loads(rows["m"]) == {"k": 1}
    assert rows["b"] == "78" and json.loads(rows["d"]) == ["2020-01-02"]


def test_csv_writes_a_fixed_size_array_as_json(capsys) -> None:
    """A FLOAT[3] column (what DuckDB's array_* distances take) was written as
    "<builtins.PySeries object at 0x…>" in every row, exit status 0."""
    frame = duckdb.sql("SELECT [1.0, 2.5, 3.0]::FLOAT[3] AS emb, ['a', 'b']::VARCHAR[2] AS t").pl()
    print_frame(frame, "csv")
    row = pl.read_csv(capsys.readouterr().out.encode(), infer_schema=False).row(0, named=True)
    assert json.loads(row["emb"]) == [1.0, 2.5, 3.0] and json.loads(row["t"]) == ["a", "b"]


def test_a_variant_column_is_its_text_in_every_output(tmp_path: Path) -> None:
    """DuckDB's own duckdb_settings() has a VARIANT column: CSV was a 51-line traceback,
    JSON and the table its encoded bytes."""
    import sercap

    wh = sercap.connect(":memory:")
    [(_, frame)] = sercap.sql(wh, "SELECT 42::VARIANT AS v, 'abc'::VARIANT AS w")
    assert frame.row(0) == ("42", "abc")
    [(_, settings)] = sercap.sql(wh, "SELECT typed_value FROM duckdb_settings() LIMIT 3")
    write_frame(settings, tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text().startswith("typed_value")
    wh.close()


def test_json_is_strict_json(capsys) -> None:
    print_frame(ODD, "json")
    (row,) = json.loads(capsys.readouterr().out)  # the standard parser: no NaN, no b'…'
    assert row == {
        "s": {"a": 1, "b": 2}, "m": {"k": 1}, "b": "78", "d": ["2020-01-02"], "n": None,
        "i": None,
    }  # fmt: skip


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    """--out x.csv left an 11-byte header-only file when a column could not be written."""
    out = tmp_path / "x.csv"
    write_frame(ODD, out)
    assert out.read_text().startswith("s,m,b,d,n,i\n")
    bad = pl.DataFrame({"o": [object()]}, schema={"o": pl.Object})
    with pytest.raises(Exception):  # noqa: B017 - polars' own error, whichever it is
        write_frame(bad, tmp_path / "y.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_long_paths_keep_their_file_name_in_a_table() -> None:
    """Four files of one folder all printed as ".../Session1/sentences/wav/Ses01F_impro…"."""
    from sercap.format import format_table

    folder = "/tmp/some/long/folder/corpus/Session1/sentences/wav/Ses01F_impro01"
    paths = [f"{folder}/Ses01F_impro01_F00{i}.wav" for i in range(4)]
    shown = format_table(pl.DataFrame({"path": paths, "note": ["x" * 70] * 4}))
    for p in paths:
        assert p[-30:] in shown
    assert "x" * 57 + "…" in shown  # other long text keeps its start
    # a message naming both front ends holds " / " but is no path: it keeps its start
    from sercap.features.extract import AUDIO_CHANGED

    assert "the audio file changed since it was" in format_table(
        pl.DataFrame({"e": [AUDIO_CHANGED]})
    )


def test_writing_into_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    """`sql --out /nodir/s.csv` named the hidden temporary file (/nodir/.s.csv.tmp)."""
    from sercap.errors import SercapError

    with pytest.raises(SercapError, match=r"nodir: no such folder to write s.csv into"):
        write_frame(pl.DataFrame({"a": [1]}), tmp_path / "nodir" / "s.csv")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_failed_write_names_the_output_not_the_temporary_file(tmp_path: Path, suffix) -> None:
    """Any other failure to write (no permission, say) still named `.s.csv.tmp`."""
    from sercap.errors import SercapError

    out = tmp_path / f"s{suffix}"
    (tmp_path / f".s{suffix}.tmp").mkdir()  # the temporary name cannot be written
    with pytest.raises(SercapError, match=rf"^{tmp_path}/s{suffix}: cannot write the result"):
        write_frame(pl.DataFrame({"a": [1]}), out)
    assert not out.exists()


def test_an_ensemble_run_reads_plainly() -> None:
    """`runs show` of an ensemble printed "(ensemble: ensemble)" and "weights None"."""
    from sercap.format import format_run

    run = {
        "run_id": "ensemble-1", "kind": "ensemble", "model": "ensemble", "corpus": "c",
        "label_map": "m", "classes": ["ang", "sad"], "n_utterances": 10, "protocol": "p",
        "n_folds": 2, "speaker_norm": False, "params_json": None, "members": ["a", "b"],
        "weights": None, "ua": 0.5, "wa": 0.5, "macro_f1": 0.5, "ua_fold_mean": 0.5,
        "ua_fold_std": 0.0, "wa_fold_mean": 0.5, "wa_fold_std": 0.0, "f1_fold_mean": 0.5,
        "f1_fold_std": 0.0, "seed": 0, "fit_s": 1.0, "duration_s": 1.0,
        "confusion_json": "[[1, 0], [0, 1]]",
    }  # fmt: skip
    text = format_run(run)
    assert "run ensemble-1  (ensemble)" in text and "weights equal" in text
    assert "weights 0.667, 0.333" in format_run({**run, "weights": [2 / 3, 1 / 3]})


@pytest.mark.parametrize("rows_at_a_time", [1, 2, 10_000])
def test_csv_and_json_are_written_a_slice_at_a_time_as_the_whole_would_be(
    monkeypatch, rows_at_a_time
) -> None:
    """JSON was one json.dumps of every row (7 GB held for 860 MB of text); written a row
    at a time it is the same text, NaN as null, bytes as hex, nested values kept."""
    import sercap.format as fmt

    monkeypatch.setattr(fmt, "PRINT_SLICE_ROWS", rows_at_a_time)
    frame = pl.DataFrame({
        "x": [1.5, float("nan"), None], "s": ["a\nb", 'q"', None], "l": [[1, 2], [3], None],
        "st": [{"a": 1}, {"a": 2}, None], "b": [b"\x01", b"", None],
    })  # fmt: skip
    for f in (frame, frame.head(0)):
        whole = json.dumps(
            [fmt._json_value(r) for r in f.to_dicts()], default=str, indent=1, allow_nan=False
        )
        assert "".join(fmt.json_chunks(f)) == whole
        assert "".join(fmt.csv_chunks(f)) == fmt._flatten(f).write_csv()


def test_a_result_written_from_several_frames_is_the_whole_one(tmp_path, monkeypatch) -> None:
    """`sql --out` and csv/json stream a result a frame at a time: the file and the text are
    those of the whole result, row groups included, and an empty result keeps its columns."""
    from click.testing import CliRunner

    import sercap.format as fmt

    monkeypatch.setattr(fmt, "ROW_GROUP_ROWS", 4)
    whole = pl.DataFrame({"i": list(range(10)), "s": [f"u{i}" for i in range(10)],
                          "l": [[i, None] for i in range(10)]})  # fmt: skip
    parts = [whole.slice(0, 3), whole.slice(3, 0), whole.slice(3, 5), whole.slice(8, 2)]
    assert fmt.write_frames(parts, tmp_path / "x.parquet") == 10
    assert pl.read_parquet(tmp_path / "x.parquet").equals(whole)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "x.parquet").num_row_groups == 2  # 8 rows, then 2
    assert fmt.write_frames(iter(parts), tmp_path / "x.csv") == 10
    fmt.write_frame(whole, tmp_path / "whole.csv")
    assert (tmp_path / "x.csv").read_text() == (tmp_path / "whole.csv").read_text()
    empty = [whole.head(0)]
    assert fmt.write_frames(empty, tmp_path / "e.parquet") == 0
    assert pl.read_parquet(tmp_path / "e.parquet").schema == whole.schema
    for form in ("csv", "json"):
        streamed = CliRunner().invoke(_printer(fmt, parts, form)).output
        assert streamed == CliRunner().invoke(_printer(fmt, [whole], form)).output


def _printer(fmt, frames, form):
    import click

    @click.command()
    def show() -> None:
        fmt.print_frames(list(frames), form)

    return show


def test_infinite_dates_are_written_as_duckdb_writes_them(tmp_path, capsys) -> None:
    """polars panicked turning DuckDB's 'infinity' into Python (the table, JSON) or text
    (CSV, also `--out x.csv`): now each is written as DuckDB writes it."""
    frame = duckdb.sql(
        "SELECT TIMESTAMP 'infinity' AS t, DATE '-infinity' AS d, DATE '2020-01-02' AS ok"
    ).pl()
    write_frame(frame, tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_text().splitlines() == [
        "t,d,ok",
        "infinity,-infinity,2020-01-02",
    ]
    print_frame(frame, "json")
    assert json.loads(capsys.readouterr().out) == [
        {"t": "infinity", "d": "-infinity", "ok": "2020-01-02"}
    ]
    # nanoseconds: every int64 is a date Python can hold, so infinity read as 2262-04-11
    ns = duckdb.sql("SELECT 'infinity'::TIMESTAMP_NS AS t").pl()
    print_frame(ns, "csv")
    assert capsys.readouterr().out.splitlines() == ["t", "infinity"]


@pytest.mark.parametrize("form", ["table", "csv", "json"])
def test_nanoseconds_are_printed_to_the_nanosecond(capsys, form) -> None:
    """TIMESTAMP_NS and TIME_NS values printed to the microsecond (Python's datetime and
    time stop there): two values 500 ns apart read alike."""
    frame = duckdb.sql(
        "SELECT TIMESTAMP_NS '2026-11-28 12:00:00.123456789' AS t, "
        "TIME_NS '12:00:00.123456789' AS c, TIMESTAMP_NS '2026-11-28 12:00:00' AS whole"
    ).pl()
    print_frame(frame, form)
    out = capsys.readouterr().out
    assert "2026-11-28 12:00:00.123456789" in out
    assert "12:00:00.123456789" in out.replace("2026-11-28 12:00:00.123456789", "")
    assert "2026-11-28 12:00:00.000" not in out  # a whole second keeps its short form


@pytest.mark.parametrize("form", ["csv", "json"])
def test_times_print_alike_in_every_slice_of_a_result(capsys, form) -> None:
    """Only the slice of rows holding an infinite time became text, written otherwise
    than the slices around it ("2021-03-04 05:06:07.000000" or "…T05:06:07.000000"
    against "2021-03-04 05:06:07"), so one column changed its format mid-output."""
    frame = duckdb.sql(
        f"SELECT CASE WHEN i = {fmt.PRINT_SLICE_ROWS} THEN 'infinity'::TIMESTAMP "
        "ELSE TIMESTAMP '2021-03-04 05:06:07' END AS t, "
        "TIMESTAMPTZ '2021-03-04 05:06:07.25+00' AS z "
        f"FROM range({fmt.PRINT_SLICE_ROWS + 2}) r(i) ORDER BY i"
    ).pl()
    print_frame(frame, form)
    out = capsys.readouterr().out
    if form == "csv":
        rows = [line.split(",") for line in out.splitlines()[1:]]
    else:
        rows = [[row["t"], row["z"]] for row in json.loads(out)]
    assert {t for t, _ in rows} == {"2021-03-04 05:06:07", "infinity"}
    assert [t for t, _ in rows].index("infinity") == fmt.PRINT_SLICE_ROWS
    assert {z for _, z in rows} == {"2021-03-04 05:06:07.250000+00:00"}


def test_a_wide_result_is_written_in_row_groups_of_bounded_bytes(tmp_path, monkeypatch) -> None:
    """A row group gathered 65,536 rows whatever their width: the 2,854-column functionals
    view of an IEMOCAP-sized corpus went into one, 1.1 GB of memory for a 114 MB file."""
    import pyarrow.parquet as pq

    import sercap.format as fmt

    wide = pl.DataFrame({f"c{i}": [float(i)] * 10 for i in range(50)})  # 4 kB
    monkeypatch.setattr(fmt, "ROW_GROUP_BYTES", wide.estimated_size() * 2)
    parts = [wide.slice(i, 2) for i in range(0, 10, 2)]  # five frames of 2 rows
    assert fmt.write_frames(parts, tmp_path / "w.parquet") == 10
    assert pq.ParquetFile(tmp_path / "w.parquet").num_row_groups == 1
    monkeypatch.setattr(fmt, "ROW_GROUP_BYTES", wide.estimated_size() // 5 * 2)  # 4 rows
    assert fmt.write_frames(parts, tmp_path / "w.parquet") == 10
    assert pq.ParquetFile(tmp_path / "w.parquet").num_row_groups == 3
    assert pl.read_parquet(tmp_path / "w.parquet").equals(wide)
