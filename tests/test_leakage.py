"""Leakage tests with a spy model that records the rows it is fitted and scored on.

For every outer fold f, no row of f's test speakers may reach a fit, a score or a selection
(an Optuna study whose best parameters score fold f). The spy's first feature is the row's
number, so the rows it sees are known exactly; a wrapper around ``optuna.Study.optimize``
tells which study each fit and score belongs to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest
from click.testing import CliRunner

from cli import main
from sercap.data import load_dataset
from sercap.evaluate import cross_validate, outer_splits
from sercap.models.base import SERModel
from sercap.models.registry import MODELS
from sercap.store import connect
from tests.helpers import _register, add_corpus

#: (event, study or None, frozenset of row numbers) in call order.
LOG: list[tuple[str, str | None, frozenset[int]]] = []
CURRENT: list[str | None] = [None]


class SpyModel(SERModel):
    """Predicts the training majority class, a little perturbed by parameter ``c``; logs
    every row number it is fitted on and asked about."""

    name = "spy"
    input_kind = "tabular"

    @classmethod
    def default_params(cls) -> dict:
        return {"c": 0.5}

    @classmethod
    def search_space(cls, trial: optuna.Trial) -> dict:
        return {"c": trial.suggest_float("c", 0.0, 1.0)}

    def fit(self, X, y, groups=None, n_classes=None):
        rows = frozenset(int(v) for v in np.asarray(X)[:, 0])
        LOG.append(("fit", CURRENT[0], rows))
        self.fitted_rows = rows
        self.n_classes_ = n_classes
        self.prior = np.bincount(y, minlength=n_classes) / len(y)
        return self

    def predict_proba(self, X):
        X = np.asarray(X)
        rows = frozenset(int(v) for v in X[:, 0])
        LOG.append(("score", CURRENT[0], rows))
        assert not rows & self.fitted_rows, "scored on a row it was fitted on"
        noise = np.cos(X[:, :1] * (1 + 7 * self.params["c"]))  # varies with c and the row
        p = self.prior[None, :] + 0.3 * np.abs(noise) * (np.arange(self.n_classes_) == 0)
        return p / p.sum(axis=1, keepdims=True)

    def _save_state(self, path: Path) -> None:  # pragma: no cover - never saved
        pass

    def _load_state(self, path: Path) -> None:  # pragma: no cover
        pass


@pytest.fixture
def spy(monkeypatch):
    LOG.clear()
    monkeypatch.setitem(MODELS, "spy", SpyModel)
    real = optuna.Study.optimize

    def optimize(self, *args, **kwargs):
        CURRENT[0] = self.study_name
        try:
            return real(self, *args, **kwargs)
        finally:
            CURRENT[0] = None

    monkeypatch.setattr(optuna.Study, "optimize", optimize)
    return LOG


def _spy_warehouse(root: Path, n_speakers: int = 5) -> Path:
    wh = connect(root)
    utts = add_corpus(wh, n_speakers=n_speakers, per_class=3).sort("utt_id")
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "utt_id": utts["utt_id"],
            "a_row": np.arange(utts.height, dtype=np.float32),  # the spy's row number
            "b_noise": rng.normal(size=utts.height).astype(np.float32),
        }
    )
    _register(wh, "features", "default", "abc123", "toy", frame)
    wh.close()
    return root


def _test_rows(wh_dir: Path) -> dict[str, frozenset[int]]:
    wh = connect(wh_dir, read_only=True)
    data = load_dataset(wh, "tabular")
    wh.close()
    assert data.columns[0] == "a_row"
    return {f: frozenset(int(v) for v in data.X[test, 0]) for f, _, test in outer_splits(data)}


def _folds_served(study: str, folds: list[str]) -> list[str]:
    """Outer folds scored with this study's best parameters."""
    if "/fold=" in study:
        return [study.split("/fold=", 1)[1]]
    if study.endswith("/final"):
        return []  # the final study's parameters are for predict only, never scored
    return folds  # one study for every fold (the old, non-nested tuning)


def test_cross_validate_never_fits_on_the_rows_it_scores(spy, tmp_path) -> None:
    wh_dir = _spy_warehouse(tmp_path / "wh")
    tests = _test_rows(wh_dir)
    wh = connect(wh_dir, read_only=True)
    data = load_dataset(wh, "tabular")
    wh.close()
    cross_validate(data, "spy", {}, progress=False)
    fits = [rows for event, _, rows in spy if event == "fit"]
    scores = [rows for event, _, rows in spy if event == "score"]
    assert len(fits) == len(scores) == len(tests)
    for fold, fit, scored in zip(sorted(tests), fits, scores, strict=True):
        assert scored == tests[fold]
        assert not fit & tests[fold]


def test_tuning_never_selects_with_a_folds_own_test_rows(spy, tmp_path) -> None:
    """`tune spy` then `train spy --tuned` through the CLI: every study's trials fit and score
    only rows outside the test rows of each fold it serves, and each outer fold's model is
    fitted without its test rows. Fails on the old tuning, whose one study served every fold
    and scored trials on splits that held every fold's test speakers."""
    wh_dir = _spy_warehouse(tmp_path / "wh")
    tests = _test_rows(wh_dir)
    runner = CliRunner()
    tuned = runner.invoke(main, ["-w", str(wh_dir), "tune", "spy", "--trials", "4",
                                 "--pruner", "none"])  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    studies = {study for _, study, _ in spy if study is not None}
    assert studies, "no trial ran inside a study"
    served_any = False
    for study in studies:
        touched = frozenset().union(*(rows for _, s, rows in spy if s == study))
        for fold in _folds_served(study, sorted(tests)):
            served_any = True
            leaked = touched & tests[fold]
            assert not leaked, f"study {study} selects for fold {fold} using its test rows"
    assert served_any
    spy.clear()
    trained = runner.invoke(main, ["-w", str(wh_dir), "train", "spy", "--tuned"])
    assert trained.exit_code == 0, trained.output
    outer = [(e, rows) for e, s, rows in spy if s is None]
    for (e1, fit), (e2, scored) in zip(outer[::2], outer[1::2], strict=True):
        assert (e1, e2) == ("fit", "score")
        fold = next(f for f, rows in tests.items() if rows == scored)
        assert not fit & tests[fold]
