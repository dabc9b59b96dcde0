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
