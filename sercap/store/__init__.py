"""The storage layer: the only code that knows the warehouse folder and its catalog tables.

- :mod:`~sercap.store.warehouse`: connection, schema, transactions (:func:`connect`,
  :class:`Warehouse`)
- :mod:`~sercap.store.layout`: every path inside a warehouse folder
- :mod:`~sercap.store.parts`: Parquet parts (registration, checksums, orphans)
- :mod:`~sercap.store.views`: views over the parts, stored images
- :mod:`~sercap.store.runs`: runs, their predictions, artifacts and tuned parameters
- :mod:`~sercap.store.catalog`: feature sets and extraction bookkeeping
- :mod:`~sercap.store.corpora`: what ingest writes (utterances, labels, evaluations, audio
  fingerprints, transcripts, the corpora row, ingest problems)

Services (ingest, extract, evaluate, tuning, prediction, compare, report, ensemble, check,
invalidate) call these functions; they build no warehouse path and write no catalog SQL
(``tests/test_store_boundary.py`` enforces it). Long static queries are named queries in
``sql/queries/*.sql``.
"""

from sercap.names import check_name
from sercap.sqlfiles import read_sql, sql_dir
from sercap.store.layout import DB_FILENAME, PART_KINDS
from sercap.store.parts import file_digest
from sercap.store.warehouse import SCHEMA_VERSION, Warehouse, connect, default_path

__all__ = [
    "DB_FILENAME",
    "PART_KINDS",
    "SCHEMA_VERSION",
    "Warehouse",
    "check_name",
    "connect",
    "default_path",
    "file_digest",
    "read_sql",
    "sql_dir",
]
