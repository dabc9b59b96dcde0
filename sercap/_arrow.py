"""Arrow arrays from numpy and Python lists without importing pandas.

``pyarrow.array`` asks pyarrow's pandas shim whether its input is a pandas object, and the
shim imports pandas to answer: about half a second of every ``sercap extract`` process,
which never uses pandas. These builders assemble the same arrays from their buffers
(validity bitmap, offsets, values), which the shim never sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

_TYPES = {
    np.dtype(np.float32): pa.float32(),
    np.dtype(np.float64): pa.float64(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int64): pa.int64(),
}


def _validity(valid: np.ndarray) -> tuple[pa.Buffer | None, int]:
    """Arrow's validity bitmap (LSB first) of a boolean ``valid`` array, and its null count."""
    nulls = int(valid.size - np.count_nonzero(valid))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def _native(values: Any, ndim: int, who: str) -> tuple[np.ndarray, pa.DataType]:
    """``values`` as a contiguous array in native byte order, and its Arrow type; one line
    naming ``who`` for another shape or an unsupported dtype."""
    values = np.asarray(values)
    if values.ndim != ndim:
        raise ValueError(f"{who} needs a {ndim}-d array, got shape {values.shape}")
    try:
        arrow_type = _TYPES[values.dtype.newbyteorder("=")]
    except KeyError:
        raise TypeError(f"{who} does not build {values.dtype} arrays") from None
    return np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("=")), arrow_type


def numbers(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A float32/float64/int32/int64 Arrow array of a 1-d numpy array; ``mask`` True = null.

    Equal to ``pa.array(values, mask=mask)``.

    Examples
    --------
    >>> numbers(np.array([1.5, 2.0], np.float32), mask=np.array([False, True])).to_pylist()
    [1.5, None]
    """
    values, arrow_type = _native(values, 1, "numbers")
    bitmap, nulls = (None, 0) if mask is None else _validity(~np.asarray(mask, dtype=bool))
    return pa.Array.from_buffers(
        arrow_type, values.size, [bitmap, pa.py_buffer(values)], null_count=nulls
    )


def number_rows(matrix: np.ndarray, mask: np.ndarray | None = None) -> list[pa.Array]:
    """Each row of a 2-d numeric array as an Arrow array; ``mask`` (same shape) True = null.

    Equal to ``[numbers(matrix[i], mask=mask[i]) for i in range(len(matrix))]``, in a
    third of the time (a features part's 2,854 columns): the rows share one values buffer
    and one validity bitmap, and a row without nulls gets none.

    Examples
    --------
    >>> m = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    >>> [a.to_pylist() for a in number_rows(m, mask=np.array([[False, True], [False, False]]))]
    [[1.0, None], [3.0, 4.0]]
    """
    matrix, arrow_type = _native(matrix, 2, "number_rows")
    rows, n = matrix.shape
    values = pa.py_buffer(matrix)
    row_bytes = n * matrix.dtype.itemsize
    nulls = np.zeros(rows, dtype=np.int64)
    bitmaps, bitmap_bytes = None, 0
    if mask is not None:
        valid = ~np.asarray(mask, dtype=bool).reshape(rows, n)
        nulls = n - np.count_nonzero(valid, axis=1)
        if nulls.any():
            bits = np.packbits(valid, axis=1, bitorder="little")
            bitmaps, bitmap_bytes = pa.py_buffer(bits), bits.shape[1]
    out = []
    for i, k in enumerate(nulls.tolist()):
        bitmap = None
        if k and bitmaps is not None:
            bitmap = bitmaps.slice(i * bitmap_bytes, bitmap_bytes)
        out.append(
            pa.Array.from_buffers(
                arrow_type, n, [bitmap, values.slice(i * row_bytes, row_bytes)], null_count=k
            )
        )
    return out


def strings(values: Sequence[str | None]) -> pa.Array:
    """A UTF-8 string Arrow array of Python strings (``None`` = null).

    Equal to ``pa.array(values, pa.string())``.

    Examples
    --------
    >>> strings(["a", None, "bc"]).to_pylist()
    ['a', None, 'bc']
    """
    encoded = [b"" if v is None else v.encode() for v in values]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("strings: more than 2 GiB of text in one array")
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(encoded))
    bitmap, nulls = _validity(valid)
    return pa.Array.from_buffers(
        pa.string(),
        len(encoded),
        [bitmap, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))],
        null_count=nulls,
    )


def optional_ints(values: Sequence[int | None]) -> pa.Array:
    """An int64 Arrow array of Python ints (``None`` = null).

    Examples
    --------
    >>> optional_ints([3, None]).to_pylist()
    [3, None]
    """
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    data = np.fromiter((0 if v is None else v for v in values), np.int64, count=len(values))
    return numbers(data, mask=~valid)


_NUMPY = {arrow: numpy.type for numpy, arrow in _TYPES.items()}  # Arrow type → numpy


def to_floats(column: pa.Array | pa.ChunkedArray, dtype: type = np.float64) -> np.ndarray:
    """A numeric Arrow column as a numpy float array, nulls as NaN.

    Equal to ``column.to_numpy(zero_copy_only=False).astype(dtype)``; columns other than
    float32/float64/int32/int64 (e.g. DuckDB's decimals) are cast to float64 first.

    Examples
    --------
    >>> to_floats(numbers(np.array([1, 2], np.int64), mask=np.array([True, False])))
    array([nan,  2.])
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.type not in _NUMPY:
        arr = arr.cast(pa.float64())
    source = _NUMPY[arr.type]
    n = len(arr)
    buffers = arr.buffers()
    if buffers[1] is None:
        values = np.zeros(n, dtype=dtype)
    else:
        raw = np.frombuffer(buffers[1], dtype=source, count=arr.offset + n)
        values = raw[arr.offset :].astype(dtype)
    if arr.null_count:
        bits = np.unpackbits(
            np.frombuffer(buffers[0], dtype=np.uint8), count=arr.offset + n, bitorder="little"
        )
        values[bits[arr.offset :] == 0] = np.nan
    return values
