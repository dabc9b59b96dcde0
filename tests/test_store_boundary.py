"""The storage boundary, checked on the source with ``ast`` (no import, no warehouse).

1. Only ``sercap/store/`` builds paths inside a warehouse (``x.root / ...``,
   ``relative_to(x.root)``) or writes catalog SQL (string literals with ``INSERT INTO``,
   ``DELETE FROM``, ``UPDATE t SET``, ``CREATE TABLE/VIEW``, or reading the catalog tables
   ``runs``, ``predictions``, ``parts``, ``extractions``).
2. Pure modules (audio, per-frame descriptors, functionals, images, feature-set definitions,
   models) import neither DuckDB nor the storage layer, not even inside a function.
3. No import cycle among sercap's modules, counting imports inside functions (those are
   cycles too, only deferred) but not ``if TYPE_CHECKING:`` ones.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sercap"

CATALOG_SQL = [
    re.compile(r"\bINSERT\s+(OR\s+\w+\s+)?INTO\b", re.I),
    re.compile(r"\bDELETE\s+FROM\b", re.I),
    re.compile(r"\bUPDATE\s+\w+\s+SET\b", re.I),
    re.compile(r"\bCREATE\s+(OR\s+REPLACE\s+)?(TEMP\w*\s+)?(TABLE|VIEW)\b", re.I),
    re.compile(r"\b(FROM|JOIN)\s+(runs|predictions|parts|extractions)\b", re.I),
]

#: (module, what is allowed there, why). Keep it short: each entry is a debt or a reason.
ALLOWED = {
    # A private in-memory DuckDB (one Parquet file at a time): no catalog involved.
    ("sercap/features/aggregate_speed.py", "CREATE"),
}

PURE = [
    "sercap/audio.py",
    "sercap/features/lld.py",
    "sercap/features/functionals.py",
    "sercap/features/images.py",
    "sercap/features/featureset.py",
    "sercap/features/framing.py",
    *sorted(p.relative_to(ROOT).as_posix() for p in (PACKAGE / "models").glob("*.py")),
]
#: The functionals are SQL (sql/templates/functionals.sql, the single definition) run by a
#: private in-memory DuckDB on an Arrow table: DuckDB is their compute engine, not storage.
PURE_MAY_IMPORT_DUCKDB = {"sercap/features/functionals.py"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _in_store(path: Path) -> bool:
    return _rel(path).startswith("sercap/store/")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (module, class, function): prose, not SQL."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string literal; an f-string's literal parts joined, and
    adjacent literals (implicitly concatenated) are one constant already."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip |= {id(v) for v in node.values}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value if isinstance(v, ast.Constant) else "{}"
                for v in node.values
                if isinstance(v, ast.Constant | ast.FormattedValue)
            )
            out.append((node.lineno, text))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            out.append((node.lineno, node.value))
    return out


def _is_root(node: ast.AST) -> bool:
    """``<something>.root`` (a warehouse's folder)."""
    return isinstance(node, ast.Attribute) and node.attr == "root"


def _leftmost(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        node = node.left
    return node


def catalog_sql_outside_store() -> list[str]:
    found = []
    for path in _modules():
        if _in_store(path):
            continue
        rel = _rel(path)
        for line, text in _strings(ast.parse(path.read_text())):
            for pattern in CATALOG_SQL:
                match = pattern.search(text)
                if match is None:
                    continue
                allowed = any(rel == f and match.group(0).upper().startswith(w.upper())
                              for f, w in ALLOWED)  # fmt: skip
                if not allowed:
                    found.append(f"{rel}:{line}: {match.group(0)!r}")
    return found


def warehouse_paths_outside_store() -> list[str]:
    found = []
    for path in _modules():
        if _in_store(path):
            continue
        rel = _rel(path)
        if (rel, "root /") in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                if _is_root(_leftmost(node)):
                    found.append(f"{rel}:{node.lineno}: <x>.root / ...")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "relative_to"
                and any(_is_root(n) for a in node.args for n in ast.walk(a))
            ):
                found.append(f"{rel}:{node.lineno}: relative_to(<x>.root)")
    return found


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Modules ``path`` imports at run time (anywhere in it, TYPE_CHECKING blocks aside);
    ``from a import b`` counts as ``a.b`` when that is a module of sercap, else ``a``."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_blocks(tree)
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    known = {_module_name(p) for p in _modules()}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return out


def import_cycles() -> list[list[str]]:
    """Every elementary cycle's representative (one per strongly connected component)."""
    graph = {_module_name(p): set() for p in _modules()}
    for path in _modules():
        graph[_module_name(path)] = {m for m in imports(path) if m in graph}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_only_the_store_writes_or_reads_catalog_tables_in_sql() -> None:
    assert catalog_sql_outside_store() == []


def test_only_the_store_builds_paths_inside_a_warehouse() -> None:
    assert warehouse_paths_outside_store() == []


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_storage(module: str) -> None:
    found = imports(ROOT / module)
    storage = {
        m for m in found if m.split(".")[:2] in (["sercap", "store"], ["sercap", "warehouse"])
    }
    assert not storage, f"{module} imports {sorted(storage)}"
    if module not in PURE_MAY_IMPORT_DUCKDB:
        assert "duckdb" not in {m.split(".")[0] for m in found}, f"{module} imports duckdb"


def test_no_import_cycles() -> None:
    assert import_cycles() == []


def test_the_checks_see_what_they_look_for() -> None:
    """The detectors find a planted violation (so an empty answer above means something)."""
    tree = ast.parse(
        'def f(wh):\n    """INSERT INTO runs is prose here."""\n'
        '    wh.execute(f"INSERT OR REPLACE INTO runs VALUES ({1})")\n'
        '    return wh.root / "artifacts"\n'
    )
    texts = [t for _, t in _strings(tree)]
    assert texts == ["INSERT OR REPLACE INTO runs VALUES ({})", "artifacts"]
    assert any(p.search(texts[0]) for p in CATALOG_SQL)
    divs = [n for n in ast.walk(tree) if isinstance(n, ast.BinOp)]
    assert _is_root(_leftmost(divs[0]))
