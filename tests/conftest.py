"""Shared fixtures: an in-memory catalog with Parquet parts in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from sercap.numba_cache import ensure_numba_cache, use_cache_dir  # noqa: E402

# Keep numba's librosa kernels cached between test runs (first compile costs ~10 s).
use_cache_dir()

from sercap.store import Warehouse, connect  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the modules holding a ``slow`` test first, each module's tests kept together
    (their module-scoped fixtures are built once) and in order.

    pytest-xdist hands tests out in this order: a minute-long test that starts last keeps
    one worker busy while the other has nothing left to do; started first, the short tests
    fill in around it.
    """
    slow = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow)  # stable: order kept


@pytest.fixture(scope="session", autouse=True)
def _numba_cache_checked() -> None:
    """Compile (or probe) the default kernels once, so no test meets a corrupt cache."""
    ensure_numba_cache(log=False)


EMODB_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emodb"


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    """A fresh warehouse: catalog in memory, Parquet under a temporary folder."""
    warehouse = connect(tmp_path / "wh", memory=True)
    yield warehouse
    warehouse.close()


@pytest.fixture
def emodb_dir() -> Path:
    """The real EmoDB beside the project (CI has it); skips cleanly when it is absent."""
    if not (EMODB_DIR / "wav").is_dir():
        pytest.skip(f"EmoDB not found at {EMODB_DIR}")
    return EMODB_DIR
