"""`sercap check`: damaged parts are found, repaired, re-extracted; a damaged warehouse opens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import sercap
from cli import main
from sercap.store import connect
from tests.helpers import make_corpus


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """A warehouse with 8 utterances extracted in chunks of 3 (3 frames + 3 features parts)."""
    base = tmp_path_factory.mktemp("check")
    manifest = make_corpus(base / "corpus")
    w = ["-w", str(base / "wh")]
    runner = CliRunner()
    assert runner.invoke(main, [*w, "ingest", "manifest", str(manifest)]).exit_code == 0
    result = runner.invoke(main, [*w, "extract", "--jobs", "1", "--chunk-size", "3"])
    assert result.exit_code == 0, result.output
    return base / "wh"


@pytest.fixture
def wh_dir(extracted: Path, tmp_path: Path) -> Path:
    """A private copy of the extracted warehouse (parts are registered by relative path)."""
    return Path(shutil.copytree(extracted, tmp_path / "wh"))


def _run(wh_dir: Path, *args: str):
    return CliRunner().invoke(main, ["-w", str(wh_dir), *args])


def _state(wh_dir: Path) -> tuple[list[str], int, int]:
    """Stored utterances, rows of utterance_features and rows of frames."""
    with connect(wh_dir, read_only=True) as wh:
        assert not wh.damaged, wh.damaged
        ids = wh.query("SELECT utt_id FROM utterance_features ORDER BY utt_id")["utt_id"]
        return (
            ids.to_list(),
            wh.scalar("SELECT count(*) FROM utterance_features"),
            wh.scalar("SELECT count(*) FROM frames"),
        )


def _a_features_part(wh_dir: Path, index: int = 0) -> tuple[str, list[str]]:
    with connect(wh_dir, read_only=True) as wh:
        paths = wh.query(
            "SELECT path FROM parts WHERE kind = 'features' ORDER BY n_rows DESC, path"
        )["path"]
        path = paths[index]
        utts = wh.query("SELECT utt_id FROM extractions WHERE part = ? ORDER BY utt_id", [path])
    return path, utts["utt_id"].to_list()


def _damage(wh_dir: Path, rel: str, how: str) -> None:
    path = wh_dir / rel
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        with open(path, "r+b") as fh:
            fh.truncate(1000)
    elif how == "overwritten":  # another valid Parquet file: a different chunk's part
        other = sorted(p for p in path.parent.glob("part-*.parquet") if p != path)[0]
        shutil.copyfile(other, path)
    elif how == "one byte changed":  # same size: only the checksum can tell
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        raise ValueError(how)


def test_a_sound_warehouse_checks_clean(wh_dir: Path) -> None:
    from sercap.check import check

    with connect(wh_dir, read_only=True) as wh:
        assert check(wh) == []
        sizes = wh.query("SELECT size_bytes, sha256 FROM parts")
        assert sizes.height == 6 and sizes["sha256"].str.len_chars().to_list() == [64] * 6
    result = _run(wh_dir, "check")
    assert result.exit_code == 0 and "no problems: 6 part(s) verified" in result.output


def test_check_finds_each_damage_and_repair_then_extract_restores_exactly_it(wh_dir) -> None:
    before = _state(wh_dir)
    with connect(wh_dir, read_only=True) as wh:
        parts = wh.query("SELECT path, kind FROM parts ORDER BY n_rows DESC, kind, path")
    features = [p for p, k in parts.iter_rows() if k == "features"]
    frames = [p for p, k in parts.iter_rows() if k == "frames"]
    overwritten, deleted = features[0], features[1]
    truncated = next(f for f in frames if Path(f).name == Path(features[2]).name)
    _damage(wh_dir, overwritten, "overwritten")  # with another chunk's (valid) part
    _damage(wh_dir, deleted, "deleted")
    _damage(wh_dir, truncated, "truncated")  # a frames part this time

    found = _run(wh_dir, "check")
    assert found.exit_code == 1
    lines = found.stdout.splitlines()
    assert len(lines) == 3, found.output
    assert any(line.startswith(f"{deleted}: missing") for line in lines)
    assert any(line.startswith(f"{truncated}: size 1000 bytes") for line in lines)
    assert any(line.startswith(f"{overwritten}: size") for line in lines)
    assert "check --repair" in found.stderr

    repaired = _run(wh_dir, "check", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "6 part(s) unregistered" in repaired.output
    assert "`sercap extract --feature-set default` will recompute 8 utterance(s)" in (
        repaired.output
    )
    assert _run(wh_dir, "check").exit_code == 0
    assert _state(wh_dir)[:2] == ([], 0)

    again = _run(wh_dir, "extract", "--jobs", "1")
    assert again.exit_code == 0, again.output
    assert "8 extracted, 0 with problems, 0 already stored" in again.output
    assert "3 failed before and were not tried again" in again.output
    assert _state(wh_dir) == before
    assert _run(wh_dir, "check").exit_code == 0


def test_a_changed_byte_is_found_by_the_checksum(wh_dir) -> None:
    from sercap.check import check, repair

    rel, lost = _a_features_part(wh_dir)
    _damage(wh_dir, rel, "one byte changed")  # same size: only the checksum tells
    with connect(wh_dir) as wh:
        problems = check(wh)
        assert [p.line() for p in problems] == [
            f"{rel}: content differs from what was registered (SHA-256 mismatch)"
        ]
        summary = repair(wh, problems)
        assert summary.recompute == {"default": ("lld", 3)}
        assert summary.files_deleted == 2
        stored = wh.query("SELECT utt_id FROM extractions WHERE status = 'ok'")["utt_id"]
        assert not set(lost) & set(stored.to_list())


def test_a_part_that_cannot_be_read_is_a_problem_not_the_end_of_the_check(
    wh_dir, monkeypatch
) -> None:
    """A part without read permission: every command said to run `check --repair`, and
    check stopped at that part with "Permission denied", so repair never unregistered it."""
    import sercap.check as check_module
    from sercap.check import check, repair

    rel, lost = _a_features_part(wh_dir)
    real = check_module.file_digest

    def digest(path, *args, **kwargs):
        if Path(path).as_posix().endswith(rel):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(check_module, "file_digest", digest)
    with connect(wh_dir) as wh:
        problems = check(wh)
        assert [p.line() for p in problems] == [f"{rel}: cannot be read (Permission denied)"]
        summary = repair(wh, problems)
        assert summary.recompute == {"default": ("lld", 3)}
        stored = wh.query("SELECT utt_id FROM extractions WHERE status = 'ok'")["utt_id"]
        assert not set(lost) & set(stored.to_list())


@pytest.mark.parametrize("how", ["deleted", "truncated", "overwritten"])
def test_a_damaged_warehouse_still_opens_and_says_so_in_one_line(wh_dir, how) -> None:
    rel, lost = _a_features_part(wh_dir)
    _damage(wh_dir, rel, how)
    info = _run(wh_dir, "info")
    assert info.exit_code == 0, info.output
    assert info.stderr.count("\n") == 1 and "sercap check --repair" in info.stderr
    count = _run(wh_dir, "sql", "SELECT count(*) AS n FROM utterances")
    assert count.exit_code == 0, count.output
    assert count.stdout.splitlines()[2] == "11"
    assert count.stderr.count("\n") == 1 and "sercap check --repair" in count.stderr
    # the views leave the damaged part out instead of failing (or showing another chunk twice)
    shown = _run(wh_dir, "sql", "SELECT count(DISTINCT utt_id) AS d, count(*) AS n FROM frames")
    assert shown.exit_code == 0, shown.output
    features = _run(wh_dir, "sql", "SELECT count(*) AS n FROM utterance_features")
    assert features.stdout.splitlines()[2] == "5", features.output
    # commands that would compute on (or record) the partial data refuse, in one line
    refused = _run(wh_dir, "extract", "--jobs", "1")
    assert refused.exit_code == 1 and "sercap check --repair" in refused.output
    assert refused.output.count("\n") == 1 and "Traceback" not in refused.output
    # a hand repair through `sql --write` works too
    fixed = _run(wh_dir, "sql", "--write", f"DELETE FROM parts WHERE path = '{rel}'")
    assert fixed.exit_code == 0, fixed.output


@pytest.mark.slow
def test_catalog_invariants_are_checked(wh_dir: Path) -> None:
    from sercap.check import check

    rel, lost = _a_features_part(wh_dir)
    other, _ = _a_features_part(wh_dir, 1)
    before = _state(wh_dir)
    with connect(wh_dir) as wh:
        # an extraction row forgotten: its part now holds an utterance "not stored"
        wh.execute("DELETE FROM extractions WHERE utt_id = ?", [lost[0]])
        # an extraction row pointing at a part that is not registered
        wh.execute(
            "UPDATE extractions SET part = 'features/nowhere.parquet' WHERE part = ?", [other]
        )
        lines = [p.line() for p in check(wh)]
    assert any(line.startswith(f"{rel}: holds 1 utterance(s) not recorded") for line in lines)
    assert any("features/nowhere.parquet, which is not registered" in line for line in lines)
    assert any(line.startswith(f"{other}: holds 3 utterance(s) not recorded") for line in lines)
    repaired = _run(wh_dir, "check", "--repair")
    assert repaired.exit_code == 0
    with connect(wh_dir, read_only=True) as wh:
        missing = len(before[0]) - wh.scalar("SELECT count(*) FROM extractions WHERE status = 'ok'")
    assert f"will recompute {missing} utterance(s)" in repaired.output  # what extract redoes
    again = _run(wh_dir, "extract", "--jobs", "1")
    assert again.exit_code == 0 and f"{missing} extracted" in again.output
    assert _state(wh_dir) == before
    assert _run(wh_dir, "check").exit_code == 0


def test_an_utterance_stored_twice_is_found(wh_dir: Path) -> None:
    from sercap.check import check

    rel, lost = _a_features_part(wh_dir)
    with connect(wh_dir) as wh:
        # a stray copy of a registered part, registered as a part of its own
        copy = Path(rel).with_name("part-copy.parquet").as_posix()
        shutil.copyfile(wh_dir / rel, wh_dir / copy)
        fs_hash, corpus = (p.split("=")[1] for p in Path(rel).parts[1:3])
        wh.register_part("features", fs_hash, corpus, wh_dir / copy, 3)
        lines = [p.line() for p in check(wh)]
    assert any("3 utterance(s) stored in 2 parts" in line for line in lines), lines
    assert _run(wh_dir, "check", "--repair").exit_code == 0
    with connect(wh_dir, read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM parts WHERE path = ?", [copy]) == 0
        n = wh.scalar("SELECT count(*) - count(DISTINCT utt_id) FROM utterance_features")
        assert n == 0


def test_parts_registered_without_checksums_are_still_checked(wh_dir) -> None:
    """Parts registered before checksums existed (NULL size/sha256) are still checked."""
    from sercap.check import check

    rel, _ = _a_features_part(wh_dir)
    with connect(wh_dir) as wh:
        wh.execute("UPDATE parts SET size_bytes = NULL, sha256 = NULL")
        assert check(wh) == []
    _damage(wh_dir, rel, "truncated")
    with connect(wh_dir) as wh:
        assert [p.what for p in check(wh)] == [rel]


@pytest.mark.slow
def test_extract_refuses_utterances_whose_record_was_lost(wh_dir: Path) -> None:
    """Parts hold utterances the catalog forgot: re-extracting them would store them twice."""
    before = _state(wh_dir)
    with connect(wh_dir) as wh:
        wh.execute(
            "DELETE FROM extractions WHERE utt_id IN "
            "(SELECT utt_id FROM extractions ORDER BY utt_id LIMIT 2)"
        )
    result = _run(wh_dir, "extract", "--jobs", "1")
    assert result.exit_code == 1
    assert "already in its stored parts" in result.output and "check --repair" in result.output
    assert len(result.output.strip().splitlines()) == 1
    ids, n_features, _ = _state(wh_dir)
    assert len(ids) == len(set(ids)) == n_features == len(before[0])  # nothing stored twice
    repaired = _run(wh_dir, "check", "--repair")
    assert repaired.exit_code == 0
    with connect(wh_dir, read_only=True) as wh:
        missing = len(before[0]) - wh.scalar("SELECT count(*) FROM extractions WHERE status = 'ok'")
    assert f"will recompute {missing} utterance(s)" in repaired.output  # what extract redoes
    again = _run(wh_dir, "extract", "--jobs", "1")
    assert again.exit_code == 0 and f"{missing} extracted" in again.output
    assert _state(wh_dir) == before


def test_a_part_damaged_in_place_is_named_with_the_repair_when_read(wh_dir: Path) -> None:
    """Damage the open-time check cannot see (a part registered before checksums and stats
    were recorded: opening then only compares sizes) fails when the part is read. That
    failure names the repair, in the CLI and in Python, instead of DuckDB's bare decoder
    error. (A part with a checksum is found at open: tests/test_views.py.)"""
    import duckdb
    import numpy as np

    from sercap import train
    from sercap.errors import SercapError

    rel, _ = _a_features_part(wh_dir)
    with connect(wh_dir) as wh:  # as an older warehouse recorded it
        wh.execute(
            "UPDATE parts SET sha256 = NULL, mtime_ns = NULL, ctime_ns = NULL, inode = NULL "
            "WHERE path = ?",
            [rel],
        )
    part = wh_dir / rel
    original = part.read_bytes()
    for fraction in np.linspace(0.1, 0.9, 33):  # zeros inside a data page, past the open check
        data = bytearray(original)
        start = int(len(data) * fraction)
        data[start : start + 200] = bytes(200)
        part.write_bytes(bytes(data))
        with connect(wh_dir, read_only=True) as wh:
            if wh.damaged:
                continue
        try:
            duckdb.sql(f"SELECT * FROM read_parquet('{part}')").fetchall()
        except duckdb.Error:
            break
    else:
        pytest.skip("no damage found that passes the open-time check and fails reading")
    result = _run(wh_dir, "train", "svm")
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: ") and "cannot be read (" in line, line
    assert line.endswith(
        "run `sercap check` / `sercap.verify(wh)` to list damaged parts and "
        "`sercap check --repair` / `sercap.repair(wh)` to rebuild them"
    ), line
    with connect(wh_dir) as wh, pytest.raises(SercapError, match="cannot be read"):
        train(wh, "svm")


def test_a_catalog_table_that_cannot_be_read_is_named_and_not_repaired(wh_dir, monkeypatch):
    """A flipped byte in sercap.duckdb made `train` fail while `check` read two tables and
    said "no problems"; every table is now read to its end."""
    import duckdb

    import sercap.check as check_module

    class Corrupt:  # a connection whose `corpora` block fails its checksum, as DuckDB says
        def __init__(self, con):
            self.con = con

        def execute(self, sql, *args):
            if sql == 'SELECT * FROM "corpora"':
                raise duckdb.IOException("Corrupt database file: computed checksum 1 does not")
            return self.con.execute(sql, *args)

        def sql(self, query):
            if query == 'SELECT * FROM "corpora"':
                raise duckdb.IOException("Corrupt database file: computed checksum 1 does not")
            return self.con.sql(query)

    with connect(wh_dir, read_only=True) as wh:
        real = wh.con
        wh.con = Corrupt(real)
        problems = check_module.check(wh)
        wh.con = real
    assert [p.line() for p in problems] == [
        "catalog sercap.duckdb: table corpora cannot be read (Corrupt database file: computed "
        "checksum 1 does not); restore sercap.duckdb from a copy (--repair mends parts, not the "
        "catalog)"
    ]
    assert not problems[0].repairable


def test_check_prints_no_library_warning(wh_dir) -> None:
    """Every `sercap check` printed DuckDB's "Arrow output on a DB-API result makes an extra
    copy" warning, with a source line, twice."""
    import warnings

    import sercap.check as check_module

    with connect(wh_dir, read_only=True) as wh, warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_module.check(wh) == []


def test_files_a_killed_run_left_unregistered_are_noted_not_called_damage(wh_dir) -> None:
    """SIGTERM'd workers left 34 MB of parts no row names, and check said nothing."""
    part = next((wh_dir / "features").rglob("part-*.parquet"))
    stray = part.parent / ".part-x.parquet.123.tmp"
    stray.write_bytes(b"half written")
    result = _run(wh_dir, "check")
    assert result.exit_code == 0 and "no problems: 6 part(s) verified" in result.output
    rel = stray.relative_to(wh_dir).as_posix()
    note = f"note: 1 file(s) or folder(s) ({rel}) left by an interrupted run are not registered"
    assert note in result.output, result.output
    # a final model being written when predict was killed: a folder nobody records
    (wh_dir / "artifacts" / "svm-20261128-010203-abcd.tmp").mkdir(parents=True)
    result = _run(wh_dir, "check")
    note = f"note: 2 file(s) or folder(s) ({rel} and 1 more) left by an interrupted run"
    assert result.exit_code == 0 and note in result.output, result.output
    assert "not sercap's" not in result.output
    with sercap.connect(wh_dir, read_only=True) as wh:
        assert "artifacts/svm-20261128-010203-abcd.tmp" in sercap.verify(wh).leftovers


def test_files_sercap_did_not_write_are_named_apart_and_never_deleted(wh_dir) -> None:
    """A user's file among the parts was called "left by an interrupted run" that the next
    extract removes (it never did, for most), and a journal put there with --storage was
    deleted by the next extract as a crash's leftover."""
    from sercap.store.parts import remove_orphan_parts

    part = next((wh_dir / "features").rglob("part-*.parquet"))
    mine = [part.parent / "svm.journal", part.parent / "sub" / "x.parquet",
            wh_dir / "frames" / "notes.txt", wh_dir / "artifacts" / "junk.txt"]  # fmt: skip
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    result = _run(wh_dir, "check")
    assert result.exit_code == 0 and "left by an interrupted run" not in result.output
    note = "and 3 more) in sercap's own folders are not sercap's; it neither reads nor removes"
    assert "note: 4 file(s) or folder(s) (" in result.output and note in result.output
    kind, fs, corpus = part.relative_to(wh_dir).parts[:3]
    with connect(wh_dir) as wh:
        assert len(sercap.verify(wh).foreign) == 4
        removed = remove_orphan_parts(wh, kind, fs.split("=")[1], corpus.split("=")[1])
    assert removed == 0 and all(p.read_text() == "mine" for p in mine)


def test_audio_changed_after_extraction_is_named_and_ingest_mends_it(tmp_path: Path) -> None:
    """A wav overwritten after extraction: extract, check and train went on with the old
    file's features ("no problems"). check names it (hashing only files whose stat moved);
    --repair cannot mend it (ingest must re-read the audio), and after ingest it is clean."""
    import soundfile as sf

    from tests.helpers import SR, voice

    manifest = make_corpus(tmp_path / "corpus")
    w = tmp_path / "wh"
    assert _run(w, "ingest", "manifest", str(manifest)).exit_code == 0
    assert _run(w, "extract", "--jobs", "1", "--chunk-size", "3").exit_code == 0
    assert _run(w, "check").exit_code == 0
    # a file whose stat moved but not its bytes (touch): no problem, and extract records
    # its new stat so that it is not hashed again at every call
    import os

    touched = tmp_path / "corpus" / "good2.wav"
    os.utime(touched, (1e9, 1e9))
    assert _run(w, "check").exit_code == 0
    assert _run(w, "extract", "--jobs", "1").exit_code == 0
    with connect(w, read_only=True) as wh:
        recorded = wh.scalar("SELECT mtime_ns FROM audio_files WHERE path = ?", [str(touched)])
    assert recorded == touched.stat().st_mtime_ns
    sf.write(tmp_path / "corpus" / "good3.wav", voice(0.9, 300, 42), SR)  # other audio
    found = _run(w, "check")
    assert found.exit_code == 1
    assert "audio: 1 utterance(s) have stored features of audio their file no longer " in (
        found.output
    )
    assert "good3.wav" in found.output and "--repair does not mend them" in found.output
    warned = _run(w, "extract", "--jobs", "1")  # extract says so too
    assert warned.exit_code == 0 and "warning: audio: 1 utterance(s)" in warned.output
    warned = _run(w, "sql", "SELECT count(*) AS n FROM utterance_features")  # and sql
    assert warned.exit_code == 0 and "warning: audio: 1 utterance(s)" in warned.output
    # train (and every reader of a dataset) refuses: it used the old sound's features silently
    refused = _run(w, "train", "svm")
    assert refused.exit_code == 1 and "error: audio: 1 utterance(s)" in refused.output
    assert "Traceback" not in refused.output
    repaired = _run(w, "check", "--repair")
    assert repaired.exit_code == 1 and "audio: 1 utterance(s)" in repaired.output
    again = _run(w, "ingest", "manifest", str(manifest))
    assert again.exit_code == 0 and "audio changed: 1 utterance(s)" in again.output
    assert _run(w, "extract", "--jobs", "1").exit_code == 0
    clean = _run(w, "check")
    assert clean.exit_code == 0, clean.output
    trained = _run(w, "train", "svm")
    assert trained.exit_code == 0 and "audio:" not in trained.output, trained.output
    # a file that is gone: check said "no problems", though the next ingest drops its
    # features and extract cannot compute them again; now a note says so (exit 0: the
    # stored features are still those of the audio that was)
    (tmp_path / "corpus" / "good3.wav").rename(tmp_path / "good3-aside.wav")
    gone = _run(w, "check")
    assert gone.exit_code == 0 and "no problems" in gone.output, gone.output
    assert "note: 1 audio file(s) (" in gone.output and "good3.wav) of stored utter" in (
        gone.output
    )
    assert "the next ingest drops them" in gone.output


def test_a_feature_set_row_edited_by_hand_is_found(wh_dir) -> None:
    """An UPDATE of params_json (hop 20 ms instead of 10) doubled every frame time the
    views compute from the stored parts, and check said "no problems"."""
    assert _run(wh_dir, "check").exit_code == 0
    edit = "UPDATE feature_sets SET params_json = json_merge_patch(params_json, '{\"hop_ms\": 20}')"
    assert _run(wh_dir, "sql", "--write", edit).exit_code == 0
    found = _run(wh_dir, "check")
    assert found.exit_code == 1, found.output
    assert "feature_sets: the definition of 'default' does not hash to its hash" in found.output


def test_a_changed_file_with_a_segment_left_out_of_the_next_manifest(tmp_path: Path) -> None:
    """Two segments A and B of one file, then the file changed and a manifest listing only
    A was ingested: A was updated, B kept its stale features, and check (one row per file,
    any one utterance's hash) named A, which was fine, and pointed to an ingest that did
    nothing. An utterance moved by hand to another file's path was "no problems"."""
    import soundfile as sf

    from tests.helpers import SR, voice

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "x.wav", voice(1.8, 220, 1), SR)
    sf.write(corpus / "y.wav", voice(0.9, 180, 2), SR)
    rows = {"A": "x.wav,ang,s1,0.0,0.9,A", "B": "x.wav,neu,s1,0.9,1.8,B",
            "C": "y.wav,neu,s2,,,C"}  # fmt: skip
    head = "path,label,speaker,start,end,utt_id\n"
    (corpus / "m1.csv").write_text(head + "\n".join(rows.values()) + "\n")
    (corpus / "m2.csv").write_text(head + rows["A"] + "\n" + rows["C"] + "\n")
    w = tmp_path / "wh"
    assert _run(w, "ingest", "manifest", str(corpus / "m1.csv")).exit_code == 0
    assert _run(w, "extract", "--jobs", "1").exit_code == 0
    sf.write(corpus / "x.wav", -voice(1.8, 220, 1), SR)  # the same length, other samples
    found = _run(w, "check")
    assert found.exit_code == 1 and "audio: 2 utterance(s)" in found.output, found.output
    again = _run(w, "ingest", "manifest", str(corpus / "m2.csv"))
    assert again.exit_code == 0 and "audio changed: 2 utterance(s)" in again.output, again.output
    assert _run(w, "extract", "--jobs", "1").exit_code == 0
    clean = _run(w, "check")
    assert clean.exit_code == 0, clean.output
    with connect(w) as wh:  # C now says it is x.wav's audio: its features are of y.wav
        wh.execute("UPDATE utterances SET path = ? WHERE utt_id = 'C'", [str(corpus / "x.wav")])
    moved = _run(w, "check")
    assert moved.exit_code == 1 and "audio: 1 utterance(s)" in moved.output, moved.output
    assert "x.wav: C" in moved.output


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ("DELETE FROM feature_sets", "has no row in feature_sets"),
        ("DELETE FROM utterances WHERE utt_id = 'good1'", "the utterances table does not list"),
    ],
)
def test_catalog_rows_deleted_by_hand_are_found_and_repaired(wh_dir, edit, said) -> None:
    """Parts of a set whose feature_sets row is gone, or holding an utterance whose
    utterances row is gone, were "no problems" (no view reads them, or reads features of
    an utterance nobody lists); check names the chunk and --repair drops it."""
    with connect(wh_dir) as wh:
        wh.execute(edit)
    found = _run(wh_dir, "check")
    assert found.exit_code == 1 and said in found.stdout, found.output
    repaired = _run(wh_dir, "check", "--repair")
    assert repaired.exit_code == 0, repaired.output
    for line in repaired.output.splitlines():  # every command it names runs
        if line.startswith("`sercap ") and "` will recompute" in line:
            command = line[len("`sercap ") : line.index("`", 1)].split()
            assert _run(wh_dir, *command).exit_code == 0, line
    assert _run(wh_dir, "extract", "--jobs", "1").exit_code == 0
    clean = _run(wh_dir, "check")
    assert clean.exit_code == 0, clean.output


def test_a_set_that_lost_every_frames_part_is_damage_at_open(wh_dir) -> None:
    """With every frames row and file of a corpus gone, no chunk's frames were left to
    compare with, and opening said nothing (sequence datasets silently lost every
    utterance); extraction records each utterance's frame count, which opening now reads."""
    with connect(wh_dir) as wh:
        frames = [p for (p,) in wh.con.execute("SELECT path FROM parts WHERE kind = 'frames'")
                  .fetchall()]  # fmt: skip
        wh.execute("DELETE FROM parts WHERE kind = 'frames'")
    for rel in frames:
        (wh_dir / rel).unlink()
    with connect(wh_dir, read_only=True) as wh:
        assert len(wh.damaged) == len(frames) == 3, wh.damaged
        assert all("not registered, though" in why for _, why in wh.damaged)


def test_the_stale_audio_test_of_a_dataset_reads_only_its_own_utterances(tmp_path, monkeypatch):
    """train refused over a changed file it does not read (an utterance outside its label
    map, or stored only for another set), and a read-only notebook hashed every touched file
    again at each dataset load (gigabytes on IEMOCAP)."""
    import os

    import soundfile as sf

    import sercap.corpora.fingerprint as fp
    from sercap.check import stale_audio_line
    from tests.helpers import SR, voice

    manifest = make_corpus(tmp_path / "corpus")
    w = tmp_path / "wh"
    assert _run(w, "ingest", "manifest", str(manifest)).exit_code == 0
    assert _run(w, "extract", "--jobs", "1").exit_code == 0
    wavs = sorted((tmp_path / "corpus").glob("good*.wav"))
    with connect(w, read_only=True) as wh:
        digest = wh.scalar("SELECT hash FROM feature_sets WHERE name = 'default'")
        ids = dict(wh.con.execute("SELECT path, utt_id FROM utterances").fetchall())
    changed = wavs[0]
    sf.write(changed, voice(0.9, 300, 42), SR)  # other audio
    others = [ids[str(p)] for p in wavs[1:]]
    with connect(w, read_only=True) as wh:
        assert stale_audio_line(wh) is not None  # check and extract: every utterance
        assert stale_audio_line(wh, [ids[str(changed)]], digest) is not None
        assert stale_audio_line(wh, others, digest) is None  # a dataset without it: fine
        assert stale_audio_line(wh, [ids[str(changed)]], "another-set") is None
    for p in wavs[1:]:
        os.utime(p, (1e9, 1e9))  # stat moved, bytes not: hashed again once per connection
    hashed = []
    real = fp.sha256_file
    monkeypatch.setattr(fp, "sha256_file", lambda p: hashed.append(p) or real(p))
    monkeypatch.setattr(fp, "RACY_NS", 0)  # ctime moved just now: trusted at once here
    with connect(w, read_only=True) as wh:
        for _ in range(3):
            assert stale_audio_line(wh, others, digest) is None
    assert len(hashed) == len(others), hashed


def test_a_part_folder_linked_to_another_disk_is_extracted_checked_and_repaired(tmp_path) -> None:
    """features/ moved to another disk and linked back: registering a part resolved the link
    and was "not in the subpath" of the warehouse (a traceback on every extract and check),
    and a leftover part there could never be removed."""
    from sercap.store.parts import delete_part_file

    manifest = make_corpus(tmp_path / "corpus")
    elsewhere = tmp_path / "disk2" / "features"
    elsewhere.mkdir(parents=True)
    root = tmp_path / "wh"
    root.mkdir()
    (root / "features").symlink_to(elsewhere, target_is_directory=True)
    with connect(root) as wh:
        sercap.ingest(wh, "manifest", manifest)
        summary = sercap.extract(wh, "basic", progress=False)
        assert summary.done > 0 and list(elsewhere.rglob("part-*.parquet"))
        part = next(elsewhere.rglob("part-*.parquet"))
        leftover = part.with_name("part-999999.parquet")
        shutil.copy(part, leftover)  # what a killed run leaves
        found = sercap.verify(wh)
        assert not found.problems and found.leftovers == [
            f"features/{leftover.relative_to(elsewhere).as_posix()}"
        ]
        sercap.extract(wh, "basic", progress=False)  # removes it, on the other disk
        assert not leftover.exists() and not sercap.verify(wh).leftovers
        outside = tmp_path / "outside.parquet"
        shutil.copy(part, outside)
        for rel in ("../outside.parquet", str(outside)):  # never outside the warehouse
            assert not delete_part_file(wh, rel)
        assert outside.exists()
