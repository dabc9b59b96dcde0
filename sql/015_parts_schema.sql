-- A digest of each registered part's columns (names and types, from its Parquet footer).
-- The views over a set's parts bind with union_by_name = false when every part has the
-- same digest: DuckDB then reads one footer instead of all of them (at IEMOCAP's size
-- about a second per view at every open), which is safe because the columns are known to
-- be the same. (A footer damaged in a part other than the first is then not found at open:
-- the first query that reads it stops with "run sercap check".) Parts whose digests differ, or are NULL (registered
-- before this column; a writable open records them), keep union_by_name = true.
-- Idempotent, applied at every writable connect.
ALTER TABLE parts ADD COLUMN IF NOT EXISTS schema_sha256 VARCHAR;
