-- Content fingerprints of the audio behind each utterance (issue 10, item 3). Idempotent, so
-- warehouses created before it get the column and the table at their next writable connect.

-- SHA-256 of the bytes of the utterance's audio file (a segment's is its file's; the segment
-- itself is start_s/end_s). NULL for rows ingested before fingerprints existed. Re-ingest
-- compares it (and start_s/end_s) with the file's current hash: when they differ, the
-- utterance's extractions are dropped so that the next `extract` recomputes it.
ALTER TABLE utterances ADD COLUMN IF NOT EXISTS audio_sha256 VARCHAR;

-- The hash of every audio file read by ingest, with the file's stat at hashing time, so that
-- a re-ingest re-hashes only files whose size, mtime, ctime or inode changed. A file touched
-- within 2 s of when it was hashed is always hashed again (same-tick edits, as in git).
CREATE TABLE IF NOT EXISTS audio_files (
    path      VARCHAR PRIMARY KEY,     -- absolute path, as in utterances.path
    size      BIGINT NOT NULL,
    mtime_ns  BIGINT NOT NULL,
    ctime_ns  BIGINT NOT NULL,
    inode     BIGINT NOT NULL,
    sha256    VARCHAR NOT NULL,
    hashed_ns BIGINT NOT NULL          -- wall clock (ns since 1970) when hashing started
);
