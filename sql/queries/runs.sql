-- Runs, their out-of-fold predictions, artifacts and tuned parameters (sercap.store.runs).
-- Each "-- name: x" section is one query, read with sercap.sqlfiles.named_query("runs", "x").

-- name: insert_run
INSERT INTO runs (run_id, kind, model, corpus, label_map, protocol, feature_set,
    feature_set_hash, columns, speaker_norm, params_json, seed, tuned_from, members,
    weights, classes, n_utterances, n_folds, ua, wa, macro_f1, ua_fold_mean,
    ua_fold_std, wa_fold_mean, wa_fold_std, f1_fold_mean, f1_fold_std, confusion_json,
    fit_s, duration_s, versions_json, fold_params_json, data_sha256, overrides_json,
    started_at)
VALUES ($run_id, $kind, $model, $corpus, $label_map, $protocol, $feature_set,
    $feature_set_hash, $columns, $speaker_norm, $params_json, $seed, $tuned_from, $members,
    $weights, $classes, $n_utterances, $n_folds, $ua, $wa, $macro_f1, $ua_fold_mean,
    $ua_fold_std, $wa_fold_mean, $wa_fold_std, $f1_fold_mean, $f1_fold_std, $confusion_json,
    $fit_s, $duration_s, $versions_json, $fold_params_json, $data_sha256, $overrides_json,
    now());

-- name: find_run
-- (members_norm: each member's speaker normalisation, in the order of members)
SELECT *, (SELECT list(m.speaker_norm ORDER BY list_position(r.members, m.run_id)) FROM runs m
        WHERE list_contains(r.members, m.run_id)) AS members_norm
FROM runs r WHERE run_id = $id OR starts_with(run_id, $id) ORDER BY run_id;

-- name: list_runs
-- (columns: the pattern of a run that read only some of its set's columns; spk_norm 'mixed':
-- an ensemble of members with and without speaker normalisation, all of them still stored,
-- as sercap.format.mixed_norm says it; corpus 'a→b': a cross-corpus cell trained on a and
-- scored on b, which the filter on corpus b finds; protocol: the folds it was scored on,
-- so two runs of a corpus under folds an older sercap dealt otherwise do not read alike)
SELECT run_id, model,
    CASE WHEN train_corpus IS NOT NULL AND train_corpus <> corpus
        THEN train_corpus || '→' || corpus ELSE corpus END AS corpus,
    label_map, protocol, feature_set, columns,
    CASE WHEN NOT speaker_norm THEN 'no'
        WHEN kind = 'ensemble' AND (SELECT count(*) = len(r.members) AND NOT bool_and(
            m.speaker_norm) FROM runs m WHERE list_contains(r.members, m.run_id)) THEN 'mixed'
        ELSE 'yes' END AS spk_norm,
    ua, wa, macro_f1,  -- unrounded: a DataFrame to rank and join (tables print 4 digits)
    round(fit_s, 1) AS fit_s, tuned_from IS NOT NULL AS tuned,
    CASE WHEN kind = 'model' AND coalesce(params_json, '{}') <> '{}' THEN params_json END
        AS params,
    started_at
FROM runs r
WHERE ($corpus IS NULL OR r.corpus = $corpus) AND ($model IS NULL OR r.model = $model)
ORDER BY r.started_at DESC;

-- name: latest_runs
-- (speaker normalisation as `runs` shows it)
SELECT run_id, model, corpus, label_map,
    CASE WHEN NOT speaker_norm THEN 'no'
        WHEN kind = 'ensemble' AND (SELECT count(*) = len(r.members) AND NOT bool_and(
            m.speaker_norm) FROM runs m WHERE list_contains(r.members, m.run_id)) THEN 'mixed'
        ELSE 'yes' END AS spk_norm, ua, wa, macro_f1
FROM runs r ORDER BY started_at DESC LIMIT $n;

-- name: newest_per_configuration
-- A model's configuration includes its parameters: a run with parameters set by hand
-- (`--params '{"C": 0.1}'`) or the demo's quick settings is a row of its own, never the row
-- of the model's defaults (a nested-tuned run is one configuration whatever it chose, but
-- parameters set by hand over the tuned ones, overrides_json, make another).
-- An ensemble's configuration is its recipe, what each member is in order (model, feature
-- set, columns, speaker normalisation, tuned, parameters set by hand: a `--quick` member is
-- not a default one), the weights and who chose the members (a
-- hand-made average must not replace bench's declared one), not which member runs it
-- averaged: a second `bench --ensemble` replaces the first one's row instead of adding a
-- second (and a best-of-N). With a member run deleted, its member ids stand in.
-- Only runs scored under the protocol the corpus' folds follow now: a run from before an
-- upgrade that deals the folds otherwise (dyadic sessions kept whole), or from before an
-- ingest that changed the protocol, was scored on other folds and is not comparable.
WITH now_protocol AS (
    SELECT any_value(protocol) AS protocol FROM folds WHERE corpus = $corpus
),
here AS (
    SELECT * FROM runs WHERE corpus = $corpus AND label_map = $label_map
        AND ((SELECT protocol FROM now_protocol) IS NULL
             OR protocol IS NOT DISTINCT FROM (SELECT protocol FROM now_protocol))
),
slots AS (
    SELECT run_id, unnest(members) AS member, generate_subscripts(members, 1) AS slot
    FROM here WHERE kind = 'ensemble'
),
recipes AS (
    SELECT s.run_id,
        CASE WHEN count(m.run_id) = count(*) THEN string_agg(concat_ws('|',
            m.model, coalesce(m.feature_set, ''), coalesce(m.columns, ''), m.speaker_norm,
            m.tuned_from IS NOT NULL, coalesce(CASE WHEN m.tuned_from IS NULL
                THEN m.params_json ELSE m.overrides_json END, '{}')),
            ' + ' ORDER BY s.slot) END AS recipe
    FROM slots s LEFT JOIN runs m ON m.run_id = s.member
    GROUP BY s.run_id
)
SELECT arg_max(h.run_id, h.started_at) AS run_id
FROM here h LEFT JOIN recipes r USING (run_id)
GROUP BY h.model, h.feature_set, h.columns, h.speaker_norm, h.tuned_from IS NOT NULL, h.kind,
    coalesce(r.recipe, h.members::VARCHAR), h.weights,
    json_extract_string(h.params_json, '$.members_chosen_by'),
    CASE WHEN h.kind = 'model' THEN coalesce(CASE WHEN h.tuned_from IS NULL
        THEN h.params_json ELSE h.overrides_json END, '{}') END
ORDER BY 1;

-- name: other_protocol_runs
-- Runs of a corpus and label map, and its rating runs, scored under another protocol than
-- its folds follow now (what newest_per_configuration and newest_regression_runs leave
-- out), counted per protocol.
SELECT protocol, count(*) AS n FROM runs
WHERE corpus = $corpus AND (label_map = $label_map OR target IS NOT NULL)
    AND cross_matrix IS NULL
    AND protocol IS DISTINCT FROM (SELECT any_value(protocol) FROM folds WHERE corpus = $corpus)
    AND EXISTS (SELECT 1 FROM folds WHERE corpus = $corpus)
GROUP BY protocol ORDER BY protocol;

-- name: newest_per_model
SELECT model, arg_max(run_id, started_at) AS run_id FROM runs
WHERE kind = 'model' AND corpus = $corpus AND label_map = $label_map
GROUP BY model ORDER BY model;

-- name: run_for_prediction
-- The newest run, never the highest-scoring: a UA picked as the best of several runs is a
-- number chosen on the outer test folds.
SELECT run_id, speaker_norm FROM runs
WHERE model = $model AND ($corpus IS NULL OR corpus = $corpus) AND cross_matrix IS NULL
    AND target IS NULL  -- emotion classes; a rating is predicted with its run id
ORDER BY speaker_norm, started_at DESC, run_id DESC LIMIT 1;

-- name: newer_speaker_normed
SELECT run_id FROM runs
WHERE model = $model AND ($corpus IS NULL OR corpus = $corpus) AND cross_matrix IS NULL
    AND target IS NULL AND speaker_norm
    AND started_at > (SELECT started_at FROM runs WHERE run_id = $run_id)
ORDER BY started_at DESC, run_id DESC LIMIT 1;

-- name: bench_rows
-- (members_norm: each member's speaker normalisation, in the order of members)
SELECT run_id, model, kind, feature_set, feature_set_hash, label_map, protocol, speaker_norm,
    tuned_from IS NOT NULL AS tuned, ua, wa, macro_f1, ua_fold_mean, ua_fold_std, fit_s,
    classes, confusion_json, members, params_json, overrides_json, columns, weights,
    (SELECT list(m.speaker_norm ORDER BY list_position(r.members, m.run_id)) FROM runs m
        WHERE list_contains(r.members, m.run_id)) AS members_norm
FROM runs r WHERE list_contains($ids, run_id);

-- name: predictions
SELECT utt_id, fold, label, predicted, proba FROM predictions
WHERE run_id = $run_id ORDER BY utt_id;

-- name: predictions_with_groups
SELECT p.utt_id, p.fold, p.label, p.predicted, p.proba,
    coalesce(u.speaker, '?') AS speaker, coalesce(u.gender, '?') AS gender
FROM predictions p LEFT JOIN utterances u USING (utt_id)
WHERE p.run_id = $run_id ORDER BY p.utt_id;

-- name: insert_tuned_params
INSERT OR REPLACE INTO tuned_params (study, model, corpus, label_map, feature_set_hash,
    storage, trial, value, n_trials, params_json, updated_at, base_study, outer_fold,
    speaker_norm, columns, speakers, data_sha256, fixed_json)
VALUES ($study, $model, $corpus, $label_map, $feature_set_hash, $storage, $best_trial,
    $best_value, $n_complete, $params_json, now(), $base_study, $outer_fold, $speaker_norm,
    $columns, $speakers, $data_sha256, $fixed_json);

-- name: nested_tuned_params
SELECT base_study, outer_fold, params_json, updated_at, speakers, data_sha256, fixed_json
FROM tuned_params
WHERE model = $model AND corpus = $corpus AND label_map = $label_map
    AND feature_set_hash IS NOT DISTINCT FROM $feature_set_hash AND base_study IS NOT NULL
    AND speaker_norm IS NOT DISTINCT FROM $speaker_norm
    AND columns IS NOT DISTINCT FROM $columns
ORDER BY updated_at DESC;
