"""The CLI is a thin layer over the public API: sercap/cli/ imports nothing else of sercap.

Every module under sercap/cli/ is parsed with ``ast``; every ``import``/``from … import``
anywhere in it (module level or inside a function) may name from sercap only ``sercap``
itself, ``sercap.errors``, ``sercap.format``, ``sercap._interrupt`` (the early Ctrl-C
handler the entry points install before the CLI loads), ``sercap._newfiles`` (what a failed
first step created, removed; the library's steps use it too) and ``sercap.cli.*``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[1] / "sercap" / "cli"
ALLOWED = {"sercap", "sercap.errors", "sercap.format", "sercap._interrupt", "sercap._newfiles"}


def _allowed(module: str) -> bool:
    return module in ALLOWED or module == "sercap.cli" or module.startswith("sercap.cli.")


def forbidden_imports(source: str, package: str = "sercap.cli") -> list[str]:
    """``line: module`` for every import of a sercap module outside the public surface."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from sercap import warehouse` imports the submodule sercap.warehouse
            names = [module] + (
                [f"{module}.{a.name}" for a in node.names] if module == "sercap" else []
            )
            if module == "sercap":
                names = [n for n in names[1:] if not _public_name(n)] or [module]
        else:
            continue
        for name in names:
            if (name == "sercap" or name.startswith("sercap.")) and not _allowed(name):
                found.append(f"{node.lineno}: {name}")
    return found


def _public_name(dotted: str) -> bool:
    """``sercap.X`` from ``from sercap import X``: fine when X is an API export (not a module)."""
    import sercap

    name = dotted.split(".", 1)[1]
    return name in sercap.__all__ and name != "features" or f"sercap.{name}" in ALLOWED


def test_the_check_catches_internal_imports() -> None:
    """The checker itself: each way of reaching an internal module is caught."""
    sources = [
        "import sercap.warehouse",
        "from sercap.warehouse import connect",
        "from sercap import warehouse",
        "def f():\n    from sercap.report import format_table\n",
        "from ..report import format_table",
        "import sercap.features.extract as ex",
    ]
    for source in sources:
        assert forbidden_imports(source), source
    fine = "import sercap\nfrom sercap.errors import SercapError\nfrom sercap.format import x\n"
    fine += "from sercap.cli import main\nfrom sercap import connect\nimport click, os\n"
    assert forbidden_imports(fine) == []


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_cli_modules_import_only_the_public_api(path: Path) -> None:
    assert forbidden_imports(path.read_text()) == [], f"sercap/cli/{path.name}"


def test_every_command_group_is_registered() -> None:
    from sercap.cli import main

    expected = {
        "sql", "info", "check", "ingest", "corpus", "extract", "features", "images", "train",
        "runs", "tune", "ensemble", "report", "predict", "bench", "demo", "compare",
    }  # fmt: skip
    assert set(main.commands) == expected
    assert len(list(CLI.glob("*.py"))) == 9  # __init__, group + store, corpora, features, models,
    # bench, demo, analysis
