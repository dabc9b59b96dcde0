"""Dimensional ratings and regression runs: every read or write of ``labels``' ratings for
training, of the regression columns of ``runs`` and of ``regression_predictions``.

The statements are the named queries of ``sql/queries/regression.sql``; the tables and
columns come from ``sql/008_regression.sql``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sercap._lazy import pl
from sercap.sqlfiles import named_query

if TYPE_CHECKING:
    import pyarrow as pa

    from sercap.store.warehouse import Warehouse


def _q(name: str) -> str:
    return named_query("regression", name)


def target_values(wh: Warehouse, corpus: str, target: str) -> pl.DataFrame:
    """utt_id, speaker, fold, protocol and ``value`` (the ``target`` rating, null where the
    corpus has none) of every utterance of ``corpus``, by utt_id."""
    return wh.query(_q("target_values"), {"corpus": corpus, "target": target})


def insert_regression_run(wh: Warehouse, run: Mapping[str, Any], predictions: pa.Table) -> None:
    """Store one regression run (``runs`` columns, ``target`` and its scores included) and
    its predictions (``run_id, utt_id, fold, value, predicted``) in one transaction."""
    with wh.transaction():
        wh.execute(_q("insert_regression_run"), dict(run))
        wh.con.register("new_regression_predictions", predictions)
        try:
            wh.execute(
                "INSERT INTO regression_predictions BY NAME "
                "SELECT * FROM new_regression_predictions"
            )
        finally:
            wh.con.unregister("new_regression_predictions")


def regression_predictions(wh: Warehouse, run_id: str) -> pl.DataFrame:
    """A regression run's out-of-fold predictions: utt_id, fold, value, predicted."""
    return wh.query(_q("regression_predictions"), {"run_id": run_id})


def has_regression_columns(wh: Warehouse) -> bool:
    """Whether the catalog has ``runs.target`` (a read-only warehouse opened before
    ``sql/008_regression.sql`` existed has not)."""
    return "target" in wh.columns_of("runs")


def regression_scores(wh: Warehouse, run_ids: Sequence[str]) -> pl.DataFrame:
    """run_id, target, ccc, pearson, mae (rounded) of those of ``run_ids`` that are
    regression runs; empty on a catalog without the regression columns."""
    if not has_regression_columns(wh):
        return pl.DataFrame(
            schema={
                "run_id": pl.String,
                "target": pl.String,
                "ccc": pl.Float64,
                "pearson": pl.Float64,
                "mae": pl.Float64,
            }
        )
    return wh.query(_q("regression_scores"), {"ids": list(run_ids)})


def newest_regression_runs(wh: Warehouse, corpus: str) -> pl.DataFrame:
    """The newest regression run of each (target, model, setting) of ``corpus`` with its
    scores (chosen by time, never by score); empty without the regression columns."""
    if not has_regression_columns(wh):
        return pl.DataFrame()
    return wh.query(_q("newest_regression_runs"), {"corpus": corpus})
