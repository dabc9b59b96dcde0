-- Integrity of registered Parquet parts (`sercap check`): the file's size in bytes and the
-- SHA-256 of its bytes, recorded when the part is registered. Parts registered before these
-- columns existed keep NULL here; `sercap check` then verifies only that they exist, read as
-- Parquet and hold the rows recorded. Idempotent: applied at every writable connect.
ALTER TABLE parts ADD COLUMN IF NOT EXISTS size_bytes BIGINT;
ALTER TABLE parts ADD COLUMN IF NOT EXISTS sha256 VARCHAR;
