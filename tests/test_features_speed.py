"""The extraction speed benchmark: it times what it says, on the signals it is given."""

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from sercap.features.speed import bench_extraction, load_signals, naive_librosa
from tests.helpers import SR, make_corpus, voice


def test_bench_extraction_table() -> None:
    signals = [voice(0.5, 150 + 20 * i, i) for i in range(3)]
    table = bench_extraction(signals, jobs=1, opensmile=False, naive=True)
    names = table["extractor"].to_list()
    assert names == [
        "sercap default: descriptors",
        "sercap default: SQL functionals",
        "sercap default: end to end",
        "librosa, each function on the waveform",
    ]
    rows = {r["extractor"]: r for r in table.iter_rows(named=True)}
    assert rows["sercap default: descriptors"]["dims"] == 158
    assert rows["sercap default: end to end"]["dims"] == 2853
    assert rows["librosa, each function on the waveform"]["vs_reference"] == 1.0
    end = rows["sercap default: end to end"]["seconds"]
    parts = rows["sercap default: descriptors"]["seconds"]
    parts += rows["sercap default: SQL functionals"]["seconds"]
    assert end == pytest.approx(parts, abs=0.02)
    assert all(x > 0 for x in table["x_realtime"])
    assert table["reference"][0] == "librosa, each function on the waveform"


def test_naive_baseline_is_mean_and_std_of_each_function() -> None:
    out = naive_librosa(voice(0.5, 150, 0), SR)
    assert out.ndim == 1 and out.size == 2 * (40 + 128 + 12 + 7 + 1 + 1 + 1 + 1 + 1 + 1 + 1)
    assert np.isfinite(out).all()


def test_load_signals_skips_unreadable(tmp_path) -> None:
    manifest = make_corpus(tmp_path / "c")
    root = manifest.parent
    items = [("a", str(root / "good1.wav"), None, None), ("b", str(root / "x.wav"), None, None)]
    signals, problems = load_signals(items, SR)
    assert len(signals) == 1 and problems == ["b: audio file not found"]


def test_cli_bench_extract(tmp_path) -> None:
    manifest = make_corpus(tmp_path / "corpus")
    runner = CliRunner()
    w = ["-w", str(tmp_path / "wh")]
    runner.invoke(main, [*w, "ingest", "manifest", str(manifest)])
    out = tmp_path / "speed.csv"
    args = [*w, "bench", "extract", "--limit", "3", "--jobs", "2", "--no-naive"]
    args += ["--view", "computation", "--out", str(out)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "sercap default: end to end, 2 jobs" in result.output
    # with no librosa loop (and openSMILE, if it is not installed) it said "relative to None"
    assert "relative to None" not in result.output
    assert "vs_reference: " in result.output
    assert out.read_text().startswith("extractor,")
