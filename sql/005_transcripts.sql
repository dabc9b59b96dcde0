-- The words of each utterance where the corpus ships them (IEMOCAP
-- SessionN/dialog/transcriptions/<dialog>.txt, a manifest's optional text column).
-- Rewritten for a corpus' utterances at each ingest of that corpus (issue 17).
CREATE TABLE IF NOT EXISTS transcripts (
    utt_id VARCHAR PRIMARY KEY,
    text   VARCHAR NOT NULL
);
