"""The built wheel works outside the clone (.ci/wheel-check: build, install, run end to end)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_clone():
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run .ci/wheel-check")
    try:
        import hatchling  # noqa: F401
    except ImportError:
        pytest.skip('hatchling is not installed (pip install -e ".[test]")')
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "wheel-check")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "wheel-check: ok" in done.stdout


def test_the_sdist_holds_what_its_tests_need(tmp_path):
    """The sdist's tests/test_wheel.py ran .ci/wheel-check, which the sdist did not hold."""
    import tarfile

    try:
        import hatchling  # noqa: F401
    except ImportError:
        pytest.skip('hatchling is not installed (pip install -e ".[test]")')
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in (".ci/wheel-check", ".ci/run", "tests/test_wheel.py", "sql/001_schema.sql"):
        assert needed in names, needed
