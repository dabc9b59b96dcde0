-- Speaker-independent fold assignment of every utterance, by its corpus' protocol:
--   leave-one-session-out   IEMOCAP: the fold is the session (each holds one F and one M)
--   leave-one-speaker-out   EmoDB: the fold is the speaker
--   actor-blocks-4          RAVDESS: 6 folds of 4 consecutive actors (01-04, 05-08, …)
--   speaker-kfold-5         anything else: speakers dealt round-robin into 5 folds
--                           (as many folds as speakers when there are fewer than 5)
--   session-kfold-5         speaker-kfold-5 where the corpus' sessions hold two speakers or
--                           more, each speaker keeps to one session, and there are three
--                           sessions or more (a manifest of dyadic recordings): whole
--                           sessions are dealt instead, so two partners, who hear each
--                           other, are never on both sides of a fold (fewer sessions would
--                           make fewer than three folds: one session for all is one fold)
-- No speaker is ever in two folds; tests assert it for every protocol.

CREATE OR REPLACE VIEW folds AS
WITH speaker_sessions AS (
    SELECT corpus, speaker, min(session) AS session,
           -- (a row without a session is the speaker's all the same: one empty cell in a
           -- manifest turned the dealing of sessions off for the whole corpus)
           count(DISTINCT session) = 1 AS one_session
    FROM utterances
    GROUP BY corpus, speaker
),
shared AS (  -- corpora whose folds deal sessions (session-kfold-5)
    SELECT corpus FROM speaker_sessions
    GROUP BY corpus
    HAVING bool_and(one_session) AND count(DISTINCT session) < count(*)
        AND count(DISTINCT session) >= 3
),
units AS (  -- what a fold of a k-fold protocol deals: the session or the speaker
    SELECT s.corpus, s.speaker, s.session, h.corpus IS NOT NULL AS by_session,
           CASE WHEN h.corpus IS NULL THEN s.speaker ELSE s.session END AS unit
    FROM speaker_sessions s LEFT JOIN shared h USING (corpus)
),
ranked AS (
    SELECT corpus, speaker, session, by_session,
           dense_rank() OVER (PARTITION BY corpus ORDER BY unit) - 1 AS k,
           count(DISTINCT unit) OVER (PARTITION BY corpus) AS n_units
    FROM units
)
SELECT u.utt_id, u.corpus, u.speaker,
       -- (where sessions are dealt, a row without one is in its speaker's)
       CASE WHEN r.by_session THEN r.session ELSE u.session END AS session,
       CASE WHEN c.protocol = 'speaker-kfold-5' AND r.by_session THEN 'session-kfold-5'
            ELSE c.protocol END AS protocol,
       CASE c.protocol
         WHEN 'leave-one-session-out' THEN u.session
         WHEN 'leave-one-speaker-out' THEN u.speaker
         WHEN 'actor-blocks-4' THEN
           'actors' || lpad(((TRY_CAST(u.speaker AS INTEGER) - 1) // 4 * 4 + 1)::VARCHAR, 2, '0')
           || '-' || lpad(((TRY_CAST(u.speaker AS INTEGER) - 1) // 4 * 4 + 4)::VARCHAR, 2, '0')
         ELSE 'fold' || (r.k % least(5, r.n_units) + 1)::VARCHAR
       END AS fold
FROM utterances u
JOIN corpora c ON c.name = u.corpus
JOIN ranked r ON r.corpus = u.corpus AND r.speaker = u.speaker;
