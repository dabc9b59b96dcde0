"""Functionals: per-utterance statistics of the frame table, computed by DuckDB.

``sql/templates/functionals.sql`` is the single definition; this module only fills in its
source relation and runs it, on a frames part file or on an in-memory Arrow table (what the
extraction workers do right after computing a chunk, so the functionals run in parallel too).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import duckdb
import numpy as np
import pyarrow as pa

from sercap._arrow import numbers, strings, to_floats
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
    nan = np.isnan(matrix)
    has_nan = nan.any(axis=1)
    for i, name in enumerate(names):
        data[name] = numbers(matrix[i], mask=nan[i] if has_nan[i] else None)
    return pa.table(data)


def compute_functionals(
    frames: pa.Table, hop_s: float, con: duckdb.DuckDBPyConnection | None = None
) -> pa.Table:
    """Functionals of a frame table (Arrow, or a relation name when ``frames`` is a str).

    Returns one row per utterance: ``utt_id`` then float32 columns
    ``<descriptor>_<functional>`` in descriptor order, then the per-utterance voicing columns.
    The SQL computes everything; this only turns its long result into the wide table.
    """
    own = con is None
    names = None
    if own:
        con = duckdb.connect(config={"threads": 1})
    try:
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
    finally:
        if own:
            con.close()
    return widen(long, per_utt, descriptors, names)


def widen(
    long: pa.Table, per_utt: pa.Table, descriptors: list[str], names: list[str] | None = None
) -> pa.Table:
    """(utt_id, descriptor, f1, f2…) rows → one row per utterance, ``<descriptor>_<f>`` columns.

    ``names`` translates integer utterance codes back to ids when the SQL ran on codes.
    """
    utts = per_utt.column("utt_id").to_pylist()
    funcs = [c for c in long.column_names if c not in ("utt_id", "descriptor")]
    u_index = {u: i for i, u in enumerate(utts)}
    d_index = {d: i for i, d in enumerate(descriptors)}
    cube = np.full((len(utts), len(descriptors), len(funcs)), np.nan, dtype=np.float32)
    if long.num_rows:
        ui = np.fromiter((u_index[u] for u in long.column("utt_id").to_pylist()), np.int64)
        di = np.fromiter((d_index[d] for d in long.column("descriptor").to_pylist()), np.int64)
        for k, f in enumerate(funcs):
            cube[ui, di, k] = to_floats(long.column(f), np.float32)
    ids = utts if names is None else [names[u] for u in utts]
    data: dict[str, pa.Array] = {"utt_id": strings(ids)}
    # One contiguous column per (descriptor, functional); NaN (e.g. F0 of an utterance with
    # no voiced frame) becomes NULL, with the mask computed once for the whole cube.
    wide = np.ascontiguousarray(cube.reshape(len(utts), -1).T)
    nan = np.isnan(wide)
    has_nan = nan.any(axis=1)
    columns = (f"{d}_{f}" for d in descriptors for f in funcs)
    for i, name in enumerate(columns):
        data[name] = numbers(wide[i], mask=nan[i] if has_nan[i] else None)
    for c in per_utt.column_names[1:]:
        data[c] = numbers(to_floats(per_utt.column(c), np.float32))
    return pa.table(data)
