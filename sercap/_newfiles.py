"""Undo what a failed first step created: files and folders that appeared since a snapshot.

A first ``ingest`` into a mistyped path, a ``corpus synth`` stopped by Ctrl-C, a ``demo``
whose corpus cannot be read: each had created a folder (an empty warehouse, half a corpus)
that the next attempt then refused or mistook for real. :class:`NewFiles` remembers what a
folder held before the step; :meth:`NewFiles.remove` deletes only what appeared since (the
folder itself when the step made it). Nothing that was there before is touched.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> base = Path(tempfile.mkdtemp())
>>> (base / "mine.txt").write_text("kept")
4
>>> new = NewFiles(base)
>>> (base / "made").mkdir()
>>> (base / "made" / "x.wav").write_bytes(b"")
0
>>> new.remove()
>>> sorted(p.name for p in base.iterdir())
['mine.txt']
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path


class NewFiles:
    """What ``folder`` holds now, so that :meth:`remove` can delete what appears later."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.existed = self.folder.exists()
        self.before = set(self.folder.iterdir()) if self.folder.is_dir() else set()
        # the highest missing ancestor: `--out new/report` makes `new` too
        self.top = self.folder
        while not self.existed and not self.top.parent.exists() and self.top.parent != self.top:
            self.top = self.top.parent

    def remove(self) -> None:
        """Delete the entries that appeared since the snapshot (the folder, and the missing
        folders above it, if it is new)."""
        if not self.existed:
            shutil.rmtree(self.top, ignore_errors=True)
            return
        if not self.folder.is_dir():
            return
        for entry in set(self.folder.iterdir()) - self.before:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def write_all_or_nothing(
    out_dir: str | Path,
    write: Callable[[Path], dict[str, Path]],
    what: str,
    again: str = "run it again",
) -> dict[str, Path]:
    """Write a set of output files (``write`` into a folder, returning key → path) all at
    once: into a folder of their own inside ``out_dir``, then renamed into place (no byte
    more on the disk). A disk that refuses one (full, read-only) leaves ``out_dir`` as it
    was, an earlier call's files untouched, and is one line naming ``out_dir`` and saying
    ``what`` could not be written; ``again`` says what to do next.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "bench"
    >>> def two(folder):
    ...     (folder / "a.md").write_text("table")
    ...     return {"md": folder / "a.md"}
    >>> written = write_all_or_nothing(out, two, "the tables")
    >>> written["md"] == out / "a.md", sorted(p.name for p in out.iterdir())
    (True, ['a.md'])
    """
    import os
    import tempfile

    from sercap.errors import SercapError

    out_dir = Path(out_dir)
    made = NewFiles(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission: not a disk to free
        made.remove()
        raise SercapError(
            f"{out_dir}: cannot create the folder for {what} ({exc.strerror or exc})"
        ) from exc
    try:
        staging = Path(tempfile.mkdtemp(prefix=".sercap-", dir=out_dir))
        try:
            written = write(staging)
            for key, path in written.items():
                os.replace(path, out_dir / path.name)
                written[key] = out_dir / path.name
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return written
    except OSError as exc:
        made.remove()
        raise SercapError(
            f"{out_dir}: cannot write {what} ({exc.strerror or exc}); nothing of this call's "
            f"files is kept: free space (or choose another folder) and {again}"
        ) from exc
    except BaseException:
        made.remove()
        raise


def append_whole(path: str | Path, text: str) -> None:
    """Add ``text`` to the end of the file ``path`` as one replacement: the new content is
    written beside it and renamed over it, so a full disk or a Ctrl-C leaves the file as it
    was, never cut short (``write_text`` empties it first). A disk that refuses it is one
    line naming the file.

    >>> import tempfile
    >>> md = Path(tempfile.mkdtemp()) / "bench.md"
    >>> _ = md.write_text("table\\n")
    >>> append_whole(md, "ci\\n")
    >>> md.read_text()
    'table\\nci\\n'
    """
    import os

    from sercap.errors import SercapError

    path = Path(path)
    tmp = path.with_name(f".{path.name}.sercap-tmp")
    try:
        tmp.write_text(path.read_text() + text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SercapError(
            f"{path}: cannot add to it ({exc.strerror or exc}); it holds what it held before"
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
