-- Dimensional regression (issue 16, item 2): runs that predict a rating (valence, activation
-- or dominance) instead of a class. Idempotent, applied at every writable connect.
--   runs.target             the rating predicted; NULL for a classification run
--   runs.ccc, pearson, mae  scores of the pooled out-of-fold predictions (CCC is the primary
--                           one); ua/wa/macro_f1/classes/confusion_json stay NULL for them
--   regression_predictions  every out-of-fold prediction of such a run: the stored rating
--                           (value) and the predicted one. A table of its own, so that the
--                           class columns of `predictions` (and the views over them:
--                           run_groups, prediction_confidence) keep meaning classes.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS target VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ccc DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pearson DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS mae DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ccc_fold_mean DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ccc_fold_std DOUBLE;

CREATE TABLE IF NOT EXISTS regression_predictions (
    run_id    VARCHAR NOT NULL,
    utt_id    VARCHAR NOT NULL,
    fold      VARCHAR NOT NULL,
    value     DOUBLE NOT NULL,      -- the corpus' rating (IEMOCAP: mean of the evaluators)
    predicted DOUBLE NOT NULL,      -- the out-of-fold prediction
    PRIMARY KEY (run_id, utt_id)
);
