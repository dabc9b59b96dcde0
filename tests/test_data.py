import numpy as np
import pytest

from sercap.data import load_dataset, speaker_normalise, speaker_normalise_images
from sercap.errors import SercapError
from tests.helpers import add_corpus, add_features, add_frames, add_images


def test_load_tabular_aligns_rows_labels_speakers_and_folds(wh) -> None:
    utts = add_corpus(wh, n_speakers=3, per_class=2)
    feats = add_features(wh, utts)
    data = load_dataset(wh, "tabular")
    assert data.corpus == "toy" and data.label_map == "emodb7"
    assert data.classes == ["ang", "neu", "sad"]
    assert data.X.shape == (18, 6) and data.X.dtype == np.float32
    assert list(data.utt_ids) == sorted(utts["utt_id"])
    truth = dict(zip(utts["utt_id"], utts["emotion"], strict=True))
    assert [data.classes[i] for i in data.y] == [truth[u] for u in data.utt_ids]
    # leave-one-speaker-out: the fold is the speaker
    assert list(data.folds) == list(data.speakers)
    expected = feats.sort("utt_id")["mfcc_00_mean"].to_numpy()
    np.testing.assert_allclose(data.X[:, data.columns.index("mfcc_00_mean")], expected)


def test_column_pattern_selects_a_family(wh) -> None:
    add_features(wh, add_corpus(wh))
    data = load_dataset(wh, "tabular", columns="^mfcc_")
    assert data.columns and all(c.startswith("mfcc_") for c in data.columns)
    with pytest.raises(SercapError, match="matches none"):
        load_dataset(wh, "tabular", columns="^nothing_")
    with pytest.raises(SercapError, match="not a valid regular expression"):
        load_dataset(wh, "tabular", columns="(")


def test_clear_errors_for_missing_steps(wh) -> None:
    with pytest.raises(SercapError, match="run `sercap ingest"):
        load_dataset(wh, "tabular")
    add_corpus(wh)
    with pytest.raises(SercapError, match="run `sercap extract --feature-set default`"):
        load_dataset(wh, "tabular")
    unknown = "unknown feature set 'nosuch'; choose one of: basic, chroma"
    with pytest.raises(SercapError, match=unknown):
        load_dataset(wh, "tabular", feature_set="nosuch")
    with pytest.raises(SercapError, match="'mel' is an image set, and this model reads feature"):
        load_dataset(wh, "tabular", feature_set="mel")
    with pytest.raises(SercapError, match="run `sercap images --image-set mel`"):
        load_dataset(wh, "image")
    with pytest.raises(SercapError, match="'default' is an audio feature set.*one of: mel"):
        load_dataset(wh, "image", feature_set="default")
    # the maps of this corpus' kind, not every corpus' ("have: cremad6, emodb7, iemocap4…")
    with pytest.raises(SercapError, match=r"unknown label map 'nope'; corpus '\w+' \(emodb\) "
                       r"takes: emodb7$"):  # fmt: skip
        load_dataset(wh, "tabular", label_map="nope")
    with pytest.raises(SercapError, match="is for iemocap corpora"):
        load_dataset(wh, "tabular", label_map="iemocap4")
    with pytest.raises(SercapError, match="no corpus 'other'"):
        load_dataset(wh, "tabular", corpus="other")


def test_sequences_of_an_opensmile_set_are_refused_not_sent_to_extract(wh) -> None:
    # openSMILE sets store functionals only: "run sercap extract" again changed nothing
    utts = add_corpus(wh)
    add_features(wh, utts, name="egemaps02", digest="os1")
    wh.execute("UPDATE feature_sets SET kind = 'opensmile' WHERE hash = 'os1'")
    with pytest.raises(SercapError, match="'egemaps02' .openSMILE. stores functionals only"):
        load_dataset(wh, "sequence", feature_set="egemaps02")
    with pytest.raises(SercapError, match="run `sercap extract --feature-set default`"):
        load_dataset(wh, "sequence")  # an lld set not extracted yet: extract it


def test_errors_name_the_parameter_for_python_and_the_cli(wh) -> None:
    """A notebook user reads these messages too: a CLI flag alone tells them nothing."""
    add_features(wh, add_corpus(wh, "a"))
    add_corpus(wh, "b")
    with pytest.raises(SercapError, match="pick one with --corpus / corpus=$"):
        load_dataset(wh, "tabular")
    with pytest.raises(SercapError, match=r"^--columns / columns='\^x_' matches none"):
        load_dataset(wh, "tabular", corpus="a", columns="^x_")


def test_speaker_normalise_uses_each_speakers_own_statistics() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(5, 2, (20, 3)), rng.normal(-3, 0.5, (10, 3))]).astype(np.float32)
    X[0, 2] = np.nan
    speakers = np.array(["a"] * 20 + ["b"] * 10)
    Z = speaker_normalise(X, speakers)
    for s in ("a", "b"):
        block = Z[speakers == s]
        np.testing.assert_allclose(np.nanmean(block, axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(np.nanstd(block, axis=0), 1, atol=1e-4)
    assert np.isnan(Z[0, 2])
    # An all-NaN column (a speaker who never voiced) stays NaN without warnings.
    X[speakers == "b", 1] = np.nan
    assert np.isnan(speaker_normalise(X, speakers)[speakers == "b", 1]).all()


def test_speaker_norm_flag_is_recorded(wh) -> None:
    add_features(wh, add_corpus(wh))
    data = load_dataset(wh, "tabular", speaker_norm=True)
    assert data.speaker_norm
    for s in np.unique(data.speakers):
        np.testing.assert_allclose(data.X[data.speakers == s].mean(axis=0), 0, atol=1e-5)


def test_a_partly_extracted_feature_set_is_refused(wh) -> None:
    utts = add_corpus(wh, n_speakers=3, per_class=2)
    add_features(wh, utts.head(10))
    with pytest.raises(SercapError, match=r"'default' is extracted for 10 of the 18 labelled"):
        load_dataset(wh, "tabular")
    # An utterance that was tried and failed (silent, unreadable) does not block training.
    for utt in utts["utt_id"][10:]:
        wh.execute(
            "INSERT INTO extractions VALUES (?, 'abc123', 'error', 'silent', NULL, NULL, now())",
            [utt],
        )
    data = load_dataset(wh, "tabular")
    assert (len(data), data.left_out) == (10, 8)
    # ...and train says so, instead of printing "10 utterances" alone
    import sercap

    notes: list[str] = []
    sercap.train(wh, "svm", progress=False, say=notes.append)
    left_out = (
        "note: 8 labelled utterance(s) left out: their extraction failed "
        "(the extractions table keeps each one's error)"
    )
    assert notes[1] == left_out
    # bench said nothing of it (each model's data, once), and on a terminal (bars shown)
    # the CLI gave it no say at all
    notes.clear()
    sercap.bench(wh, ["svm", "rf"], progress=False, say=notes.append)
    assert sum(left_out in n for n in notes) == 1, notes
    notes.clear()
    sercap.bench(wh, ["svm"], progress=True, say=notes.append, resume=True)
    assert notes[0] == f"    svm: {left_out}"
    assert not any(": UA " in n for n in notes)  # no line per model beside a bar


def test_the_cli_gives_bench_its_notes_beside_progress_bars(tmp_path, monkeypatch) -> None:
    """On a terminal (bars shown) the CLI gave bench no `say`: its notes on the data never
    showed there, only in a log file."""
    from click.testing import CliRunner

    import sercap
    import sercap.cli.bench as cli_bench
    from cli import main
    from sercap.store import connect

    with connect(tmp_path / "wh") as wh:
        add_features(wh, add_corpus(wh))
    given: dict = {}

    def bench(*args, **kwargs):
        given.update(kwargs)
        raise sercap.SercapError("stop here")

    monkeypatch.setattr(cli_bench, "bars", lambda: True)
    monkeypatch.setattr(sercap, "bench", bench)
    result = CliRunner().invoke(main, ["-w", str(tmp_path / "wh"), "bench", "svm"])
    assert "stop here" in result.output and given.get("say") is not None


def test_speaker_norm_does_not_depend_on_the_label_map(wh) -> None:
    """Statistics come from all of a speaker's extracted utterances, labelled or not: the
    normalised features of an utterance are the same under every label map."""
    utts = add_corpus(
        wh, kind="iemocap", protocol="leave-one-session-out",
        classes=("ang", "neu", "sad", "exc", "fru"),
    )  # fmt: skip
    add_features(wh, utts)
    views = {}
    for label_map in ("iemocap4", "iemocap4_strict", "iemocap6"):
        data = load_dataset(wh, "tabular", label_map=label_map, speaker_norm=True)
        views[label_map] = dict(zip(data.utt_ids, data.X, strict=True))
    assert len(views["iemocap4_strict"]) < len(views["iemocap4"]) < len(views["iemocap6"])
    for utt, x in views["iemocap4_strict"].items():
        np.testing.assert_allclose(x, views["iemocap4"][utt], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(x, views["iemocap6"][utt], rtol=1e-6, atol=1e-6)


def test_speaker_norm_standardises_each_speakers_frames(wh) -> None:
    """Sequence models: every descriptor over all frames of a speaker has mean 0, std 1."""
    add_frames(wh, add_corpus(wh, n_speakers=3, per_class=3), n_descriptors=3)
    raw = load_dataset(wh, "sequence")
    data = load_dataset(wh, "sequence", speaker_norm=True)
    assert data.speaker_norm and not raw.speaker_norm
    for s in np.unique(data.speakers):
        mine = np.concatenate([x for x, sp in zip(data.X, data.speakers, strict=True) if sp == s])
        np.testing.assert_allclose(mine.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(mine.std(axis=0), 1, atol=1e-4)
        before = np.concatenate([x for x, sp in zip(raw.X, raw.speakers, strict=True) if sp == s])
        assert abs(before.mean(axis=0)).max() > 0.05  # the raw frames were not already so


def test_speaker_norm_standardises_each_speakers_mel_bands(wh) -> None:
    """Image models: each mel band of a speaker's images sits at 128 ± 32 pixel levels."""
    add_images(wh, add_corpus(wh, n_speakers=3, per_class=3))
    raw = load_dataset(wh, "image")
    data = load_dataset(wh, "image", speaker_norm=True)
    assert data.speaker_norm
    pairs = zip(data.X, raw.X, strict=True)
    assert all(x.dtype == np.uint8 and x.shape == r.shape for x, r in pairs)
    for s in np.unique(data.speakers):
        mine = np.concatenate(
            [x for x, sp in zip(data.X, data.speakers, strict=True) if sp == s], axis=1
        ).astype(np.float64)
        np.testing.assert_allclose(mine.mean(axis=1), 128, atol=1.0)
        varying = mine.std(axis=1) > 0
        assert varying.sum() > 8  # noise bands vary; constant bright rows sit at 128
        np.testing.assert_allclose(mine.std(axis=1)[varying], 32, atol=1.0)
        assert (mine[~varying] == 128).all()


def test_speaker_normalise_images_by_hand() -> None:
    img = np.array([[10, 30, 20], [0, 0, 255]], dtype=np.uint8)
    stats = {"a": (np.array([20.0, 85.0]), np.array([10.0, 20.0]))}
    out = speaker_normalise_images([img], np.array(["a"]), stats)[0]
    # 128 + 32 z, rounded, clipped: z = -1, 1, 0 and -4.25, -4.25, 8.5
    np.testing.assert_array_equal(out, [[96, 160, 128], [0, 0, 255]])
    assert out.dtype == np.uint8
    with pytest.raises(SercapError, match="no speaker statistics for speaker 'b'"):
        speaker_normalise_images([img], np.array(["b"]), stats)


def test_image_and_sequence_speaker_norm_ignore_the_label_map(wh) -> None:
    utts = add_corpus(
        wh, kind="iemocap", protocol="leave-one-session-out",
        classes=("ang", "neu", "sad", "exc", "fru"),
    )  # fmt: skip
    add_frames(wh, utts)
    add_images(wh, utts)
    for kind in ("sequence", "image"):
        views = {}
        for label_map in ("iemocap4", "iemocap6"):
            data = load_dataset(wh, kind, label_map=label_map, speaker_norm=True)
            views[label_map] = dict(zip(data.utt_ids, data.X, strict=True))
        assert len(views["iemocap4"]) < len(views["iemocap6"])
        for utt, x in views["iemocap4"].items():
            np.testing.assert_array_equal(x, views["iemocap6"][utt])


def test_train_records_speaker_norm_for_sequence_and_image_models(wh) -> None:
    """`train lstm|cnn --speaker-norm` trains on normalised inputs and says so in the run
    (it used to drop the flag without a word for every non-tabular model)."""
    import sercap

    utts = add_corpus(wh, n_speakers=3, per_class=3)
    add_frames(wh, utts)
    add_images(wh, utts)
    tiny = {"epochs": 1, "batch_size": 8}
    for model, params in (
        ("lstm", {**tiny, "hidden_size": 8}),
        ("cnn", {**tiny, "channels": 4, "crop_frames": 16}),
    ):
        run = sercap.train(wh, model, params=params, speaker_norm=True, progress=False)
        flag = wh.query("SELECT speaker_norm FROM runs WHERE run_id = ?", [run.run_id])
        assert flag["speaker_norm"].to_list() == [True], model
        assert run.speaker_norm


def test_speaker_norm_is_refused_for_text_models_not_dropped(wh) -> None:
    import sercap
    from sercap.errors import BadParameterError

    add_features(wh, add_corpus(wh))
    with pytest.raises(
        BadParameterError, match="--speaker-norm / speaker_norm= does not apply to text-lr"
    ):
        sercap.train(wh, "text-lr", speaker_norm=True, progress=False)


def test_sequences_are_each_utterances_frames_in_order_whatever_the_stored_order(
    wh, monkeypatch
) -> None:
    """Sequences are filled batch by batch at each frame's row, without sorting the result:
    frames stored shuffled, with NULLs (unvoiced), across many small batches, come back as
    each utterance's frames in frame order; frames not numbered 0..n-1 are refused."""
    import polars as pl

    import sercap.store.warehouse as warehouse
    from tests.helpers import _register

    monkeypatch.setattr(warehouse, "HEAD_BATCH_ROWS", 16)
    utts = add_corpus(wh, n_speakers=3, per_class=2)
    rng = np.random.default_rng(5)
    parts = []
    for utt in utts["utt_id"]:
        n = int(rng.integers(5, 30))
        values = rng.normal(size=(n, 2)).astype(np.float32)
        parts.append(pl.DataFrame({
            "utt_id": [utt] * n, "frame": np.arange(n, dtype=np.int32),
            "f0_hz": pl.Series([None if v < -0.5 else float(v) for v in values[:, 0]],
                               dtype=pl.Float32),
            "mfcc_01": values[:, 1],
        }))  # fmt: skip
    frames = pl.concat(parts)
    _register(wh, "frames", "default", "abc123", "toy", frames.sample(fraction=1.0, seed=1))
    data = load_dataset(wh, "sequence")
    assert list(data.utt_ids) == sorted(utts["utt_id"])
    for utt, x in zip(data.utt_ids, data.X, strict=True):
        want = frames.filter(pl.col("utt_id") == utt).sort("frame")
        expected = want.select(data.columns).to_numpy().astype(np.float32)
        assert x.dtype == np.float32 and x.shape == expected.shape
        np.testing.assert_array_equal(x, expected)  # NULL as NaN, in frame order
    assert any(np.isnan(x).any() for x in data.X)


@pytest.mark.parametrize(
    "numbers", [[0, 1, 3], [0, 1, 1, 3], [0, 2, 2, 3], [0, 1, None, 3]], ids=str
)
def test_frames_not_numbered_each_once_from_0_are_refused(wh, numbers) -> None:
    """A gap, or a repeated frame beside a missing one (0, 1, 1, 3 passed a min/max check
    and left row 2 of the array unwritten: uninitialised memory as features)."""
    import polars as pl

    from tests.helpers import _register

    utts = add_corpus(wh, n_speakers=2, per_class=1)
    k = len(numbers)
    frames = pl.DataFrame({
        "utt_id": [u for u in utts["utt_id"] for _ in range(k)],
        "frame": pl.Series(numbers * utts.height, dtype=pl.Int32),
        "mfcc_01": np.zeros(k * utts.height, np.float32),
    })  # fmt: skip
    _register(wh, "frames", "default", "abc123", "toy", frames)
    with pytest.raises(SercapError, match=r"not numbered 0..n-1"):
        load_dataset(wh, "sequence")


def test_inner_splits_of_dealt_sessions_keep_each_session_whole(wh) -> None:
    """session-kfold-5 (a manifest of dyadic sessions) deals sessions into folds; its inner
    splits grouped speakers, so early stopping and tuning validated on partners of training
    speakers. They group the loaded sessions, from three in the rows."""
    add_features(wh, add_corpus(wh, protocol="speaker-kfold-5", n_speakers=12, sessions=True))
    data = load_dataset(wh, "tabular")
    assert data.protocol == "session-kfold-5" and len(set(data.folds)) == 5
    assert data.sessions is not None
    assert data.validation_unit() == "session"
    groups = data.validation_groups()
    pairs = {
        s: {g for g, s2 in zip(groups, data.speakers, strict=True) if s2 == s}
        for s in data.speakers
    }
    assert all(len(g) == 1 for g in pairs.values()) and len(set(groups)) == 6
    two = np.flatnonzero(np.isin(data.sessions, ["Ses01", "Ses02"]))
    assert data.subset(two).validation_unit() == "speaker"  # two sessions: speakers
    assert data.subset(two).sessions.tolist() == data.sessions[two].tolist()


def test_a_dataset_reads_the_version_of_the_set_it_names(wh) -> None:
    """A newer definition of a set name whose every extraction failed: features_NAME still
    showed the older version's rows, and train stored the newer hash beside the older
    features (the UA of the older version under the newer one's name)."""
    from sercap.errors import NotExtractedError

    utts = add_corpus(wh, n_speakers=3, per_class=3)
    add_features(wh, utts, name="hop20", digest="v2")
    data = load_dataset(wh, "tabular", feature_set="hop20")
    assert data.feature_set_hash == "v2" and len(data) == utts.height
    wh.execute(  # v3: defined after v2, and nothing of it stored (every extraction failed)
        "INSERT INTO feature_sets VALUES ('v3', 'hop20', 'lld', '{}', '{}', now() + INTERVAL 1 "
        "SECOND)"
    )
    wh.execute(
        "INSERT INTO extractions SELECT utt_id, 'v3', 'error', 'shorter than one analysis "
        "window', NULL, NULL, now() FROM utterances"
    )
    wh.refresh_views()
    assert wh.scalar("SELECT count(*) FROM features_hop20") == utts.height  # (v2's, by name)
    with pytest.raises(NotExtractedError, match="features_hop20_v3 does not exist: the extrac"):
        load_dataset(wh, "tabular", feature_set="hop20")
