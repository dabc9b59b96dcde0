"""sercap._arrow: the pandas-free builders equal pyarrow's own conversions."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from sercap._arrow import number_rows, numbers, optional_ints, strings, to_floats


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("with_mask", [False, True])
def test_numbers_equal_pa_array(dtype, with_mask):
    rng = np.random.default_rng(0)
    values = (rng.normal(size=37) * 100).astype(dtype)
    mask = rng.random(37) < 0.3 if with_mask else None
    got = numbers(values, mask=mask)
    want = pa.array(values, mask=mask)
    assert got.type == want.type
    assert got.null_count == want.null_count
    assert got.equals(want)


def test_numbers_reads_strided_and_byteswapped_input():
    base = np.arange(10, dtype=">f4")
    assert numbers(base[::2]).to_pylist() == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_numbers_refuses_what_it_cannot_build():
    with pytest.raises(TypeError, match="bool"):
        numbers(np.array([True]))
    with pytest.raises(ValueError, match="1-d"):
        numbers(np.zeros((2, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("masked", ["none", "some", "all", "no rows masked"])
def test_number_rows_equal_numbers_of_each_row(dtype, masked):
    rng = np.random.default_rng(1)
    matrix = (rng.normal(size=(7, 13)) * 100).astype(dtype)
    mask = {
        "none": None,
        "some": rng.random((7, 13)) < 0.3,
        "all": np.ones((7, 13), bool),
        "no rows masked": np.zeros((7, 13), bool),
    }[masked]
    got = number_rows(matrix, mask=mask)
    assert len(got) == 7
    for i, column in enumerate(got):
        want = numbers(matrix[i], mask=None if mask is None or not mask[i].any() else mask[i])
        assert column.equals(want) and column.null_count == want.null_count
        assert (column.buffers()[0] is None) == (want.buffers()[0] is None)
    assert [a.to_pylist() for a in number_rows(np.zeros((2, 0), np.float32))] == [[], []]
    assert number_rows(np.zeros((0, 4), np.float32)) == []


def test_strings_equal_pa_array():
    values = ["03a01Fa", None, "", "ünïcødé ✓", "x" * 300, None]
    got = strings(values)
    assert got.equals(pa.array(values, pa.string()))
    assert strings([]).equals(pa.array([], pa.string()))


def test_optional_ints():
    assert optional_ints([5, None, -2]).equals(pa.array([5, None, -2], pa.int64()))


def test_to_floats_equals_to_numpy_for_chunked_sliced_and_decimal_columns():
    t = duckdb.sql(
        "SELECT i::INTEGER AS i, CASE WHEN i % 3 = 0 THEN NULL ELSE i / 7 END AS x, "
        "(i / 4)::DECIMAL(10, 2) AS d FROM range(50) r(i)"
    ).to_arrow_table()
    chunked = pa.chunked_array([t.column("x").combine_chunks()[:20], t.column("x")[20:]])
    for column in (t.column("i"), t.column("x"), t.column("d"), chunked, chunked[7:31]):
        want = column.to_numpy().astype(np.float64) if column.null_count == 0 else None
        if want is None:
            want = np.array([np.nan if v is None else float(v) for v in column.to_pylist()])
        np.testing.assert_array_equal(to_floats(column), want)
    assert to_floats(t.column("x"), np.float32).dtype == np.float32


def test_extraction_path_never_imports_pandas():
    """Building a chunk's frames, its SQL functionals and its catalog rows must not import
    pandas (half a second of every ``sercap extract``): ``pa.array`` and ``to_numpy`` do."""
    code = """
import sys
import numpy as np
from sercap.features.functionals import compute_functionals, frames_table
from sercap.features.featureset import get_feature_set
from sercap.features.lld import compute_frames
from sercap.store import catalog
from sercap.store.warehouse import connect

sr = 16000
t = np.arange(sr) / sr
y = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
cols = compute_frames(y, get_feature_set("default").params)
frames = frames_table(["a"], [cols])
compute_functionals(frames, 0.01)
wh = connect(":memory:")
catalog.insert_extractions(wh, "h", None, [("a", "error", "bad", None)])
assert "pandas" not in sys.modules, "pandas was imported"
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
