"""Forget what was extracted from audio that has changed, so the next ``extract`` redoes it.

Extraction stores each chunk of utterances as one Parquet part per kind (an ``lld`` set
writes a frames part and a features part of the same file name) and one ``extractions`` row
per utterance naming its features/images part. Views read every registered part, so
deleting an utterance's ``extractions`` row alone would leave its old rows visible, and
after re-extraction the utterance would appear twice. :func:`invalidate` therefore also
rewrites every part that holds a changed utterance without its rows: the copy is registered
under a new name, the old part unregistered, and the remaining utterances' ``extractions``
rows point at the copy. Catalog changes happen in the caller's transaction; the new files
are written (temporary name, then renamed) before it commits and the old ones deleted only
after it has (:meth:`Invalidation.commit`), so a crash leaves at most unregistered files,
which the next ``extract`` removes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from sercap.errors import REPAIR_STEP, SercapError
from sercap.store import Warehouse, catalog, layout
from sercap.store import parts as store_parts


@dataclass
class Invalidation:
    """What :func:`invalidate` dropped, and the files to delete or keep once it is decided."""

    utterances: int = 0
    extractions: int = 0
    parts_rewritten: int = 0
    rows_dropped: int = 0
    seconds: float = 0.0
    old_files: list[Path] = field(default_factory=list)
    new_files: list[Path] = field(default_factory=list)

    def commit(self) -> None:
        """After the transaction committed: delete the parts it unregistered."""
        for path in self.old_files:
            path.unlink(missing_ok=True)
        self.old_files.clear()

    def abort(self) -> None:
        """After the transaction rolled back: delete the copies it would have registered."""
        for path in self.new_files:
            path.unlink(missing_ok=True)
        self.new_files.clear()


def invalidate(wh: Warehouse, utt_ids: Collection[str]) -> Invalidation:
    """Drop every stored feature, frame and image of ``utt_ids`` (all feature sets).

    Run inside a transaction of ``wh``; call :meth:`Invalidation.commit` after it commits
    and :meth:`Invalidation.abort` if it rolls back.
    """
    result = Invalidation()
    if not utt_ids:
        return result
    started = time.perf_counter()
    stale = sorted(set(utt_ids))
    result.utterances = len(stale)
    try:
        for group in _affected_parts(wh, stale):
            _rewrite_group(wh, group, set(stale), result)
        result.extractions = catalog.drop_extractions_of(wh, stale)
    except BaseException:
        result.abort()
        raise
    result.seconds = time.perf_counter() - started
    return result


def _affected_parts(wh: Warehouse, stale: list[str]) -> list[list[tuple[str, str, str, str]]]:
    """Registered parts holding a stale utterance, grouped by chunk: the parts of one feature
    set and corpus that share a file name (an lld chunk's frames and features parts)."""
    rows = catalog.parts_of_utterances(wh, stale)
    groups: dict[tuple[str, str, str], list[tuple[str, str, str, str]]] = {}
    for row in rows:
        path, _kind, fs_hash, corpus = row
        groups.setdefault((fs_hash, corpus, Path(path).name), []).append(row)
    return list(groups.values())


def _rewrite_group(
    wh: Warehouse, group: list[tuple[str, str, str, str]], stale: set[str], result: Invalidation
) -> None:
    """Replace each part of one chunk by a copy without the stale utterances' rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    name = f"part-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
    new_main: Path | None = None
    for rel, kind, fs_hash, corpus in group:
        old = layout.absolute(wh.root, rel)
        if (why := store_parts.digest_problem(wh, rel)) is not None:  # else its rows would be
            raise SercapError(  # copied into a new part, registered under a fresh checksum
                f"{old}: {why}; run {REPAIR_STEP}, then ingest again"
            )
        try:
            table = pq.read_table(old)
        except (OSError, pa.ArrowException) as exc:
            raise SercapError(
                f"{old}: cannot read this registered part to drop changed audio's rows "
                f"({str(exc).splitlines()[0]}); run {REPAIR_STEP}, then ingest again"
            ) from exc
        keep = pc.invert(pc.is_in(table["utt_id"], value_set=pa.array(sorted(stale), pa.string())))
        kept = table.filter(keep)
        result.rows_dropped += table.num_rows - kept.num_rows
        if kept.num_rows:
            new = Path(store_parts.write_part(kept, old.parent, name))
            result.new_files.append(new)
            wh.register_part(kind, fs_hash, corpus, new, kept.num_rows)
            if kind != "frames":
                new_main = new
        store_parts.unregister_part(wh, rel)
        result.old_files.append(old)
        result.parts_rewritten += 1
    if new_main is not None:  # the chunk's other utterances now live in the copy
        _, _, fs_hash, corpus = group[0]
        catalog.repoint_chunk(wh, fs_hash, corpus, Path(group[0][0]).name, new_main)
