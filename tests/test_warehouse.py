from pathlib import Path

import polars as pl
import pytest

from sercap.errors import SercapError
from sercap.store import SCHEMA_VERSION, check_name, connect


def test_connect_creates_schema_and_records_version(tmp_path: Path) -> None:
    wh = connect(tmp_path / "w")
    assert (tmp_path / "w" / "sercap.duckdb").is_file()
    assert wh.scalar("SELECT value FROM schema_info WHERE key = 'version'") == str(SCHEMA_VERSION)
    for name in ("utterances", "labels", "runs", "predictions", "iemocap4", "folds", "frames"):
        assert wh.has_relation(name), name
    assert not wh.has_relation("no_such_thing")
    wh.close()
    # Reopening is idempotent and keeps data.
    wh = connect(tmp_path / "w")
    wh.execute("INSERT INTO corpora VALUES ('c', 'emodb', '/x', 'emodb7', 'p', now())")
    wh.close()
    wh = connect(tmp_path / "w", read_only=True)
    assert wh.scalar("SELECT count(*) FROM corpora") == 1
    wh.close()


def test_newer_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    wh = connect(tmp_path / "w")
    wh.execute("UPDATE schema_info SET value = '999' WHERE key = 'version'")
    wh.close()
    with pytest.raises(SercapError, match="newer than this sercap"):
        connect(tmp_path / "w")
    # read-only (info, runs, sql) said "open it once without read-only access to migrate
    # it", which then said "upgrade sercap"
    with pytest.raises(SercapError, match="newer than this sercap understands .*upgrade"):
        connect(tmp_path / "w", read_only=True)


def test_older_schema_without_migration_says_what_to_do(tmp_path: Path) -> None:
    wh = connect(tmp_path / "w")
    wh.execute("UPDATE schema_info SET value = '0' WHERE key = 'version'")
    wh.close()
    # version 0 means "no version recorded": the idempotent schema is simply re-applied.
    wh = connect(tmp_path / "w")
    assert wh.scalar("SELECT value FROM schema_info WHERE key = 'version'") == str(SCHEMA_VERSION)
    wh.close()


def test_file_instead_of_directory_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SercapError, match="must be a directory"):
        connect(target)


def test_read_only_on_missing_warehouse(tmp_path: Path) -> None:
    with pytest.raises(SercapError, match="no warehouse at .*missing: create one"):
        connect(tmp_path / "missing", read_only=True)
    # the demo's folder holds its warehouse one level down: `-w demo` names it
    connect(tmp_path / "demo" / "warehouse").close()
    with pytest.raises(SercapError, match=r"there is one in .*demo/warehouse: use that path"):
        connect(tmp_path / "demo", read_only=True)


def test_transaction_rolls_back_everything_on_error(wh) -> None:
    with pytest.raises(RuntimeError), wh.transaction():
        wh.execute("INSERT INTO corpora VALUES ('c', 'emodb', '/x', 'emodb7', 'p', now())")
        raise RuntimeError("boom")
    assert wh.scalar("SELECT count(*) FROM corpora") == 0


def test_parts_are_visible_only_once_registered(wh) -> None:
    wh.execute("INSERT INTO feature_sets VALUES ('h1', 'default', 'lld', '{}', '{}', now())")
    folder = wh.part_dir("features", "h1", "toy")
    registered = folder / "part-0.parquet"
    orphan = folder / "part-1.parquet"
    pl.DataFrame({"utt_id": ["a"], "x_mean": [1.0]}).write_parquet(registered)
    pl.DataFrame({"utt_id": ["b"], "x_mean": [2.0]}).write_parquet(orphan)
    wh.register_part("features", "h1", "toy", registered, 1)
    wh.refresh_views()
    assert wh.query("SELECT utt_id FROM utterance_features")["utt_id"].to_list() == ["a"]
    assert wh.query("SELECT utt_id FROM features_default")["utt_id"].to_list() == ["a"]
    assert wh.remove_orphan_parts("features", "h1", "toy") == 1
    assert registered.exists() and not orphan.exists()


def test_empty_aliases_exist_before_extraction(wh) -> None:
    assert wh.query("SELECT * FROM utterance_features").is_empty()
    assert wh.query("SELECT * FROM images").is_empty()


def test_check_name() -> None:
    assert check_name("default") == "default"
    for bad in ("Default", "1x", "a-b", "a b", ""):
        with pytest.raises(SercapError):
            check_name(bad)


def test_memory_path_gets_a_temporary_parquet_root() -> None:
    wh = connect(":memory:")
    assert wh.root.is_dir()
    assert wh.query("SELECT 1 AS one")["one"].to_list() == [1]
    wh.close()


def test_parts_without_their_catalog_are_refused_not_taken_for_a_new_warehouse(tmp_path):
    """`info` said "create one with sercap ingest"; doing so, the next extract deleted every
    part as a crash's leftovers, and a backup of the catalog could no longer be restored."""
    from click.testing import CliRunner

    from cli import main
    from sercap.errors import SercapError
    from sercap.store import connect

    root = tmp_path / "wh"
    part = root / "features" / "feature_set=abc" / "corpus=toy" / "part-1.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"PAR1")
    for read_only in (False, True):
        with pytest.raises(SercapError, match="1 stored part\\(s\\) but no catalog"):
            connect(root, read_only=read_only)
    assert not (root / "sercap.duckdb").exists() and part.exists()
    said = CliRunner().invoke(main, ["-w", str(root), "info"]).output.strip()
    assert said.startswith("error: ") and "restore sercap.duckdb from a copy" in said


def test_a_warehouse_path_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """DuckDB cannot open such a path: it was a traceback ending in std::bad_cast."""
    import os

    path = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"w\xe9")))
    with pytest.raises(SercapError, match=r"w\\xe9: the warehouse's path is not valid UTF-8"):
        connect(path)
    assert not os.path.exists(os.path.join(os.fsencode(tmp_path), b"w\xe9"))


def test_a_warehouse_path_duckdb_would_read_as_a_pattern_is_refused(tmp_path, monkeypatch) -> None:
    """DuckDB reads part paths as glob patterns: a warehouse at exp[1] read the parts of a
    warehouse at exp1 (train fitted another folder's data, check said all was well)."""
    import duckdb

    for name in ("exp[1]", "a*b", "why?"):
        with pytest.raises(SercapError, match=r"which DuckDB reads as a file pattern") as said:
            connect(tmp_path / name)
        assert said.value.hint.startswith("move or link the warehouse")
        assert not (tmp_path / name).exists()
    (tmp_path / "in[1]").mkdir()
    monkeypatch.chdir(tmp_path / "in[1]")  # a relative path inside such a folder, too
    with pytest.raises(SercapError, match=r"in\[1\]/wh: the warehouse's path holds '\['"):
        connect("wh")
    # what it guards against: a pattern part path reads whichever files match
    plain = tmp_path / "exp1" / "p.parquet"
    plain.parent.mkdir()
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 42 AS x) TO '{plain}' (FORMAT parquet)")
    pattern = str(tmp_path / "exp[1]" / "p.parquet")
    assert con.sql(f"SELECT x FROM read_parquet('{pattern}')").fetchall() == [(42,)]


def test_a_damaged_write_ahead_log_or_emptied_catalog_says_what_to_do(tmp_path) -> None:
    """A corrupt WAL (a killed writer's last commits, damaged since) gave DuckDB's raw
    "Failure while replaying WAL file", and an emptied sercap.duckdb "cannot open the
    warehouse (… not a valid DuckDB database file)": neither said how to recover."""
    import shutil

    live = tmp_path / "live"
    wh = connect(live)
    wh.execute("CREATE TABLE z AS SELECT range AS i, 'x' || range AS s FROM range(20000)")
    crashed = tmp_path / "crashed"  # the files as a kill -9 leaves them: nothing checkpointed
    crashed.mkdir()
    for f in live.iterdir():
        if f.is_file():
            shutil.copy(f, crashed / f.name)
    wh.close()
    wal = crashed / "sercap.duckdb.wal"
    damaged = bytearray(wal.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    wal.write_bytes(bytes(damaged))
    with pytest.raises(SercapError, match=r"write-ahead log .*sercap.duckdb.wal cannot be "):
        connect(crashed, read_only=True)
    with pytest.raises(SercapError, match=r"move .*sercap.duckdb.wal aside"):
        connect(crashed)
    emptied = tmp_path / "emptied"
    emptied.mkdir()
    (emptied / "sercap.duckdb").write_bytes(b"")
    with pytest.raises(SercapError, match="catalog .* is damaged .*restore sercap.duckdb from"):
        connect(emptied)
    # cut short (a full disk, a copy stopped half-way): DuckDB's "Could not read enough
    # bytes" read as "cannot open the warehouse", without a word on what to do
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "sercap.duckdb").write_bytes((live / "sercap.duckdb").read_bytes()[:4096])
    for read_only in (True, False):
        with pytest.raises(SercapError, match="catalog .* is damaged .*restore sercap.duckdb"):
            connect(cut, read_only=read_only)


def test_an_in_memory_warehouse_never_closed_leaves_no_folder(tmp_path) -> None:
    """`connect(":memory:")` without `close()` (docs/python.md's own example) left its
    parts folder under the temporary directory: about 590 of them after a day."""
    import gc
    import subprocess
    import sys

    wh = connect(":memory:")
    root = wh.root
    wh.execute("CREATE TABLE t AS SELECT 1 AS x")
    (root / "features").mkdir(exist_ok=True)
    del wh
    gc.collect()
    assert not root.exists()
    script = "import sercap; wh = sercap.connect(':memory:'); print(wh.root)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    left = Path(done.stdout.strip())
    assert done.returncode == 0 and left.name.startswith("sercap-") and not left.exists()


def test_a_writable_open_of_a_current_warehouse_changes_no_byte(
    tmp_path: Path, monkeypatch
) -> None:
    """Every writable open re-ran the schema scripts: `train nope` failed, and the catalog
    file had still been rewritten. Now the scripts run only when they changed (or a table
    or view they create is missing)."""
    import hashlib

    from click.testing import CliRunner

    from cli import main
    from sercap.store import warehouse

    def digest() -> str:
        return hashlib.sha256((tmp_path / "w" / "sercap.duckdb").read_bytes()).hexdigest()

    connect(tmp_path / "w").close()
    before = digest()
    connect(tmp_path / "w").close()
    assert digest() == before
    assert CliRunner().invoke(main, ["-w", str(tmp_path / "w"), "train", "nope"]).exit_code == 1
    assert digest() == before
    with connect(tmp_path / "w") as wh:  # a view a user dropped is made again
        wh.execute("DROP VIEW emodb7")
    with connect(tmp_path / "w") as wh:
        assert wh.has_relation("emodb7")
    real = warehouse._schema_fingerprint  # changed sql/ files run again
    monkeypatch.setattr(warehouse, "_schema_fingerprint", lambda: ("new", real()[1]))
    with connect(tmp_path / "w") as wh:
        assert wh.scalar("SELECT value FROM schema_info WHERE key = 'schema_sql'") == "new"


def test_query_head_keeps_the_first_rows_and_counts_the_rest(wh) -> None:
    """`sercap sql` shows 50 rows: the head of a result equals the same rows of the whole
    result, types included (lists, structs, NULLs, text for an INTERVAL), while the rest is
    only counted, across several of DuckDB's batches."""
    import sercap.store.warehouse as warehouse

    query = (
        "SELECT i, 'u' || i AS s, [i, i + 1] AS l, {'a': i} AS st, "
        "CASE WHEN i % 3 = 0 THEN NULL ELSE i / 7 END AS f, INTERVAL (i) SECOND AS iv "
        "FROM range(5000) t(i) ORDER BY i"
    )
    whole = wh.query(query, text_types=True)
    for limit in (0, 1, 2047, 2048, 2049, 6000):
        head, rows = wh.query_head(query, limit, text_types=True)
        assert rows == 5000 and head.height == min(limit, 5000)
        assert head.equals(whole.head(limit)) and head.schema == whole.schema
    assert warehouse.HEAD_BATCH_ROWS < 5000  # (so the count spans batches)
    empty, rows = wh.query_head("SELECT 1 AS x WHERE false", 5)
    assert rows == 0 and empty.columns == ["x"]


def test_an_error_after_the_first_batch_is_duckdbs_own(wh) -> None:
    """Past the first batch DuckDB's errors came through pyarrow's stream as OSError: `sql`
    printed DuckDB's multi-line text and a damaged part lost its repair hint."""
    import duckdb

    late = "SELECT CASE WHEN range = 3000 THEN 'x' ELSE '1' END::INT AS v FROM range(5000)"
    with pytest.raises(duckdb.ConversionException):
        wh.query_head(late, 5)
    with pytest.raises(duckdb.ConversionException):
        sum(b.num_rows for b in wh.batches(late))
    assert wh.query_head("SELECT 42 AS a", 5)[1] == 1  # the connection is usable after


def test_a_damaged_part_met_while_binding_keeps_its_repair_hint(wh) -> None:
    """query_head and batches bound the query outside the damaged-part translation that
    query applies: a footer damaged in place said DuckDB's bare text in `sql`'s table."""
    import duckdb

    from sercap.errors import REPAIR_HINT, SercapError

    (wh.root / "frames").mkdir(exist_ok=True)
    (wh.root / "frames" / "part-1.parquet").write_bytes(b"PAR1 damaged")
    real = wh.con

    class Binding:
        def sql(self, *args, **kwargs):
            raise duckdb.InvalidInputException(
                f'Invalid Input Error: Failed to read file "{wh.root}/frames/part-1.parquet": '
                "don't know what type"
            )

    wh.con = Binding()
    try:
        for read in (lambda: wh.query_head("SELECT 1", 5), lambda: list(wh.batches("SELECT 1"))):
            with pytest.raises(SercapError) as info:
                read()
            assert info.value.hint == REPAIR_HINT and "frames/part-1.parquet" in str(info.value)
    finally:
        wh.con = real


def test_a_part_is_on_disk_before_it_is_renamed_into_place(tmp_path, monkeypatch) -> None:
    """No part was fsynced: after a power cut, the catalog's committed registration could
    name an empty or torn file (the rename reached the disk before the data)."""
    import os

    import pyarrow as pa

    import sercap.store.parts as parts

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(parts.os, "fsync", fsync)
    monkeypatch.setattr(parts.os, "replace", replace)
    final = parts.write_part(pa.table({"utt_id": ["a"], "x": [1.0]}), tmp_path, "part-0.parquet")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].endswith(".tmp") and events[1][1] == final
    assert events[2][1] == str(tmp_path)  # the folder: the rename itself


def _refusing(real, when, message: str):
    """A stand-in for a DuckDB connection whose statements ``when`` accepts fail as
    DuckDB fails a commit (``message``); everything else goes to ``real``."""
    import duckdb

    class Refusing:
        def execute(self, sql, *args):
            if when(sql):
                raise duckdb.TransactionException(message)
            return real.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(real, name)

    return Refusing()


def test_a_commit_the_disk_cannot_take_is_one_line_and_stores_nothing(tmp_path: Path) -> None:
    """A full disk at COMMIT was DuckDB's "TransactionContext Error: Failed to commit:
    Could not write file …/sercap.duckdb.wal: No space left on device"."""
    import duckdb

    from sercap.errors import SercapError
    from sercap.store import connect

    wh = connect(tmp_path / "wh")
    real = wh.con

    wh.execute("CREATE TABLE t (x INT)")
    wh.con = _refusing(
        real, lambda sql: sql == "COMMIT",
        'Failed to commit: Could not write file "x.wal": No space left on device',
    )  # fmt: skip
    with pytest.raises(SercapError) as caught, wh.transaction():
        wh.execute("INSERT INTO t VALUES (1)")
    message = str(caught.value)
    assert "\n" not in message and "the catalog could not be written" in message
    assert "(No space left on device)" in message and "sercap.duckdb" in message
    wh.con = real
    assert wh.scalar("SELECT count(*) FROM t") == 0  # rolled back, usable
    # a commit that fails for another reason is not said to be a full disk
    conflict = 'Failed to commit: PRIMARY KEY or UNIQUE constraint violation: duplicate key "5"'

    wh.con = _refusing(real, lambda sql: sql == "COMMIT", conflict)
    with pytest.raises(duckdb.TransactionException, match="constraint violation"), wh.transaction():
        wh.execute("INSERT INTO t VALUES (2)")
    wh.con = real
    assert wh.scalar("SELECT count(*) FROM t") == 0
    wh.close()


def test_a_write_outside_a_transaction_the_disk_cannot_take_is_one_line(tmp_path: Path) -> None:
    """A statement that commits by itself (extract's feature-set record, `sql --write`) on a
    full disk was DuckDB's raw "TransactionContext Error: Failed to commit: …", and in
    Python a bare duckdb.TransactionException, not a SercapError."""
    import duckdb

    from sercap.errors import SercapError
    from sercap.store import connect

    wh = connect(tmp_path / "wh")
    real = wh.con

    wh.execute("CREATE TABLE t (x INT)")
    wh.con = _refusing(  # DuckDB commits an INSERT at once, and fails there
        real, lambda sql: sql.startswith("INSERT"),
        'TransactionContext Error: Failed to commit: Could not write file "x.wal": '
        "No space left on device",
    )  # fmt: skip
    with pytest.raises(SercapError, match=r"the catalog could not be written \(No space left"):
        wh.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(duckdb.CatalogException):  # an error about the statement: DuckDB's
        wh.execute("SELECT * FROM nowhere")
    wh.con = real
    wh.close()


def test_a_warehouse_folder_this_process_cannot_write_is_refused_at_a_writable_open(
    tmp_path: Path, monkeypatch
) -> None:
    """A folder without write permission around a catalog file with it: DuckDB opened the
    catalog, train fitted every fold, and the first commit failed on sercap.duckdb.wal with
    DuckDB's words. Read-only opens still work."""
    import os

    import sercap.store.warehouse as warehouse_module
    from sercap.errors import SercapError
    from sercap.store import connect

    connect(tmp_path / "wh").close()
    real = os.access
    root = tmp_path / "wh"
    monkeypatch.setattr(  # (the tests run as root, whom chmod does not stop)
        warehouse_module.os, "access",
        lambda p, mode, **kw: False if Path(p) == root and mode == os.W_OK else real(p, mode),
    )  # fmt: skip
    with pytest.raises(SercapError, match="cannot write into the warehouse folder") as caught:
        connect(root)
    assert "permission denied" in str(caught.value) and "read-only" in caught.value.hint
    connect(root, read_only=True).close()


def test_a_catalog_of_an_older_release_opens_read_only_as_this_release_reads_it(
    tmp_path: Path,
) -> None:
    """A read-only command (report, predict, runs…) on a warehouse last written by an older
    sercap failed on the first column or view column that release did not have (a Binder
    error on runs.overrides_json, folds.session). The connection now gets stand-ins for
    them; no byte of the warehouse changes."""
    import hashlib

    import duckdb

    from tests.helpers import add_corpus

    root = tmp_path / "wh"
    with connect(root) as wh:
        add_corpus(wh, protocol="speaker-kfold-5", n_speakers=6, sessions=True)
        wh.execute(
            "INSERT INTO runs (run_id, kind, model, corpus, label_map, protocol) "
            "VALUES ('r1', 'model', 'svm', 'toy', 'emodb7', 'speaker-kfold-5')"
        )
    older = duckdb.connect(str(root / "sercap.duckdb"))  # as the previous release left it
    older.execute("ALTER TABLE runs DROP COLUMN overrides_json")
    older.execute("DROP TABLE shared_emotions")
    older.execute(
        "CREATE OR REPLACE VIEW folds AS SELECT utt_id, corpus, speaker, "
        "'speaker-kfold-5' AS protocol, speaker AS fold FROM utterances"
    )
    older.execute("UPDATE schema_info SET value = 'older' WHERE key = 'schema_sql'")
    older.close()

    def digest() -> dict[str, str]:
        return {
            str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    before = digest()
    with connect(root, read_only=True) as wh:
        assert wh.query("SELECT run_id, overrides_json FROM runs").rows() == [("r1", None)]
        folds = wh.query("SELECT DISTINCT protocol, session IS NOT NULL AS s FROM folds")
        assert folds.rows() == [("session-kfold-5", True)]
        assert wh.scalar("SELECT count(*) FROM shared_emotions") == 0
    assert digest() == before
    with connect(root) as wh:  # a writable open migrates the catalog itself
        assert wh.scalar("SELECT count(*) FROM runs WHERE overrides_json IS NULL") == 1


def test_an_interrupted_query_is_a_keyboard_interrupt(tmp_path: Path) -> None:
    """DuckDB reports a Ctrl-C as RuntimeError("Query interrupted"): a notebook's `except
    KeyboardInterrupt` around wh.query or sercap.sql missed it."""
    import threading

    import sercap

    with connect(tmp_path / "wh") as wh:
        slow = "SELECT sum(hash(range)) FROM range(40000000000)"
        for call in (lambda: wh.query(slow), lambda: sercap.sql(wh, slow)):
            timer = threading.Timer(0.5, wh.con.interrupt)
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                call()
            timer.join()
        assert wh.scalar("SELECT 1") == 1  # and the warehouse goes on


def test_the_demo_folder_is_not_taken_for_a_new_warehouse(tmp_path: Path) -> None:
    """`sercap.connect("demo")` for the demo's folder (its warehouse is demo/warehouse)
    created a second, empty warehouse beside it ("no corpus yet"); the CLI said only "no
    warehouse at demo"."""
    from click.testing import CliRunner

    import sercap
    from sercap.cli import main

    connect(tmp_path / "demo" / "warehouse").close()
    for call in (
        lambda: sercap.connect(tmp_path / "demo"),
        lambda: sercap.connect(tmp_path / "demo", create=False),
        lambda: sercap.connect(tmp_path / "demo", read_only=True),
    ):
        with pytest.raises(sercap.NotFoundError, match="but there is one in .*demo/warehouse"):
            call()
    assert not (tmp_path / "demo" / "sercap.duckdb").exists()
    said = CliRunner().invoke(main, ["-w", str(tmp_path / "demo"), "runs"])
    assert said.exit_code == 1 and "but there is one in" in said.output, said.output


@pytest.mark.parametrize("ending", ["error", "done"])
def test_a_handle_another_process_kept_from_it_after_a_fit_takes_it_back_at_its_next_use(
    tmp_path: Path, ending: str
) -> None:
    """train gives the write lock back while it fits. When another process held the
    warehouse as the fit failed (or as it ended), the notebook's handle came back closed, a
    close the user never called: the next cell said "the warehouse ... is closed"."""
    wh = connect(tmp_path / "w")
    reader = None
    expected = ValueError if ending == "error" else SercapError
    with pytest.raises(expected) as caught, wh.released(wait_s=0):
        # a reader, as another process would hold it (DuckDB opens a file one way per
        # process, so the writable open after the block fails here too)
        reader = connect(tmp_path / "w", read_only=True)
        if ending == "error":
            raise ValueError("the fit diverged")
    if ending == "done":
        assert "could not be opened again" in str(caught.value)
    assert not wh.closed
    reader.close()
    assert wh.scalar("SELECT count(*) FROM schema_info") > 0  # taken back, and writable
    wh.execute("CREATE TABLE mine (x INTEGER)")
    wh.close()
    assert wh.closed


def test_a_read_only_handle_is_given_back_too_and_reopened_read_only(tmp_path: Path) -> None:
    """A read-only handle keeps every writer out (DuckDB's rule): a report refitting models
    for its importance charts made `train` and `extract` give up after their minute."""
    connect(tmp_path / "w").close()
    wh = connect(tmp_path / "w", read_only=True)
    with wh.released():
        writer = connect(tmp_path / "w", wait_s=0)  # fails while the reader holds it
        writer.execute("CREATE TABLE written_meanwhile (x INTEGER)")
        writer.close()
    assert wh.read_only and wh.scalar("SELECT count(*) FROM written_meanwhile") == 0
    with pytest.raises(Exception, match="read-only"):
        wh.execute("CREATE TABLE not_here (x INTEGER)")
    wh.close()
