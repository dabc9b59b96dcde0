-- frame_stats: mean, min, max and std of every descriptor of the default set, per utterance,
-- computed live from the `frames` view (nothing materialised).
--
-- `utterance_features` holds the full functionals, materialised at extraction time from
-- functionals.sql; this view is the short, ad-hoc form of the same idea, handy for a quick
-- look or a new descriptor column: COLUMNS() applies each aggregate to every descriptor and
-- "\0_mean" names the result after its column (mfcc_01_mean, f0_hz_std…). F0 is NULL in
-- unvoiced frames, so its statistics are voiced-only.
CREATE OR REPLACE TEMP VIEW frame_stats AS
SELECT
    utt_id,
    count(*) AS n_frames,
    avg(COLUMNS(* EXCLUDE (utt_id, frame, time_s))) AS "\0_mean",
    min(COLUMNS(* EXCLUDE (utt_id, frame, time_s))) AS "\0_min",
    max(COLUMNS(* EXCLUDE (utt_id, frame, time_s))) AS "\0_max",
    stddev_pop(COLUMNS(* EXCLUDE (utt_id, frame, time_s))) AS "\0_std"
FROM frames
GROUP BY utt_id
