-- Speaker-independent fold assignment of every utterance, by its corpus' protocol:
--   leave-one-session-out   IEMOCAP: the fold is the session (each holds one F and one M)
--   leave-one-speaker-out   EmoDB: the fold is the speaker
--   actor-blocks-4          RAVDESS: 6 folds of 4 consecutive actors (01-04, 05-08, …)
--   speaker-kfold-5         anything else: speakers dealt round-robin into 5 folds
--                           (as many folds as speakers when there are fewer than 5)
-- No speaker is ever in two folds; tests assert it for every protocol.

CREATE OR REPLACE VIEW folds AS
WITH speakers AS (
    SELECT corpus, speaker,
           dense_rank() OVER (PARTITION BY corpus ORDER BY speaker) - 1 AS k,
           count(*) OVER (PARTITION BY corpus) AS n_speakers
    FROM (SELECT DISTINCT corpus, speaker FROM utterances)
)
SELECT u.utt_id, u.corpus, u.speaker, c.protocol,
       CASE c.protocol
         WHEN 'leave-one-session-out' THEN u.session
         WHEN 'leave-one-speaker-out' THEN u.speaker
         WHEN 'actor-blocks-4' THEN
           'actors' || lpad(((TRY_CAST(u.speaker AS INTEGER) - 1) // 4 * 4 + 1)::VARCHAR, 2, '0')
           || '-' || lpad(((TRY_CAST(u.speaker AS INTEGER) - 1) // 4 * 4 + 4)::VARCHAR, 2, '0')
         ELSE 'fold' || (s.k % least(5, s.n_speakers) + 1)::VARCHAR
       END AS fold
FROM utterances u
JOIN corpora c ON c.name = u.corpus
JOIN speakers s ON s.corpus = u.corpus AND s.speaker = u.speaker;
