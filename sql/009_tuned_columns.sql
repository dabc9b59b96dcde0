-- The --columns pattern a tuning's data used (NULL: every column of the feature set), so
-- that `train --columns P --tuned` takes parameters tuned on the same columns only.
-- Idempotent, applied at every writable connect.
ALTER TABLE tuned_params ADD COLUMN IF NOT EXISTS columns VARCHAR;
