"""The CLI as a user meets it: commands, tables, one-line errors, no tracebacks."""

import json
from pathlib import Path

import click
import polars as pl
import pytest
from click.testing import CliRunner

from cli import main
from sercap.errors import SercapError
from sercap.store import connect
from tests.helpers import add_corpus, add_features, make_corpus


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


def test_sql_table_shows_the_limit_and_counts_every_row(toy_dir: Path) -> None:
    """The table shows --limit rows and the result's full count; csv still gives all."""
    q = "SELECT utt_id FROM utterances ORDER BY utt_id"
    table = run("-w", toy_dir, "sql", q, "--limit", "5")
    lines = table.output.splitlines()
    assert table.exit_code == 0 and len(lines) == 2 + 5 + 1, table.output
    assert lines[-1] == "… 43 more rows (48 in all)"
    csv = run("-w", toy_dir, "sql", q, "--format", "csv")
    assert len(csv.output.splitlines()) == 1 + 48
    two = run("-w", toy_dir, "sql", f"{q}; SELECT 1 AS a", "--limit", "2").output
    assert "… 46 more rows (48 in all)" in two and "(1 row)" in two


def test_sql_table_error_past_the_first_batch_is_one_line(toy_dir: Path) -> None:
    late = "SELECT CASE WHEN range = 3000 THEN 'x' ELSE '1' END::INT AS v FROM range(5000)"
    for fmt in ("table", "csv"):
        result = run("-w", toy_dir, "sql", late, "--format", fmt)
        _one_line_error(result, "Conversion Error: Could not convert string 'x' to INT32")
        assert "LINE 1" not in result.output


def test_a_date_python_cannot_hold_is_printed_as_duckdb_writes_it(toy_dir: Path) -> None:
    """An infinite timestamp or date made polars panic while the table, CSV or JSON was
    written: first a PanicException traceback, then a Rust stack trace before an error
    line. They are printed as DuckDB writes them, beside ordinary values."""
    query = (
        "SELECT TIMESTAMP 'infinity' AS t, DATE '-infinity' AS d, 1 AS x "
        "UNION ALL SELECT TIMESTAMP '2021-03-04 05:06:07', DATE '2022-01-01', 2 ORDER BY x"
    )
    # TIMESTAMP_S: DuckDB's own conversion turned its infinity into 1969-12-31 23:59:59
    seconds = CliRunner().invoke(
        main, ["-w", str(toy_dir), "sql", "SELECT '-infinity'::TIMESTAMP_S AS s"]
    )
    assert seconds.exit_code == 0 and "-infinity" in seconds.output, seconds.output
    assert "1970" not in seconds.output and "1969" not in seconds.output
    for fmt, first, second in (
        ("table", "infinity", "2021-03-04 05:06:07"),
        ("csv", "infinity,-infinity,1", "2021-03-04 05:06:07"),
        ("json", '"t": "infinity"', '"t": "2021-03-04 05:06:07'),
    ):
        result = CliRunner().invoke(main, ["-w", str(toy_dir), "sql", query, "--format", fmt])
        assert result.exit_code == 0, result.output
        assert first in result.output and second in result.output and "-infinity" in result.output


def test_dates_python_cannot_hold_inside_lists_and_structs_are_printed(toy_dir: Path) -> None:
    """Inside a list, struct or map, an infinite date still reached Python: polars panicked
    (a Rust stack trace, then an error line). They print as DuckDB writes them, and JSON
    keeps the arrays and objects."""
    query = (
        "SELECT ['infinity'::DATE, DATE '2020-01-02'] AS d, "
        "{'at': '-infinity'::TIMESTAMP, 'n': 1, 't': TIME '10:00:00'} AS s, "
        "MAP {'k': ['infinity'::DATE]} AS m"
    )
    for fmt, expected in (
        ("table", ["[infinity, 2020-01-02]", "{'at': '-infinity', 'n': 1, 't': '10:00:00'}"]),
        ("csv", ["infinity", "2020-01-02", "-infinity"]),
        ("json", ['"d": [\n   "infinity",', '"at": "-infinity"', '"k": [\n    "infinity"']),
    ):
        result = CliRunner().invoke(main, ["-w", str(toy_dir), "sql", query, "--format", fmt])
        assert result.exit_code == 0, result.output
        for text in expected:
            assert text in result.output, (fmt, result.output)


def test_a_polars_panic_is_an_error_line_not_a_traceback(toy_dir: Path, monkeypatch) -> None:
    """A Rust panic is a BaseException (pyo3_runtime.PanicException): it was a traceback."""

    class PanicException(BaseException):
        pass

    def panic(*args, **kwargs):
        raise PanicException("out-of-range date")

    monkeypatch.setattr("sercap.format.format_table", panic)
    result = CliRunner().invoke(main, ["-w", str(toy_dir), "sql", "SELECT 1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith("error: polars cannot hold a value")
    assert result.output.rstrip().endswith("CAST(col AS VARCHAR)")


def test_sql_error_is_one_line(toy_dir: Path) -> None:
    _one_line_error(run("-w", toy_dir, "sql", "SELECT * FROM nowhere"), "nowhere")
    _one_line_error(run("-w", toy_dir, "sql", "SELEC 1"), "syntax error")
    # DuckDB's own suggestion is kept (only its first line was)
    _one_line_error(
        run("-w", toy_dir, "sql", "SELECT * FROM utterance_featurs"),
        'did you mean "utterance_features"?',
    )
    _one_line_error(
        run("-w", toy_dir, "sql", "SELECT speakr FROM utterances"), 'candidate bindings: "speaker"'
    )
    # an empty query was named as the Python API's argument ("sql_statements: query=''")
    for empty in ("", "  "):
        _one_line_error(run("-w", toy_dir, "sql", empty), "QUERY is empty; give SQL statements")


def test_an_ambiguous_run_prefix_lists_the_runs_it_matches(toy_dir: Path) -> None:
    """`runs show svm` said only "'svm' matches 2 runs; give more of the id"."""
    import sercap

    with sercap.connect(toy_dir) as wh:
        ids = sorted(sercap.train(wh, "svm").run_id for _ in range(2))
    shown = run("-w", toy_dir, "runs", "show", "svm").output
    assert "matches 2 runs (" in shown and all(i in shown for i in ids), shown


def test_sql_is_read_only_unless_asked(toy_dir: Path) -> None:
    _one_line_error(run("-w", toy_dir, "sql", "DELETE FROM labels"), "read-only")
    assert "(48 in all)" in run("-w", toy_dir, "sql", "SELECT * FROM labels", "--limit", "1").output
    assert run("-w", toy_dir, "sql", "DELETE FROM labels", "--write").exit_code == 0
    assert "(0 rows)" in run("-w", toy_dir, "sql", "SELECT * FROM labels").output


def test_reading_commands_do_not_create_a_warehouse(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    for command in (["runs"], ["info"], ["sql", "SELECT 1"], ["runs", "show", "x"]):
        _one_line_error(run("-w", typo, *command), f"no warehouse at {typo}")
    assert not typo.exists()


def test_output_folder_that_does_not_exist_is_one_line(toy_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "x.csv"
    _one_line_error(run("-w", toy_dir, "sql", "SELECT 1 AS a", "--out", out), "missing")


def test_out_into_the_warehouse_is_refused_and_changes_no_byte(toy_dir: Path) -> None:
    """`sql "SELECT 1" --out PART` replaced a registered 742 kB part with 531 bytes: a
    read-only command damaged the warehouse. Anything among its files is refused, before
    a byte is written; reports/ (where sercap's own reports go) stays allowed."""
    import hashlib

    def snapshot() -> dict[str, str]:
        return {
            str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(toy_dir.rglob("*"))
            if p.is_file()
        }

    part = next((toy_dir / "features").rglob("part-*.parquet"))
    before = snapshot()
    for target in (part, part.parent / "new.parquet", toy_dir / "artifacts" / "x.csv"):
        result = run("-w", toy_dir, "sql", "SELECT 1 AS a", "--out", target)
        _one_line_error(result, "not written: it is in the warehouse's")
    report = run("-w", toy_dir, "report", "--out", toy_dir / "features" / "r", "--no-importance")
    _one_line_error(report, "not written: it is in the warehouse's features/ folder")
    for command in (("bench", "sql"), ("images", "show", "u000", "--raw")):  # before any work
        refused = run("-w", toy_dir, *command, "--out", part)
        _one_line_error(refused, "not written: it is in the warehouse's features/ folder")
        assert len([line for line in refused.output.splitlines() if line.strip()]) == 1
    wal = run("-w", toy_dir, "sql", "SELECT 1 AS a", "--out", toy_dir / "sercap.duckdb.wal")
    _one_line_error(wal, "unknown output format")  # and, were it .csv: the catalog's log
    assert snapshot() == before
    allowed = toy_dir / "reports" / "q.csv"
    toy_dir.joinpath("reports").mkdir(exist_ok=True)
    assert run("-w", toy_dir, "sql", "SELECT 1 AS a", "--out", allowed).exit_code == 0
    assert allowed.is_file()


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
    # `bench --all --ensemble` is `bench models …`: `bench --help` shows those options too
    shown = run("bench", "--help").output
    assert "Options of `bench models`" in shown and "--ensemble" in shown and "--all" in shown
    assert shown.count("--help") == 1


# ---- issue 10: `sql` without --write changes nothing; waiting for a lock is said once
def _snapshot(warehouse: Path) -> dict[str, str]:
    """sha256 of every file under the warehouse, by relative path."""
    import hashlib

    return {
        p.relative_to(warehouse).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(warehouse.rglob("*"))
        if p.is_file()
    }


def _counts(warehouse: Path) -> dict[str, int]:
    with connect(warehouse, read_only=True) as wh:
        return {
            t: wh.scalar(f"SELECT count(*) FROM {t}")
            for t in ("utterances", "labels", "utterance_features")
        }


def _refused_and_unchanged(toy_dir: Path, query: str, kind: str) -> None:
    before, counts = _snapshot(toy_dir), _counts(toy_dir)
    result = run("-w", toy_dir, "sql", query)
    _one_line_error(result, "--write")
    assert f"of type {kind}" in result.output and "nothing was run" in result.output
    assert _snapshot(toy_dir) == before
    assert _counts(toy_dir) == counts == {"utterances": 48, "labels": 48, "utterance_features": 48}


def test_sql_copy_over_a_part_is_refused(toy_dir: Path) -> None:
    (part,) = (toy_dir / "features").rglob("*.parquet")
    _refused_and_unchanged(
        toy_dir, f"COPY (SELECT 1 AS x) TO '{part}' (FORMAT parquet, USE_TMP_FILE false)", "COPY"
    )


def test_sql_copy_partition_overwrite_is_refused(toy_dir: Path) -> None:
    _refused_and_unchanged(
        toy_dir,
        f"COPY (SELECT 1 AS x, 'a' AS p) TO '{toy_dir / 'features'}' "
        "(FORMAT parquet, PARTITION_BY (p), OVERWRITE 1)",
        "COPY",
    )


def test_sql_attach_use_detach_delete_is_refused(toy_dir: Path, tmp_path: Path) -> None:
    query = (
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS m (READ_WRITE); USE m; DETACH sercap; "
        f"ATTACH '{toy_dir / 'sercap.duckdb'}' AS s (READ_WRITE); DELETE FROM s.labels"
    )
    _refused_and_unchanged(toy_dir, query, "ATTACH")
    assert not (tmp_path / "other.duckdb").exists()


def test_sql_statement_types_not_listed_are_refused(toy_dir: Path, tmp_path: Path) -> None:
    for query, kind in [
        ("SELECT 1; INSTALL httpfs", "LOAD"),
        ("LOAD parquet", "LOAD"),
        ("SET threads = 1", "SET"),
        ("CHECKPOINT", "CALL"),
        ("CALL checkpoint()", "CALL"),
        (f"EXPORT DATABASE '{tmp_path}/export'", "EXPORT"),
        (f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp_path}/x.csv'", "EXPLAIN"),
        ("CREATE TEMP VIEW v AS SELECT 1", "CREATE"),
    ]:
        _refused_and_unchanged(toy_dir, query, kind)
    assert not (tmp_path / "export").exists() and not (tmp_path / "x.csv").exists()


def test_sql_read_only_reaches_no_file_but_the_parts(toy_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    _one_line_error(run("-w", toy_dir, "sql", f"SELECT * FROM read_csv('{outside}')"), "--write")
    logs = tmp_path / "logs"
    query = f"SELECT * FROM enable_logging(storage = 'file', storage_path = '{logs}')"
    assert run("-w", toy_dir, "sql", query).exit_code == 1 and not logs.exists()
    # the views over the Parquet parts stay readable behind the fence
    query = "SELECT count(*) AS n FROM utterance_features"
    ok = run("-w", toy_dir, "sql", query, "--format", "csv")
    assert ok.exit_code == 0 and ok.output.splitlines() == ["n", "48"]
    query = f"SELECT * FROM read_csv('{outside}')"
    assert run("-w", toy_dir, "sql", query, "--write").exit_code == 0


def test_sql_prints_every_statement(toy_dir: Path, tmp_path: Path) -> None:
    query = "SELECT 11 AS first_one; SELECT count(*) AS n_labels FROM labels"
    table = run("-w", toy_dir, "sql", query)
    assert table.exit_code == 0
    assert "statement 1 of 2" in table.output and "first_one" in table.output
    assert "statement 2 of 2" in table.output and "n_labels" in table.output
    csv = run("-w", toy_dir, "sql", query, "--format", "csv")
    assert "last of 2 statements" in csv.stderr and csv.stdout.splitlines() == ["n_labels", "48"]
    out = tmp_path / "r.csv"
    wrote = run("-w", toy_dir, "sql", query, "--out", out)
    assert "last of 2 statements" in wrote.output and out.read_text().splitlines()[0] == "n_labels"
    # --write still runs everything, in order, in one call
    query = "CREATE TABLE scratch AS SELECT 1 AS a; INSERT INTO scratch VALUES (2); FROM scratch"
    assert "(2 rows)" in run("-w", toy_dir, "sql", query, "--write").output


def test_sql_write_applies_every_statement_or_none(toy_dir: Path) -> None:
    """Autocommit kept the DELETE when the INSERT after it failed: the labels were gone."""
    query = "DELETE FROM labels; INSERT INTO labels SELECT * FROM nowhere"
    failed = run("-w", toy_dir, "sql", query, "--write")
    _one_line_error(failed, "none of the 2 statements was applied (they run as one transaction)")
    count = "SELECT count(*) AS n FROM labels"
    assert run("-w", toy_dir, "sql", count, "--format", "csv").output.split() == ["n", "48"]
    # all of them are applied when none fails (the CLI took every result but never asked
    # for the end of the statements, and the transaction was rolled back: nothing stored)
    query = "CREATE TABLE both_1 AS SELECT 1 AS a; CREATE TABLE both_2 AS SELECT 2 AS b"
    assert run("-w", toy_dir, "sql", query, "--write").exit_code == 0
    tables = "SELECT count(*) AS n FROM duckdb_tables() WHERE table_name LIKE 'both_%'"
    assert run("-w", toy_dir, "sql", tables, "--format", "csv").output.split() == ["n", "2"]
    # a CHECKPOINT cannot share a transaction that changed anything: such a query runs as
    # written, statement by statement (it failed: "Cannot CHECKPOINT")
    query = "CREATE OR REPLACE TABLE notes AS SELECT 1 AS a; CHECKPOINT"
    assert run("-w", toy_dir, "sql", query, "--write").exit_code == 0
    # a query with its own BEGIN / COMMIT runs as written
    query = "BEGIN; CREATE TABLE mine AS SELECT 1 AS a; COMMIT; FROM mine"
    assert "(1 row)" in run("-w", toy_dir, "sql", query, "--write").output
    assert "(1 row)" in run("-w", toy_dir, "sql", "FROM mine").output


_HOLD = """
import sys, time
from sercap.errors import SercapError
from sercap.store import connect
wh = connect(sys.argv[1], read_only=sys.argv[3:] == ["read-only"])
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
wh.close()
"""


def _hold_lock(warehouse: Path, seconds: float, *how: str):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(warehouse), str(seconds), *how],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert holder.stdout.readline().strip() == "ready"
    return holder


def test_waiting_for_a_lock_says_so_once(toy_dir: Path) -> None:
    holder = _hold_lock(toy_dir, 3.5)  # released while `sql` waits: it then goes on
    try:
        result = run("-w", toy_dir, "sql", "SELECT count(*) AS n FROM labels", "--format", "csv")
    finally:
        holder.wait(timeout=30)
    assert result.exit_code == 0 and result.stdout.splitlines() == ["n", "48"]
    waits = [line for line in result.stderr.splitlines() if line.startswith("waiting")]
    assert len(waits) == 1 and f"PID {holder.pid}" in waits[0], result.stderr


def test_giving_up_on_a_lock_after_one_waiting_line(toy_dir: Path, capsys) -> None:
    from sercap.errors import WarehouseBusyError

    holder = _hold_lock(toy_dir, 30)
    try:  # the README's kind: it was a plain SercapError
        pattern = f"in use by another process \\(PID {holder.pid}"
        with pytest.raises(WarehouseBusyError, match=pattern) as caught:
            connect(toy_dir, read_only=True, wait_s=0.5)
        # a notebook never finishes: the advice says what its owner must do
        assert "wh.close()" in caught.value.hint and "read_only=True" in caught.value.hint
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("waiting") and str(holder.pid) in lines[0]
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_blocked_by_a_reader_is_told_so(toy_dir: Path, capsys) -> None:
    """A reader blocks a writer too; the message said "while a process has it open for
    writing" and advised the reader to open it read-only, which it already had."""
    from sercap.errors import WarehouseBusyError

    holder = _hold_lock(toy_dir, 30, "read-only")
    try:
        with pytest.raises(WarehouseBusyError, match="even read-only") as caught:
            connect(toy_dir, wait_s=0.5)
        assert "read_only=True" not in caught.value.hint
    finally:
        holder.kill()
        holder.wait()
    capsys.readouterr()


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
        assert info.exit_code == 0 or "no warehouse at" in info.output, info.output
        again = run("-w", wh_dir, "ingest", "manifest", manifest)
        assert again.exit_code == 0, again.output
        with connect(wh_dir, read_only=True) as wh:
            assert wh.scalar("SELECT count(*) FROM utterances") == 12
            assert wh.scalar("SELECT count(DISTINCT path) FROM utterances") == 12
        assert run("-w", wh_dir, "info").exit_code == 0


def test_importing_the_entry_points_leaves_ctrl_c_alone() -> None:
    """`from cli import main` (as tests and notebooks do) installed the early handler in the
    importing process for good: a later Ctrl-C there printed sercap's line and exited."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = (
        "import signal; before = signal.getsignal(signal.SIGINT)\n"
        "import cli, sercap.__main__\n"
        "assert signal.getsignal(signal.SIGINT) is before, signal.getsignal(signal.SIGINT)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_ctrl_c_while_the_command_line_loads_is_one_line(tmp_path: Path) -> None:
    """SIGINT during imports and parsing: one line and exit 130 (was a traceback or
    click's `Aborted!` with status 1), and no warehouse is left half made."""
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    corpus = make_corpus(tmp_path / "corpus")
    entries = ([str(root / "cli.py")],) * 3 + (["-m", "sercap"],)  # the clone's, the package's
    for i, (delay, entry) in enumerate(zip((0.4, 0.7, 1.0, 0.7), entries, strict=True)):
        wh = tmp_path / f"wh{i}"
        proc = subprocess.Popen(
            [sys.executable, *entry, "-w", str(wh), "ingest", "manifest", str(corpus)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 130), (delay, proc.returncode, err)
        assert "Traceback" not in err and "Aborted!" not in err, (delay, err)
        if proc.returncode == 130:
            assert err.strip().splitlines() == [
                "interrupted: everything already stored is kept; rerun to resume"
            ], (delay, err)
        info = subprocess.run(
            [sys.executable, str(root / "cli.py"), "-w", str(wh), "info"],
            capture_output=True,
            text=True,
        )
        assert "Traceback" not in info.stderr, info.stderr


def test_ctrl_c_inside_a_weakref_callback_still_stops_the_command(tmp_path: Path) -> None:
    """A SIGINT whose handler runs where Python cannot raise (a weakref callback, like the
    module-lock callback of an import) was printed as "Exception ignored … Traceback" and the
    command went on to exit 0. Now it is delivered again: one line, exit 130, and the command
    stops there."""
    import subprocess
    import sys

    script = tmp_path / "weakref_sigint.py"
    script.write_text(
        "import os, signal, weakref\n"
        "import click\n"
        "from sercap.cli.group import _Group\n"
        "@click.group(cls=_Group)\n"
        "def g():\n"
        "    pass\n"
        "@g.command()\n"
        "def work():\n"
        "    class T:\n"
        "        pass\n"
        "    def cb(ref):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        for _ in range(100000):  # the handler runs here, inside the callback\n"
        "            pass\n"
        "    t = T()\n"
        "    r = weakref.ref(t, cb)\n"
        "    del t\n"
        "    import time\n"
        "    time.sleep(5)  # the command's work goes on\n"
        "    print('went on after the Ctrl-C', r)\n"
        "g(['work'])\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert "went on" not in proc.stdout, proc.stdout
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert proc.stderr.strip().splitlines() == [
        "interrupted: everything already stored is kept; rerun to resume"
    ], proc.stderr


def test_a_mistyped_warehouse_is_refused_and_never_created(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    for args in (["train", "svm"], ["extract"], ["predict", tmp_path / "a.wav", "--model", "svm"],
                 ["report"], ["ensemble", "x", "y"], ["bench", "sql"],
                 ["bench", "extract"]):  # fmt: skip
        _one_line_error(run("-w", typo, *args), f"no warehouse at {typo}")
    listed = run("-w", typo, "features", "list")  # built-in things show without one
    assert listed.exit_code == 0 and "default" in listed.output
    assert not typo.exists()


def test_extract_help_names_every_built_in_tabular_set() -> None:
    from sercap.features.featureset import builtin_names

    text = " ".join(run("extract", "--help").output.split())
    for name in builtin_names():
        assert (name in text) == (name not in builtin_names("image")), name


def test_predict_with_a_mistyped_model_lists_the_models(toy_dir: Path, tmp_path: Path) -> None:
    result = run("-w", toy_dir, "predict", tmp_path / "a.wav", "--model", "svn")
    _one_line_error(result, "unknown model 'svn'; choose one of: svm")
    _one_line_error(run("-w", toy_dir, "predict", tmp_path / "a.wav", "--model", "rf"), "train rf")


def test_tune_top_up_finishes_the_budget_of_an_interrupted_tuning(toy_dir: Path) -> None:
    """The same command resumed after Ctrl-C: with --top-up the studies end with --trials
    trials each (here 2), where plain --trials would have added 2 more."""
    import optuna

    from sercap.tuning import open_storage

    common = ("tune", "svm", "--pruner", "none", "--inner-folds", "2", "--no-final")
    assert run("-w", toy_dir, *common, "--trials", "1", "--fold", "01").exit_code == 0
    out = run("-w", toy_dir, *common, "--trials", "2", "--top-up")
    assert out.exit_code == 0 and "× 2 trials in all" in out.output, out.output
    (journal,) = (toy_dir / "studies").glob("*.journal")
    storage = open_storage(str(journal), toy_dir, "")
    counts = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
    assert sorted(counts.values()) == [2, 2, 2, 2], counts


def test_runs_of_a_corpus_or_model_that_does_not_exist_say_so(toy_dir: Path) -> None:
    """`runs --corpus nope` said "no runs match", as if the corpus existed."""
    _one_line_error(CliRunner().invoke(main, ["-w", str(toy_dir), "runs", "--corpus", "nope"]),
                    "no corpus 'nope'")  # fmt: skip
    _one_line_error(CliRunner().invoke(main, ["-w", str(toy_dir), "runs", "--model", "svmm"]),
                    "unknown model 'svmm'")  # fmt: skip
    # `--model ensemble` works, so the list of valid names includes it
    _one_line_error(CliRunner().invoke(main, ["-w", str(toy_dir), "runs", "--model", "svmm"]),
                    "early-fusion, ensemble")  # fmt: skip


def test_output_cut_short_by_its_reader_ends_quietly(toy_dir: Path) -> None:
    """`sercap … | head` printed "error: Broken pipe" (and exit 1) once head had enough."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    for command in (["sql", "SELECT * FROM range(20)"], ["info"]):
        proc = subprocess.Popen(
            [sys.executable, "cli.py", "-w", str(toy_dir), *command],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        proc.stdout.close()  # what head does once it has its lines (here: before any)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 141 and err == b"", err


def test_runs_show_a_column_pattern_beside_the_feature_set(toy_dir: Path) -> None:
    """A run on `--columns "^mfcc"` (UA far below the others) read as a default run."""
    import sercap

    assert run("-w", toy_dir, "train", "svm", "--columns", "^mfcc").exit_code == 0
    listing = run("-w", toy_dir, "runs", "--model", "svm").output.splitlines()
    assert "columns" in listing[0].split() and "^mfcc" in listing[2].split()
    with sercap.connect(toy_dir, read_only=True) as wh:  # the set's name stays its name
        assert sercap.runs(wh).select("feature_set", "columns").row(0) == ("default", "^mfcc")


def test_version_and_speaker_norm_read_alike_everywhere(toy_dir: Path) -> None:
    """`--version` said "cli.py, version …"; `info` showed speaker_norm True/False where
    `runs` shows spk_norm yes/no."""
    assert run("--version").output.startswith("sercap, version ")
    assert run("-w", toy_dir, "train", "svm").exit_code == 0
    info = run("-w", toy_dir, "info").output
    runs = run("-w", toy_dir, "runs").output
    header = next(line for line in info.splitlines() if line.startswith("run_id"))
    assert "spk_norm" in header and "spk_norm" in runs and "speaker_norm" not in header


def test_an_interrupted_tune_says_to_rerun_with_top_up() -> None:
    """Rerunning an interrupted `tune` as typed adds --trials to every study again, the
    finished ones too: the line says --top-up (other commands simply resume)."""
    from sercap.cli.group import _Group

    @click.group(cls=_Group)
    def g() -> None:
        pass

    @g.command("tune")
    def tune() -> None:
        raise KeyboardInterrupt

    @g.command("extract")
    def extract() -> None:
        raise KeyboardInterrupt

    @g.group("bench", invoke_without_command=True)
    def bench() -> None:  # its runs are kept, but a rerun fits them all again
        if click.get_current_context().invoked_subcommand is None:
            raise KeyboardInterrupt

    @bench.command("sql")
    def bench_sql() -> None:  # (it said "rerun with --resume", an option it has not)
        raise KeyboardInterrupt

    @g.command("report")
    def report() -> None:  # nothing of it is kept: "rerun to resume" promised what is not
        raise KeyboardInterrupt

    cases = (
        ("tune", "rerun with --top-up"),
        ("extract", "rerun to resume"),
        ("bench", "rerun with --resume to fit only the models not stored yet"),
        ("report", "the report is not written; run it again (--no-importance skips"),
    )
    for name, how in cases:
        result = CliRunner().invoke(g, [name])
        assert result.exit_code == 130 and how in result.output, (name, result.output)
    result = CliRunner().invoke(g, ["bench", "sql"])
    assert result.exit_code == 130 and "rerun to resume" in result.output, result.output
    assert "--resume" not in result.output


def test_a_bench_whose_report_cannot_be_written_stores_no_run(
    toy_dir: Path, tmp_path: Path
) -> None:
    """`bench svm --out /proc/x` trained and stored its runs, then failed on the report."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _one_line_error(run("-w", toy_dir, "bench", "svm", "--out", blocker / "report"),
                    "cannot create the report folder")  # fmt: skip
    with connect(toy_dir, read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM runs") == 0


def test_huge_numbers_are_one_line_not_a_traceback(toy_dir: Path) -> None:
    _one_line_error(run("-w", toy_dir, "sql", "SELECT 1", "--limit", "99999999999999999999"),
                    "a number too large")  # fmt: skip


def test_a_work_dir_of_the_users_is_refused_not_deleted(tmp_path: Path) -> None:
    """`bench scale --work-dir D` deleted D/template with the user's files in it."""
    from sercap.scale import fresh_copy

    mine = tmp_path / "work" / "template"
    mine.mkdir(parents=True)
    (mine / "thesis.txt").write_text("years of work")
    source = tmp_path / "wh"
    connect(source).close()
    with pytest.raises(SercapError, match="holds files but no sercap warehouse"):
        fresh_copy(source, mine)
    assert (mine / "thesis.txt").read_text() == "years of work"
    fresh_copy(source, tmp_path / "work" / "copy")  # a new folder, or an old copy: fine
    fresh_copy(source, tmp_path / "work" / "copy")


def test_a_report_refused_for_its_arguments_leaves_no_folder(
    toy_dir: Path, tmp_path, monkeypatch
) -> None:
    """`report --labels nope` left an empty reports/ folder; `--out ""` wrote two dozen
    files into the current folder."""
    _one_line_error(run("-w", toy_dir, "report", "--labels", "nope"), "label map")
    assert not (toy_dir / "reports").exists()
    monkeypatch.chdir(tmp_path)  # where an empty --out wrote its files
    empty = run("-w", toy_dir, "report", "--out", "")
    assert empty.exit_code == 2 and "an empty folder name" in empty.output, empty.output
    assert not (tmp_path / "report.md").exists()


def test_outputs_a_long_command_cannot_write_are_refused_before_the_work(
    toy_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """`bench sql --out x.txt` (and extract, scale) found the extension after all the
    timing; `images show --out x.txt` ended in matplotlib's traceback."""
    import sercap

    def no_work(*args, **kwargs):
        raise AssertionError("the work ran before the output was checked")

    for name in ("bench_sql", "bench_scale", "bench_extract"):
        monkeypatch.setattr(sercap, name, no_work)
    _one_line_error(run("-w", toy_dir, "bench", "sql", "--out", tmp_path / "x.txt"),
                    "unknown output format '.txt'")  # fmt: skip
    _one_line_error(run("-w", toy_dir, "bench", "extract", "--out", tmp_path / "no" / "x.csv"),
                    "no such folder")  # fmt: skip
    _one_line_error(run("bench", "scale", "emodb", tmp_path, "--out", tmp_path / "x.txt"),
                    "use .csv or .parquet or .md")  # fmt: skip
    _one_line_error(run("-w", toy_dir, "images", "show", "u1", "--out", tmp_path / "x.txt"),
                    "written as .png")  # fmt: skip


def test_every_example_in_the_help_names_real_commands_and_options() -> None:
    """The examples the help texts show parse: a renamed option cannot leave one behind."""
    import shlex

    import click

    def commands(group: click.Group, path: list[str]):
        for name, sub in group.commands.items():
            if isinstance(sub, click.Group):
                yield from commands(sub, [*path, name])
            else:
                yield [*path, name]

    seen = 0
    for path in commands(main, []):
        text = CliRunner().invoke(main, [*path, "--help"]).output.split("Options:")[0]
        for line in (line.strip() for line in text.splitlines()):
            if not line.startswith("sercap ") or "&&" in line:
                continue
            args = [a for a in shlex.split(line)[1:] if "*" not in a]
            result = CliRunner().invoke(main, [*args, "--help"])
            assert result.exit_code == 0 and "Usage:" in result.output, (line, result.output)
            seen += 1
    assert seen >= 30  # most commands show some


def test_a_ctrl_c_a_library_swallowed_still_ends_the_command_as_interrupted(
    toy_dir: Path, monkeypatch
) -> None:
    """A Ctrl-C during predict's per-file features came back from DuckDB or numba wrapped
    (`InvalidInputException: … failed: KeyboardInterrupt`), was recorded as that file's
    problem, and the command printed its table and exited 0."""
    import contextlib
    import os
    import signal

    import sercap
    from sercap._interrupt import is_interrupt

    real = sercap.info

    def swallowing(wh):
        # what the wrapped error amounted to: the Ctrl-C caught, and on with the work
        with contextlib.suppress(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        return real(wh)

    monkeypatch.setattr(sercap, "info", swallowing)
    result = CliRunner().invoke(main, ["-w", str(toy_dir), "info"])
    assert result.exit_code == 130
    assert result.output.rstrip().endswith("interrupted: everything already stored is kept; "
                                           "rerun to resume")  # fmt: skip
    import duckdb

    wrapped = duckdb.InvalidInputException(
        "Invalid Input Error: counting failed: KeyboardInterrupt"
    )
    assert is_interrupt(wrapped) and not is_interrupt(duckdb.InvalidInputException("x"))
    # an ordinary error that merely names the words is not a Ctrl-C (it printed "interrupted")
    monkeypatch.undo()
    for query in ("SELECT * FROM KeyboardInterrupt", "SELECT 'failed: KeyboardInterrupt'::INT"):
        _one_line_error(run("-w", toy_dir, "sql", query), "KeyboardInterrupt")
    assert not is_interrupt(RuntimeError("/data/interrupted/take2.wav: cannot open"))


def test_a_typo_in_the_model_name_does_not_wait_for_a_busy_warehouse(toy_dir: Path) -> None:
    """`train svn` during another process' write waited up to 60 s for the lock, then said
    "unknown model"."""
    import subprocess
    import sys
    import time

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(toy_dir), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        started = time.monotonic()
        result = run("-w", toy_dir, "train", "svn")
        assert time.monotonic() - started < 10
        _one_line_error(result, "unknown model 'svn'; choose one of: svm")
        assert "waiting" not in result.output
    finally:
        holder.kill()
        holder.wait()


def test_bench_says_a_line_per_model_where_no_bar_shows(toy_dir: Path, tmp_path: Path) -> None:
    """In a log file `bench` said nothing for minutes (only `demo` printed these lines),
    and its table showed fit times to four decimals."""
    result = run("-w", toy_dir, "bench", "svm", "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert any(line.startswith("    svm: UA ") for line in result.stderr.splitlines())
    row = next(line for line in result.stdout.splitlines() if line.startswith("svm "))
    fit = row.split()[6]
    assert len(fit.partition(".")[2]) <= 1, row


def test_tune_show_says_which_options_of_a_tuning_it_does_not_use(toy_dir: Path) -> None:
    """`tune svm --show --trials 5` showed the studies and dropped --trials without a word
    (and --seed, --params, which a shown study may not have been tuned with)."""
    tuned = run("-w", toy_dir, "tune", "svm", "--trials", "1", "--inner-folds", "2")
    assert tuned.exit_code == 0, tuned.output
    shown = run("-w", toy_dir, "tune", "svm", "--show", "--trials", "5", "--seed", "3")
    assert shown.exit_code == 0, shown.output
    assert "note: --show shows the stored studies and tunes nothing: --trials, --seed not used" in (
        shown.output
    )
    assert "not used" not in run("-w", toy_dir, "tune", "svm", "--show").output


def test_tune_show_writes_its_plot_where_told_and_shows_the_studies_where_it_cannot(
    toy_dir: Path, tmp_path: Path
) -> None:
    """`tune --show`, which only reads, wrote its plot into WAREHOUSE/reports/ with no way to
    put it elsewhere, and where that folder could not be written (a warehouse on a
    read-only disk) it printed the studies and then failed."""
    tuned = run("-w", toy_dir, "tune", "svm", "--trials", "1", "--inner-folds", "2")
    assert tuned.exit_code == 0, tuned.output
    shown = run("-w", toy_dir, "tune", "svm", "--show", "--out", tmp_path / "study.png")
    assert shown.exit_code == 0, shown.output
    assert (tmp_path / "study.png").stat().st_size > 0
    assert not (toy_dir / "reports").exists()
    (toy_dir / "reports").write_text("")  # a file where the folder would be: mkdir fails
    shown = run("-w", toy_dir, "tune", "svm", "--show")
    assert shown.exit_code == 0, shown.output
    assert "best" in shown.stdout and "note: the plot of the final study was not written" in (
        shown.stderr
    )
    _one_line_error(run("-w", toy_dir, "tune", "svm", "--out", tmp_path / "x.png"), "--out")
    # a file asked for and none to write: one line, not exit 0 without it
    (toy_dir / "reports").unlink()
    nested = tmp_path / "x.png" / "study.png"
    (tmp_path / "x.png").write_text("")
    _one_line_error(
        run("-w", toy_dir, "tune", "svm", "--show", "--out", nested), "cannot write the plot to"
    )
    partial = ["-w", toy_dir, "tune", "svm", "--study", "foo", "--trials", "1"]
    assert run(*partial, "--inner-folds", "2", "--no-final").exit_code == 0
    _one_line_error(
        run("-w", toy_dir, "tune", "svm", "--study", "foo", "--show", "--out", tmp_path / "f.png"),
        "no final study to plot",
    )


def test_tune_refuses_inputs_the_model_would_not_read_and_suggests_its_fixed_params(
    toy_dir: Path,
) -> None:
    """tune svm --image-set mel ran (train refused it), and its suggested train command
    carried it; a tuning with --params suggested a train without them, whose default run
    then differed by the fixed value and was read as 'tuning made it worse'."""
    _one_line_error(run("-w", toy_dir, "tune", "svm", "--image-set", "mel"),
                    "--image-set / image_set= does not apply to svm")  # fmt: skip
    out = run("-w", toy_dir, "tune", "svm", "--trials", "1", "--inner-folds", "2",
              "--params", '{"C": 2}', "--study", "fixed")  # fmt: skip
    assert """--params '{"C": 2}' --tuned --study fixed""" in out.output, out.output


def test_the_command_tune_suggests_scores_the_studies_it_made(toy_dir: Path) -> None:
    """After `tune svm --columns P` the line suggested `sercap train svm --tuned`, which
    left out --columns (and --labels, --target…) and so scored another tuning, or none."""
    import shlex

    out = run("-w", toy_dir, "tune", "svm", "--columns", "^mfcc_", "--trials", "1",
              "--inner-folds", "2")  # fmt: skip
    assert out.exit_code == 0, out.output
    command = out.output.split("per-fold parameters stored; `")[1].split("`")[0]
    assert "--columns '^mfcc_'" in command and "--study svm-" in command, command
    followed = run("-w", toy_dir, *shlex.split(command)[1:])
    assert followed.exit_code == 0, followed.output
    assert "-cols" in followed.output  # the study of these columns, named in its output
