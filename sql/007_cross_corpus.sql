-- Cross-corpus evaluation (`sercap bench cross`, issue 16).
--
-- shared_emotions: the emotions corpora can have in common, by the class codes every label
-- map uses. A cross-corpus matrix keeps those of them that EVERY chosen corpus has under
-- its own default label map (so IEMOCAP's hap includes exc, as in iemocap4); the classes a
-- run used are in runs.classes and its label_map is 'shared'.
CREATE TABLE IF NOT EXISTS shared_emotions (
    label    VARCHAR PRIMARY KEY,  -- class code, as in the label maps
    name     VARCHAR NOT NULL,
    position INTEGER NOT NULL      -- display order
);

INSERT OR REPLACE INTO shared_emotions VALUES
  ('neu', 'neutral', 1), ('ang', 'anger', 2), ('hap', 'happiness', 3), ('sad', 'sadness', 4),
  ('fea', 'fear', 5), ('dis', 'disgust', 6), ('sur', 'surprise', 7), ('bor', 'boredom', 8);

-- A run that is one cell of a cross-corpus matrix: trained on train_corpus, scored on
-- runs.corpus (the diagonal, train_corpus = corpus, is that corpus' own speaker-independent
-- protocol). cross_matrix names the matrix (one `bench cross`) the cell belongs to.
-- Ordinary runs leave both NULL.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS train_corpus VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS cross_matrix VARCHAR;

CREATE OR REPLACE VIEW cross_corpus_runs AS
SELECT cross_matrix, train_corpus, corpus AS test_corpus, model, feature_set, speaker_norm,
       classes, n_utterances, n_folds, ua, wa, macro_f1, run_id, started_at
FROM runs WHERE cross_matrix IS NOT NULL;
