-- Functionals: per-utterance statistics of every per-frame descriptor column.
--
-- The single definition of what `utterance_features` holds. sercap fills {source} with a
-- relation of columns (utt_id, frame, <descriptor>...) — one frames part at a time — and
-- {hop_s} with the frame hop in seconds, runs both queries below and stores the result as a
-- features part with one column per (descriptor, functional): `<descriptor>_<functional>`
-- (e.g. mfcc_01_mean, logmel_017_p90, f0_hz_slope), plus the per-utterance columns of the
-- second query. Unvoiced frames hold NULL in voiced-only columns (f0_hz, hnr_db and their
-- deltas); UNPIVOT drops NULLs, so every statistic of them is voiced-only for free.
--
-- Why long format: aggregating (utt_id, descriptor) groups of an UNPIVOTed table binds a
-- dozen expressions, where COLUMNS() over ~140 wide columns binds ~2,500 and costs more to
-- plan (about 1 s per query) than to run. Measured on 128 EmoDB utterances × 140 columns:
-- wide COLUMNS() 1.4 s, long 0.5 s (one thread).

-- name: functionals
-- One row per (utterance, descriptor); each column after `descriptor` is a functional.
--   mean std min max                 level and spread
--   p01 p25 p50 p75 p99               percentiles (linear interpolation, one selection)
--   range (p99 - p01) iqr (p75 - p25) robust ranges
--   skew                              sample skewness (bias-corrected, as scipy bias=False)
--   kurt                              population excess kurtosis (scipy's default)
--   slope intercept                   least-squares line over the frame index
--   resid                             RMS of the residual around that line
--                                     (from covar_pop/var_pop: one pass, not three regr_*)
--   posmax posmin                     relative position (0..1) of the max and the min
WITH src AS (
    SELECT * FROM {source}
),
lengths AS (
    SELECT utt_id, count(*) AS n_frames FROM src GROUP BY utt_id
),
long AS (
    UNPIVOT src ON COLUMNS(* EXCLUDE (utt_id, frame)) INTO NAME descriptor VALUE x
),
stats AS (
    SELECT
        utt_id,
        descriptor,
        avg(x) AS mean,
        stddev_pop(x) AS std,
        min(x) AS min,
        max(x) AS max,
        quantile_cont(x, [0.01, 0.25, 0.5, 0.75, 0.99]) AS q,
        skewness(x) AS skew,
        kurtosis_pop(x) AS kurt,
        covar_pop(x, frame) AS cxf,
        var_pop(frame) AS vf,
        avg(frame) AS mf,
        -- (on DOUBLE: DuckDB's arg_max/arg_min have no FLOAT kernel, and the generic one
        -- cost a third of the whole query; the conversion is exact, so is the result)
        arg_max(frame::DOUBLE, x::DOUBLE) AS amax,
        arg_min(frame::DOUBLE, x::DOUBLE) AS amin
    FROM long
    GROUP BY utt_id, descriptor
)
SELECT
    s.utt_id,
    s.descriptor,
    mean,
    std,
    min,
    max,
    q[1] AS p01,
    q[2] AS p25,
    q[3] AS p50,
    q[4] AS p75,
    q[5] AS p99,
    q[5] - q[1] AS range,
    q[4] - q[2] AS iqr,
    skew,
    kurt,
    cxf / nullif(vf, 0) AS slope,
    mean - cxf / nullif(vf, 0) * mf AS intercept,
    CASE WHEN vf > 0 THEN sqrt(greatest(0, std * std - cxf * cxf / vf)) ELSE 0 END AS resid,
    amax / greatest(n_frames - 1, 1) AS posmax,
    amin / greatest(n_frames - 1, 1) AS posmin
FROM stats s
JOIN lengths l ON l.utt_id = s.utt_id;

-- name: voicing
-- One row per utterance: how much is voiced and how voiced/unvoiced stretches alternate
-- (segment lengths in seconds, voiced segments per second), from f0_hz being NULL or not.
WITH src AS (
    SELECT utt_id, frame, f0_hz FROM {source}
),
runs AS (
    SELECT utt_id, f0_hz IS NOT NULL AS voiced,
           frame - row_number() OVER (PARTITION BY utt_id, f0_hz IS NOT NULL ORDER BY frame)
               AS run
    FROM src
),
segments AS (
    SELECT utt_id, voiced, count(*) * {hop_s} AS len_s
    FROM runs
    GROUP BY utt_id, voiced, run
),
lengths AS (
    SELECT utt_id, count(*) AS n_frames FROM src GROUP BY utt_id
)
SELECT
    l.utt_id,
    coalesce(sum(len_s) FILTER (WHERE voiced), 0) / (l.n_frames * {hop_s}) AS voiced_fraction,
    count(*) FILTER (WHERE voiced) / (l.n_frames * {hop_s}) AS voiced_seg_rate,
    coalesce(avg(len_s) FILTER (WHERE voiced), 0) AS voiced_seg_len_mean,
    coalesce(stddev_pop(len_s) FILTER (WHERE voiced), 0) AS voiced_seg_len_std,
    coalesce(max(len_s) FILTER (WHERE voiced), 0) AS voiced_seg_len_max,
    coalesce(avg(len_s) FILTER (WHERE NOT voiced), 0) AS unvoiced_seg_len_mean,
    coalesce(stddev_pop(len_s) FILTER (WHERE NOT voiced), 0) AS unvoiced_seg_len_std,
    coalesce(max(len_s) FILTER (WHERE NOT voiced), 0) AS unvoiced_seg_len_max,
    l.n_frames::DOUBLE AS n_frames
FROM lengths l
JOIN segments s ON s.utt_id = l.utt_id
GROUP BY l.utt_id, l.n_frames
ORDER BY l.utt_id;
