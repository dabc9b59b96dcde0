"""Planning and running the cross-validations that train, bench and compare_tuned store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sercap
from sercap.store import connect
from tests.helpers import add_corpus, add_features


def _readable_elsewhere(database: Path) -> bool:
    """Whether another process can open the catalog to read it now."""
    return (
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import duckdb; duckdb.connect({str(database)!r}, read_only=True)",
            ],
            capture_output=True,
            timeout=60,
        ).returncode
        == 0
    )


def test_other_processes_can_read_the_warehouse_while_the_folds_are_fitted(
    tmp_path: Path, monkeypatch
) -> None:
    """train held the write lock for its whole run (15 minutes at IEMOCAP's size): `sql` and
    `info` gave up after their minute's wait. The lock is given back while the folds are
    fitted, and the run is stored after, with the fingerprint of the data it loaded."""
    import sercap.experiment as experiment

    database = tmp_path / "wh" / "sercap.duckdb"
    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    seen = []
    fit = experiment.cross_validate

    def spied(*args, **kwargs):
        seen.append(_readable_elsewhere(database))
        return fit(*args, **kwargs)

    monkeypatch.setattr(experiment, "cross_validate", spied)
    assert not _readable_elsewhere(database)  # (held, as any writer holds it)
    run = sercap.train(wh, "svm", progress=False)
    assert seen == [True]
    assert not _readable_elsewhere(database)  # taken back: the caller's wh works
    assert wh.scalar("SELECT count(*) FROM runs WHERE run_id = ?", [run.run_id]) == 1
    from sercap.evaluate import data_sha256
    from sercap.store.runs import get_run

    data = sercap.dataset(wh, "tabular")
    assert get_run(wh, run.run_id)["data_sha256"] == data_sha256(wh, data)
    wh.close()
