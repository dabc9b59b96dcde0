-- Dimensional targets and regression runs (sercap.store.regression).
-- Each "-- name: x" section is one query, read with sercap.sqlfiles.named_query.

-- name: target_values
-- Every utterance of a corpus in its protocol's folds, with the chosen rating (NULL where the
-- corpus has none for that utterance).
SELECT l.utt_id, f.speaker, f.fold, f.protocol, f.session,
    CASE $target WHEN 'valence' THEN l.valence WHEN 'activation' THEN l.activation
        WHEN 'dominance' THEN l.dominance END AS value
FROM labels l JOIN folds f USING (utt_id)
WHERE f.corpus = $corpus
ORDER BY l.utt_id;

-- name: insert_regression_run
INSERT INTO runs (run_id, kind, model, corpus, label_map, protocol, feature_set,
    feature_set_hash, columns, speaker_norm, params_json, seed, tuned_from, n_utterances,
    n_folds, target, ccc, pearson, mae, ccc_fold_mean, ccc_fold_std, fit_s, duration_s,
    versions_json, fold_params_json, data_sha256, overrides_json, started_at)
VALUES ($run_id, $kind, $model, $corpus, $label_map, $protocol, $feature_set,
    $feature_set_hash, $columns, $speaker_norm, $params_json, $seed, $tuned_from,
    $n_utterances, $n_folds, $target, $ccc, $pearson, $mae, $ccc_fold_mean, $ccc_fold_std,
    $fit_s, $duration_s, $versions_json, $fold_params_json, $data_sha256, $overrides_json,
    now());

-- name: regression_predictions
SELECT utt_id, fold, value, predicted FROM regression_predictions
WHERE run_id = $run_id ORDER BY utt_id;

-- name: regression_scores
SELECT run_id, target, ccc, pearson, mae  -- unrounded, as `runs` gives UA
FROM runs WHERE list_contains($ids, run_id) AND target IS NOT NULL;

-- name: newest_regression_runs
-- The newest regression run of each (target, model, feature set, columns, label map that
-- chose the utterances, speaker norm, tuned, parameters set by hand) of a corpus: chosen by
-- time, never by score. Only runs under the protocol the corpus' folds follow now (as
-- runs.sql's newest_per_configuration: a run scored on other folds is not comparable).
SELECT target, model, feature_set, columns, label_map, speaker_norm,
    tuned_from IS NOT NULL AS tuned, tuned_from, params_json, overrides_json,
    round(ccc, 4) AS ccc, round(pearson, 4) AS pearson, round(mae, 4) AS mae,
    round(ccc_fold_mean, 4) AS ccc_fold_mean, round(ccc_fold_std, 4) AS ccc_fold_std,
    n_utterances, run_id
FROM runs
WHERE corpus = $corpus AND target IS NOT NULL AND cross_matrix IS NULL
    AND ((SELECT any_value(protocol) FROM folds WHERE corpus = $corpus) IS NULL
         OR protocol IS NOT DISTINCT FROM
            (SELECT any_value(protocol) FROM folds WHERE corpus = $corpus))
QUALIFY row_number() OVER (
    PARTITION BY target, model, feature_set, columns, label_map, speaker_norm,
        tuned_from IS NOT NULL,
        coalesce(CASE WHEN tuned_from IS NULL THEN params_json ELSE overrides_json END, '{}')
    ORDER BY started_at DESC
) = 1
ORDER BY target, model, run_id;
