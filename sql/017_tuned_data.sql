-- The fingerprint of the data a tuned study's trials were fitted and scored on (its
-- utterances, their labels and the bytes of their audio: sercap.store.runs.data_fingerprint),
-- so that `train --tuned` refuses a study tuned on other data than the run's, as `tune`
-- refuses to resume one: a manifest ingested again with recordings moved to another
-- speaker left the speaker names of a fold's study unchanged while the fold now tested
-- recordings the study had trained on. NULL for rows stored before this column existed
-- (their speakers are still compared). Idempotent, applied at every writable connect.
ALTER TABLE tuned_params ADD COLUMN IF NOT EXISTS data_sha256 VARCHAR;
-- The parameters a tuning held fixed (`tune --params`), a JSON object: a run scored with
-- the study's parameters names them as set by hand (`svm (C=0.5) nested-tuned`); it read
-- "svm nested-tuned", and the report kept it in place of the real nested-tuned row.
ALTER TABLE tuned_params ADD COLUMN IF NOT EXISTS fixed_json VARCHAR;
