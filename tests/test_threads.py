"""limit_threads: the limit holds inside, is undone after, and the library scan is reused."""

from __future__ import annotations

import sys
import types

from threadpoolctl import ThreadpoolController

from sercap._threads import _controller, limit_threads


def test_limit_holds_inside_and_is_undone_after() -> None:
    import numpy  # noqa: F401  (OpenBLAS is loaded)

    before = [pool["num_threads"] for pool in ThreadpoolController().info()]
    assert before
    with limit_threads(1):
        assert all(pool["num_threads"] == 1 for pool in ThreadpoolController().info())
    assert [pool["num_threads"] for pool in ThreadpoolController().info()] == before


def test_the_scan_is_reused_until_a_module_is_imported(monkeypatch) -> None:
    with limit_threads(1):
        pass
    first = _controller(len(sys.modules))
    with limit_threads(2):
        pass
    assert _controller(len(sys.modules)) is first
    monkeypatch.setitem(sys.modules, "sercap_test_new_module", types.ModuleType("x"))
    with limit_threads(1):
        pass
    assert _controller(len(sys.modules)) is not first
