"""Nested Optuna tuning for every model: one study per outer fold, pruning, shared storage.

What is nested. For each outer fold f of the corpus' speaker-independent protocol there is
one study, ``<base>/fold=f``. Its objective reads only fold f's training rows: it deals
their speakers (sessions, under leave-one-session-out) into ``inner_folds`` groups and
scores that inner cross-validation (mean inner UA); fold f's test speakers are never fitted,
scored or used to select. `train --tuned` then fits fold f with study f's best parameters
and scores fold f's test speakers: that outer UA is the tuned figure sercap reports. A last
study, ``<base>/final``, tunes on every speaker for the parameters `predict` uses; it is
never scored. (The old single study averaged splits in which each fold's test speakers
validated or trained the other folds' splits, so the test labels chose the parameters.)

What is not nested: the search spaces and budgets below were designed by looking at results;
the inner split of the speakers is fixed per study (``seed``), so a study can overfit its
own inner folds; and `bench --tuned` compares default and tuned on the same outer folds.

Each new study starts with the model's default parameters as trial 0 (for svm, lgbm,
text-lr and text-svm: :data:`DEFAULT_TRIALS`), so
a study's best inner value is never below the default's, and the default is kept unless the
best trial beats it by at least ``MIN_GAIN`` inner UA (:func:`chosen_trial`). After every
inner fold the running mean UA is reported, so :class:`FoldMedianPruner` can stop a hopeless
trial early.

A dataset of ratings (``--target valence|activation|dominance``) is tuned the same way on
the model's regressor, each trial scored by its mean inner CCC instead of UA.

Studies live in one journal file per base name inside the warehouse by default (several
processes on one machine may tune the same studies at once) or in any Optuna storage URL (a
PostgreSQL URL lets several machines tune them together).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sercap._lazy import import_apart
from sercap.data import Dataset
from sercap.errors import DivergedError, NotFoundError, SercapError, option
from sercap.evaluate import cross_validate, inner_splits, outer_splits
from sercap.store import Warehouse, layout
from sercap.store import runs as store_runs

import_apart("optuna")  # before `import optuna`: see import_apart

import optuna  # noqa: E402
from optuna.storages.journal import JournalFileOpenLock  # noqa: E402

PRUNERS = ("median", "hyperband", "none")


class _QuietInterruptedTrials(logging.Filter):
    """Drop Optuna's two warnings about a trial that Ctrl-C stopped: "Trial 4 failed …
    because of the following error: KeyboardInterrupt()" with its traceback, and "Trial 4
    failed with value None". The command already ends in one line saying what is kept.
    The same for a trial stopped by a :class:`SercapError` (a diverged network, a refused
    parameter): the command ends in that error's one line, after 20 lines of traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        words = message.split()
        number = words[1] if len(words) > 1 and words[0] == "Trial" else None
        if isinstance(error, KeyboardInterrupt | SercapError) or "KeyboardInterrupt()" in message:
            if number is not None:
                self.interrupted.add(number)
            return False
        if number in self.interrupted and "failed with value" in message:
            self.interrupted.discard(number)
            return False
        return True


def _quiet_interrupted_trials() -> None:
    """Install :class:`_QuietInterruptedTrials` on Optuna's trial logger, once."""
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _QuietInterruptedTrials) for f in logger.filters):
        logger.addFilter(_QuietInterruptedTrials())


_QUIET_LOCK = threading.Lock()
_quiet: dict[str, Any] = {"depth": 0, "before": None}


@contextlib.contextmanager
def _optuna_warnings_only() -> Any:
    """Optuna logs warnings only while sercap runs studies (its progress is sercap's bar),
    then the caller's verbosity again: a notebook's own studies keep their trial lines.
    Counted, so that overlapping studies (trial tasks on a multi-thread Dask worker) keep
    WARNING until the last one ends."""
    with _QUIET_LOCK:
        if _quiet["depth"] == 0:
            _quiet["before"] = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                optuna.logging.set_verbosity(_quiet["before"])


def study_name(model: str, data: Dataset) -> str:
    """Base name of the studies of (model, corpus, label map, feature set, column pattern,
    speaker norm)."""
    import hashlib

    digest = (data.feature_set_hash or "none")[:8]
    norm = "-spknorm" if data.speaker_norm else ""
    pattern = getattr(data, "column_pattern", None)
    cols = f"-cols{hashlib.sha256(pattern.encode()).hexdigest()[:6]}" if pattern else ""
    return f"{model}-{data.corpus}-{data.label_map}-{data.feature_set}-{digest}{cols}{norm}"


#: Seconds between a running trial's heartbeats in an RDB storage, and how long a trial may
#: go without one before the next trial started on its study marks it FAIL (its process was
#: killed: without a heartbeat it would stay RUNNING for ever).
HEARTBEAT_S = 30
GRACE_S = 120


#: Query parameters of a database URL that carry a secret.
_SECRET_KEYS = re.compile(r"(?i)([?&;](?:password|passwd|pwd|sslpassword)=)[^&;#]*")


def shown_url(url: str) -> str:
    """A storage URL fit to print or store: its password (in the user info, or in a query
    parameter such as ``?password=``) replaced by ``***``.

    >>> shown_url("postgresql+psycopg://ana:secret@db:5432/studies")
    'postgresql+psycopg://ana:***@db:5432/studies'
    >>> shown_url("postgresql://ana:p@ss@db/s?sslmode=require&password=x")
    'postgresql://ana:***@db/s?sslmode=require&password=***'
    >>> shown_url("runs/svm.journal")
    'runs/svm.journal'
    """
    if "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    user, password, at = _user_info(rest)
    if at >= 0:
        rest = f"{user}{':***' if password is not None else ''}@{rest[at + 1 :]}"
    return _SECRET_KEYS.sub(r"\1***", f"{scheme}://{rest}")


def _user_info(rest: str) -> tuple[str, str | None, int]:
    """(user, password or None, index of the "@") of a URL after its ``scheme://``; the
    user info ends at the last "@" before the query (a password may hold an unencoded "@");
    masking too much is harmless, too little is not. ``(rest, None, -1)`` without one."""
    at = rest.split("?", 1)[0].rfind("@")
    if at < 0:
        return rest, None, -1
    user, colon, password = rest[:at].partition(":")
    return user, password if colon else None, at


_MEMORY_SQLITE = re.compile(r"sqlite(?:\+\w+)?://(?:/(?::memory:)?)?(?:\?.*)?$")


def storage_url(url: str | None) -> str | None:
    """``url`` as :func:`open_storage` opens it: a journal file or a relative SQLite file
    made absolute (what is recorded, so that ``tune --show`` finds it from any folder).

    ``postgres://`` (as many hosting services write it, and SQLAlchemy does not take) is
    written ``postgresql://``.

    >>> storage_url("/data/s.journal"), storage_url("postgresql://db/s")
    ('/data/s.journal', 'postgresql://db/s')
    >>> storage_url("postgres://db/s"), storage_url("postgres+psycopg://db/s")
    ('postgresql://db/s', 'postgresql+psycopg://db/s')
    """
    if url is None:
        return None
    url = re.sub(r"^postgres(?=[+:])", "postgresql", url)
    if url.endswith((".journal", ".log")):
        return str(Path(url).expanduser().absolute())
    relative = re.match(r"(sqlite(?:\+\w+)?:///)([^/].*)$", url)
    if relative and not relative.group(2).startswith(":memory:"):
        return relative.group(1) + str(Path(relative.group(2)).absolute())
    return url


def open_storage(
    url: str | None,
    root: Path,
    study: str,
    *,
    heartbeat_s: int = HEARTBEAT_S,
    grace_s: int = GRACE_S,
    attempts: int = 6,
    create: bool = True,
) -> optuna.storages.BaseStorage:
    """The storage named by ``url``; by default a journal file under ``root/studies``.

    ``url`` may be an RDB URL (``sqlite:///x.db``, ``postgresql+psycopg://…``) or a path
    ending in ``.journal`` / ``.log``. An RDB storage records a heartbeat every
    ``heartbeat_s`` seconds while a trial runs; a trial silent for ``grace_s`` seconds (its
    process was killed) is marked FAIL when a trial of its study next starts. Processes
    that open one empty PostgreSQL database at once race to create Optuna's tables (a
    UniqueViolation in PostgreSQL's catalog): the loser retries (``attempts`` times), by
    then the tables exist. With ``create`` False (reading a study), a journal or SQLite
    file that does not exist is a :class:`NotFoundError` instead of a new empty file.
    """
    import sqlalchemy.exc
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if url is None or url.endswith((".journal", ".log")):
        # absolute: Dask workers on other machines or folders open the same file
        path = (Path(url).expanduser() if url else layout.study_journal(root, study)).absolute()
        if create:  # a study read from there (an older one) is read, not written
            _refuse_inside(root, path)
        if not create and not path.is_file():
            raise _no_study(study)
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path), lock_obj=_MendingLock(path))
        try:  # (it replays the whole file now; only a torn last record is mended)
            return JournalStorage(backend)
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise SercapError(
                f"{path}: not an Optuna journal, or damaged inside ({type(exc).__name__}: "
                f"{(str(exc).splitlines() or [''])[0]})",
                hint="name another file with --storage / storage=, or restore this one",
            ) from exc
    if "://" not in url:
        raise SercapError(
            f"storage {shown_url(url)!r} is neither a storage URL (sqlite:///…, "
            "postgresql://…) nor a journal file (*.journal)"
        )
    if _MEMORY_SQLITE.match(url):
        raise SercapError(
            f"storage {url!r} is an in-memory SQLite database: its studies would be gone when "
            "the command ends",
            hint="name a file (sqlite:///studies.db), or leave --storage out for the journal",
        )
    if not url.startswith("sqlite") and url.partition("://")[2].split("/", 1)[0].count("@") > 1:
        raise SercapError(  # drivers split at another "@" than sercap, and quote the rest
            f"storage {shown_url(url)!r}: an '@' in the user name or password must be "
            "percent-encoded as %40"
        )
    url = storage_url(url) or url  # a relative SQLite file: absolute, as a journal's
    sqlite_file = re.match(r"sqlite(?:\+\w+)?:///(/.*)$", url)
    if sqlite_file and create:
        _refuse_inside(root, Path(sqlite_file.group(1)))
    if not create and sqlite_file and not Path(sqlite_file.group(1)).is_file():
        raise _no_study(study)
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental"
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=grace_s)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            if attempt == attempts - 1:  # not a creation race after all
                raise SercapError(f"storage {shown_url(url)!r}: {_first_line(exc, url)}") from exc
            time.sleep(0.1 * (attempt + 1) + random.random() * 0.2)
        except Exception as exc:  # SQLAlchemy raises many kinds; all mean "cannot use this URL"
            raise SercapError(f"storage {shown_url(url)!r}: {_first_line(exc, url)}") from exc
    raise AssertionError("unreachable")


def _refuse_inside(root: Path, path: Path) -> None:
    """A study file among the warehouse's own files (its catalog, parts or models) would
    damage them, or be deleted as a crash's leftover; under ``studies/`` it is at home."""
    why = layout.writable_output(root, path, allowed=("studies",))
    if why is not None:
        raise SercapError(
            f"storage {path}: {why}",
            hint="name a file outside those folders, or leave --storage / storage= out for "
            "the warehouse's studies/ folder",
        )


class _MendingLock(JournalFileOpenLock):
    """Optuna's journal lock, which, once held, cuts a record torn by a killed writer off
    the end of the journal (:func:`cut_torn_record`) before the holder appends.

    Every append of every process sharing the study takes it, so a torn record is cut before
    anything is written after it, also by a tuner that was already running. Reading takes
    no lock and changes nothing: Optuna's reader skips a partial last line by itself.
    """

    def __init__(self, journal: Path) -> None:
        super().__init__(str(journal))
        self.journal = journal

    def acquire(self) -> bool:
        held = super().acquire()
        if held:
            try:
                cut_torn_record(self.journal)
            except BaseException:
                self.release()
                raise
        return held


def cut_torn_record(path: Path) -> bool:
    """Cut a partial last line (no newline at its end) off an Optuna journal file; True if
    there was one. Call it only while holding the journal's lock.

    Optuna appends one JSON line per operation under that lock. A process killed (or a disk
    filled) mid-append leaves a last line without its newline. Readers skip it, so the
    operation never happened, but the next append was written onto it: the merged line was
    not JSON, and every later ``tune`` of the study failed with a traceback. Cutting the
    partial line restores exactly what Optuna read. A live writer holds the lock for the
    whole of its append, so a partial line seen under the lock is a dead writer's.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as f:
        end = f.seek(0, os.SEEK_END)
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return False
        keep, block, pos = 0, 1 << 16, end
        while pos > 0:  # the last newline, read backwards a block at a time
            start = max(0, pos - block)
            f.seek(start)
            found = f.read(pos - start).rfind(b"\n")
            if found >= 0:
                keep = start + found + 1
                break
            pos = start
        f.truncate(keep)
        os.fsync(f.fileno())
    return True


def _no_study(name: str) -> NotFoundError:
    return NotFoundError(
        f"no study {name!r} yet; tune it first (`sercap tune` without --show / "
        "`sercap.tune(wh, …)`)"
    )


def storage_failure(exc: BaseException) -> str | None:
    """The first line of the storage error behind ``exc`` (the database went away while
    trials ran: Optuna may then fail on its own, e.g. an UnboundLocalError in its trial
    bookkeeping, with the database error as the context), or None when it is not one."""
    import sqlalchemy.exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.SQLAlchemyError) or type(
            current
        ).__module__.startswith(("psycopg", "sqlalchemy")):
            return (str(current).strip().splitlines() or [""])[0]
        current = current.__cause__ or current.__context__
    return None


def storage_write_failure(exc: BaseException) -> str | None:
    """The reason (``No space left on device``…) of a disk error behind ``exc`` while
    trials ran, or None: Optuna's journal file backend raises it from a write or a flush,
    and may then fail on its own ("AssertionError: Should not reach") with it as the
    context."""
    import errno

    from sercap.errors import DISK_ERRNOS

    disk = DISK_ERRNOS | {errno.EPERM}
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in disk:
            return current.strerror or type(current).__name__
        current = current.__cause__ or current.__context__
    return None


def _first_line(exc: BaseException, url: str) -> str:
    """The first line of a storage error, without the URL's secrets should it quote them."""
    line = (str(exc).strip().splitlines() or [""])[0].replace(url, shown_url(url))
    secrets = [_user_info(url.partition("://")[2])[1] or ""]
    secrets += [m.group(0).split("=", 1)[1] for m in _SECRET_KEYS.finditer(url)]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        # only where it stands on its own (quoted, after '=' or ':'): a password "e" turned
        # "OperationalError" into "Op***rationalError" and the message into a puzzle
        alone = r"(?<![A-Za-z0-9])" + re.escape(secret) + r"(?![A-Za-z0-9])"
        line = re.sub(alone, "***", line)
    return line


class FoldMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose mean UA over its first k folds is below the median of the other
    trials' means over the same k folds.

    Optuna's MedianPruner compares a trial's *best* value over its steps with the others'
    at the current step, which suits learning curves; folds are not a curve (an easy first
    fold is a trial's best value forever after), so with it no fold-wise trial is ever pruned.
    """

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 1) -> None:
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        others = [
            t.intermediate_values[step]
            for t in study.get_trials(deepcopy=False, states=states)
            if step in t.intermediate_values
        ]
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(complete) < self.n_startup_trials or not others:
            return False
        value = trial.intermediate_values[step]
        median = float(np.median(others))
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return value < median
        return value > median


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """``median`` (after 5 trials and 2 folds), ``hyperband`` (over folds) or ``none``."""
    if name == "median":
        return FoldMedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SercapError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}")


# ----------------------------------------------------------------------------- spaces
def _svm_space(trial: optuna.Trial, n_features: int) -> dict:
    # gamma relative to sklearn's "scale" (1/n_features on standardised data): the default
    # sits at (C=1, gamma_rel=1), in the middle of a range where RBF SVMs on functionals vary.
    C = trial.suggest_float("C", 0.1, 100.0, log=True)
    rel = trial.suggest_float("gamma_rel", 0.05, 5.0, log=True)
    return {"C": C, "gamma": rel / max(n_features, 1)}


def _lgbm_space(trial: optuna.Trial, n_features: int) -> dict:
    # Five parameters that matter on a few hundred utterances, in ranges around the defaults
    # (so that ≤ 30 trials can cover them); the rest stay at their defaults.
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 31, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 40, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.05, 0.6, log=True),
    }


def _text_linear_space(trial: optuna.Trial, n_features: int) -> dict:
    # tf-idf shape and regularisation of text-lr / text-svm: word n-grams up to 2 or 3,
    # characters off or 3-5, C over four decades around the default 1.
    return {
        "word_max_n": trial.suggest_int("word_max_n", 1, 3),
        "char_max_n": trial.suggest_categorical("char_max_n", [0, 3, 4, 5]),
        "min_df": trial.suggest_int("min_df", 1, 2),
        "C": trial.suggest_float("C", 0.01, 100.0, log=True),
    }


#: Compact search spaces designed for a small per-fold budget; other models use their own.
SPACES: dict[str, Callable[[optuna.Trial, int], dict]] = {
    "svm": _svm_space,
    "lgbm": _lgbm_space,
    "text-lr": _text_linear_space,
    "text-svm": _text_linear_space,
}

#: The first trial of every new study: the model's default settings in search coordinates,
#: so that a study's best inner UA is never below the default's.
DEFAULT_TRIALS: dict[str, dict] = {
    "svm": {"C": 1.0, "gamma_rel": 1.0},
    "lgbm": {
        "n_estimators": 200, "learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 10,
        "colsample_bytree": 0.3,
    },
    "text-lr": {"word_max_n": 2, "char_max_n": 5, "min_df": 1, "C": 1.0},
    "text-svm": {"word_max_n": 2, "char_max_n": 5, "min_df": 1, "C": 1.0},
}  # fmt: skip


def suggest(
    model: str,
    trial: optuna.Trial,
    n_features: int,
    *,
    regression: bool = False,
    fixed: dict | None = None,
) -> dict:
    """Model parameters for one trial, from sercap's compact space or the model's own
    (its regressor's with ``regression``; the compact spaces suit both). Late fusion
    searches the spaces of the members ``fixed`` names (its defaults' otherwise)."""
    from sercap.models.registry import get_model

    if model == "fusion":
        from sercap.models.fusion import LateFusionModel

        fixed = fixed or {}
        return LateFusionModel.search_space(
            trial, audio_model=fixed.get("audio_model"), text_model=fixed.get("text_model")
        )
    if model in SPACES:
        return SPACES[model](trial, n_features)
    if regression:
        from sercap.models.regressors import get_regressor

        return get_regressor(model).search_space(trial)
    return get_model(model).search_space(trial)


def _n_features(data: Dataset) -> int:
    X = data.X
    return int(X.shape[1]) if isinstance(X, np.ndarray) and X.ndim == 2 else 0


# ----------------------------------------------------------------------------- nested
def fold_study_name(base: str, fold: str) -> str:
    """The study that tunes for outer fold ``fold``: ``<base>/fold=<fold>``."""
    return f"{base}/fold={fold}"


def final_study_name(base: str) -> str:
    """The study over all speakers whose best parameters `predict` uses (never scored)."""
    return f"{base}/final"


def _metric_name(study: optuna.Study) -> str:
    """``UA``, or ``CCC`` for a study tuned for a rating, as the lines and tables name it."""
    return str(study.user_attrs.get("metric", "ua")).upper()


def trial_line(name: str, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """One line on a trial as it ends: what a log file shows of a tuning where no bar is
    drawn (on an IEMOCAP-sized corpus a study takes a quarter of an hour, and a log held
    nothing for it until the study ended).

    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> s = optuna.create_study(direction="maximize")
    >>> s.optimize(lambda t: t.suggest_float("x", 0, 1) * 0 + 0.5, n_trials=1)
    >>> trial_line("svm/fold=03", s, s.trials[0]).split(" (")[0]
    'svm/fold=03 trial 0: inner UA 0.500'
    """
    metric = _metric_name(study)
    if trial.state == optuna.trial.TrialState.COMPLETE and trial.value is not None:
        what = f"inner {metric} {trial.value:.3f}"
    else:
        what = trial.state.name.lower()
    took = f" ({trial.duration.total_seconds():.1f} s)" if trial.duration is not None else ""
    defaults = " (the defaults)" if trial.user_attrs.get("default") else ""
    return f"{name} trial {trial.number}{defaults}: {what}{took}"


def study_line(name: str, study: optuna.Study) -> str:
    """One line on a finished study: its trials and its best *inner* score.

    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> s = optuna.create_study(direction="maximize")
    >>> s.optimize(lambda t: t.suggest_float("x", 0, 1) * 0 + 0.5, n_trials=2)
    >>> study_line("svm/fold=03", s)
    'svm/fold=03: 2 trials, best inner UA 0.500 (trial 0)'
    >>> s.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    >>> study_line("svm/fold=03", s)
    'svm/fold=03: 3 trials (2 complete, 1 pruned), best inner UA 0.500 (trial 0)'
    """
    states = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    complete = sum(t.state == states.COMPLETE for t in trials)
    pruned = sum(t.state == states.PRUNED for t in trials)
    failed = sum(t.state == states.FAIL for t in trials)
    # every trial counted, as tune --show's table does ("7 trials (3 pruned)" read as 7 of
    # the 10 asked for)
    other = len(trials) - complete - pruned - failed  # running (or a killed run's), waiting
    parts = ((complete, "complete"), (pruned, "pruned"), (failed, "failed"), (other, "unfinished"))
    extra = ", ".join(f"{n} {what}" for n, what in parts if n) if complete < len(trials) else ""
    line = f"{name}: {len(trials)} trial{'s' if len(trials) != 1 else ''}"
    line += f" ({extra})" if extra else ""
    metric = _metric_name(study)
    try:
        best = study.best_trial
    except ValueError:  # no completed trial
        return line + ", none scored"
    line += f", best inner {metric} {best.value:.3f} (trial {best.number})"
    if name.rsplit("/", 1)[-1] == "final":  # its CV spans every speaker, the test ones too
        line += "; all speakers: not a score for new ones"
    return line


def objective_for(
    model: str,
    data: Dataset,
    rows: np.ndarray,
    *,
    inner_folds: int = 3,
    fixed: dict | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
) -> Callable[[optuna.Trial], float]:
    """The function a study maximises: mean UA of a grouped inner cross-validation
    over ``rows`` only (one outer fold's training rows, or every row for the final study).

    Nothing outside ``rows`` is read: the rows are copied out first. After each inner fold
    the running mean UA is reported, so a pruner can stop a hopeless trial early.
    ``fixed`` parameters override the search space (e.g. fewer epochs while tuning).
    """
    sub = data.subset(np.asarray(rows))
    splits = list(inner_splits(sub, n_splits=inner_folds, seed=seed))
    n_features = _n_features(sub)
    # A dataset of ratings (data.target) tunes the model's regressor on CCC instead of UA.
    regression = getattr(sub, "target", None) is not None
    metric = "ccc" if regression else "ua"
    if regression:
        from sercap.regression import cross_validate_regression as validate
    else:
        validate = cross_validate

    def objective(trial: optuna.Trial) -> float:
        suggested = suggest(model, trial, n_features, regression=regression, fixed=fixed)
        params = {**suggested, **(fixed or {})}
        trial.set_user_attr("model_params", params)
        uas: list[float] = []

        def report(step: int, metrics) -> None:
            uas.append(getattr(metrics, metric))  # the running mean is comparable at a step
            trial.report(float(np.mean(uas)), step)
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"pruned after inner fold {step + 1}: mean {metric.upper()} {np.mean(uas):.3f}"
                )

        try:
            result = validate(
                sub, model, params, seed=seed, n_jobs=n_jobs, device=device, splits=splits,
                on_fold=report, progress=False,
            )  # fmt: skip
        except DivergedError as exc:  # these parameters cannot be scored: the search goes on
            raise optuna.TrialPruned(f"diverged: {exc}") from exc
        return float(np.mean([getattr(m, metric) for m in result.fold_metrics]))

    return objective


@_optuna_warnings_only()
def run_study(
    model: str,
    data: Dataset,
    storage: optuna.storages.BaseStorage,
    name: str,
    *,
    rows: np.ndarray | None = None,
    outer_fold: str | None = None,
    n_trials: int | None = 20,
    timeout: float | None = None,
    pruner: str = "median",
    inner_folds: int = 3,
    fixed: dict | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    top_up: bool = False,
    fingerprint: Callable[[np.ndarray], str | None] | None = None,
    on_trial: Callable[[str, optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Create or resume study ``name`` over ``rows`` (default: all) and run more trials
    (``on_trial(name, study, trial)`` hears each trial this process ends).

    A new study starts with the model's default settings as its first trial (where sercap
    has a compact space for the model), so its best value is never below the default's.
    ``n_trials`` trials are added, or with ``top_up`` the study is brought to ``n_trials``
    finished trials in all (those of earlier runs and of other processes count: Optuna's
    :class:`~optuna.study.MaxTrialsCallback` stops each process once the study has them).
    """
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    study = prepare_study(
        model, data, storage, name, rows=rows, outer_fold=outer_fold, pruner=pruner,
        inner_folds=inner_folds, fixed=fixed, seed=seed, fingerprint=fingerprint,
    )  # fmt: skip
    objective = objective_for(
        model, data, rows, inner_folds=inner_folds, fixed=fixed, seed=seed, n_jobs=n_jobs,
        device=device,
    )  # fmt: skip
    callbacks: list = []
    if top_up and n_trials is not None:
        # finished trials only: a trial another process is running may be a dead one's
        # (a journal keeps it RUNNING for ever), so counting it could end a study short;
        # processes sharing a study may end it up to one trial each above the budget
        callbacks.append(optuna.study.MaxTrialsCallback(n_trials, states=FINISHED))
        n_trials = max(0, n_trials - _finished(study))
    bar = tqdm(total=n_trials, desc=name, unit="trial", disable=not progress, leave=False)

    def update(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update(1)
        if on_trial is not None:
            on_trial(name, study, trial)
        with contextlib.suppress(ValueError):  # no completed trial yet
            bar.set_postfix_str(f"best UA {study.best_value:.4f} (trial {study.best_trial.number})")

    try:
        if n_trials != 0:
            study.optimize(
                objective, n_trials=n_trials, timeout=timeout, callbacks=[update, *callbacks]
            )
        if model in DEFAULT_TRIALS and not _default_scored(study):
            # its default trial died mid-run (it was left RUNNING, then failed): the rule
            # "the default is kept unless clearly beaten" needs a scored default
            waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
            if not any(t.user_attrs.get("default") for t in waiting):
                study.enqueue_trial(DEFAULT_TRIALS[model], user_attrs={"default": True})
            study.optimize(objective, n_trials=1, callbacks=[update])
    finally:
        bar.close()
    return study


def prepare_study(
    model: str,
    data: Dataset,
    storage: optuna.storages.BaseStorage,
    name: str,
    *,
    rows: np.ndarray,
    outer_fold: str | None = None,
    pruner: str = "median",
    inner_folds: int = 3,
    fixed: dict | None = None,
    seed: int = 0,
    fingerprint: Callable[[np.ndarray], str | None] | None = None,
) -> optuna.Study:
    """Create study ``name`` (its description, and the default settings as its first
    trial) or load it; its TPE sampler is seeded ``seed`` + the trials it already has.

    ``fingerprint(rows)`` (:func:`sercap.evaluate.fingerprint_of` of the study's rows) is
    recorded by a new study, and a study that recorded another is not resumed: its trials
    were scored on recordings or labels that changed since."""
    _quiet_interrupted_trials()
    existing = _trials(storage, name)
    study_args = dict(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(
            seed=sampler_seed(seed, len(existing), storage), n_startup_trials=8
        ),
        pruner=make_pruner(pruner),
    )
    try:  # only the process that creates the study queues its default trial: two tuners
        # starting together both saw "no default yet" and queued it twice
        study, created = optuna.create_study(**study_args, load_if_exists=False), True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = optuna.create_study(**study_args, load_if_exists=True), False
    # A study found (not created here) is checked against this run's settings, even with no
    # trial yet: a tuner that lost the race to create it skipped every check and wrote its
    # own settings over the creator's (two --seed values, one study). Its creator writes
    # them a moment after creating it.
    described = bool(existing) or (not created and _described(study))
    if described and study.user_attrs.get("fixed_params", {}) != (fixed or {}):
        raise SercapError(
            f"study {name} was started with fixed parameters "
            f"{json.dumps(study.user_attrs.get('fixed_params', {}))}, this run gives "
            f"{json.dumps(fixed or {})}; resume it with the same {option('params')}, or name a "
            f"new study with {option('study')}"
        )
    pattern = getattr(data, "column_pattern", None)
    target = getattr(data, "target", None)
    # What the trials were scored on: a resumed study must match each (trials of another
    # model, feature set, label map, target, seed — the inner splits — or utterance set are
    # not one search, and the best of them would be compared with another default).
    settings = (
        ("model", "the model", model),
        ("corpus", option("corpus"), getattr(data, "corpus", None)),
        ("label_map", option("labels"), getattr(data, "label_map", None)),
        ("feature_set_hash", "the feature set (its hash)", getattr(data, "feature_set_hash", None)),
        ("speaker_norm", option("speaker_norm"), bool(getattr(data, "speaker_norm", False))),
        ("target", option("target"), target),
        ("columns", option("columns"), pattern),
        ("inner_folds", option("inner_folds"), inner_folds),
        ("seed", option("seed"), int(seed)),
    )
    # what the inner splits keep apart: a study made before they were session-grouped under
    # leave-one-session-out recorded nothing, and grouped speakers
    unit = data.validation_unit(np.asarray(rows))
    metric = "ccc" if target is not None else "ua"
    if described and study.user_attrs.get("metric", "ua") != metric:
        raise SercapError(
            f"study {name} was tuned on {study.user_attrs.get('metric', 'ua').upper()}, this "
            f"run scores {metric.upper()} ({option('target')} differs); name a new study with "
            f"{option('study')}"
        )
    speakers = sorted(str(s) for s in np.unique(data.speakers[rows]))
    digest = fingerprint(rows) if fingerprint is not None else None
    if described:
        for setting in settings:
            _refuse_other(study, *setting)
        was = study.user_attrs.get("inner_groups")
        if (was or "speaker") != unit:
            before = (
                f"kept {was}s apart"
                if was
                else "were made before sercap recorded what they keep apart (speakers, by then)"
            )
            raise SercapError(
                f"study {name}'s inner splits {before}; this run's keep {unit}s apart: its "
                f"trials and new ones would not be one search; name a new study with "
                f"{option('study')}"
            )
        _check_same_speakers(study, speakers, len(rows))
        was = study.user_attrs.get("n_rows")
        if was is not None and was != len(rows):  # same speakers, other utterances
            raise SercapError(
                f"study {name} was tuned on {was} utterances, this run's data has "
                f"{len(rows)}: the data changed since (an ingest or extract added or lost "
                f"utterances); tune again under a new name with {option('study')}"
            )
        _check_same_data(study, digest)
    else:
        for key, _, value in settings:
            study.set_user_attr(key, value)
        if digest is not None:
            study.set_user_attr("data_sha256", digest)
        study.set_user_attr("n_rows", int(len(rows)))
        study.set_user_attr("inner_groups", unit)
        study.set_user_attr("outer_fold", outer_fold)
        study.set_user_attr("n_speakers", len(speakers))
        study.set_user_attr("speakers", speakers)
        if fixed:
            study.set_user_attr("fixed_params", fixed)
        if target is not None:  # a rating: trials score inner CCC
            study.set_user_attr("metric", "ccc")
        study.set_user_attr(DESCRIBED, True)  # last: a tuner waiting for it checks them all
    if existing and _has_heartbeat(storage):
        with warnings.catch_warnings():  # fail_stale_trials is "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a killed process's trials: FAIL now
    states = optuna.trial.TrialState
    alive = (states.COMPLETE, states.PRUNED, states.WAITING) + (
        (states.RUNNING,) if _has_heartbeat(storage) else ()
    )

    def has_default() -> bool:
        trials = study.get_trials(deepcopy=False)
        return any(t.user_attrs.get("default") and t.state in alive for t in trials)

    if model in DEFAULT_TRIALS and not created and not existing:
        # another tuner created it a moment ago and queues its default trial next (unless
        # it died in between)
        for _ in range(20):
            if has_default():
                break
            time.sleep(0.1)
    if model in DEFAULT_TRIALS and not has_default():
        # a new study, or its default trial failed or may have died (a killed process's
        # trial stays RUNNING in a journal): queue it again, so that the rule "the default
        # is kept unless clearly beaten" always has a scored default to compare with
        study.enqueue_trial(DEFAULT_TRIALS[model], user_attrs={"default": True})
    return study


#: A study's user attribute, written after every setting: its description is complete.
DESCRIBED = "described"


def _described(study: optuna.Study, wait_s: float = 10.0) -> bool:
    """Whether ``study`` (found, not created here) holds its creator's description, waiting
    up to ``wait_s`` for a tuner that created it a moment ago to write it. False when none
    comes (its creator died, or an older sercap made it and no trial yet): this tuner
    describes it (a study with trials counts as described whatever made it)."""
    stop = time.monotonic() + wait_s
    while True:
        if study.user_attrs.get(DESCRIBED):  # written last: every setting is there
            return True
        if time.monotonic() > stop:
            return False
        time.sleep(0.1)


@dataclass
class NestedStudies:
    """One study per outer fold (tuned on that fold's training speakers) and the final one."""

    base: str
    folds: dict[str, optuna.Study]
    final: optuna.Study | None


def check_folds(data: Dataset, only_folds: list[str] | None) -> None:
    """One line naming the outer folds when ``only_folds`` lists one that ``data`` does not
    have (called before any storage is opened: a typo left an empty journal behind)."""
    if only_folds is None:
        return
    have = [fold for fold, _, _ in outer_splits(data)]
    if unknown := set(only_folds) - set(have):
        raise SercapError(
            f"no outer fold {', '.join(sorted(unknown))}; the folds are {', '.join(have)}"
        )


@_optuna_warnings_only()
def run_nested(
    model: str,
    data: Dataset,
    storage: optuna.storages.BaseStorage,
    base: str,
    *,
    n_trials: int | None = 20,
    timeout: float | None = None,
    pruner: str = "median",
    inner_folds: int = 3,
    fixed: dict | None = None,
    final: bool = True,
    only_folds: list[str] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
    top_up: bool = False,
    on_study: Callable[[str, optuna.Study], None] | None = None,
    fingerprint: Callable[[np.ndarray], str | None] | None = None,
    on_trial: Callable[[str, optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> NestedStudies:
    """Nested tuning: for each outer fold a study ``<base>/fold=<f>`` whose objective is an
    inner cross-validation over that fold's training speakers only (its test speakers are
    never read), then ``<base>/final`` over every speaker for the parameters `predict` uses.

    ``n_trials`` and ``timeout`` apply to each study (with ``top_up``, ``n_trials`` is the
    number of finished trials each study should have in all). ``only_folds`` tunes some outer folds
    (e.g. to share the work between processes). Every study resumes where it stopped.

    With ``cluster`` (a Dask Client or a spec such as ``"local:4"``) every trial of every
    study is one task (:func:`run_on_cluster`): the workers must reach ``storage`` (a
    PostgreSQL URL across machines; the default journal file on a shared filesystem).

    ``on_study(name, study)`` is called as each study ends in this process, and
    ``on_trial(name, study, trial)`` as each trial ends (a log file's signs of progress where
    no bar is shown); on a cluster the trials of all studies interleave and the
    dispatcher's bar is the progress.
    """
    outer = list(outer_splits(data))
    check_folds(data, only_folds)
    wanted = set(only_folds) if only_folds is not None else None
    if cluster is not None:
        studies = [
            (fold_study_name(base, fold), fold, train)
            for fold, train, _test in outer
            if wanted is None or fold in wanted
        ]
        if final:
            studies.append((final_study_name(base), None, np.arange(len(data))))
        return run_on_cluster(
            cluster, model, data, storage, base, studies, n_trials=n_trials, timeout=timeout,
            pruner=pruner, inner_folds=inner_folds, fixed=fixed, seed=seed, n_jobs=n_jobs,
            device=device, progress=progress, final=final, top_up=top_up,
            fingerprint=fingerprint,
        )  # fmt: skip
    folds: dict[str, optuna.Study] = {}
    for fold, train, _test in outer:
        if wanted is not None and fold not in wanted:
            continue
        folds[fold] = run_study(
            model, data, storage, fold_study_name(base, fold), rows=train, outer_fold=fold,
            n_trials=n_trials, timeout=timeout, pruner=pruner, inner_folds=inner_folds,
            fixed=fixed, seed=seed, n_jobs=n_jobs, device=device, progress=progress,
            top_up=top_up, fingerprint=fingerprint, on_trial=on_trial,
        )  # fmt: skip
        if on_study is not None:
            on_study(fold_study_name(base, fold), folds[fold])
    last = None
    if final:
        last = run_study(
            model, data, storage, final_study_name(base), outer_fold=None, n_trials=n_trials,
            timeout=timeout, pruner=pruner, inner_folds=inner_folds, fixed=fixed, seed=seed,
            n_jobs=n_jobs, device=device, progress=progress, top_up=top_up,
            fingerprint=fingerprint, on_trial=on_trial,
        )  # fmt: skip
        if on_study is not None:
            on_study(final_study_name(base), last)
    return NestedStudies(base=base, folds=folds, final=last)


@dataclass(frozen=True)
class TrialContext:
    """What every trial task of a tuning shares, sent to each worker once: the dataset and
    the storage. Unpickling an RDBStorage opens an engine with its own connection pool, so
    a storage carried by each task would open one pool per trial and exhaust the server's
    connections; scattered once, a worker keeps one."""

    data: Dataset
    storage: optuna.storages.BaseStorage  # pickled: RDB URL / journal path, reopened there


@dataclass(frozen=True)
class TrialTask:
    """One trial of one study, run on a Dask worker against the shared storage."""

    study: str
    model: str
    rows: np.ndarray
    inner_folds: int
    fixed: dict | None
    seed: int  # the inner split's seed (the same for every trial of a study)
    sampler_seed: int  # distinct per task: parallel trials must not draw the same point
    pruner: str
    n_jobs: int
    device: str | None
    timeout: float | None  # seconds from the study's first task of this submission
    total: int | None = None  # top_up: skip when the study has this many (other submitters)
    submission: str = ""  # names this submission's start of each study (see study_deadline)


@_optuna_warnings_only()
def run_trial_task(item: tuple[TrialContext, TrialTask]) -> tuple[str, str]:
    """On a worker: run one trial of ``task.study`` (``study.optimize(n_trials=1)``, so the
    pruner and the heartbeat work as in process); return (study, trial state or "skipped").
    """
    from sercap.cluster import worker_threads

    context, task = item
    data = context.data
    _require_journal_here(context.storage)
    study = optuna.load_study(
        study_name=task.study,
        storage=context.storage,
        sampler=optuna.samplers.TPESampler(seed=task.sampler_seed, n_startup_trials=8),
        pruner=make_pruner(task.pruner),
    )
    if task.timeout is not None and time.time() > study_deadline(study, task):
        return task.study, "skipped"
    if task.total is not None and _finished(study) >= task.total:
        return task.study, "skipped"  # another submitter's trials filled the budget
    objective = objective_for(
        task.model, data, task.rows, inner_folds=task.inner_folds, fixed=task.fixed,
        seed=task.seed, n_jobs=worker_threads(task.n_jobs), device=task.device,
    )  # fmt: skip
    state: list[str] = []
    study.optimize(
        objective, n_trials=1, callbacks=[lambda _s, t: state.append(t.state.name.lower())]
    )
    return task.study, state[0] if state else "skipped"


def study_deadline(study: optuna.Study, task: TrialTask) -> float:
    """When ``task``'s study starts no new trial: ``timeout`` seconds after the first of its
    tasks of this submission started (recorded in the study, so every worker reads the same
    one). ``--timeout`` is per study, as in one process where studies run one after another;
    a single deadline for all of them let the studies queued last start no trial at all."""
    key = f"sercap_deadline:{task.submission}"
    deadline = study.user_attrs.get(key)
    if deadline is None:  # the first task of this study (two at once: a moment apart)
        deadline = time.time() + float(task.timeout or 0.0)
        study.set_user_attr(key, deadline)
    return float(deadline)


def _require_journal_here(storage: Any) -> None:
    """On a worker: one line when the study's journal file (the default storage) is not at
    the client's path, as extract says of the warehouse; it was a bare "No such file or
    directory" naming a file the client can see."""
    import socket

    backend = getattr(storage, "_backend", None)
    path = getattr(backend, "_file_path", None)
    if path is not None and not os.path.isfile(path):
        raise SercapError(
            f"worker on {socket.gethostname()} cannot see {path}: workers need the warehouse "
            "at the same paths as the client (a shared filesystem), or use a PostgreSQL "
            "storage (--storage postgresql+psycopg://…)"
        )


@_optuna_warnings_only()
def run_on_cluster(
    cluster: Any,
    model: str,
    data: Dataset,
    storage: optuna.storages.BaseStorage,
    base: str,
    studies: list[tuple[str, str | None, np.ndarray]],
    *,
    n_trials: int | None,
    timeout: float | None,
    pruner: str,
    inner_folds: int,
    fixed: dict | None,
    seed: int,
    n_jobs: int,
    device: str | None,
    progress: bool,
    final: bool,
    top_up: bool = False,
    fingerprint: Callable[[np.ndarray], str | None] | None = None,
) -> NestedStudies:
    """The studies of :func:`run_nested` with each trial a task on the cluster.

    This process creates every study (description, default trial first) and submits
    ``n_trials`` one-trial tasks per study, all at once; each worker loads the study from
    the shared storage and runs ``optimize(n_trials=1)``, so trials of all studies run side
    by side, the pruner compares against every finished trial and a killed worker's trial
    is rerun by Dask (the killed one is failed by the heartbeat). Every study gets exactly
    ``n_trials`` new finished trials (fewer only if ``timeout``, counted for each study from
    its first task's start, ran out); with ``top_up``,
    as many as it lacks of ``n_trials`` finished trials.
    """
    from sercap.distribute import run_on_cluster as dispatch

    if n_trials is None:
        raise SercapError("tuning on a cluster needs a number of trials per study")
    import uuid

    submission = uuid.uuid4().hex[:12]
    items = []
    for name, fold, rows in studies:
        existing = len(_trials(storage, name))
        study = prepare_study(
            model, data, storage, name, rows=rows, outer_fold=fold, pruner=pruner,
            inner_folds=inner_folds, fixed=fixed, seed=seed, fingerprint=fingerprint,
        )  # fmt: skip
        wanted = max(0, n_trials - _finished(study)) if top_up else n_trials
        first = sampler_seed(seed, existing, storage)
        for k in range(wanted):
            task = TrialTask(
                name, model, rows, inner_folds, fixed, seed, first + k, pruner, n_jobs,
                device, timeout, n_trials if top_up else None, submission,
            )  # fmt: skip
            items.append((0, task))
    shared = [TrialContext(data, storage)]
    for _ in dispatch(cluster, run_trial_task, shared, items, progress=progress, unit="trial"):
        pass
    if model in DEFAULT_TRIALS:  # a study whose default trial died on a worker runs it here
        for name, fold, rows in studies:
            if not _default_scored(optuna.load_study(study_name=name, storage=storage)):
                run_study(
                    model, data, storage, name, rows=rows, outer_fold=fold, n_trials=0,
                    pruner=pruner, inner_folds=inner_folds, fixed=fixed, seed=seed,
                    n_jobs=n_jobs, device=device, progress=False,
                )  # fmt: skip
    loaded = {name: optuna.load_study(study_name=name, storage=storage) for name, _, _ in studies}
    folds = {fold: loaded[name] for name, fold, _ in studies if fold is not None}
    last = loaded[final_study_name(base)] if final else None
    return NestedStudies(base=base, folds=folds, final=last)


def nested_studies(storage: optuna.storages.BaseStorage, base: str) -> NestedStudies:
    """The stored fold studies and final study of ``base`` (for `tune --show`)."""
    names = sorted(s.study_name for s in storage.get_all_studies())
    prefix = f"{base}/fold="
    folds = {
        n[len(prefix) :]: optuna.load_study(study_name=n, storage=storage)
        for n in names
        if n.startswith(prefix)
    }
    final = final_study_name(base)
    last = optuna.load_study(study_name=final, storage=storage) if final in names else None
    if not folds and last is None:
        raise _no_study(base)
    return NestedStudies(base=base, folds=folds, final=last)


#: Trial states that used up a trial of the budget (a failed one, e.g. a killed process's,
#: did not: ``top_up`` runs it again).
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _has_heartbeat(storage: optuna.storages.BaseStorage) -> bool:
    """Whether a RUNNING trial of this storage is known alive: with a heartbeat (an RDB
    storage), a killed process's trial is failed by :func:`optuna.storages.fail_stale_trials`;
    without one (a journal file) it stays RUNNING for ever."""
    interval = getattr(storage, "get_heartbeat_interval", None)
    return bool(interval and interval() is not None)


def _default_scored(study: optuna.Study) -> bool:
    return any(t.user_attrs.get("default") for t in study.get_trials(states=FINISHED))


def sampler_seed(seed: int, n_existing: int, storage: optuna.storages.BaseStorage) -> int:
    """The TPE sampler's seed for a process that finds ``n_existing`` trials in a study.

    With a journal or SQLite file (one tuner per study, or per fold) it is ``seed +
    n_existing``: the same command gives the same trials. A database server is shared by
    design (processes and machines tune one study together), and tuners that started from
    the same count would draw the same points; each process then adds its own entropy.
    """
    url = str(getattr(storage, "url", "") or "")
    if not _has_heartbeat(storage) or url.startswith("sqlite"):  # a file: one user's study
        return seed + n_existing
    return (seed + n_existing + int.from_bytes(os.urandom(4), "little")) % 2**31


def _trials(storage: optuna.storages.BaseStorage, name: str) -> list:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return []
    return storage.get_all_trials(study_id, deepcopy=False)


def load_study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """An existing study, or a one-line error saying how to create it."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError as exc:
        raise _no_study(name) from exc


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    try:
        return study.best_trial
    except ValueError as exc:
        raise SercapError(f"study {study.study_name!r} has no completed trial yet") from exc


#: A study's best trial replaces the default settings only if its inner UA is at least this
#: much higher: on a few training speakers the best of many trials is partly luck, and a
#: small inner gain rarely survives on the outer test speakers.
MIN_GAIN = 0.01


def chosen_trial(study: optuna.Study, min_gain: float = MIN_GAIN) -> optuna.trial.FrozenTrial:
    """The trial whose parameters a study hands on: its best, unless the default-settings
    trial (trial 0 of a new study) is within ``min_gain`` inner UA of it."""
    best = best_trial(study)
    defaults = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs.get("default")
    ]
    if defaults and best.value - defaults[0].value < min_gain:
        return defaults[0]
    return best


def best_params(study: optuna.Study, min_gain: float = MIN_GAIN) -> dict:
    """The model parameters of the study's chosen trial (:func:`chosen_trial`), fixed ones
    included."""
    trial = chosen_trial(study, min_gain)
    params = trial.user_attrs.get("model_params", trial.params)
    return {**params, **study.user_attrs.get("fixed_params", {})}


def store_best(
    wh: Warehouse,
    study: optuna.Study,
    model: str,
    data: Dataset,
    storage_label: str,
    *,
    base: str | None = None,
    outer_fold: str | None = None,
) -> None:
    """Record the study's best parameters where `train --tuned` finds them: one row per
    outer fold's study (``outer_fold`` set) and one for the final study (``outer_fold`` NULL)."""
    trial = chosen_trial(study)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    store_runs.store_tuned_params(
        wh,
        study=study.study_name,
        model=model,
        corpus=data.corpus,
        label_map=data.label_map,
        feature_set_hash=data.feature_set_hash,
        storage=storage_label,
        best_trial=trial.number,
        best_value=trial.value,
        n_complete=len(complete),
        params=best_params(study),
        base_study=base,
        outer_fold=outer_fold,
        speaker_norm=data.speaker_norm,
        columns=data.column_pattern,
        speakers=study.user_attrs.get("speakers"),
        data_sha256=study.user_attrs.get("data_sha256"),
        fixed=study.user_attrs.get("fixed_params", {}),
    )


def store_nested(
    wh: Warehouse, nested: NestedStudies, model: str, data: Dataset, storage_label: str
) -> None:
    """Store every fold study's and the final study's best parameters in one transaction."""
    with wh.transaction():
        for fold, study in nested.folds.items():
            store_best(wh, study, model, data, storage_label, base=nested.base, outer_fold=fold)
        if nested.final is not None:
            store_best(wh, nested.final, model, data, storage_label, base=nested.base)


def _refuse_other(study: optuna.Study, key: str, flag: str, value: Any) -> None:
    """Refuse to resume ``study`` if it recorded ``key`` with another value than this run's:
    trials scored on other data or splits are not one search."""
    if key in study.user_attrs and study.user_attrs[key] != value:
        sep = "" if flag.endswith("=") else " "
        raise SercapError(
            f"study {study.study_name} was started with {flag}{sep}{study.user_attrs[key]!r}, "
            f"this run gives {value!r}; resume it with the same, or name a new study with "
            f"{option('study')}"
        )


def _check_same_data(study: optuna.Study, data_sha256: str | None) -> None:
    """Refuse to resume a study whose trials were scored on other recordings or labels."""
    was = study.user_attrs.get("data_sha256")
    if data_sha256 is not None and was is not None and was != data_sha256:
        raise SercapError(
            f"study {study.study_name} was tuned on other data: a recording was replaced or "
            "an utterance relabelled, added or lost since, and its trials were scored on the "
            f"old data; tune again under a new name with {option('study')}"
        )


def _check_same_speakers(study: optuna.Study, speakers: list[str], n_rows: int) -> None:
    """Refuse to resume a study whose trials were fitted on other speakers than ``speakers``.

    Fold names do not pin their speakers: under speaker-kfold-5 an ingest that adds or
    removes a speaker moves others between folds, and a resumed study would then hold
    trials scored with the fold's new test speakers among its training data. Studies from
    before speakers were recorded are compared by their numbers of speakers and rows (a
    speaker swapped for another with as many utterances still passes: tune those again).
    """
    stored = study.user_attrs.get("speakers")
    if stored is not None:
        same, was = list(stored) == speakers, f"speakers {_speaker_list(stored)}"
    else:
        n, rows = study.user_attrs.get("n_speakers"), study.user_attrs.get("n_rows")
        same = (n is None or n == len(speakers)) and (rows is None or rows == n_rows)
        was = f"{n} speakers and {rows} utterances"
    if not same:
        raise SercapError(
            f"study {study.study_name} was tuned on {was}, this run's data has speakers "
            f"{_speaker_list(speakers)}: the corpus changed since (an ingest added or removed "
            f"speakers, which can move speakers between folds); tune again under a new name "
            f"with {option('study')}"
        )


def _speaker_list(speakers: list[str], shown: int = 6) -> str:
    more = f" … ({len(speakers)} in all)" if len(speakers) > shown else ""
    return ", ".join(speakers[:shown]) + more


@dataclass
class StudySummary:
    """What `tune --show` prints."""

    name: str
    n_trials: int
    n_complete: int
    n_pruned: int
    best_number: int
    best_value: float
    best_params: dict
    importances: dict[str, float]
    history: list[tuple[int, str, float | None]]
    #: What trials score: "UA", or "CCC" for a study of a rating (``--target``).
    metric: str = "UA"


def summarise(study: optuna.Study) -> StudySummary:
    """Best trial, parameter importances (when computable) and the trial history."""
    best = best_trial(study)
    states = optuna.trial.TrialState
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    try:
        with warnings.catch_warnings():  # e.g. "no parameter varies": shown as no importances
            warnings.simplefilter("ignore")
            importances = (
                optuna.importance.get_param_importances(study) if len(complete) > 2 else {}
            )
    except (RuntimeError, ValueError):
        importances = {}
    history = [(t.number, t.state.name.lower(), t.value) for t in study.trials]
    return StudySummary(
        name=study.study_name,
        n_trials=len(study.trials),
        n_complete=len(complete),
        n_pruned=sum(t.state == states.PRUNED for t in study.trials),
        best_number=best.number,
        best_value=float(best.value),
        best_params=dict(best.user_attrs.get("model_params", best.params)),
        importances=dict(importances),
        history=history,
        metric=_metric_name(study),
    )


def plot_study(summary: StudySummary, path: Path) -> Path:
    """History (value per trial, best so far) and parameter importances, as one PNG."""
    from sercap.plots import figure, save_png

    fig = figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    done = [(n, v) for n, s, v in summary.history if s == "complete" and v is not None]
    if done:
        xs, ys = zip(*done, strict=True)
        ax1.scatter(xs, ys, s=14, label=f"trial {summary.metric} (validation)")
        # a step: the best jumps at a trial, it does not climb between trials
        ax1.plot(xs, np.maximum.accumulate(ys), color="C3", label="best so far",
                 drawstyle="steps-post")  # fmt: skip
    pruned = [n for n, s, _ in summary.history if s == "pruned"]
    if pruned:
        ax1.scatter(pruned, [min(ys) if done else 0] * len(pruned), marker="x", color="grey",
                    s=14, label="pruned")  # fmt: skip
    ax1.set(xlabel="trial", ylabel=summary.metric, title=f"{summary.name}: history")
    from matplotlib.ticker import MaxNLocator

    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
    ax1.legend(loc="lower right", fontsize=8)
    if summary.importances:
        names = list(summary.importances)[::-1]
        ax2.barh(names, [summary.importances[n] for n in names], color="C0")
        ax2.set(xlabel="importance (fANOVA)", title="parameter importances")
    else:
        ax2.text(0.5, 0.5, "needs ≥ 3 completed trials", ha="center", va="center")
        ax2.set_axis_off()
    return save_png(fig, path)
