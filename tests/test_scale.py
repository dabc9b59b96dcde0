"""bench scale's table and the projection of a nested tuning (pure functions)."""

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
    ]
    table = scale_table(ms, load=1.5)
    rows = {r["mode"]: r for r in table.iter_rows(named=True)}
    assert rows["1 process"]["speed_up"] == 1.0 and rows["1 process"]["overhead_per_task_s"] == 0
    assert rows["local:4"]["speed_up"] == pytest.approx(40 / 12, abs=0.01)
    # 4 workers × 12 s = 48 worker-seconds for 40 s of serial work: 8 s over 20 tasks
    assert rows["local:4"]["overhead_per_task_s"] == pytest.approx(0.4)
    assert rows["pool"]["overhead_per_task_s"] == pytest.approx(2.0)
    text = table_markdown(table)
    assert "| bench | local:4 | 4 | 20 | 12.0 | 3.33× | 0.400 |" in text
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
