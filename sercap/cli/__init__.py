"""sercap command line: every command parses its options, calls one API function, prints.

Run ``sercap --help`` (or ``python -m sercap --help``, or ``python cli.py --help`` from a
clone). The warehouse is chosen with ``--warehouse PATH`` or ``$SERCAP_WAREHOUSE`` (default
``./warehouse``).

The commands live in one module per group (:mod:`sercap.cli.store`, :mod:`~sercap.cli.corpora`,
:mod:`~sercap.cli.features`, :mod:`~sercap.cli.models`, :mod:`~sercap.cli.bench`,
:mod:`~sercap.cli.demo`, :mod:`~sercap.cli.analysis`), registered on :data:`main` when this
package is imported. They use
only the public API (``import sercap``), :mod:`sercap.errors` and :mod:`sercap.format`
(tests/test_cli_imports.py checks).
"""

# Each command module registers its commands on `main` when imported.
from sercap.cli import analysis, bench, corpora, demo, features, models, store  # noqa: E402, F401
from sercap.cli.group import main

__all__ = ["main"]
