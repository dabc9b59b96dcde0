"""The CLI as a user meets it: commands, tables, one-line errors, no tracebacks."""

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from cli import main
from sercap.warehouse import connect
from tests.helpers import add_corpus, add_features


@pytest.fixture
def toy_dir(tmp_path: Path) -> Path:
    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=4, per_class=4))
    wh.close()
    return tmp_path / "wh"


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and pattern in lines[-1], result.output
    assert "Traceback" not in result.output


def test_sql_table_csv_json_and_out(toy_dir: Path, tmp_path: Path) -> None:
    q = "SELECT speaker, count(*) AS n FROM utterances GROUP BY ALL ORDER BY 1"
    table = run("-w", toy_dir, "sql", q)
    assert table.exit_code == 0 and "speaker" in table.output and "(4 rows)" in table.output
    csv = run("-w", toy_dir, "sql", q, "--format", "csv")
    assert csv.output.splitlines()[:2] == ["speaker,n", "01,12"]
    rows = json.loads(run("-w", toy_dir, "sql", q, "--format", "json").output)
    assert rows[0] == {"speaker": "01", "n": 12}
    out = tmp_path / "x.parquet"
    assert run("-w", toy_dir, "sql", q, "--out", out).exit_code == 0
    assert pl.read_parquet(out).height == 4
    _one_line_error(run("-w", toy_dir, "sql", q, "--out", tmp_path / "x.xlsx"), "unknown output")


def test_sql_error_is_one_line(toy_dir: Path) -> None:
    _one_line_error(run("-w", toy_dir, "sql", "SELECT * FROM nowhere"), "nowhere")
    _one_line_error(run("-w", toy_dir, "sql", "SELEC 1"), "syntax error")


def test_sql_is_read_only_unless_asked(toy_dir: Path) -> None:
    _one_line_error(run("-w", toy_dir, "sql", "DELETE FROM labels"), "read-only")
    assert "(48 in all)" in run("-w", toy_dir, "sql", "SELECT * FROM labels", "--limit", "1").output
    assert run("-w", toy_dir, "sql", "DELETE FROM labels", "--write").exit_code == 0
    assert "(0 rows)" in run("-w", toy_dir, "sql", "SELECT * FROM labels").output


def test_reading_commands_do_not_create_a_warehouse(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    for command in (["runs"], ["info"], ["sql", "SELECT 1"], ["runs", "show", "x"]):
        _one_line_error(run("-w", typo, *command), "no warehouse here yet")
    assert not typo.exists()


def test_output_folder_that_does_not_exist_is_one_line(toy_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "x.csv"
    _one_line_error(run("-w", toy_dir, "sql", "SELECT 1 AS a", "--out", out), "missing")


def test_info_lists_corpora_and_runs(toy_dir: Path) -> None:
    out = run("-w", toy_dir, "info").output
    assert "toy" in out and "emodb7" in out and "ang" in out


def test_train_prints_metrics_and_stores_the_run(toy_dir: Path) -> None:
    result = run("-w", toy_dir, "train", "svm", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "UA" in result.output and "true\\pred" in result.output
    wh = connect(toy_dir)
    runs = wh.query("SELECT * FROM runs")
    assert runs.height == 1 and runs["model"][0] == "svm" and runs["seed"][0] == 1
    n = wh.scalar("SELECT count(*) FROM predictions")
    assert n == 48
    # every prediction was made by a model that did not see the speaker
    folds = wh.query("SELECT DISTINCT fold FROM predictions")["fold"].to_list()
    assert sorted(folds) == ["01", "02", "03", "04"]
    run_id = runs["run_id"][0]
    wh.close()
    listing = run("-w", toy_dir, "runs")
    assert run_id in listing.output
    shown = run("-w", toy_dir, "runs", "show", run_id[:-2])
    assert shown.exit_code == 0 and "macro-F1" in shown.output


def test_runs_are_reproducible_for_a_seed(toy_dir: Path) -> None:
    for _ in range(2):
        assert run("-w", toy_dir, "train", "rf", "--params", '{"n_estimators": 20}').exit_code == 0
    wh = connect(toy_dir)
    a, b = wh.query("SELECT run_id FROM runs ORDER BY started_at")["run_id"].to_list()
    pa = wh.query("SELECT proba FROM predictions WHERE run_id = ? ORDER BY utt_id", [a])
    pb = wh.query("SELECT proba FROM predictions WHERE run_id = ? ORDER BY utt_id", [b])
    assert pa["proba"].to_list() == pb["proba"].to_list()
    wh.close()


def test_train_bad_arguments_are_one_line(toy_dir: Path, tmp_path: Path) -> None:
    _one_line_error(run("-w", toy_dir, "train", "nope"), "unknown model 'nope'")
    _one_line_error(run("-w", toy_dir, "train", "svm", "--labels", "iemocap4"), "is for iemocap")
    _one_line_error(run("-w", toy_dir, "train", "svm", "--params", "{bad"), "not valid JSON")
    _one_line_error(run("-w", toy_dir, "train", "svm", "--params", '{"nope": 1}'), "nope")
    _one_line_error(run("-w", toy_dir, "train", "svm", "--tuned"), "sercap tune svm")
    _one_line_error(run("-w", toy_dir, "train", "lstm"), "sercap extract")
    _one_line_error(run("-w", toy_dir, "train", "cnn"), "sercap images")
    _one_line_error(run("-w", tmp_path / "empty", "train", "svm"), "sercap ingest")
    _one_line_error(run("-w", toy_dir, "runs", "show", "zzz"), "no run 'zzz'")


def test_help_explains_every_command() -> None:
    for command in ("sql", "info", "train", "runs", "tune"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_sigint_during_the_first_ingest_leaves_a_consistent_warehouse(tmp_path: Path) -> None:
    """Real SIGINTs while the first `ingest` creates a new warehouse (schema, then rows):
    exit 130 in one line, never a half-created schema; `info` then works (or says there is
    no warehouse yet), and a rerun ingests everything once."""
    from tests.test_extract import _voice_manifest, assert_one_line_interrupt, sigint_when

    manifest = _voice_manifest(tmp_path / "corpus", 12, 0.3)
    for k, delay in enumerate((0.0, 0.05, 0.15, 0.4, 0.8)):
        wh_dir = tmp_path / f"wh{k}"
        db = wh_dir / "sercap.duckdb"
        code, err = sigint_when(["-w", wh_dir, "ingest", "manifest", manifest], db.exists, delay)
        assert_one_line_interrupt(code, err)
        info = CliRunner().invoke(main, ["-w", str(wh_dir), "info"])
        assert "schema version differs" not in info.output, info.output
        assert "Traceback" not in info.output
        assert info.exit_code == 0 or "no warehouse here yet" in info.output, info.output
        again = run("-w", wh_dir, "ingest", "manifest", manifest)
        assert again.exit_code == 0, again.output
        with connect(wh_dir, read_only=True) as wh:
            assert wh.scalar("SELECT count(*) FROM utterances") == 12
            assert wh.scalar("SELECT count(DISTINCT path) FROM utterances") == 12
        assert run("-w", wh_dir, "info").exit_code == 0
