"""Every path inside a warehouse folder, in one place.

A warehouse is a directory::

    sercap.duckdb                                   the catalog
    frames|features|images/feature_set=<hash>/corpus=<name>/part-*.parquet
    artifacts/<run_id>/                             fitted models (``sercap predict``)
    studies/<study>.journal                         Optuna journals (``sercap tune``)
    reports/<name>/                                 ``sercap report``/``bench`` output

Paths stored in the catalog are relative to the warehouse folder (POSIX separators), so a
moved or copied warehouse keeps working.
"""

from __future__ import annotations

import re
from pathlib import Path

DB_FILENAME = "sercap.duckdb"
PART_KINDS = ("frames", "features", "images")


#: The part kinds each chunk of a feature set of this kind holds (one file name per chunk).
CHUNK_KINDS = {"lld": ("features", "frames"), "opensmile": ("features",), "image": ("images",)}


def database_path(root: Path) -> Path:
    """The catalog file of the warehouse at ``root``."""
    return Path(root) / DB_FILENAME


def has_database(root: Path) -> bool:
    """Whether a catalog file exists at ``root`` (a warehouse was created there)."""
    return database_path(root).exists()


def part_dir(root: Path, kind: str, feature_set_hash: str, corpus: str) -> Path:
    """Folder of the parts of one (kind, feature set, corpus); not created here."""
    if kind not in PART_KINDS:
        raise ValueError(f"kind must be one of {PART_KINDS}, got {kind!r}")
    return Path(root) / kind / f"feature_set={feature_set_hash}" / f"corpus={corpus}"


def artifact_dir(root: Path, run_id: str) -> Path:
    """Folder of one run's saved model and its metadata."""
    return Path(root) / "artifacts" / run_id


def study_journal(root: Path, study: str) -> Path:
    """The Optuna journal file of a study stored in the warehouse."""
    return Path(root) / "studies" / f"{study}.journal"


def report_dir(root: Path, name: str) -> Path:
    """Default folder of a report (``<corpus>``, ``bench-<corpus>``)."""
    return Path(root) / "reports" / name


def report_file(root: Path, name: str) -> Path:
    """A file directly under ``reports/`` (e.g. a study's plot)."""
    return Path(root) / "reports" / name


#: What sercap names the files of a part folder: its parts, and a part being written.
_PART_FILE = re.compile(r"part-[\w.-]+\.parquet|\.part-[\w.-]+\.parquet\.\d+\.tmp")
#: What sercap names the folders under ``artifacts/``: a run's id, ``.tmp`` while written.
_ARTIFACT_DIR = re.compile(r".+-\d{8}-\d{6}-[0-9a-f]{4}(\.tmp)?")


def is_part_file(root: Path, path: Path) -> bool:
    """Whether ``path`` is where sercap writes a part (or a part being written): directly
    in a ``<kind>/feature_set=<hash>/corpus=<name>/`` folder, under a part's name.

    >>> is_part_file(Path("/w"), Path("/w/features/feature_set=ab/corpus=c/part-1.parquet"))
    True
    >>> is_part_file(Path("/w"), Path("/w/features/feature_set=ab/corpus=c/notes.txt"))
    False
    """
    try:
        kind, fs, corpus, name = Path(path).relative_to(root).parts
    except ValueError:  # elsewhere, or another depth
        return False
    return (
        kind in PART_KINDS
        and fs.startswith("feature_set=")
        and corpus.startswith("corpus=")
        and _PART_FILE.fullmatch(name) is not None
    )


def is_artifact_dir(path: Path) -> bool:
    """Whether ``path`` is named as sercap names a run's model folder (``<run_id>`` or
    ``<run_id>.tmp``) and is a folder."""
    return path.is_dir() and _ARTIFACT_DIR.fullmatch(path.name) is not None


def writable_output(root: Path, path: Path, allowed: tuple[str, ...] = ()) -> str | None:
    """Why a file a user asked for (``--out``) must not be written at ``path``, or None.

    The catalog and the folders of parts, models and journals are sercap's alone: a result
    written over a part would damage it (and a read-only command would have changed a byte),
    a new file among the parts would be deleted as a crash's leftover by the next extract.
    Elsewhere in the warehouse folder (``reports/``, a folder of the user's) is allowed, and
    so are sercap's folders named in ``allowed`` (a study journal under ``studies/``).

    >>> writable_output(Path("/w"), Path("/w/reports/x.csv")) is None
    True
    >>> writable_output(Path("/w"), Path("/w/features/a.parquet"))
    "it is in the warehouse's features/ folder, where only sercap writes"
    """
    import os

    where = Path(os.path.realpath(path))
    home = Path(os.path.realpath(root))
    catalog = (DB_FILENAME, DB_FILENAME + ".wal", DB_FILENAME + ".tmp")
    if where.parent == home and where.name in catalog:
        return f"it is the warehouse's catalog {where.name}, which only sercap writes"
    for folder in (*PART_KINDS, "artifacts", "studies"):
        if folder not in allowed and where.is_relative_to(home / folder):
            return f"it is in the warehouse's {folder}/ folder, where only sercap writes"
    return None


def relative(root: Path, path: Path) -> str:
    """``path`` as stored in the catalog: relative to the warehouse folder, POSIX.

    Taken from the path as written first (a part folder that is a link to another disk
    stays ``features/…``; resolved, it was "not in the subpath" of the warehouse, a
    traceback on every extract and check), then from both resolved.

    >>> relative(Path("/w"), Path("/w/features/x/../part-0.parquet"))
    'features/part-0.parquet'
    """
    import os

    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()


def absolute(root: Path, rel: str) -> Path:
    """A catalog path (relative to the warehouse) as a path on this machine."""
    return Path(root) / rel


def catalog_relative(root: Path, part: str) -> str:
    """An extraction row's part as a path relative to the warehouse (older rows: absolute)."""
    import os

    path = Path(part)
    if path.is_absolute():
        with_root = os.path.normpath(path)
        for base in (Path(root).resolve(), Path(root).absolute()):
            try:
                return Path(with_root).relative_to(base).as_posix()
            except ValueError:
                continue
        return path.as_posix()
    return part
