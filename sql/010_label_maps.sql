-- Label maps: each is a view (utt_id, corpus, label) over the utterances of one corpus kind,
-- and a row in label_maps naming its classes. `--labels NAME` picks one.

CREATE TABLE IF NOT EXISTS label_maps (
    name        VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,
    classes     VARCHAR[] NOT NULL,
    description VARCHAR
);

INSERT OR REPLACE INTO label_maps VALUES
  ('iemocap4', 'iemocap', ['ang', 'hap', 'neu', 'sad'],
   'IEMOCAP standard 4 classes: neutral, anger, sadness, happiness with excitement merged in'),
  ('iemocap4_strict', 'iemocap', ['ang', 'hap', 'neu', 'sad'],
   'IEMOCAP 4 classes without excitement'),
  ('iemocap4_impro', 'iemocap', ['ang', 'hap', 'neu', 'sad'],
   'IEMOCAP 4 classes (as iemocap4) of the improvised dialogues only: every session acts '
   'the same scripts, so leave-one-session-out tests scripted lines that training heard'),
  ('iemocap6', 'iemocap', ['ang', 'exc', 'fru', 'hap', 'neu', 'sad'],
   'IEMOCAP 6 classes: neutral, frustration, anger, sadness, excitement, happiness'),
  ('emodb7', 'emodb', ['ang', 'bor', 'dis', 'fea', 'hap', 'neu', 'sad'],
   'EmoDB 7 classes'),
  ('ravdess8', 'ravdess', ['ang', 'cal', 'dis', 'fea', 'hap', 'neu', 'sad', 'sur'],
   'RAVDESS speech, 8 classes'),
  ('ravdess7', 'ravdess', ['ang', 'dis', 'fea', 'hap', 'neu', 'sad', 'sur'],
   'RAVDESS speech, calm merged into neutral'),
  ('cremad6', 'cremad', ['ang', 'dis', 'fea', 'hap', 'neu', 'sad'], 'CREMA-D 6 classes'),
  ('tess7', 'tess', ['ang', 'dis', 'fea', 'hap', 'neu', 'sad', 'sur'],
   'TESS 7 classes (pleasant surprise as sur)'),
  ('manifest', 'manifest', [], 'every label of a manifest corpus as given');

CREATE OR REPLACE VIEW labelled AS
SELECT u.utt_id, u.corpus, c.kind, l.emotion
FROM utterances u JOIN labels l USING (utt_id) JOIN corpora c ON c.name = u.corpus;

CREATE OR REPLACE VIEW iemocap4 AS
SELECT utt_id, corpus, CASE emotion WHEN 'exc' THEN 'hap' ELSE emotion END AS label
FROM labelled WHERE kind = 'iemocap' AND emotion IN ('neu', 'ang', 'sad', 'hap', 'exc');

CREATE OR REPLACE VIEW iemocap4_strict AS
SELECT utt_id, corpus, emotion AS label
FROM labelled WHERE kind = 'iemocap' AND emotion IN ('neu', 'ang', 'sad', 'hap');

CREATE OR REPLACE VIEW iemocap4_impro AS
SELECT utt_id, corpus, label FROM iemocap4
WHERE regexp_matches(utt_id, '^Ses\d\d[FM]_impro');

CREATE OR REPLACE VIEW iemocap6 AS
SELECT utt_id, corpus, emotion AS label
FROM labelled WHERE kind = 'iemocap' AND emotion IN ('neu', 'fru', 'ang', 'sad', 'exc', 'hap');

CREATE OR REPLACE VIEW emodb7 AS
SELECT utt_id, corpus, emotion AS label FROM labelled WHERE kind = 'emodb';

CREATE OR REPLACE VIEW ravdess8 AS
SELECT utt_id, corpus, emotion AS label FROM labelled WHERE kind = 'ravdess';

CREATE OR REPLACE VIEW ravdess7 AS
SELECT utt_id, corpus, CASE emotion WHEN 'cal' THEN 'neu' ELSE emotion END AS label
FROM labelled WHERE kind = 'ravdess';

CREATE OR REPLACE VIEW cremad6 AS
SELECT utt_id, corpus, emotion AS label FROM labelled WHERE kind = 'cremad';

CREATE OR REPLACE VIEW tess7 AS
SELECT utt_id, corpus, emotion AS label FROM labelled WHERE kind = 'tess';

CREATE OR REPLACE VIEW manifest AS
SELECT utt_id, corpus, emotion AS label FROM labelled WHERE kind = 'manifest';
