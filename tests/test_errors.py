"""The error hierarchy, and which DuckDB errors are a damaged part of the warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb

from sercap.errors import damaged_part_error


def test_only_a_stored_part_that_exists_is_called_damaged(tmp_path: Path) -> None:
    part = tmp_path / "features" / "part-1.parquet"
    part.parent.mkdir()
    part.write_bytes(b"PAR1 damaged")

    def about(message: str):
        return damaged_part_error(duckdb.InvalidInputException(message), tmp_path)

    named = about(f'Failed to read file "{part}": ZSTD Decompression failure')
    assert named is not None and named.message.startswith("stored part features/part-1.parquet")
    unnamed = damaged_part_error(duckdb.Error("TProtocolException: Invalid data"), tmp_path)
    assert unnamed is not None and unnamed.message.startswith("a stored part cannot be read")
    # not damage: a glob the read-only guard refused, a missing file, the catalog read as
    # Parquet, a file outside the warehouse, an unrelated error, a non-DuckDB error
    for message in (
        f'Failed to read file "{tmp_path}/features/**/*.parquet": globs are not allowed',
        f'Failed to read file "{tmp_path}/features/part-9.parquet": No such file',
        f"No magic bytes found at end of file '{tmp_path}/sercap.duckdb'",
        'Failed to read file "/elsewhere/x.parquet": ZSTD Decompression failure',
        "Binder Error: column x not found",
    ):
        assert about(message) is None, message
    assert damaged_part_error(ValueError(f'"{part}" magic bytes'), tmp_path) is None


def test_a_damaged_catalog_is_named_as_the_catalog(tmp_path: Path) -> None:
    """DuckDB's "Corrupt database file" is about sercap.duckdb, which no part rebuilds: it
    was reported as "a stored part cannot be read" with `check --repair` as the cure, which
    then failed the same way."""
    import pytest

    import sercap
    from sercap.errors import SercapError

    wh = sercap.connect(tmp_path / "wh")
    wh.execute("CREATE TABLE filler AS SELECT range AS x FROM range(100000)")
    wh.close()
    db = tmp_path / "wh" / "sercap.duckdb"
    data = bytearray(db.read_bytes())
    data[5000:5021] = b"garbagegarbagegarbage"
    db.write_bytes(data)
    for read_only in (True, False):
        with pytest.raises(SercapError) as caught:
            sercap.connect(tmp_path / "wh", read_only=read_only)
        assert caught.value.message.startswith(f"the warehouse catalog {db} is damaged")
        assert "check --repair" not in str(caught.value)
    thrift = damaged_part_error(duckdb.Error("don't know what type: "), tmp_path)
    assert thrift is not None and thrift.message.startswith("a stored part cannot be read")


def test_printable_survives_any_lone_surrogate() -> None:
    """Only a file name's escapes (\\udc80-\\udcff) were handled: another lone surrogate
    (from JSON, say) raised inside the code meant to report it."""
    from sercap.errors import printable

    assert printable("\ud800x") == "\\ud800x"
    assert printable("caf\udce9") == "caf\\xe9"
