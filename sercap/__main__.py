"""``python -m sercap`` and the installed ``sercap`` command: the CLI group, loaded lazily.

Interim layout (until the CLI becomes the ``sercap/cli/`` package): the command group lives
in the repository-root ``cli.py``. A built wheel carries that file as ``sercap/_cli.py``
(pyproject's force-include), so no top-level ``cli`` module is installed; in a clone, where
``sercap/_cli.py`` does not exist, the root ``cli.py`` beside the package is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


def load_cli() -> Any:
    """The click group of the command line (from the wheel's copy, else the clone's)."""
    try:
        return importlib.import_module("sercap._cli").main
    except ModuleNotFoundError as exc:
        if exc.name != "sercap._cli":
            raise
    path = Path(__file__).resolve().parent.parent / "cli.py"
    loaded = sys.modules.get("cli")
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path:
        return loaded.main
    spec = importlib.util.spec_from_file_location("cli", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise SystemExit(f"error: {path}: the sercap command line is missing; reinstall sercap")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cli"] = module
    spec.loader.exec_module(module)
    return module.main


def main() -> Any:
    """Run the command line (the ``sercap`` console script)."""
    return load_cli()(prog_name="sercap")


if __name__ == "__main__":
    main()
