-- The speakers a tuned study's trials were fitted and scored on (a JSON list, sorted), so
-- that `train --tuned` can refuse parameters whose study saw a speaker the outer fold now
-- tests: with protocols that assign folds from the speakers present (speaker-kfold-5), an
-- ingest that adds or removes a speaker moves speakers between folds, and the fold names
-- alone would reuse a study tuned on its own test speakers. NULL for rows stored before
-- this column existed (nothing to compare them with). Idempotent, applied at every
-- writable connect.
ALTER TABLE tuned_params ADD COLUMN IF NOT EXISTS speakers VARCHAR;
