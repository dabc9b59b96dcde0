"""The ingest and corpus synth commands through the CLI: summaries and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main
from tests.test_corpora_iemocap import N_UTTERANCES, make_iemocap


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "Traceback" not in result.output


def test_synth_then_ingest_prints_summary(tmp_path: Path) -> None:
    synth = run(
        "-w",
        tmp_path / "wh",
        "corpus",
        "synth",
        tmp_path / "demo",
        "--sessions",
        1,
        "--per-speaker",
        3,
        "--seed",
        2,
    )
    assert synth.exit_code == 0, synth.output
    assert "wrote 6 utterances" in synth.output and "sercap ingest iemocap" in synth.output
    first = run("-w", tmp_path / "wh", "ingest", "iemocap", tmp_path / "demo")
    assert first.exit_code == 0, first.output
    assert "added 6" in first.output
    assert "utterances per label" in first.output and "utterances per speaker" in first.output
    assert "Ses01F" in first.output and "Ses01M" in first.output
    again = run("-w", tmp_path / "wh", "ingest", "iemocap", tmp_path / "demo", "--name", "iemocap")
    assert "added 0, updated 0, unchanged 6" in again.output


def test_problems_are_listed_with_where_the_rest_are(tmp_path: Path) -> None:
    release = make_iemocap(tmp_path / "corpus")
    for wav in sorted(release.glob("Session1/sentences/wav/*/Ses01*.wav"))[:6]:
        wav.unlink()
    result = run("-w", tmp_path / "wh", "ingest", "iemocap", release, "--name", "mine")
    assert result.exit_code == 0, result.output
    assert f"added {N_UTTERANCES - 6}" in result.output
    assert "6 problem(s):" in result.output and "… 1 more;" in result.output
    assert "SELECT * FROM ingest_problems WHERE corpus = 'mine'" in result.output
    listed = run("-w", tmp_path / "wh", "sql", "SELECT count(*) AS n FROM ingest_problems")
    assert "6" in listed.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    assert_one_line_error(run("-w", warehouse, "ingest", "iemocap", tmp_path / "nope"), "no such")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("-w", warehouse, "ingest", "iemocap", tmp_path / "empty"), "Session")
    assert not warehouse.exists()  # a failed first ingest leaves no warehouse behind
    (tmp_path / "a.csv").write_text("x\n")
    assert_one_line_error(
        run("-w", warehouse, "ingest", "emodb", tmp_path / "a.csv"), "a file, not a directory"
    )
    warehouse.mkdir()
    (warehouse / "notes.txt").write_text("mine")
    assert_one_line_error(run("-w", warehouse, "ingest", "iemocap", tmp_path / "empty"), "Session")
    assert [p.name for p in warehouse.iterdir()] == ["notes.txt"]  # only what it created goes
    release = make_iemocap(tmp_path / "corpus", sessions=(1,))
    assert run("-w", warehouse, "ingest", "iemocap", release).exit_code == 0
    assert_one_line_error(
        run("-w", warehouse, "ingest", "iemocap", release, "--name", "twin"), "already belongs"
    )
    wrong_kind = run("-w", warehouse, "ingest", "iemocapp", release)
    assert wrong_kind.exit_code == 1 and "Traceback" not in wrong_kind.output
    assert wrong_kind.output.strip().splitlines() == [
        "error: unknown corpus kind 'iemocapp'; choose one of: "
        "iemocap, emodb, ravdess, cremad, tess, manifest"
    ]


def test_help_shows_layouts() -> None:
    result = run("ingest", "--help")
    assert "IEMOCAP_full_release/Session1..5/" in result.output
    assert "Actor_NN/03-01-EE-II-SS-RR-AA.wav" in result.output
    assert "--per-speaker" in run("corpus", "synth", "--help").output


# --------------------------------------------------------------------------- issue 10, 3 and 4
def _manifest(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    import polars as pl

    path = root / "manifest.csv"
    pl.DataFrame(rows, schema=["path", "label", "speaker"], orient="row").write_csv(path)
    return path


def _voices(root: Path, names: str) -> list[tuple[str, str, str]]:
    """One voice file per letter of ``names`` under ``root``; their manifest rows."""
    for i, name in enumerate(names):
        _wav(root / f"{name}.wav", 120 + 20 * i, i)
    return [(f"{n}.wav", "neu", f"s{i % 2}") for i, n in enumerate(names)]


def _wav(path: Path, f0: float, seed: int, seconds: float = 0.6) -> None:
    import soundfile as sf

    from tests.helpers import SR, voice

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, voice(seconds, f0, seed), SR)


def test_changed_audio_is_re_extracted_and_only_its_new_rows_show(tmp_path: Path) -> None:
    from sercap.corpora.ingest import ingest
    from sercap.features.extract import extract
    from sercap.store import connect

    root = tmp_path / "corpus"
    for i, name in enumerate("abcd"):
        _wav(root / f"{name}.wav", 120 + 20 * i, i)
    manifest = _manifest(root, [(f"{n}.wav", "neu", f"s{i % 2}") for i, n in enumerate("abcd")])
    with connect(tmp_path / "wh", memory=True) as wh:
        ingest(wh, "manifest", manifest)
        first = extract(wh, "default", chunk_size=2, progress=False)  # b shares a part with a
        assert first.done == 4
        before = dict(wh.query("SELECT utt_id, f0_hz_mean FROM utterance_features").iter_rows())

        _wav(root / "b.wav", 260, 9, seconds=0.9)  # other audio, same name
        summary = ingest(wh, "manifest", manifest)
        again = extract(wh, "default", chunk_size=2, progress=False)
        assert (again.done, again.skipped) == (1, 3)
        assert extract(wh, "default", retry_errors=True, progress=False).done == 0
        rows = wh.query("SELECT utt_id, f0_hz_mean FROM utterance_features ORDER BY utt_id")
        assert rows["utt_id"].to_list() == list("abcd")  # b once, not its old row and a new one
        after = dict(rows.iter_rows())
        assert after["b"] == pytest.approx(260, rel=0.1)
        assert before["b"] == pytest.approx(140, rel=0.1)
        assert {k: after[k] for k in "acd"} == {k: before[k] for k in "acd"}
        frames = wh.scalar("SELECT count(*) FROM frames WHERE utt_id = 'b'")
        assert frames == wh.scalar("SELECT n_frames FROM extractions WHERE utt_id = 'b'")
        assert (summary.audio_changed, summary.invalidation.extractions) == (1, 1)
        assert "audio changed: 1 utterance(s)" in summary.audio_line()
        # every extraction row points at a registered part that holds its utterance
        dangling = wh.scalar(
            "SELECT count(*) FROM extractions e WHERE status = 'ok' AND NOT EXISTS "
            "(SELECT 1 FROM parts p WHERE p.path = e.part)"
        )
        assert dangling == 0
        registered = {r[0] for r in wh.con.execute("SELECT path FROM parts").fetchall()}
        on_disk = {
            p.relative_to(tmp_path / "wh").as_posix() for p in (tmp_path / "wh").rglob("*.parquet")
        }
        assert on_disk == registered  # replaced parts were deleted, nothing half-written


def test_ingest_never_copies_a_damaged_part_into_a_new_one(tmp_path: Path) -> None:
    """Re-ingesting changed audio rewrote its chunk's parts from whatever bytes they held:
    a damaged part (edited values, stat unchanged or not) came out as a new part with a
    fresh checksum, and `check` then passed with the wrong numbers. Ingest now refuses."""
    import sercap
    from sercap.errors import SercapError

    root = tmp_path / "corpus"
    for i, name in enumerate("abcd"):
        _wav(root / f"{name}.wav", 120 + 20 * i, i)
    manifest = _manifest(root, [(f"{n}.wav", "neu", f"s{i % 2}") for i, n in enumerate("abcd")])
    with sercap.connect(tmp_path / "wh") as wh:
        sercap.ingest(wh, "manifest", manifest)
        sercap.extract(wh, chunk_size=2, progress=False)
        part = wh.scalar("SELECT part FROM extractions WHERE utt_id = 'b'")
        # bytes that differ from the recorded ones while the stat still matches (bit rot)
        wh.execute("UPDATE parts SET sha256 = repeat('0', 64) WHERE path = ?", [part])
    _wav(root / "a.wav", 260, 9, seconds=0.9)  # a shares b's chunk
    before = sorted(p.name for p in (tmp_path / "wh").rglob("*.parquet"))
    with (
        sercap.connect(tmp_path / "wh") as wh,
        pytest.raises(SercapError, match="bytes differ from those recorded"),
    ):
        sercap.ingest(wh, "manifest", manifest)
    assert sorted(p.name for p in (tmp_path / "wh").rglob("*.parquet")) == before
    # damage the open sees (the file's stat changed): refused before any work, in Python too
    (tmp_path / "wh" / part).write_bytes(b"PAR1 edited")
    with (
        sercap.connect(tmp_path / "wh") as wh,
        pytest.raises(SercapError, match=r"Parquet part\(s\) are missing, damaged"),
    ):
        sercap.ingest(wh, "manifest", manifest)


def test_features_of_audio_deleted_or_damaged_since_extraction_are_dropped(
    tmp_path: Path,
) -> None:
    """A re-ingest that finds a stored utterance's file deleted (no longer listed) or
    truncated drops its features, says so, and leaves alone a stored utterance that this
    manifest does not list but whose file is fine (an earlier batch of the same corpus)."""
    from sercap.corpora.ingest import ingest
    from sercap.features.extract import extract
    from sercap.store import connect

    root = tmp_path / "corpus"
    rows = _voices(root, "abcde")
    with connect(tmp_path / "wh", memory=True) as wh:
        ingest(wh, "manifest", _manifest(root, rows))
        assert extract(wh, "default", chunk_size=2, progress=False).done == 5
        (root / "b.wav").unlink()
        (root / "c.wav").write_bytes((root / "c.wav").read_bytes()[:2000])
        # the new manifest lists c (now truncated) and d; a, b and e only the first one did
        summary = ingest(wh, "manifest", _manifest(root, rows[2:4]), name="manifest")
        stored = wh.query("SELECT utt_id FROM utterance_features ORDER BY utt_id")
        assert stored["utt_id"].to_list() == ["a", "d", "e"]
        assert summary.audio_gone.keys() == {"b", "c"}
        assert "audio file not found" in summary.audio_gone["b"]
        assert "truncated WAV" in summary.audio_gone["c"]
        assert summary.invalidation.extractions == 2
        line = summary.audio_line()
        assert line.startswith("audio changed: 2 stored utterance(s) whose file is missing")
        assert "(first: b: audio file not found)" in line and "2 extraction(s)" in line
        # the rows and labels stay; extract records what is wrong with their audio
        assert wh.scalar("SELECT count(*) FROM utterances") == 5
        again = extract(wh, "default", progress=False)
        assert (again.done, again.failed) == (0, 2)
        errors = dict(
            wh.con.execute(
                "SELECT utt_id, error FROM extractions WHERE status = 'error'"
            ).fetchall()
        )
        assert "not found" in errors["b"] and "truncated WAV" in errors["c"]


def test_a_file_restored_after_extract_missed_it_is_extracted_again(tmp_path: Path) -> None:
    """Restoring a deleted file and ingesting again left extract's 'audio file not found'
    row in place: extract said the utterance 'failed before' and never tried it again,
    unless another ingest happened to run while the file was still gone (which dropped the
    row and said 'audio changed' each time, though nothing had). Now an ingest that finds
    such a file readable drops the row, and one that finds it still missing says nothing."""
    from sercap.corpora.ingest import ingest
    from sercap.features.extract import extract
    from sercap.store import connect

    root = tmp_path / "corpus"
    rows = _voices(root, "abc")
    with connect(tmp_path / "wh", memory=True) as wh:
        ingest(wh, "manifest", _manifest(root, rows))
        assert extract(wh, "default", progress=False).done == 3
        (root / "b.wav").rename(tmp_path / "b.wav")
        assert ingest(wh, "manifest", _manifest(root, rows[::2])).audio_gone.keys() == {"b"}
        assert extract(wh, "default", progress=False).failed == 1  # recorded: not found
        still = ingest(wh, "manifest", _manifest(root, rows[::2]))  # b still missing
        assert still.audio_gone == {} and still.audio_line() is None
        assert extract(wh, "default", progress=False).failed_before == 1
        (tmp_path / "b.wav").rename(root / "b.wav")
        back = ingest(wh, "manifest", _manifest(root, rows))
        assert back.audio_back == 1 and back.audio_line().startswith("audio back: 1 utterance")
        assert (back.added, back.updated) == (0, 0)  # the same audio, the same rows
        again = extract(wh, "default", progress=False)
        assert (again.done, again.failed) == (1, 0)
        stored = wh.query("SELECT utt_id FROM utterance_features ORDER BY utt_id")
        assert stored["utt_id"].to_list() == ["a", "b", "c"]
        assert ingest(wh, "manifest", _manifest(root, rows)).audio_line() is None
        # found again while other audio changed: both are said
        (root / "b.wav").rename(tmp_path / "b.wav")
        ingest(wh, "manifest", _manifest(root, rows[::2]))
        assert extract(wh, "default", progress=False).failed == 1
        (tmp_path / "b.wav").rename(root / "b.wav")
        _wav(root / "c.wav", 300, 9)  # other audio under the same name
        both = ingest(wh, "manifest", _manifest(root, rows))
        assert both.audio_back == 1 and both.audio_changed == 1
        line = both.audio_line()
        assert "1 utterance(s) and 1 whose file extract could not reach reads fine" in line


def test_copies_are_the_same_audio_and_unchanged_files_are_not_rehashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import shutil

    import sercap.corpora.fingerprint as fingerprint
    from sercap.corpora.ingest import ingest
    from sercap.store import connect

    root = tmp_path / "corpus"
    for i, name in enumerate("abc"):
        _wav(root / f"{name}.wav", 120 + 20 * i, i)
    manifest = _manifest(root, [(f"{n}.wav", "neu", "s0") for n in "abc"])
    monkeypatch.setattr(fingerprint, "RACY_NS", 0)  # files written just now count as settled
    with connect(tmp_path / "wh", memory=True) as wh:
        assert ingest(wh, "manifest", manifest).hashed == 3
        same = ingest(wh, "manifest", manifest)
        assert (same.hashed, same.audio_changed, same.updated) == (0, 0, 0)

        copy = tmp_path / "moved"
        shutil.copytree(root, copy, copy_function=shutil.copyfile)  # new mtimes and inodes
        moved = ingest(wh, "manifest", copy / "manifest.csv", name="manifest")
        assert (moved.hashed, moved.audio_changed, moved.updated) == (3, 0, 3)

        # other bytes of the same size, with the old mtime put back (as cp -p would)
        target = copy / "b.wav"
        st = target.stat()
        _wav(copy / "x.wav", 300, 7)
        os.replace(copy / "x.wav", target)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert target.stat().st_size == st.st_size
        changed = ingest(wh, "manifest", copy / "manifest.csv", name="manifest")
        assert (changed.hashed, changed.audio_changed) == (1, 1)


def test_same_stem_in_another_folder_is_not_a_second_utterance(tmp_path: Path) -> None:
    import shutil

    from sercap.corpora.ingest import ingest
    from sercap.store import connect

    root = tmp_path / "corpus"
    names = ["03a01Fa", "03a01Nc", "08a02Lj", "11b03Wb"]
    for i, name in enumerate(names):
        _wav(root / "wav" / f"{name}.wav", 120 + 20 * i, i)
    rows = [(f"wav/{n}.wav", "neu", n[:2]) for n in names]
    with connect(tmp_path / "wh", memory=True) as wh:
        ingest(wh, "manifest", _manifest(root, rows))
        ids = sorted(r[0] for r in wh.con.execute("SELECT utt_id FROM utterances").fetchall())
        assert ids == sorted(names)

        # a bigger copy adds other/03a01Fa.wav, a copy of wav/03a01Fa.wav
        shutil.copytree(root / "wav", root / "other")
        extra = ("other/03a01Fa.wav", "neu", "03")
        bigger = ingest(wh, "manifest", _manifest(root, [*rows, extra]))
        stored = sorted(r[0] for r in wh.con.execute("SELECT utt_id FROM utterances").fetchall())
        assert stored == ids  # the original keeps its id, the copy is not stored
        assert (bigger.added, bigger.updated) == (0, 0)
        duplicate = [str(p) for p in bigger.problems]
        assert len(duplicate) == 1
        assert "duplicate audio" in duplicate[0] and "other/03a01Fa.wav" in duplicate[0]
        assert wh.scalar("SELECT count(*) FROM ingest_problems") == 1

        # the same file listed twice is one utterance and one problem
        twice = ingest(wh, "manifest", _manifest(root, [*rows, rows[0]]))
        assert twice.added == 0 and "duplicate" in str(twice.problems[0])
        assert twice.read == bigger.read == len(rows) + 1  # every row read, duplicates too

        # other audio under the same stem is a new utterance with a path-derived id
        _wav(root / "other" / "03a01Fa.wav", 300, 11)
        other = ingest(wh, "manifest", _manifest(root, [*rows, extra]))
        assert (other.added, other.updated, other.problems) == (1, 0, [])
        stored = sorted(r[0] for r in wh.con.execute("SELECT utt_id FROM utterances").fetchall())
        assert stored == sorted([*names, "other/03a01Fa"])


def test_invalidate_drops_one_utterance_from_every_set_and_kind(wh) -> None:
    from sercap.corpora.invalidate import invalidate
    from tests.helpers import add_corpus, add_features, add_frames, add_images

    utterances = add_corpus(wh)
    add_frames(wh, utterances)
    add_features(wh, utterances)
    add_images(wh, utterances)
    add_features(wh, utterances, name="other", digest="def456")
    gone, kept = utterances["utt_id"][0], utterances["utt_id"][1]
    old_parts = {r[0] for r in wh.con.execute("SELECT path FROM parts").fetchall()}
    with wh.transaction():
        result = invalidate(wh, [gone])
    result.commit()
    wh.refresh_views()
    assert (result.extractions, result.parts_rewritten) == (3, 4)
    for view in ("frames", "utterance_features", "images", "features_other"):
        ids = {r[0] for r in wh.con.execute(f"SELECT DISTINCT utt_id FROM {view}").fetchall()}
        assert gone not in ids and kept in ids, view
    assert wh.scalar("SELECT count(*) FROM extractions WHERE utt_id = ?", [gone]) == 0
    parts = {r[0] for r in wh.con.execute("SELECT path FROM parts").fetchall()}
    assert not parts & old_parts and len(parts) == 4
    assert all(not (wh.root / p).exists() for p in old_parts)
    pointed = {r[0] for r in wh.con.execute("SELECT DISTINCT part FROM extractions").fetchall()}
    assert pointed <= parts


def test_a_rolled_back_invalidation_keeps_the_old_parts(wh) -> None:
    from sercap.corpora.invalidate import invalidate
    from tests.helpers import add_corpus, add_features

    utterances = add_corpus(wh)
    add_features(wh, utterances)
    old = {r[0] for r in wh.con.execute("SELECT path FROM parts").fetchall()}
    with pytest.raises(RuntimeError), wh.transaction():
        result = invalidate(wh, [utterances["utt_id"][0]])
        raise RuntimeError("interrupted before commit")
    result.abort()
    assert {r[0] for r in wh.con.execute("SELECT path FROM parts").fetchall()} == old
    assert sorted(p.name for p in wh.root.rglob("*.parquet")) == ["part-0.parquet"]
    assert wh.scalar("SELECT count(*) FROM extractions") == utterances.height


def test_rows_ingested_before_fingerprints_change_when_their_audio_visibly_did(
    tmp_path: Path,
) -> None:
    from sercap.corpora.ingest import ingest
    from sercap.store import connect

    root = tmp_path / "corpus"
    for i, name in enumerate("abc"):
        _wav(root / f"{name}.wav", 120 + 20 * i, i)
    manifest = _manifest(root, [(f"{n}.wav", "neu", "s0") for n in "abc"])
    with connect(tmp_path / "wh", memory=True) as wh:
        ingest(wh, "manifest", manifest)
        wh.execute("UPDATE utterances SET audio_sha256 = NULL")  # as an older sercap left it
        upgraded = ingest(wh, "manifest", manifest)
        assert (upgraded.audio_changed, upgraded.updated) == (0, 3)  # hashes recorded
        assert wh.scalar("SELECT count(*) FROM utterances WHERE audio_sha256 IS NULL") == 0
        wh.execute("UPDATE utterances SET audio_sha256 = NULL")
        _wav(root / "c.wav", 300, 5, seconds=1.0)
        assert ingest(wh, "manifest", manifest).audio_changed == 1


def test_files_differing_only_in_suffix_are_two_utterances(tmp_path: Path) -> None:
    """a.wav and a.flac in one folder are two recordings; both derived ids were "a", so the
    second was called a duplicate and never stored."""
    import soundfile as sf

    from sercap.corpora.ingest import ingest
    from sercap.store import connect

    root = tmp_path / "corpus"
    _wav(root / "a.wav", 150, 1)
    _wav(root / "b.wav", 170, 2)
    y, sr = sf.read(root / "b.wav")
    sf.write(root / "a.flac", y, sr)  # other audio than a.wav
    rows = [("a.wav", "ang", "s1"), ("a.flac", "sad", "s2"), ("b.wav", "neu", "s1")]
    with connect(tmp_path / "wh", memory=True) as wh:
        result = ingest(wh, "manifest", _manifest(root, rows))
        assert result.problems == []
        stored = dict(wh.con.execute("SELECT utt_id, emotion FROM labels").fetchall())
        assert stored == {"a.wav": "ang", "a.flac": "sad", "b": "neu"}


def test_a_truncated_wav_is_a_problem_not_a_shorter_utterance(tmp_path: Path) -> None:
    release = make_iemocap(tmp_path / "corpus")
    wav = sorted(release.glob("Session1/sentences/wav/*/Ses01*.wav"))[0]
    wav.write_bytes(wav.read_bytes()[:1000])
    result = run("-w", tmp_path / "wh", "ingest", "iemocap", release)
    assert result.exit_code == 0, result.output
    assert f"added {N_UTTERANCES - 1}" in result.output
    assert "1 problem(s):" in result.output and "truncated WAV" in result.output
    query = f"SELECT count(*) AS n FROM utterances WHERE utt_id = '{wav.stem}'"
    stored = run("-w", tmp_path / "wh", "sql", query)
    assert stored.output.split()[2] == "0", stored.output


def test_audio_swapped_between_ingest_and_extract_is_not_stored_as_the_original(
    tmp_path: Path,
) -> None:
    """b.wav replaced by other audio after ingest, extracted, then restored: ingest saw the
    same bytes as before ("unchanged") and b kept the other audio's features for good.
    Extract now compares each file with the hash ingest recorded."""
    from sercap.corpora.ingest import ingest
    from sercap.features.extract import AUDIO_CHANGED, extract
    from sercap.store import connect

    root = tmp_path / "corpus"
    for i, name in enumerate("abc"):
        _wav(root / f"{name}.wav", 120 + 40 * i, i)
    manifest = _manifest(root, [(f"{n}.wav", "neu", f"s{i}") for i, n in enumerate("abc")])
    original = (root / "b.wav").read_bytes()
    with connect(tmp_path / "wh", memory=True) as wh:
        ingest(wh, "manifest", manifest)
        (root / "b.wav").write_bytes((root / "c.wav").read_bytes())
        assert extract(wh, "default", progress=False).done == 2
        assert wh.query("SELECT error FROM extractions WHERE utt_id = 'b'")["error"].to_list() == [
            AUDIO_CHANGED
        ]
        (root / "b.wav").write_bytes(original)
        assert ingest(wh, "manifest", manifest).audio_changed == 0
        assert extract(wh, "default", retry_errors=True, progress=False).done == 1
        f0 = dict(wh.query("SELECT utt_id, f0_hz_mean FROM utterance_features").iter_rows())
        assert f0["b"] == pytest.approx(160, rel=0.1) and f0["c"] == pytest.approx(200, rel=0.1)


def test_an_utterance_ingested_again_after_its_row_was_deleted_loses_its_old_features(
    tmp_path: Path,
) -> None:
    """Its `utterances` row deleted by hand (the features stayed), then its id ingested with
    other audio: "added 1", and the old features were kept as the new audio's."""
    from sercap.corpora.ingest import ingest
    from sercap.features.extract import extract
    from sercap.store import connect

    root = tmp_path / "corpus"
    for i, name in enumerate("ab"):
        _wav(root / f"{name}.wav", 120 + 80 * i, i)
    manifest = _manifest(root, [(f"{n}.wav", "neu", f"s{i}") for i, n in enumerate("ab")])
    with connect(tmp_path / "wh", memory=True) as wh:
        ingest(wh, "manifest", manifest)
        extract(wh, "default", progress=False)
        wh.execute("DELETE FROM labels WHERE utt_id = 'a'")
        wh.execute("DELETE FROM utterances WHERE utt_id = 'a'")
        _wav(root / "a.wav", 260, 7)
        summary = ingest(wh, "manifest", manifest)
        assert (summary.added, summary.audio_changed) == (1, 1)
        assert extract(wh, "default", progress=False).done == 1
        f0 = wh.scalar("SELECT f0_hz_mean FROM utterance_features WHERE utt_id = 'a'")
        assert f0 == pytest.approx(260, rel=0.1)


def test_a_wav_name_that_is_not_a_file_is_a_problem_not_skipped(tmp_path: Path) -> None:
    """A folder named like an utterance and a broken link were passed over in silence."""
    from sercap.corpora.ingest import ingest
    from sercap.store import connect
    from tests.test_api import write_emodb_corpus

    root = write_emodb_corpus(tmp_path / "emodb", speakers=("03", "08"), per_class=1)
    (root / "wav" / "03a02Wc.wav").mkdir()
    (root / "wav" / "03a04Ad.wav").symlink_to(tmp_path / "nowhere.wav")
    with connect(tmp_path / "wh", memory=True) as wh:
        summary = ingest(wh, "emodb", root)
        problems = wh.query("SELECT file, problem FROM ingest_problems ORDER BY file")
    assert summary.added == 6
    assert [Path(f).name for f in problems["file"]] == ["03a02Wc.wav", "03a04Ad.wav"]
    assert "a directory" in problems["problem"][0] and "not found" in problems["problem"][1]


def test_problem_lines_name_the_first_row_and_the_first_line(tmp_path: Path) -> None:
    """A duplicate id said "(first one kept)" when that first row was itself unusable, and
    "no usable utterances … first:" named the duplicate's line 4, not line 2."""
    import pytest

    from sercap.corpora.ingest import ingest
    from sercap.errors import SercapError
    from sercap.store import connect

    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,speaker,utt_id\nnone.wav,neu,s1,u1\nnone2.wav,neu,s1,u2\nnone3.wav,neu,s1,u1\n"
    )
    with connect(tmp_path / "wh", memory=True) as wh, pytest.raises(SercapError) as caught:
        ingest(wh, "manifest", manifest)
    assert f"first: {manifest}:2: u1: audio file not found" in str(caught.value)
    _wav(tmp_path / "ok.wav", 150, 1)
    manifest.write_text(manifest.read_text() + "ok.wav,neu,s1,u3\n")
    with connect(tmp_path / "wh", memory=True) as wh:
        ingest(wh, "manifest", manifest)
        problems = wh.query("SELECT line, problem FROM ingest_problems ORDER BY line")
    assert problems.rows()[-1] == (
        4,
        f"u1: duplicate utterance id; only its first row ({manifest}:2) is read",
    )


def test_the_same_recording_under_two_speakers_or_corpora_is_noted(tmp_path: Path) -> None:
    """Where a manifest names its utterances, identical bytes under two ids stay two: under
    two speakers they defeat speaker-independent folds, and across two corpora the
    cross-corpus cells, silently. The ingest says so."""
    import shutil

    import polars as pl

    from sercap.corpora.ingest import ingest
    from sercap.store import connect

    root = tmp_path / "corpus"
    _voices(root, "abc")
    shutil.copy(root / "a.wav", root / "a-again.wav")
    rows = [("a.wav", "neu", "s0", "a"), ("b.wav", "neu", "s1", "b"), ("c.wav", "neu", "s0", "c")]
    manifest = root / "manifest.csv"
    columns = ["path", "label", "speaker", "utt_id"]
    pl.DataFrame(rows, schema=columns, orient="row").write_csv(manifest)
    with connect(tmp_path / "wh", memory=True) as wh:
        clean = ingest(wh, "manifest", manifest)
        assert clean.same_audio == [] and "note:" not in str(clean)
        again = [*rows, ("a-again.wav", "neu", "s1", "a2")]  # a's bytes, another speaker
        pl.DataFrame(again, schema=columns, orient="row").write_csv(manifest)
        noted = ingest(wh, "manifest", manifest)
        assert [(r[0], r[3]) for r in noted.same_audio] == [("a", "a2")]
        assert "note: 1 utterance pair(s) hold the same audio" in str(noted)
        # ... and cross-validation refuses them once they lie in two folds (s0 and s1: two
        # folds); loading the data does not (a final model, fitted on all of it, has no folds)
        import numpy as np

        from sercap.data import Dataset, labelled_utterances
        from sercap.errors import SercapError
        from sercap.evaluate import outer_splits
        from sercap.store.runs import audio_sources

        meta = labelled_utterances(wh, "manifest", "manifest")
        data = Dataset(
            meta["utt_id"].to_numpy(), None, np.zeros(meta.height, int), ["neu"],
            meta["speaker"].to_numpy(), meta["fold"].to_numpy(), "manifest", "manifest",
            meta["protocol"][0], "tabular", audio_sources=audio_sources(wh, "manifest"),
        )  # fmt: skip
        with pytest.raises(SercapError, match="holds 1 recording.s. in two folds .utterances a "):
            list(outer_splits(data))
        # the same file in another corpus
        other = tmp_path / "other.csv"
        pl.DataFrame([("corpus/b.wav", "ang", "t0", "x")], schema=columns,
                     orient="row").write_csv(other)  # fmt: skip
        second = ingest(wh, "manifest", other, name="other")
        assert [(r[0], r[3]) for r in second.same_audio] == [("b", "x")]
        assert "(first: x and b of corpus 'manifest')" in str(second)


def test_an_unfinished_wav_header_is_named_at_ingest(tmp_path: Path) -> None:
    """Ingest called a WAV whose header never got its data size "empty audio (no
    samples)", as if nothing had been recorded."""
    from sercap.corpora.ingest import ingest
    from sercap.store import connect

    rows = _voices(tmp_path / "c", "ab")
    data = bytearray((tmp_path / "c" / "b.wav").read_bytes())
    data[40:44] = bytes(4)  # the data size a recorder fills in last
    (tmp_path / "c" / "b.wav").write_bytes(bytes(data))
    with connect(tmp_path / "wh") as wh:
        summary = ingest(wh, "manifest", _manifest(tmp_path / "c", rows), name="c")
    assert summary.added == 1
    (problem,) = summary.problems
    assert "its header declares no samples, yet" in problem.message


def test_a_row_rejected_on_a_second_ingest_says_its_earlier_version_stays(tmp_path: Path) -> None:
    """A manifest row changed into an invalid one (a segment past the file's end) was a
    problem line, while the utterance stored before from it stayed and was trained on,
    with nothing saying so."""
    import polars as pl

    from sercap.corpora.ingest import ingest
    from sercap.store import connect

    root = tmp_path / "corpus"
    _voices(root, "abc")
    columns = ["path", "label", "speaker", "utt_id", "start", "end"]
    rows = [(f"{n}.wav", "neu", f"s{i}", n, 0.0, 0.5) for i, n in enumerate("abc")]
    manifest = root / "manifest.csv"
    pl.DataFrame(rows, schema=columns, orient="row").write_csv(manifest)
    with connect(tmp_path / "wh", memory=True) as wh:
        first = ingest(wh, "manifest", manifest)
        assert first.kept == [] and "stay as stored before" not in str(first)
        rows[1] = ("b.wav", "neu", "s1", "b", 0.5, 1.5)  # past the end of a 0.6 s file
        pl.DataFrame(rows, schema=columns, orient="row").write_csv(manifest)
        second = ingest(wh, "manifest", manifest)
        assert [p.message.split(":")[0] for p in second.problems] == ["b"]
        assert second.kept == ["b"]
        assert "note: 1 stored utterance(s) of corpus 'manifest' that this ingest does not " in (
            str(second)
        )
        assert wh.scalar("SELECT end_s FROM utterances WHERE utt_id = 'b'") == 0.5


def test_a_second_ingest_says_when_stored_words_changed(tmp_path: Path) -> None:
    """Re-ingesting a manifest with other words printed 'updated 0, unchanged 3', though
    every text run of the corpus was trained on the old words."""
    import polars as pl

    from sercap.corpora.ingest import ingest
    from sercap.store import connect

    root = tmp_path / "corpus"
    rows = _voices(root, "abc")
    columns = ["path", "label", "speaker", "text"]
    texts = ["so glad", "so sad", "how odd"]
    manifest = root / "manifest.csv"
    pl.DataFrame([(*r, t) for r, t in zip(rows, texts, strict=True)], schema=columns,
                 orient="row").write_csv(manifest)  # fmt: skip
    with connect(tmp_path / "wh", memory=True) as wh:
        first = ingest(wh, "manifest", manifest)
        assert first.words_changed == 0 and "words of" not in str(first)
        assert ingest(wh, "manifest", manifest).words_changed == 0  # the same words
        texts[1] = "so very sad"
        pl.DataFrame([(*r, t) for r, t in zip(rows, texts, strict=True)], schema=columns,
                     orient="row").write_csv(manifest)  # fmt: skip
        second = ingest(wh, "manifest", manifest)
        assert second.words_changed == 1
        assert "note: the words of 1 stored utterance(s) changed" in str(second)
