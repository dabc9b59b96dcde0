-- Nested tuning (issue 12): one Optuna study per outer fold plus a final study over all
-- speakers. tuned_params keeps one row per study; these columns say which nested set a row
-- belongs to (base_study), which outer fold it tunes for (NULL: the final study, whose
-- parameters `predict` uses and which is never scored) and whether features were
-- speaker-normalised. A run scored with per-fold parameters records them in fold_params_json.
ALTER TABLE tuned_params ADD COLUMN IF NOT EXISTS base_study VARCHAR;
ALTER TABLE tuned_params ADD COLUMN IF NOT EXISTS outer_fold VARCHAR;
ALTER TABLE tuned_params ADD COLUMN IF NOT EXISTS speaker_norm BOOLEAN;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS fold_params_json VARCHAR;
