"""The one-command demo and the bench command, end to end on a minimal synthetic corpus."""

from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from cli import main
from sercap.demo import guess_kind
from sercap.errors import SercapError
from sercap.store import connect


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--dir", str(out), "--sessions", "2", "--per-speaker", "10",
            "--models", "svm,rf,dnn,cnn", "--jobs", "1"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "report:" in result.stdout and "avg(" in result.stdout
    assert "each ensemble minus its best member" in result.stderr
    assert "protocol leave-one-session-out" in result.stdout
    assert "labels iemocap4 (ang, hap, neu, sad)" in result.stdout
    assert "no speaker normalisation" in result.stdout
    assert "utterance_features is plain SQL" in result.stderr and "f0_mean_hz" in result.stderr
    report = (out / "report" / "report.md").read_text()
    assert "## Results" in report and "leave-one-session-out" in report
    for section in ("| vs best (95% CI, jointly) |", "## Fairness", "(coverage.png)",
                    "(importance-descriptor.png)", "(importance-functional.png)"):  # fmt: skip
        assert section in report, section
    wh = connect(out / "warehouse", read_only=True)
    runs = wh.query("SELECT model, kind, ua FROM runs")
    assert sorted(runs.filter(pl.col("kind") == "model")["model"]) == ["cnn", "dnn", "rf", "svm"]
    assert runs.filter(pl.col("kind") == "ensemble").height >= 1
    assert runs["ua"].is_between(0, 1).all()
    wh.close()
    # Rerunning reuses the stored corpus and features: nothing is extracted twice.
    again = CliRunner().invoke(main, args[:-4] + ["--models", "svm", "--jobs", "1"])
    assert again.exit_code == 0, again.output
    assert "0 extracted" in again.stderr
    # --resume (after an interrupted demo) takes the stored models instead of fitting them
    with connect(out / "warehouse", read_only=True) as wh:
        before = wh.scalar("SELECT count(*) FROM runs WHERE kind = 'model'")
    resumed = CliRunner().invoke(main, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    with connect(out / "warehouse", read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM runs WHERE kind = 'model'") == before


@pytest.mark.slow
def test_bench_command_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "--dir", str(out), "--sessions", "2", "--per-speaker",
                                 "8", "--models", "svm", "--jobs", "1"])  # fmt: skip
    assert first.exit_code == 0, first.output
    wh_dir = out / "warehouse"
    result = runner.invoke(main, ["-w", str(wh_dir), "bench", "svm", "lgbm", "--ensemble",
                                  "--out", str(tmp_path / "b")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "avg(svm+lgbm)" in result.stdout
    assert "protocol leave-one-session-out" in result.stdout
    assert "each ensemble minus its best member" in result.stdout
    assert any(line.startswith("avg(svm+lgbm): ") for line in result.stdout.splitlines())
    assert "each ensemble minus its best member" in (tmp_path / "b" / "bench.md").read_text()
    normed = runner.invoke(main, ["-w", str(wh_dir), "bench", "svm", "--speaker-norm",
                                  "--out", str(tmp_path / "n")])  # fmt: skip
    assert normed.exit_code == 0, normed.output
    assert "speaker normalisation in every row" in normed.stdout
    assert pl.read_csv(tmp_path / "b" / "bench.csv").height == 3
    bad = runner.invoke(main, ["-w", str(wh_dir), "bench", "nope"])
    assert bad.exit_code == 1 and "unknown model 'nope'" in bad.output


def test_guess_kind(tmp_path: Path) -> None:
    (tmp_path / "ravdess" / "Actor_01").mkdir(parents=True)
    assert guess_kind(tmp_path / "ravdess") == "ravdess"
    (tmp_path / "emodb" / "wav").mkdir(parents=True)
    (tmp_path / "emodb" / "wav" / "03a01Fa.wav").touch()
    assert guess_kind(tmp_path / "emodb") == "emodb"
    with pytest.raises(SercapError, match="pass --kind / kind="):
        guess_kind(tmp_path)


def test_a_demo_whose_corpus_cannot_be_read_leaves_no_warehouse(tmp_path: Path) -> None:
    """A failed `demo --corpus-dir … --kind emodb` left demo/warehouse/sercap.duckdb."""
    (tmp_path / "empty").mkdir()
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        main,
        ["demo", "--dir", str(out), "--corpus-dir", str(tmp_path / "empty"), "--kind", "emodb"],
    )
    assert result.exit_code == 1 and "no .wav files" in result.output
    assert not out.exists()
