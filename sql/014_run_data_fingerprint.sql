-- A fingerprint of the data a run was scored on: SHA-256 over its (utterance, label,
-- audio SHA-256) rows, and with speaker normalisation every utterance's audio of the corpus
-- (the statistics read them all). The feature-set hash says how features are computed; this
-- says from what. An utterance whose audio was replaced and re-extracted kept the run
-- "the same data" for `bench --resume`, and `predict` fitted the run's final model on the
-- new features with no word. NULL for runs stored before this column existed.
-- Idempotent, applied at every writable connect.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS data_sha256 VARCHAR;
