"""numba's kernel cache: compiled once under a lock, a corrupt cache set aside (issue 10.9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sercap import numba_cache
from sercap.numba_cache import ensure_numba_cache, use_cache_dir

ROOT = Path(__file__).resolve().parents[1]
KERNELS = "tests.numba_kernels:use"


def _env(cache: Path) -> dict[str, str]:
    return dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))


def _ensure_then_run(cache: Path, target: str) -> subprocess.Popen:
    """A fresh process that does what ``extract --jobs N`` does: ensure, then compute."""
    module, func = target.split(":")
    code = (
        "from sercap.numba_cache import ensure_numba_cache; "
        f"ensure_numba_cache(target={target!r}, log=False); "
        f"import {module} as m; m.{func}()"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=_env(cache), cwd=ROOT)


def _run(cache: Path, target: str) -> int:
    module, func = target.split(":")
    code = f"import {module} as m; m.{func}()"
    return subprocess.run(
        [sys.executable, "-c", code], env=_env(cache), cwd=ROOT, timeout=600
    ).returncode


def _corrupt(cache: Path) -> None:
    """Swap the float32 and float64 data files: the index now points at the wrong code."""
    swapped = 0
    for index in cache.rglob("*numba_kernels*.nbi"):
        stem = index.name[: -len(".nbi")]
        one, two = index.with_name(f"{stem}.1.nbc"), index.with_name(f"{stem}.2.nbc")
        tmp = index.with_name("swap.tmp")
        one.rename(tmp)
        two.rename(one)
        tmp.rename(two)
        swapped += 1
    assert swapped, f"no cached kernels found under {cache}"


def test_user_set_cache_dir_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert use_cache_dir(tmp_path / "other") == tmp_path / "mine"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert use_cache_dir(tmp_path / "other") == tmp_path / "other"
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "other")


def test_marker_skips_the_warmup(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "c"))
    calls = []

    def fake(folder, target, timeout_s, arg=""):
        calls.append(target)
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(numba_cache, "_run_warmup", fake)
    ensure_numba_cache(target=KERNELS, log=False)
    ensure_numba_cache(target=KERNELS, log=False)
    assert calls == [KERNELS]
    assert list((tmp_path / "c").glob(".sercap-ok-*"))


def test_corrupt_cache_is_set_aside(tmp_path):
    cache = tmp_path / "numba"
    assert _run(cache, KERNELS) == 0  # an ordinary cache…
    _corrupt(cache)  # …whose index now maps each signature to the other's machine code
    assert _run(cache, KERNELS) < 0  # the reproduction: loading it crashes (SIGSEGV)
    proc = _ensure_then_run(cache, KERNELS)
    assert proc.wait(timeout=600) == 0
    assert _run(cache, KERNELS) == 0
    assert list(tmp_path.glob("numba.corrupt-*")), "the corrupt cache is kept aside"


def test_concurrent_first_use_leaves_a_usable_cache(tmp_path):
    """Three fresh processes start on one empty cache at once, then a fourth uses it.

    The tiny kernels have librosa's failure shape (a float32 and a float64 signature of one
    cached gufunc) and compile in about a second, so the test stays fast; the lock lets one
    process compile while the others wait for its marker.
    """
    cache = tmp_path / "numba"
    procs = [_ensure_then_run(cache, KERNELS) for _ in range(3)]
    assert [p.wait(timeout=600) for p in procs] == [0, 0, 0]
    assert len(list(cache.glob(".sercap-ok-*"))) == 1
    assert _run(cache, KERNELS) == 0
