-- Extraction bookkeeping (sercap.store.catalog): one row per (utterance, feature set).

-- name: pending
SELECT u.corpus, u.utt_id, u.path, u.start_s, u.end_s, u.audio_sha256 FROM utterances u
WHERE ($corpus IS NULL OR u.corpus = $corpus)
    AND NOT EXISTS (
        SELECT 1 FROM extractions e WHERE e.utt_id = u.utt_id
            AND e.feature_set_hash = $hash AND (e.status = 'ok' OR NOT $retry_errors))
ORDER BY u.corpus, u.utt_id;

-- name: insert_staged
INSERT OR REPLACE INTO extractions (utt_id, feature_set_hash, status, error, part, n_frames,
    extracted_at)
SELECT utt_id, $hash, status, error, part, n_frames, now() FROM _new_extractions;

-- name: parts_of_utterances
SELECT DISTINCT p.path, p.kind, p.feature_set_hash, p.corpus
FROM parts p JOIN extractions e
    ON e.feature_set_hash = p.feature_set_hash
    AND parse_filename(e.part) = parse_filename(p.path)
JOIN utterances u ON u.utt_id = e.utt_id AND u.corpus = p.corpus
WHERE e.status = 'ok' AND e.part IS NOT NULL AND list_contains($utts, e.utt_id)
ORDER BY p.path;

-- name: repoint_chunk
UPDATE extractions SET part = $part
WHERE feature_set_hash = $hash AND status = 'ok' AND parse_filename(part) = $chunk
    AND utt_id IN (SELECT utt_id FROM utterances WHERE corpus = $corpus);

-- name: counts_per_set
SELECT feature_set_hash, count(*) FILTER (WHERE status = 'ok'),
    count(*) FILTER (WHERE status <> 'ok')
FROM extractions GROUP BY 1;

-- name: overview
SELECT f.name, f.kind, f.hash, count(e.utt_id) FILTER (e.status = 'ok') AS extracted,
    count(e.utt_id) FILTER (e.status = 'error') AS failed
FROM feature_sets f LEFT JOIN extractions e ON e.feature_set_hash = f.hash
GROUP BY ALL ORDER BY f.name;
