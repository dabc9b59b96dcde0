-- The parameters set by hand over a nested-tuned run's tuned ones (`train MODEL --tuned
-- --params '{"C": 30}'`), as JSON; NULL for other runs and for runs stored before this
-- column existed. A tuned run's params_json holds its final study's parameters merged with
-- them, which told nobody that a person chose some: such a run read as "svm nested-tuned"
-- and took the real nested-tuned run's row in the report. Its name now carries them
-- (sercap.run_labels.params_tag) and it is a configuration of its own.
-- Idempotent, applied at every writable connect.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS overrides_json VARCHAR;
