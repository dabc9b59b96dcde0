"""`sql` without --write: which statements DuckDB's parser says only read (no warehouse)."""

import pytest

from sercap.errors import SercapError
from sercap.sqlguard import classify, fence_settings, refuse_writes

READS = [
    "SELECT 1",
    """SELECT 'delete' AS "update" """,  # words, not keywords
    "WITH a AS (SELECT 1 AS x) SELECT * FROM a",
    "FROM labels",
    "VALUES (1), (2)",
    "(SELECT 1) UNION (SELECT 2)",
    "DESCRIBE labels",
    "SHOW TABLES",
    "SHOW ALL TABLES",
    "SUMMARIZE utterance_features",
    "SELECT checkpoint, count(*) FROM runs GROUP BY checkpoint",  # a column of that name
    "SELECT * FROM duckdb_logs",  # reading the log is a read
    "EXPLAIN SELECT 1",
    "EXPLAIN ANALYZE SELECT count(*) FROM labels",
    "EXPLAIN (FORMAT json) SELECT 1",
    "PRAGMA table_info('labels')",
    "pragma Show_Tables",
    "/* a comment */ PRAGMA version",
    "PRAGMA database_size",
]

WRITES = [
    # the three bypasses of issue 10
    "COPY (SELECT 1 AS x) TO 'wh/features/feature_set=H/corpus=c/part-0.parquet' (FORMAT parquet)",
    "COPY (SELECT 1 AS x, 'a' AS p) TO 'wh/features' (FORMAT parquet, PARTITION_BY (p), OVERWRITE)",
    "ATTACH 'other.duckdb' AS m (READ_WRITE)",
    "USE m",
    "DETACH sercap",
    "DELETE FROM s.labels",
    # everything else that is not on the allow-list
    "INSERT INTO labels VALUES ('a', 'b')",
    "UPDATE labels SET emotion = 'x'",
    "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
    "CREATE TABLE x (a INT)",
    "CREATE TEMP VIEW v AS SELECT 1",
    "CREATE MACRO m(x) AS x",
    "DROP TABLE labels",
    "ALTER TABLE labels ADD COLUMN y INT",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "RESET threads",
    "PRAGMA threads = 1",
    "PRAGMA enable_profiling",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "CALL checkpoint()",
    "CALL pragma_version()",
    "EXPORT DATABASE 'out'",
    "IMPORT DATABASE 'out'",
    "COPY FROM DATABASE sercap TO m",
    "BEGIN TRANSACTION",
    "VACUUM",
    "ANALYZE",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "SET VARIABLE x = 1",
    "UPDATE EXTENSIONS",  # a type this duckdb's Python enum does not even name
    "EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'",  # EXPLAIN ANALYZE runs what it explains
    "EXPLAIN ANALYZE (FORMAT json) DELETE FROM labels",
    "EXPLAIN DELETE FROM labels",
    # DuckDB parses these as SELECT: on a writable connection they deleted or added rows
    "WITH d AS (DELETE FROM labels RETURNING *) SELECT * FROM d",
    "WITH i AS (INSERT INTO labels VALUES (1) RETURNING *) SELECT count(*) FROM i",
    "WITH u AS (UPDATE labels SET a = 2 RETURNING *) SELECT 1",
    # table functions with side effects, which a writable connection ran from a SELECT
    "SELECT * FROM checkpoint()",
    'SELECT * FROM "force_checkpoint"()',
    "FROM enable_logging(storage = 'file', storage_path = 'wh/features/log')",
    "SELECT * FROM main.truncate_duckdb_logs()",
    "SELECT write_log('x')",
    "SELECT * FROM query('SELECT * FROM checkpoint()')",  # the string was not looked into
]


@pytest.mark.parametrize("query", READS)
def test_reading_statements_are_allowed(query: str) -> None:
    (statement,) = classify(query)
    assert statement.read_only, statement
    refuse_writes([statement])


@pytest.mark.parametrize("query", WRITES)
def test_everything_else_is_refused_naming_write(query: str) -> None:
    (statement,) = classify(query)
    assert not statement.read_only, statement
    with pytest.raises(SercapError) as info:
        refuse_writes([statement])
    message = str(info.value)
    assert "\n" not in message and "--write" in message and statement.kind in message


def test_one_write_among_reads_refuses_the_whole_query() -> None:
    statements = classify("SELECT 1; SELECT 2; DELETE FROM labels; SELECT 3")
    assert [s.kind for s in statements] == ["SELECT", "SELECT", "DELETE", "SELECT"]
    with pytest.raises(SercapError, match=r"statement 3 of 4 \(DELETE FROM labels\)"):
        refuse_writes(statements)


def test_a_query_duckdb_cannot_parse_is_its_error() -> None:
    import duckdb

    with pytest.raises(duckdb.ParserException):
        classify("SELEC 1")
    assert classify("") == [] and classify("-- nothing") == []


def test_fence_settings_quote_paths_and_lock_last() -> None:
    settings = fence_settings(["/w/it's/part-0.parquet", "/w/b.parquet"])
    assert settings[0] == "SET allowed_paths = ['/w/it''s/part-0.parquet', '/w/b.parquet']"
    assert settings.index("SET enable_external_access = false") < len(settings) - 1
    assert settings[-1] == "SET lock_configuration = true"


def test_refusals_say_what_the_statement_would_do() -> None:
    """EXPLAIN ANALYZE of a write names what it would run; CALL points at SELECT."""
    with pytest.raises(SercapError, match="EXPLAIN ANALYZE would run it"):
        refuse_writes(classify("EXPLAIN ANALYZE DELETE FROM t"))
    with pytest.raises(SercapError, match=r"SELECT \* FROM name"):
        refuse_writes(classify("CALL pragma_table_info('t')"))


def test_a_pivot_without_values_says_how_to_run_it_read_only() -> None:
    """`PIVOT t ON col` parses as MULTI (DuckDB first creates an ENUM of col's values): the
    refusal said "of type MULTI"; it says to list the values, and with them it is a read."""
    (statement,) = classify("PIVOT utterances ON speaker USING count(*)")
    with pytest.raises(SercapError, match=r"PIVOT without an IN list.*ON col IN \('a', 'b'\)"):
        refuse_writes([statement])
    (listed,) = classify("PIVOT utterances ON speaker IN ('03', '08') USING count(*)")
    assert listed.read_only
