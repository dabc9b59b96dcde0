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
