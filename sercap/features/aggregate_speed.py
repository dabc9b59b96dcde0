"""How fast, and in how much memory, per-utterance aggregates of a frames table come out.

The same Parquet files go through DuckDB (mean/min/max/std with ``COLUMNS()``, and sercap's
whole functionals template one part at a time, as extraction runs it), polars (lazy scan +
group_by) and pandas (read + groupby) when it is installed. Each engine runs in a fresh
process so that its peak resident memory is its own; times include reading the Parquet, as
they would in a notebook, and the engine's import (each pays its own). Every engine gets
``threads`` threads: DuckDB by its setting, polars by ``POLARS_MAX_THREADS`` (its pool is
sized when it is imported), pandas has one.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sercap._lazy import pl  # imported by the polars engine inside its timed block
from sercap._spawn import main_not_rerun

ENGINES = ("duckdb", "duckdb functionals", "polars", "pandas")
_BASIC = ("mean", "min", "max", "std")


def _listing(files: Sequence[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _source(files: Sequence[str]) -> str:
    # A warehouse's own parts sit under feature_set=…/corpus=… folders, which DuckDB would
    # read as two more (string) columns: only the files' columns count.
    return f"read_parquet({_listing(files)}, hive_partitioning = false)"


def _peak_mb() -> float:
    """Peak resident memory of this process in MB.

    Linux's ``VmHWM`` belongs to the process image since its last exec; ``ru_maxrss``
    carries the parent's peak across fork, so every engine's child reported the benchmark
    process' own memory (289 MB for all four, against 82–176 MB each on its own). Elsewhere
    ``ru_maxrss`` (KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def run_engine(engine: str, files: list[str], threads: int, hop_s: float) -> dict:
    """Aggregate ``files`` with one engine; returns seconds, result shape and peak memory."""
    started = time.perf_counter()
    used = 1  # the threads the engine ran with
    if engine in ("duckdb", "duckdb functionals"):
        used = threads
        import duckdb

        con = duckdb.connect(config={"threads": threads})
        con.execute("SET enable_progress_bar = false")  # in a log: a line of half-drawn bars
        source = _source(files)
        if engine == "duckdb":
            aggs = ", ".join(
                f'{fn}(COLUMNS(* EXCLUDE (utt_id, frame))) AS "\\0_{name}"'
                for fn, name in zip(("avg", "min", "max", "stddev_pop"), _BASIC, strict=True)
            )
            query = f"SELECT utt_id, {aggs} FROM {source} GROUP BY utt_id"
            result = con.sql(query).to_arrow_table()  # materialised: every aggregate computed
            rows, cols = result.num_rows, result.num_columns
        else:
            # As extraction does it: one part at a time, so memory stays bounded.
            from sercap.features.functionals import compute_functionals

            rows = cols = 0
            for f in files:
                con.execute(f"CREATE OR REPLACE TEMP VIEW src AS SELECT * FROM {_source([f])}")
                part = compute_functionals("src", hop_s, con=con)
                rows, cols = rows + part.num_rows, part.num_columns
    elif engine == "polars":
        import polars as pl  # (its pool takes POLARS_MAX_THREADS, set by bench_aggregation)

        lazy = pl.scan_parquet(files, hive_partitioning=False)  # as DuckDB's, below
        value_cols = [c for c in lazy.collect_schema().names() if c not in ("utt_id", "frame")]
        aggs = [getattr(pl.col(value_cols), fn)().name.suffix(f"_{fn}") for fn in _BASIC]
        rows, cols = lazy.group_by("utt_id").agg(aggs).collect().shape
        used = pl.thread_pool_size()
    elif engine == "pandas":
        import pandas as pd

        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        result = frame.drop(columns="frame").groupby("utt_id").agg(list(_BASIC))
        rows, cols = result.shape
    else:
        raise ValueError(f"unknown engine {engine!r}")
    seconds = time.perf_counter() - started
    return {
        "engine": engine,
        "seconds": seconds,
        "threads": used,
        "rows": rows,
        "cols": cols,
        "peak_mb": _peak_mb(),
    }


def _child(args: tuple[str, list[str], int, float]) -> dict:
    return run_engine(*args)


def available_engines() -> list[str]:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return [e for e in ENGINES if e != "pandas"]
    return list(ENGINES)


def bench_aggregation(
    files: Sequence[Path | str],
    threads: int = 2,
    hop_s: float = 0.01,
    engines: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Each engine once, in its own spawned process, on the same frames files."""
    listing = [str(f) for f in files]
    results = []
    ctx = mp.get_context("spawn")
    before = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = str(int(threads))  # what each spawned child inherits
    try:
        for engine in engines or available_engines():
            with main_not_rerun(), ctx.Pool(1, maxtasksperchild=1) as pool:
                results.append(pool.apply(_child, ((engine, listing, threads, hop_s),)))
    finally:
        if before is None:
            os.environ.pop("POLARS_MAX_THREADS", None)
        else:
            os.environ["POLARS_MAX_THREADS"] = before
    return pl.DataFrame(results).with_columns(
        pl.col("seconds").round(2), pl.col("peak_mb").round(0)
    )


def replicate_frames(files: Sequence[Path | str], copies: int, out_dir: Path) -> list[Path]:
    """Write ``copies`` of the frames with renamed utterances: a bigger table, same shape."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    frames = pl.read_parquet([str(f) for f in files])
    for k in range(copies):
        path = out_dir / f"copy-{k:03d}.parquet"
        frames.with_columns(pl.col("utt_id") + f"#{k}").write_parquet(path, compression="zstd")
        written.append(path)
    return written
