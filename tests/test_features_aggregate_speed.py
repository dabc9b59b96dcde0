"""The aggregation benchmark: every engine computes the same aggregates of the same frames."""

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from cli import main
from sercap.features.aggregate_speed import (
    available_engines,
    bench_aggregation,
    replicate_frames,
    run_engine,
)
from tests.helpers import make_corpus


@pytest.fixture
def frames_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 50
    frame = pl.DataFrame(
        {
            "utt_id": ["a"] * n + ["b"] * n,
            "frame": list(range(n)) * 2,
            "mfcc_01": rng.normal(size=2 * n).astype(np.float32),
            "f0_hz": [None if i % 3 == 0 else 100.0 + i for i in range(2 * n)],
        }
    ).with_columns(pl.col("f0_hz").cast(pl.Float32))
    # where a warehouse keeps its parts: the folder names are not columns of the frames
    path = tmp_path / "frames" / "feature_set=abc" / "corpus=toy" / "part-1.parquet"
    path.parent.mkdir(parents=True)
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize("engine", available_engines())
def test_every_engine_aggregates_every_column(engine, frames_file) -> None:
    result = run_engine(engine, [str(frames_file)], threads=1, hop_s=0.01)
    assert result["rows"] == 2
    expected_cols = {
        "duckdb": 1 + 2 * 4,
        "polars": 1 + 2 * 4,
        "pandas": 2 * 4,  # utt_id is the index
        "duckdb functionals": 1 + 2 * 18 + 9,
    }[engine]
    assert result["cols"] == expected_cols
    assert result["seconds"] > 0 and result["peak_mb"] > 10


def test_bench_runs_each_engine_in_its_own_process(frames_file, tmp_path) -> None:
    copies = replicate_frames([frames_file], 3, tmp_path / "copies")
    assert pl.read_parquet(copies)["utt_id"].n_unique() == 6
    ballast = bytearray(600 * 1024 * 1024)  # this process' peak must not be the engines'
    ballast[::4096] = b"\1" * len(ballast[::4096])
    table = bench_aggregation(copies, threads=1, engines=["duckdb", "polars"])
    del ballast
    assert table["engine"].to_list() == ["duckdb", "polars"]
    assert table["rows"].to_list() == [6, 6]
    # --threads 1 gave DuckDB one thread and polars its whole pool (every core)
    assert table["threads"].to_list() == [1, 1]
    # ru_maxrss carried the parent's peak across fork: every engine "used" the bench's memory
    assert (table["peak_mb"] < 500).all(), table


def test_cli_bench_sql(tmp_path) -> None:
    manifest = make_corpus(tmp_path / "corpus")
    runner = CliRunner()
    w = ["-w", str(tmp_path / "wh")]
    missing = runner.invoke(main, [*w, "bench", "sql"])
    assert missing.exit_code == 1 and "no warehouse at" in missing.output
    runner.invoke(main, [*w, "ingest", "manifest", str(manifest)])
    unextracted = runner.invoke(main, [*w, "bench", "sql"])
    assert unextracted.exit_code == 1
    assert "run `sercap extract --feature-set default` / `sercap.extract(wh, 'default')` first" in (
        unextracted.output
    )
    runner.invoke(main, [*w, "extract", "--jobs", "1"])
    result = runner.invoke(main, [*w, "bench", "sql", "--copies", "2", "--threads", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("duckdb functionals") and " 16 " in line for line in lines)
