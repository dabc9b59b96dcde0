"""Functionals: per-utterance statistics of the frame table, computed by DuckDB.

``sql/templates/functionals.sql`` is the single definition; this module only fills in its
source relation and runs it, on a frames part file or on an in-memory Arrow table (what the
extraction workers do right after computing a chunk, so the functionals run in parallel too).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping

import duckdb
import numpy as np
import pyarrow as pa

from sercap._arrow import number_rows, numbers, strings, to_floats
from sercap.sqlfiles import read_sql

TEMPLATE = "templates/functionals.sql"

#: The functionals the template computes per descriptor, in column order (a test checks
#: that the SQL agrees).
FUNCTIONALS = (
    "mean", "std", "min", "max", "p01", "p25", "p50", "p75", "p99", "range", "iqr",
    "skew", "kurt", "slope", "intercept", "resid", "posmax", "posmin",
)  # fmt: skip
#: Per-utterance voicing columns the template adds after the functionals.
VOICING_COLUMNS = (
    "voiced_fraction", "voiced_seg_rate", "voiced_seg_len_mean", "voiced_seg_len_std",
    "voiced_seg_len_max", "unvoiced_seg_len_mean", "unvoiced_seg_len_std",
    "unvoiced_seg_len_max", "n_frames",
)  # fmt: skip


def template_sha() -> str:
    """Short hash of the functionals template (part of every LLD feature-set hash)."""
    return hashlib.sha256(read_sql(TEMPLATE).encode()).hexdigest()[:12]


def template_queries(source: str, hop_s: float) -> dict[str, str]:
    """The template's named queries (``-- name: x`` sections) over ``source``."""
    text = read_sql(TEMPLATE).replace("{source}", source).replace("{hop_s}", repr(float(hop_s)))
    queries: dict[str, str] = {}
    for section in re.split(r"^-- name: *", text, flags=re.M)[1:]:
        name, _, body = section.partition("\n")
        queries[name.strip()] = body.strip().rstrip(";")
    return queries


def frames_table(utt_ids: list[str], columns: list[Mapping[str, np.ndarray]]) -> pa.Table:
    """One Arrow table of several utterances' frames: utt_id, frame, float32 descriptors.

    NaN becomes NULL (unvoiced frames), which is what makes SQL aggregates voiced-only.
    """
    from sercap.features.lld import frames_matrix

    names = list(columns[0]) if columns else []
    mats = [frames_matrix(c) for c in columns]
    lengths = [m.shape[1] for m in mats]
    data: dict[str, pa.Array] = {
        # each id once, then repeated by index (a Python string per frame costs ~0.3 s/1k utts)
        "utt_id": strings(utt_ids).take(
            numbers(np.repeat(np.arange(len(lengths), dtype=np.int32), lengths))
        ),
        "frame": numbers(
            np.concatenate([np.arange(n, dtype=np.int32) for n in lengths])
            if lengths
            else np.zeros(0, np.int32)
        ),
    }
    if not names:
        return pa.table(data)
    # (descriptors, all frames): each descriptor's column is one contiguous row
    matrix = np.concatenate(mats, axis=1)
    data.update(zip(names, number_rows(matrix, mask=np.isnan(matrix)), strict=True))
    return pa.table(data)


def compute_functionals(
    frames: pa.Table, hop_s: float, con: duckdb.DuckDBPyConnection | None = None
) -> pa.Table:
    """Functionals of a frame table (Arrow, or a relation name when ``frames`` is a str).

    Returns one row per utterance: ``utt_id`` then float32 columns
    ``<descriptor>_<functional>`` in descriptor order, then the per-utterance voicing columns.
    The SQL computes everything; this only turns its long result into the wide table.
    """
    names = None
    if con is None:  # this thread's, kept open for its next chunk
        con = _connection()
    if isinstance(frames, str):
        source = frames
        descriptors = [
            c
            for c in con.sql(f"SELECT * FROM {source} LIMIT 0").columns
            if c not in ("utt_id", "frame")
        ]
    else:
        # Grouping by a small integer is ~10% faster than by the id string; map back below.
        ids = frames.column("utt_id").combine_chunks().dictionary_encode()
        names = ids.dictionary.to_pylist()
        frames = frames.set_column(0, "utt_id", ids.indices)
        source = "frames_chunk__"
        con.register(source, frames)
        descriptors = [c for c in frames.column_names if c not in ("utt_id", "frame")]
    try:
        queries = template_queries(source, hop_s)
        long = con.sql(queries["functionals"]).to_arrow_table()
        per_utt = con.sql(queries["voicing"]).to_arrow_table()
    finally:
        if source == "frames_chunk__":
            con.unregister(source)
    return widen(long, per_utt, descriptors, names)


_LOCAL = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB (one thread) for the functionals: opened by its first
    chunk and kept, as a connection costs ~9 ms to open and close (a twentieth of a second
    of an EmoDB extract). One per thread, as a Dask worker runs tasks in several."""
    con = getattr(_LOCAL, "con", None)
    if con is None:
        con = _LOCAL.con = duckdb.connect(config={"threads": 1})
    return con


def close_connection() -> None:
    """Close this thread's functionals connection, if it has one (the next chunk opens
    another): an in-process extract calls it when done, so that a notebook's process does
    not keep DuckDB's ~70 MB of buffers after its work."""
    con = getattr(_LOCAL, "con", None)
    _LOCAL.con = None
    if con is not None:
        con.close()


def widen(
    long: pa.Table, per_utt: pa.Table, descriptors: list[str], names: list[str] | None = None
) -> pa.Table:
    """(utt_id, descriptor, f1, f2…) rows → one row per utterance, ``<descriptor>_<f>`` columns.

    ``names`` translates integer utterance codes back to ids when the SQL ran on codes.
    """
    utts = per_utt.column("utt_id").to_pylist()
    funcs = [c for c in long.column_names if c not in ("utt_id", "descriptor")]
    cube = np.full((len(utts), len(descriptors), len(funcs)), np.nan, dtype=np.float32)
    if long.num_rows:
        ui = _positions(long.column("utt_id"), utts)
        di = _positions(long.column("descriptor"), descriptors)
        for k, f in enumerate(funcs):
            cube[ui, di, k] = to_floats(long.column(f), np.float32)
    ids = utts if names is None else [names[u] for u in utts]
    data: dict[str, pa.Array] = {"utt_id": strings(ids)}
    # One contiguous column per (descriptor, functional); NaN (e.g. F0 of an utterance with
    # no voiced frame) becomes NULL, with the mask computed once for the whole cube.
    wide = np.ascontiguousarray(cube.reshape(len(utts), -1).T)
    columns = (f"{d}_{f}" for d in descriptors for f in funcs)
    data.update(zip(columns, number_rows(wide, mask=np.isnan(wide)), strict=True))
    for c in per_utt.column_names[1:]:
        data[c] = numbers(to_floats(per_utt.column(c), np.float32))
    return pa.table(data)


def _positions(column: pa.ChunkedArray, keys: list) -> np.ndarray:
    """Where each value of ``column`` is in ``keys`` (every value is one of them): each
    distinct value looked up once (a chunk's long result has ~20,000 rows, 158 descriptors
    and 128 utterances), not once per row."""
    encoded = column.combine_chunks().dictionary_encode()
    index = {k: i for i, k in enumerate(keys)}
    where = np.array([index[v] for v in encoded.dictionary.to_pylist()], dtype=np.int64)
    codes = encoded.indices  # int32, no nulls (read from its buffer: to_numpy imports pandas)
    start = codes.offset
    return where[np.frombuffer(codes.buffers()[1], np.int32, count=start + len(codes))[start:]]
