-- sercap catalog. Applied in file-name order at every connect, so every statement here is
-- idempotent. A change to a table bumps SCHEMA_VERSION in sercap/warehouse.py and adds
-- sql/migrations/<version>.sql.

CREATE TABLE IF NOT EXISTS schema_info (key VARCHAR PRIMARY KEY, value VARCHAR);

-- One row per ingested corpus. kind picks the reader, label_map and protocol the defaults.
CREATE TABLE IF NOT EXISTS corpora (
    name        VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,      -- iemocap | emodb | ravdess | cremad | tess | manifest
    root        VARCHAR NOT NULL,      -- the directory it was read from
    label_map   VARCHAR NOT NULL,      -- default label map (a view in sql/010_label_maps.sql)
    protocol    VARCHAR NOT NULL,      -- default speaker-independent protocol (sql/020_folds.sql)
    ingested_at TIMESTAMP
);

-- One row per utterance. utt_id is the corpus' own id (stable across re-ingests).
CREATE TABLE IF NOT EXISTS utterances (
    utt_id      VARCHAR PRIMARY KEY,
    corpus      VARCHAR NOT NULL,
    session     VARCHAR,               -- recording session (IEMOCAP Ses01..Ses05), else NULL
    speaker     VARCHAR NOT NULL,      -- unique within the corpus
    gender      VARCHAR,               -- 'F' | 'M' | NULL
    path        VARCHAR NOT NULL,      -- absolute path of the audio file
    start_s     DOUBLE,                -- segment in the file; NULL means the whole file
    end_s       DOUBLE,
    duration_s  DOUBLE,
    sample_rate INTEGER,
    channels    INTEGER,
    text_id     VARCHAR,               -- sentence / script id where the corpus has one
    source_start_s DOUBLE,             -- where the file sits in a longer recording (IEMOCAP:
    source_end_s   DOUBLE              -- times in the dialog); information only, never used to cut
);
-- Warehouses created before source_start_s/source_end_s existed get them here (idempotent).
ALTER TABLE utterances ADD COLUMN IF NOT EXISTS source_start_s DOUBLE;
ALTER TABLE utterances ADD COLUMN IF NOT EXISTS source_end_s DOUBLE;

-- The label of each utterance: a normalised emotion code (neu ang sad hap exc fru sur fea dis
-- bor cal oth xxx), the corpus' own code, the external evaluators' categorical votes and the
-- mean dimensional ratings where the corpus has them.
CREATE TABLE IF NOT EXISTS labels (
    utt_id      VARCHAR PRIMARY KEY,
    emotion     VARCHAR NOT NULL,
    emotion_raw VARCHAR,
    votes       VARCHAR[],
    valence     DOUBLE,
    activation  DOUBLE,
    dominance   DOUBLE,
    intensity   VARCHAR
);

-- Every evaluator line of an annotation (IEMOCAP C-… and A-… lines).
CREATE TABLE IF NOT EXISTS evaluations (
    utt_id     VARCHAR NOT NULL,
    evaluator  VARCHAR NOT NULL,       -- E1, E2, F1, M1 … (F*/M* are the actors themselves)
    is_self    BOOLEAN NOT NULL,
    kind       VARCHAR NOT NULL,       -- categorical | attribute
    emotions   VARCHAR[],              -- categorical votes, normalised codes
    valence    DOUBLE,
    activation DOUBLE,
    dominance  DOUBLE,
    comment    VARCHAR,
    PRIMARY KEY (utt_id, evaluator, kind)
);

-- Problems found by the last ingest of each corpus (file, line, what is wrong).
CREATE TABLE IF NOT EXISTS ingest_problems (
    corpus  VARCHAR NOT NULL,
    file    VARCHAR,
    line    INTEGER,
    problem VARCHAR NOT NULL
);

-- Feature-set definitions: the hash of the canonical parameters (and of the library
-- versions that change numbers) names the Parquet folder; a new parameter is a new set.
CREATE TABLE IF NOT EXISTS feature_sets (
    hash        VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,      -- lld | opensmile | image
    params_json VARCHAR NOT NULL,
    versions_json VARCHAR,
    created_at  TIMESTAMP
);

-- What was extracted for which feature set, or why it could not be.
CREATE TABLE IF NOT EXISTS extractions (
    utt_id           VARCHAR NOT NULL,
    feature_set_hash VARCHAR NOT NULL,
    status           VARCHAR NOT NULL, -- ok | error
    error            VARCHAR,
    part             VARCHAR,
    n_frames         INTEGER,
    extracted_at     TIMESTAMP,
    PRIMARY KEY (utt_id, feature_set_hash)
);

-- Registered Parquet parts (paths relative to the warehouse). Views read only these.
CREATE TABLE IF NOT EXISTS parts (
    path             VARCHAR PRIMARY KEY,
    kind             VARCHAR NOT NULL, -- frames | features | images
    feature_set_hash VARCHAR NOT NULL,
    corpus           VARCHAR NOT NULL,
    n_rows           BIGINT,
    created_at       TIMESTAMP
);

-- One row per cross-validation run (or ensemble of runs).
CREATE TABLE IF NOT EXISTS runs (
    run_id           VARCHAR PRIMARY KEY,
    kind             VARCHAR NOT NULL, -- model | ensemble
    model            VARCHAR NOT NULL,
    corpus           VARCHAR NOT NULL,
    label_map        VARCHAR NOT NULL,
    protocol         VARCHAR NOT NULL,
    feature_set      VARCHAR,
    feature_set_hash VARCHAR,
    columns          VARCHAR,          -- column pattern the model read, if any
    speaker_norm     BOOLEAN NOT NULL DEFAULT false,
    params_json      VARCHAR,
    seed             INTEGER,
    tuned_from       VARCHAR,          -- study/trial the parameters came from
    members          VARCHAR[],        -- ensemble: the runs averaged
    weights          DOUBLE[],
    classes          VARCHAR[],
    n_utterances     INTEGER,
    n_folds          INTEGER,
    ua               DOUBLE,
    wa               DOUBLE,
    macro_f1         DOUBLE,
    ua_fold_mean     DOUBLE,
    ua_fold_std      DOUBLE,
    wa_fold_mean     DOUBLE,
    wa_fold_std      DOUBLE,
    f1_fold_mean     DOUBLE,
    f1_fold_std      DOUBLE,
    confusion_json   VARCHAR,
    fit_s            DOUBLE,
    duration_s       DOUBLE,
    versions_json    VARCHAR,
    -- when the run was stored, i.e. when it ended (the time in its id); it began about
    -- duration_s earlier. "Newest" (what runs lists first and predict uses) follows it.
    started_at       TIMESTAMP
);

-- Out-of-fold predictions of every run, with the probability vector in runs.classes order.
CREATE TABLE IF NOT EXISTS predictions (
    run_id    VARCHAR NOT NULL,
    utt_id    VARCHAR NOT NULL,
    fold      VARCHAR NOT NULL,
    label     VARCHAR NOT NULL,
    predicted VARCHAR NOT NULL,
    proba     FLOAT[] NOT NULL,
    PRIMARY KEY (run_id, utt_id)
);

-- Best parameters of each Optuna study.
CREATE TABLE IF NOT EXISTS tuned_params (
    study            VARCHAR PRIMARY KEY,
    model            VARCHAR NOT NULL,
    corpus           VARCHAR NOT NULL,
    label_map        VARCHAR NOT NULL,
    feature_set_hash VARCHAR,
    storage          VARCHAR,
    trial            INTEGER,
    value            DOUBLE,
    n_trials         INTEGER,
    params_json      VARCHAR NOT NULL,
    updated_at       TIMESTAMP
);

-- Final models trained on all of a run's data (for `predict`).
CREATE TABLE IF NOT EXISTS artifacts (
    run_id     VARCHAR PRIMARY KEY,
    path       VARCHAR NOT NULL,       -- relative to the warehouse
    created_at TIMESTAMP
);
