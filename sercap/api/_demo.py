"""The demo: everything end to end on the synthetic corpus."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sercap.api._common import PathLike, Say, _bars, _check_counts, _check_seed, _listed, _quiet


def run_demo(
    out_dir: PathLike = "demo",
    corpus_dir: PathLike | None = None,
    *,
    kind: str | None = None,
    models: Sequence[str] | None = None,
    sessions: int | None = None,
    per_speaker: int | None = None,
    quick: bool = True,
    jobs: int = 2,
    seed: int = 0,
    progress: bool | None = None,
    say: Say | None = None,
    resume: bool = False,
) -> Any:
    """Everything end to end: synth → ingest → extract → images → bench → ensembles → report.

    Parameters
    ----------
    out_dir : path
        Where the corpus, warehouse and report go.
    corpus_dir : path, optional
        A real corpus instead of the synthetic one; ``kind`` names its format (default:
        guessed from its layout).
    models : sequence of str, optional
        Models to compare (default: all).
    sessions, per_speaker : int, optional
        Size of the synthetic corpus (default 5 sessions of two speakers, 36 utterances
        each); refused with ``corpus_dir``, which replaces it.
    quick : bool
        Quick training settings.
    jobs, seed, progress
        As for :func:`train`.
    say : callable, optional
        Receives one line per step.
    resume : bool
        Take each model's stored run of the same settings instead of fitting it again (after
        an interrupted demo; see :func:`bench`). The corpus and features are reused anyway.

    Returns
    -------
    sercap.demo.DemoResult
        ``table``, ``corpus``, ``report`` and ``warehouse``.

    Examples
    --------
    >>> import sercap
    >>> result = sercap.run_demo("demo", models=["svm", "rf"])  # doctest: +SKIP
    >>> result.table.select("name", "ua")  # doctest: +SKIP
    """
    _check_counts(sessions=sessions, per_speaker=per_speaker, jobs=jobs)
    _check_seed(seed)
    from sercap.demo import run_demo as _run

    return _run(
        Path(out_dir),
        None if corpus_dir is None else Path(corpus_dir),
        kind,
        models=None if models is None else _listed(models),
        sessions=sessions,
        per_speaker=per_speaker,
        quick=quick,
        jobs=jobs,
        seed=seed,
        say=say or _quiet,
        progress=_bars(progress),
        resume=resume,
    )
