-- Views over stored out-of-fold predictions (issue 16): fairness per group and per-prediction
-- confidence. Nothing here refits a model or stores a copy; every statement is idempotent.
-- sercap/analysis_store.py computes the same numbers in Python (for read-only warehouses
-- opened before this file existed) and a test keeps the two in agreement.

-- UA per run per gender and per speaker. UA inside a group is the mean recall over the classes
-- present in that group; gap = best group's UA minus this group's; worst_gap = best minus
-- worst within the run and grouping. Predictions whose utterance is not in the catalog are
-- grouped under '?'.
CREATE OR REPLACE VIEW run_groups AS
WITH keyed AS (
    SELECT p.run_id, p.label, p.predicted, 'gender' AS group_by,
           coalesce(u.gender, '?') AS group_name
    FROM predictions p LEFT JOIN utterances u USING (utt_id)
    UNION ALL
    SELECT p.run_id, p.label, p.predicted, 'speaker' AS group_by,
           coalesce(u.speaker, '?') AS group_name
    FROM predictions p LEFT JOIN utterances u USING (utt_id)
),
per_class AS (
    SELECT run_id, group_by, group_name, label, count(*) AS n,
           count(*) FILTER (WHERE predicted = label) AS n_correct
    FROM keyed
    GROUP BY run_id, group_by, group_name, label
),
per_group AS (
    SELECT run_id, group_by, group_name, sum(n)::BIGINT AS n,
           sum(n_correct) / sum(n) AS accuracy,
           avg(n_correct / n) AS ua
    FROM per_class
    GROUP BY run_id, group_by, group_name
)
SELECT run_id, group_by, group_name, n, accuracy, ua,
       max(ua) OVER w - ua AS gap,
       max(ua) OVER w - min(ua) OVER w AS worst_gap
FROM per_group
WINDOW w AS (PARTITION BY run_id, group_by);

-- One line per run and grouping: the best and the worst group and the gap between them.
CREATE OR REPLACE VIEW run_fairness AS
SELECT run_id, group_by, count(*) AS n_groups,
       arg_max(group_name, ua) AS best_group, max(ua) AS best_ua,
       arg_min(group_name, ua) AS worst_group, min(ua) AS worst_ua,
       max(ua) - min(ua) AS worst_gap
FROM run_groups
GROUP BY run_id, group_by;

-- Confidence of every stored prediction: the top probability, the margin between the top two
-- (1 for a one-class vector) and the Shannon entropy in nats (0 log 0 = 0), also divided by
-- ln K. The vectors are used as stored (float32, summing to 1 within rounding).
CREATE OR REPLACE VIEW prediction_confidence AS
SELECT run_id, utt_id, fold, label, predicted, predicted = label AS correct,
       list_max(proba)::DOUBLE AS max_proba,
       coalesce(list_sort(proba, 'DESC')[1] - list_sort(proba, 'DESC')[2], 1.0)::DOUBLE
           AS margin,
       -list_sum(list_transform(proba,
           lambda q: CASE WHEN q > 0 THEN q::DOUBLE * ln(q::DOUBLE) ELSE 0.0 END)) AS entropy,
       CASE WHEN len(proba) > 1
            THEN -list_sum(list_transform(proba,
                     lambda q: CASE WHEN q > 0 THEN q::DOUBLE * ln(q::DOUBLE) ELSE 0.0 END))
                 / ln(len(proba))
            ELSE 0.0 END AS entropy_norm
FROM predictions;
