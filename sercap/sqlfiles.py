"""The SQL shipped with sercap: the ``sql/`` folder and its named queries.

Pure lookup (no connection): the schema files, the templates (functionals, frame_stats) and
the named queries under ``sql/queries/`` are text that both the storage layer and the pure
feature code (the functionals template) read.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from sercap.errors import SercapError

#: The ``sql/`` folder of a clone (beside the package); a wheel carries it as ``sercap/sql``.
_SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def sql_dir() -> Path:
    """The ``sql/`` folder (schema, views, query templates).

    An installed wheel has it inside the package (``sercap/sql``, found with
    :mod:`importlib.resources`); a clone (or an editable install of one) has it at the
    repository root, beside the package.
    """
    from importlib.resources import files

    packaged = files("sercap") / "sql"
    candidates = [Path(str(packaged))] if isinstance(packaged, os.PathLike) else []
    for candidate in [*candidates, _SQL_DIR]:
        if (candidate / "001_schema.sql").is_file():
            return candidate
    raise SercapError(
        f"{_SQL_DIR}: the sql/ folder is missing (neither in the package nor beside it); "
        "reinstall sercap"
    )


def read_sql(name: str) -> str:
    """Text of one file under ``sql/`` (e.g. ``"templates/functionals.sql"``)."""
    path = sql_dir() / name
    if not path.is_file():
        raise SercapError(f"{path}: no such SQL file")
    return path.read_text()


def named_queries(name: str) -> dict[str, str]:
    """The ``-- name: x`` sections of one SQL file, each without its trailing ``;``."""
    return _sections(read_sql(name))


@cache
def named_query(file: str, name: str) -> str:
    """One named query of ``sql/queries/<file>.sql`` (e.g. ``named_query("runs", "insert")``)."""
    queries = named_queries(f"queries/{file}.sql")
    if name not in queries:
        raise SercapError(f"sql/queries/{file}.sql: no query named {name!r}")
    return queries[name]


def _sections(text: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    for section in re.split(r"^-- name: *", text, flags=re.M)[1:]:
        name, _, body = section.partition("\n")
        queries[name.strip()] = body.strip().rstrip(";")
    return queries
