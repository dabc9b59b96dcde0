"""bench scale's table and the projection of a nested tuning (pure functions)."""

import re

import polars as pl
import pytest

from sercap.errors import SercapError
from sercap.scale import (
    FitCost,
    Measurement,
    measure_scale,
    modes,
    project_nested,
    scale_table,
    table_markdown,
)


def test_scale_table_speed_up_and_overhead_per_task() -> None:
    ms = [
        Measurement("bench", "1 process", 4, 40.0, 20),
        Measurement("bench", "pool", 4, 20.0, 20),
        Measurement("bench", "local:4", 4, 12.0, 20),
        Measurement("extract", "1 process", 4, 10.0, 5),
        Measurement("extract", "pool", 4, 5.0, 5),
    ]
    table = scale_table(ms, load=1.5)
    rows = {r["mode"]: r for r in table.iter_rows(named=True) if r["workload"] == "bench"}
    # bench has no pool: it runs in one process with the models' own threads
    assert set(rows) == {"1 process", "--jobs 4", "local:4"}
    assert table.filter(pl.col("workload") == "extract")["mode"].to_list() == ["1 process", "pool"]
    assert rows["1 process"]["speed_up"] == 1.0 and rows["1 process"]["overhead_per_task_s"] == 0
    assert rows["local:4"]["speed_up"] == pytest.approx(40 / 12, abs=0.01)
    # 4 workers × 12 s = 48 worker-seconds for 40 s of serial work: 8 s over 20 tasks
    assert rows["local:4"]["overhead_per_task_s"] == pytest.approx(0.4)
    assert rows["--jobs 4"]["overhead_per_task_s"] == pytest.approx(2.0)
    text = table_markdown(table)
    assert "| bench | local:4 | 4 | 20 | 12.0 | 12.00 | 3.33× | 0.400 |" in text
    assert "Load average during the run: 1.5" in text
    assert modes(4) == ["1 process", "pool", "local:4"]


def test_projection_scales_work_over_workers_and_is_labelled() -> None:
    # svm: 1 s per fit on 100 utterances, quadratic; lgbm: 2 s per fit on 100, linear
    costs = [FitCost("svm", 1.0, 100), FitCost("lgbm", 2.0, 100)]
    table = project_nested(costs, n_utterances=300, outer_folds=3, trials=10, inner_folds=2)
    rows = {r["model"]: r for r in table.iter_rows(named=True)}
    assert table["projection"].all()
    # fits see 300 · 2/3 · 1/2 = 100 utterances: the measured size
    assert rows["svm"]["tasks"] == (3 + 1) * 10
    assert rows["svm"]["seconds_per_task"] == pytest.approx(2.0)
    assert rows["lgbm"]["seconds_per_task"] == pytest.approx(4.0)
    total = 40 * 2.0 + 40 * 4.0
    assert rows["all models"]["hours_1"] == round(total / 3600, 2)
    assert rows["all models"]["hours_8"] == round(total / 8 / 3600, 2)
    # 64 workers: 80 tasks, the longest (4 s) bounds it from below
    assert rows["all models"]["hours_64"] == round(max(total / 64, 4.0) / 3600, 2)
    bigger = project_nested(costs, n_utterances=600, outer_folds=3, trials=10, inner_folds=2)
    by = {r["model"]: r for r in bigger.iter_rows(named=True)}
    assert by["svm"]["seconds_per_task"] == pytest.approx(8.0)  # twice the data, 4× (n²)
    assert by["lgbm"]["seconds_per_task"] == pytest.approx(8.0)  # twice the data, 2×


def test_unknown_workload_is_one_line(tmp_path) -> None:
    with pytest.raises(SercapError, match="unknown workload 'train'"):
        measure_scale(tmp_path, tmp_path / "w", workloads=["train"])


def _fake_timed(calls: list):
    def timed(workload, root, mode, workers, seed=0):
        calls.append((workload, root.name, mode, workers))
        assert (root / "sercap.duckdb").exists()  # a copy of the ingested template
        return Measurement(workload, mode, workers, {"1 process": 8.0}.get(mode, 5.0), 4)

    return timed


def test_cli_bench_scale_ingests_once_and_times_every_mode(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    import sercap.scale as scale
    from cli import main
    from tests.helpers import make_corpus

    manifest = make_corpus(tmp_path / "corpus")
    calls: list = []
    monkeypatch.setattr(scale, "timed_process", _fake_timed(calls))
    out = tmp_path / "scale.md"
    args = ["bench", "scale", "manifest", str(manifest), "--workloads", "extract",
            "--work-dir", str(tmp_path / "w"), "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, ["-w", str(tmp_path / "wh"), *args])
    assert result.exit_code == 0, result.output
    assert calls == [
        ("extract", "1-process", "1 process", 2),
        ("extract", "pool", "pool", 2),
        ("extract", "local2", "local:2", 2),
    ]
    assert re.search(r"\b1\.60?\b", result.output)  # the cluster's speed-up: 8 s / 5 s
    assert "| extract | local:2 | 2 | 4 | 5.0 | 5.00 | 1.60× | 0.500 |" in out.read_text()
    assert not (tmp_path / "wh").exists()  # -w is not touched


def test_cli_bench_scale_refuses_bad_workloads_in_one_line(tmp_path) -> None:
    from click.testing import CliRunner

    from cli import main

    for workloads, message in (("bench", "needs the extract workload"),
                               ("extract,train", "unknown workload 'train'")):  # fmt: skip
        result = CliRunner().invoke(
            main, ["bench", "scale", "emodb", str(tmp_path), "--workloads", workloads]
        )
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_the_seed_reaches_the_timed_process(tmp_path, monkeypatch) -> None:
    """`bench scale --seed 5` stored its runs with seed 0: the timed process never got it."""
    import sercap.scale as scale

    seen: list = []
    monkeypatch.setattr(
        scale, "run_timed", lambda argv, what: (seen.append(argv), (1.0, '{"tasks": 3}'))[1]
    )
    scale.timed_process("bench", tmp_path, "1-process", 1, seed=5)
    ran: list = []
    monkeypatch.setattr(scale, "run_one", lambda *a: ran.append(a) or 3)
    scale.main(seen[0][3:])  # what the new process is given
    assert ran == [("bench", tmp_path, "1-process", 1, 5)]


def test_rounds_interleave_the_modes_and_cells_are_medians(tmp_path, monkeypatch) -> None:
    """One run per cell, mode after mode, left drift between modes in every ratio."""
    import sercap.scale as scale

    clock = iter([9.0, 5.0, 4.0, 7.0, 3.0, 6.0, 8.0, 4.0, 5.0])  # in call order
    calls: list = []

    def timed(workload, root, mode, workers, seed=0):
        calls.append(mode)
        return Measurement(workload, mode, workers, next(clock), 4)

    monkeypatch.setattr(scale, "timed_process", timed)
    template = tmp_path / "t"
    template.mkdir()
    measured = scale.measure_scale(template, tmp_path / "w", workloads=["extract"], repeat=3)
    assert calls == ["1 process", "pool", "local:2"] * 3  # round by round
    assert [(m.mode, m.runs, m.seconds) for m in measured] == [
        ("1 process", (9.0, 7.0, 8.0), 8.0),
        ("pool", (5.0, 3.0, 4.0), 4.0),
        ("local:2", (4.0, 6.0, 5.0), 5.0),
    ]
