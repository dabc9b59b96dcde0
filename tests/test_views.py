"""The views over parts live in the catalog: plain DuckDB sees them, also after a move."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from sercap.store import DB_FILENAME, connect
from tests.helpers import add_corpus, add_features, add_frames


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """An on-disk warehouse with 36 utterances' features and frames of the default set."""
    with connect(tmp_path / "wh") as wh:
        utterances = add_corpus(wh)
        add_features(wh, utterances)
        add_frames(wh, utterances, digest="abc123")
    return tmp_path / "wh"


def _plain(folder: Path, sql: str, search_path: bool = True):
    con = duckdb.connect(str(folder / DB_FILENAME), read_only=True)
    try:
        if search_path:
            con.execute("SET file_search_path = ?", [str(folder)])
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_plain_duckdb_reads_the_views_of_a_moved_and_of_a_copied_warehouse(
    built: Path, tmp_path: Path, monkeypatch
) -> None:
    moved = Path(shutil.move(built, tmp_path / "elsewhere" / "renamed"))
    assert _plain(moved, "SELECT count(*) FROM utterance_features") == [(36,)]
    assert _plain(moved, "SELECT count(DISTINCT utt_id) FROM frames") == [(36,)]
    assert _plain(moved, "SELECT count(*) FROM frame_stats") == [(36,)]
    assert _plain(moved, "SELECT count(*) FROM features_default") == [(36,)]
    # from inside the warehouse folder no setting is needed
    monkeypatch.chdir(moved)
    assert _plain(moved, "SELECT count(*) FROM utterance_features", False) == [(36,)]
    monkeypatch.chdir(tmp_path)
    # a copy reads its own parts, never the original's
    copy = Path(shutil.copytree(moved, tmp_path / "copy"))
    shutil.rmtree(moved)
    assert _plain(copy, "SELECT count(*) FROM utterance_features") == [(36,)]
    # and sercap opens the copy, read-only too
    with connect(copy, read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM utterance_features") == 36
        assert not wh.damaged


def test_the_catalog_views_follow_registration_and_repair(built: Path, tmp_path: Path) -> None:
    from sercap.check import check, repair

    with connect(built) as wh:
        more = add_corpus(wh, name="more", n_speakers=2)
        add_features(wh, more, corpus="more")  # a second chunk of the same (lld) set
        add_frames(wh, more, corpus="more", digest="abc123")
    assert _plain(built, "SELECT count(*) FROM utterance_features") == [(36 + 18,)]
    # a lost part: the next writable open drops it from the catalog's views too
    part = next((built / "features").rglob("corpus=more/*.parquet"))
    part.unlink()
    with connect(built) as wh:
        assert [p for p, _ in wh.damaged] == [part.relative_to(built).as_posix()]
    assert _plain(built, "SELECT count(*) FROM utterance_features") == [(36,)]
    with connect(built) as wh:
        repair(wh, check(wh))
        assert not wh.damaged and check(wh) == []
    assert _plain(built, "SELECT count(*) FROM utterance_features") == [(36,)]


def test_views_are_rewritten_only_when_parts_change(built: Path) -> None:
    with connect(built) as wh:
        stamp = wh.scalar("SELECT value FROM schema_info WHERE key = 'part_views'")
        sql = wh.scalar("SELECT sql FROM duckdb_views() WHERE view_name = 'utterance_features'")
    with connect(built) as wh:
        assert wh.scalar("SELECT value FROM schema_info WHERE key = 'part_views'") == stamp
        persistent = wh.query(
            "SELECT sql FROM duckdb_views() WHERE NOT temporary AND view_name LIKE 'features_%'"
        )["sql"].to_list()
    assert sql is not None
    assert persistent and all(str(built) not in text for text in persistent)


def _features_part(folder: Path) -> Path:
    (part,) = (folder / "features").rglob("*.parquet")
    return part


def test_a_part_edited_in_place_is_damaged_at_open(built: Path) -> None:
    """One flipped bit keeps a part's size and, mostly, its readability: DuckDB then read
    wrong numbers (f0_hz_mean 186.48 for 170.48) and only `check` noticed. Its stat changed,
    so opening hashes it and leaves it out of the views."""
    part = _features_part(built)
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x10
    part.write_bytes(data)
    rel = part.relative_to(built).as_posix()
    for read_only in (True, False):
        with connect(built, read_only=read_only) as wh:
            why = "its bytes changed since it was registered (SHA-256 differs)"
            assert wh.damaged == [(rel, why)]
            assert wh.scalar("SELECT count(*) FROM utterance_features") == 0


def test_only_parts_whose_stat_changed_are_hashed(built: Path, tmp_path: Path, monkeypatch):
    """Like git's index: a stat per part at open; the bytes are read only where the stat
    differs from the one recorded, and a writable open records it. A read-only open cannot
    record, so it compares the mtime only: a copy that kept it (cp -a, copytree) is not
    hashed at every open, one that did not (cp) is."""
    import sercap.store.parts as parts

    hashed: list[Path] = []
    real = parts.file_digest
    monkeypatch.setattr(parts, "file_digest", lambda p: hashed.append(p) or real(p))
    with connect(built, read_only=True) as wh:
        n_parts = wh.scalar("SELECT count(*) FROM parts")
    assert hashed == []
    kept = Path(shutil.copytree(built, tmp_path / "kept"))  # new inodes, same mtimes
    plain = Path(shutil.copytree(built, tmp_path / "plain", copy_function=shutil.copyfile))
    for folder, read_only, expected in (
        (kept, True, 0), (kept, False, n_parts), (kept, True, 0), (kept, False, 0),
        (plain, True, n_parts), (plain, True, n_parts), (plain, False, n_parts),
        (plain, True, 0),
    ):  # fmt: skip
        hashed.clear()
        with connect(folder, read_only=read_only) as wh:
            assert not wh.damaged and wh.scalar("SELECT count(*) FROM utterance_features") == 36
        assert len(hashed) == expected, (folder.name, read_only)


def test_extractions_recorded_in_an_unregistered_part_are_damage_at_open(built: Path) -> None:
    """A deleted `parts` row hid 67 utterances from the views while `extract` counted them as
    stored and `train` ran on the rest; only `check` said so."""
    with connect(built) as wh:
        rel = Path(wh.scalar("SELECT DISTINCT part FROM extractions")).relative_to(built)
        rel = rel.as_posix()
        wh.execute("DELETE FROM parts WHERE path = ?", [rel])
    with connect(built, read_only=True) as wh:
        why = "not registered, though 36 extracted utterance(s) are recorded in it"
        assert wh.damaged == [(rel, why)]


@pytest.mark.parametrize("file_too", [False, True])
def test_a_chunk_part_without_its_row_is_damage(built: Path, file_too: bool) -> None:
    """Only the part an extraction row names was checked: a deleted `parts` row of the
    chunk's other kind (an lld set's frames beside its features), with or without its file,
    hid those utterances from `sequence` datasets in silence."""
    with connect(built) as wh:
        named = Path(wh.scalar("SELECT DISTINCT part FROM extractions")).relative_to(built)
        other = next(
            p for p in wh.con.execute("SELECT path FROM parts").fetchall()
            if p[0] != named.as_posix()
        )[0]  # fmt: skip
        if file_too:  # the set stores frames for its other chunks: this one lacks them
            spare = built / other.replace("part-0", "part-1")
            shutil.copyfile(built / other, spare)
            wh.register_part("frames", "abc123", "toy", spare, 1)
        wh.execute("DELETE FROM parts WHERE path = ?", [other])
    if file_too:
        (built / other).unlink()
    with connect(built, read_only=True) as wh:
        why = "not registered, though 36 extracted utterance(s) are recorded in it"
        assert wh.damaged == [(other, why)]


def test_a_part_that_cannot_be_read_is_damage_not_a_failed_open(built: Path, monkeypatch):
    import errno
    import os

    import sercap.store.parts as parts

    part = _features_part(built)
    os.utime(part, ns=(1, 1))  # its stat changed: opening hashes it

    def unreadable(path):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(parts, "file_digest", unreadable)
    with connect(built) as wh:
        rel = part.relative_to(built).as_posix()
        assert (rel, "cannot be read (Input/output error)") in wh.damaged


def _parts_view_sql(wh, view: str) -> str:
    return wh.con.execute(
        "SELECT sql FROM duckdb_views() WHERE view_name = ? AND temporary", [view]
    ).fetchall()[0][0]


def test_parts_of_one_schema_are_read_by_position_and_others_by_name(built: Path) -> None:
    """Binding by name reads every part's footer (a second per view at IEMOCAP's size, at
    every open); union_by_name = false reads one, which is safe only where every part has
    the same columns."""
    import polars as pl

    with connect(built) as wh:
        digests = wh.con.execute("SELECT count(DISTINCT schema_sha256), count(*) - "
                                 "count(schema_sha256) FROM parts").fetchall()[0]  # fmt: skip
        assert digests == (2, 0)  # one per set (features, frames), none missing
        assert "union_by_name = false" in _parts_view_sql(wh, "features_default_abc123")
        # a part of the same set with a column less: the set is read by name again, and the
        # column is NULL for that part's rows, not lost for all
        folder = wh.part_dir("features", "abc123", "toy")
        first = wh.query("SELECT * FROM utterance_features ORDER BY utt_id LIMIT 2")
        extra = first.drop(first.columns[-1]).with_columns(pl.col("utt_id") + "_copy")
        extra.write_parquet(folder / "part-extra.parquet")
        wh.register_part("features", "abc123", "toy", folder / "part-extra.parquet", 2)
        wh.refresh_views()
        assert "union_by_name = true" in _parts_view_sql(wh, "features_default_abc123")
        last = first.columns[-1]
        got = wh.query(f"SELECT utt_id, {last} FROM utterance_features ORDER BY utt_id")
        assert got[last].null_count() == 2 and got.height == 38


def test_digests_of_older_parts_are_recorded_by_a_writable_open(built: Path) -> None:
    with connect(built) as wh:
        wh.execute("UPDATE parts SET schema_sha256 = NULL")
    with connect(built, read_only=True) as wh:  # nothing recorded: read by name
        assert "union_by_name = true" in _parts_view_sql(wh, "features_default_abc123")
        assert wh.query("SELECT count(*) AS n FROM utterance_features")["n"][0] == 36
    with connect(built) as wh:
        assert wh.scalar("SELECT count(*) FROM parts WHERE schema_sha256 IS NULL") == 0
        assert "union_by_name = false" in _parts_view_sql(wh, "features_default_abc123")
