-- The SHA-256 of each artifact's checksums.json, kept in the catalog: the file that
-- protects a model's files lives in the folder it protects, so deleting it (or rewriting
-- it after editing model.joblib) made `predict` take any bytes. With the digest here, a
-- missing or altered checksums.json is damage, as a changed model file is. NULL for
-- artifacts stored before this column existed (taken as they are, as before).
-- Idempotent, applied at every writable connect.
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS checksums_sha256 VARCHAR;
