"""sercap._newfiles: only what appeared since the snapshot is removed."""

import doctest
from pathlib import Path

import sercap._newfiles
from sercap._newfiles import NewFiles


def test_the_module_example_runs() -> None:
    assert doctest.testmod(sercap._newfiles).failed == 0


def test_a_new_folder_goes_whole_and_an_old_one_keeps_its_entries(tmp_path: Path) -> None:
    new = NewFiles(tmp_path / "made" / "deep")
    (tmp_path / "made" / "deep" / "x").mkdir(parents=True)
    new.remove()
    assert not (tmp_path / "made").exists()  # the missing folders above it too
    old = tmp_path / "old"
    (old / "sub").mkdir(parents=True)
    (old / "file").write_text("x")
    snapshot = NewFiles(old)
    (old / "sub" / "inside").write_text("y")  # inside an old entry: kept with it
    (old / "link").symlink_to(old / "sub")  # a new link goes, not what it points at
    snapshot.remove()
    assert sorted(p.name for p in old.iterdir()) == ["file", "sub"]
    assert (old / "sub" / "inside").is_file()


def test_a_set_of_files_is_written_all_or_nothing(tmp_path: Path) -> None:
    """On a full disk bench left a half-overwritten comparison.png beside the previous
    call's bench.md, and `bench --target` a 0-byte bench.csv, with "error: No space left
    on device" naming no folder."""
    import errno

    import pytest

    from sercap._newfiles import write_all_or_nothing
    from sercap.errors import SercapError

    out = tmp_path / "bench"

    def first(folder: Path) -> dict[str, Path]:
        (folder / "bench.csv").write_text("old csv")
        (folder / "bench.md").write_text("old table")
        return {"csv": folder / "bench.csv", "md": folder / "bench.md"}

    write_all_or_nothing(out, first, "the tables")

    def full(folder: Path) -> dict[str, Path]:
        (folder / "bench.csv").write_text("new csv")
        (folder / "extra.png").write_bytes(b"png")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(SercapError) as caught:
        write_all_or_nothing(out, full, "the tables", "run it again with --resume")
    assert str(caught.value) == (
        f"{out}: cannot write the tables (No space left on device); nothing of this call's "
        "files is kept: free space (or choose another folder) and run it again with --resume"
    )
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "bench.csv": "old csv", "bench.md": "old table",
    }  # fmt: skip
    with pytest.raises(SercapError):
        write_all_or_nothing(tmp_path / "new", full, "the tables")
    assert not (tmp_path / "new").exists()


def test_text_is_added_to_a_file_whole_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    """bench --ensemble added its CI to bench.md with write_text(read_text() + …): a full
    disk or a Ctrl-C there left bench.md empty or cut short."""
    import errno

    import pytest

    from sercap._newfiles import append_whole
    from sercap.errors import SercapError

    md = tmp_path / "bench.md"
    md.write_text("the table\n")
    append_whole(md, "the CI\n")
    assert md.read_text() == "the table\nthe CI\n"
    real = Path.write_text

    def full(self, data, *args, **kwargs):
        real(self, data[:3], *args, **kwargs)  # part of it, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(SercapError, match=r"bench.md: cannot add to it \(No space left"):
        append_whole(md, "more\n")
    monkeypatch.undo()
    assert md.read_text() == "the table\nthe CI\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.md"]
