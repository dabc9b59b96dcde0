"""numba's on-disk cache of compiled kernels: one writer at a time, a corrupt cache set aside.

librosa compiles its kernels with ``cache=True``. numba's cache index is not safe for several
processes writing it at once: two processes compiling into one empty ``NUMBA_CACHE_DIR`` can
leave an index that points a signature at another signature's machine code, and every later
process that loads it segfaults (``estimate_tuning`` → ``piptrack`` → ``_parabolic_interpolation``
was the first victim). sercap therefore:

* compiles every kernel it uses ONCE, in a child process, under an exclusive file lock on the
  cache folder, before it starts worker processes (``ensure_numba_cache``);
* treats a crash of that child (killed by a signal) as a corrupt cache: the folder's contents
  are moved aside to ``<dir>.corrupt-<time>`` and the kernels are compiled afresh;
* records success in a marker file keyed by the Python/numpy/numba/librosa versions and the
  warm-up's own version, so later runs pay one ``stat`` instead of a child process.

The only state is the ``NUMBA_CACHE_DIR`` environment variable that numba itself reads (set
only when the user has not set it) and the files in the cache folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sercap.errors import SercapError

#: Bump when the kernels :func:`~sercap.numba_warmup.warm_kernels` compiles change.
WARMUP_VERSION = 3  # 2: own kernels (F0 path, pulses, formants); 3: spectral roll-off
#: ``module:function`` run in the child process to compile (and thereby probe) the kernels.
WARMUP_TARGET = "sercap.numba_warmup:warm_kernels"
LOCK_NAME = ".sercap-numba.lock"
MARKER_PREFIX = ".sercap-ok-"


def default_cache_dir() -> Path:
    """sercap's own cache folder for numba: ``~/.cache/sercap/numba``."""
    return Path.home() / ".cache" / "sercap" / "numba"


def use_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Point numba at a cache folder, respecting a user-set ``NUMBA_CACHE_DIR``.

    Parameters
    ----------
    cache_dir : path, optional
        Folder to use when ``NUMBA_CACHE_DIR`` is not set (default :func:`default_cache_dir`).

    Returns
    -------
    Path
        The folder numba will use (``NUMBA_CACHE_DIR`` after this call). Only processes that
        import numba after this call (e.g. spawned workers) are affected.
    """
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir or default_cache_dir()))
    return Path(os.environ["NUMBA_CACHE_DIR"]).expanduser()


def cache_key(target: str = WARMUP_TARGET, arg: str = "") -> str:
    """Short hash of what the cached machine code depends on (versions + warm-up)."""
    from importlib.metadata import PackageNotFoundError, version

    parts = [sys.version, str(WARMUP_VERSION), target, arg]
    for pkg in ("numpy", "numba", "llvmlite", "librosa"):
        try:
            parts.append(f"{pkg}={version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg}=none")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


@contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """Exclusive inter-process lock (``fcntl.flock``) on ``<cache_dir>/.sercap-numba.lock``.

    Where ``fcntl`` does not exist (Windows) the block runs unlocked.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(cache_dir / LOCK_NAME, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_warmup(
    cache_dir: Path, target: str, timeout_s: float, arg: str = ""
) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    module, func = target.split(":")
    code = (
        f"import {module} as m; m.{func}({arg!r})" if arg else f"import {module} as m; m.{func}()"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def set_aside(cache_dir: Path) -> Path:
    """Move the cache folder's contents (not its lock) to ``<cache_dir>.corrupt-<time>``."""
    aside = cache_dir.with_name(f"{cache_dir.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    aside = aside.with_name(f"{aside.name}-{os.getpid()}")
    aside.mkdir(parents=True)
    for entry in cache_dir.iterdir():
        if entry.name != LOCK_NAME:
            entry.rename(aside / entry.name)
    return aside


def ensure_numba_cache(
    cache_dir: str | os.PathLike | None = None,
    target: str = WARMUP_TARGET,
    arg: str = "",
    timeout_s: float = 1800.0,
    log: bool = True,
) -> Path:
    """Make the numba cache safe to share: compiled once, under a lock, probed, marked.

    Call it before starting processes that use numba kernels. The first call per set of
    library versions compiles every kernel sercap uses in a child process while holding an
    exclusive lock on the cache folder (concurrent callers wait, then find the marker). A
    child killed by a signal means the cache is corrupt: its contents are moved aside and the
    kernels compiled afresh. Later calls only check the marker file.

    Parameters
    ----------
    cache_dir : path, optional
        Cache folder when ``NUMBA_CACHE_DIR`` is not set (a user-set one always wins).
    target : str
        ``module:function`` that compiles the kernels (default
        :func:`~sercap.numba_warmup.warm_kernels`).
    arg : str
        One string argument for ``target`` (for :func:`~sercap.numba_warmup.warm_kernels`,
        a :func:`warm_spec` naming the feature set whose kernels to compile); part of the
        marker's key.
    timeout_s : float
        Limit for one warm-up child.
    log : bool
        Print one line on stderr when compiling or setting a corrupt cache aside.

    Returns
    -------
    Path
        The cache folder in use.

    Raises
    ------
    SercapError
        When the warm-up fails in a fresh, empty cache (not a cache problem).
    """
    folder = use_cache_dir(cache_dir)
    marker = folder / f"{MARKER_PREFIX}{cache_key(target, arg)}"
    if marker.exists():
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # not writable: numba will not cache there either
        if log:
            print(f"numba cache {folder} unusable ({exc.strerror}): not warmed", file=sys.stderr)
        return folder
    with cache_lock(folder):
        if marker.exists():  # another process compiled while we waited
            return folder
        if log:
            print(
                f"compiling numba kernels (sercap's and librosa's) once into {folder} …",
                file=sys.stderr,
            )
        res = _run_warmup(folder, target, timeout_s, arg)
        if res.returncode != 0:
            aside = set_aside(folder)
            if log:
                how = f"signal {-res.returncode}" if res.returncode < 0 else "an error"
                print(
                    f"numba cache {folder} crashed the probe ({how}); moved it to {aside}, "
                    "compiling afresh",
                    file=sys.stderr,
                )
            res = _run_warmup(folder, target, timeout_s, arg)
            if res.returncode != 0:
                last = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
                raise SercapError(
                    f"compiling numba kernels into {folder} failed even in an empty cache: {last}"
                )
        marker.write_text(f"warm-up {target} ok\n")
    return folder


def forget_probes() -> None:
    """Remove the markers of the cache folder in use, so that the next
    :func:`ensure_numba_cache` probes it again (and sets it aside if it fails): called when
    kernels loaded from it fail in a way the probe's marker hid (a damaged ``.nbc`` file)."""
    for marker in use_cache_dir().glob(f"{MARKER_PREFIX}*"):
        marker.unlink(missing_ok=True)


def warm_spec(kind: str, params: dict) -> str:
    """The :func:`~sercap.numba_warmup.warm_kernels` argument for one feature or image set."""
    import json

    return json.dumps({"kind": kind, "params": params}, sort_keys=True)
