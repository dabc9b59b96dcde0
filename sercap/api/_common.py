"""Helpers every verb shares: argument checks, progress and message conventions."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from sercap import _interrupt
from sercap._arguments import F
from sercap._interrupt import is_interrupt
from sercap.errors import BadParameterError, SercapError

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    from sercap.store import Warehouse


PathLike = str | os.PathLike[str]


Say = Callable[[str], None]


def _bars(progress: bool | None) -> bool:
    """The one convention: ``None`` means bars only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


def _quiet(_: str) -> None:
    """The default ``say``: library calls print nothing unless asked."""


def _cluster(cluster: Any) -> Any:
    """The Dask cluster spec of ``cluster`` or ``$SERCAP_CLUSTER`` (None: in process); a
    ``dask.distributed.Client`` of the caller's is used as it is."""
    if hasattr(cluster, "submit"):
        return cluster
    from sercap.cluster import resolve_spec

    return resolve_spec(cluster)


@overload
def _takes_warehouse(func: F) -> F: ...
@overload
def _takes_warehouse(func: None = None, *, polars: bool = ...) -> Callable[[F], F]: ...
def _takes_warehouse(  # noqa: E302 - the overloads above are its signatures
    func: Callable[..., Any] | None = None, *, polars: bool = True
) -> Any:
    """A verb's first argument is an open warehouse: anything else (a path, a string) is one
    line naming the call, not an ``AttributeError`` from deep inside it. ``None`` passes
    where the verb takes it (``wh: Warehouse | None``).

    ``@_takes_warehouse(polars=False)`` marks a verb that never builds a DataFrame
    (``extract``, and the checks every writing command runs before it): it leaves polars
    unimported, a tenth to a quarter of a second of each ``sercap extract``.
    """
    import functools

    if func is None:
        return functools.partial(_takes_warehouse, polars=polars)

    optional = "None" in str(func.__annotations__.get("wh", ""))

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        from sercap.store import Warehouse

        wh = args[0] if args else kwargs.get("wh")
        if not isinstance(wh, Warehouse) and not (optional and wh is None):
            shown = repr(wh) if len(repr(wh)) <= 60 else repr(wh)[:57] + "..."
            raise BadParameterError(
                f"sercap.{func.__name__}: the first argument is an open warehouse "
                f"(wh = sercap.connect(PATH)), not {type(wh).__name__} {shown}"
            )
        # the verbs that read or return polars import it whole, a Ctrl-C held until it is
        # done (a notebook's Stop in the first train's import left polars half-initialised,
        # "module 'polars' has no attribute 'Series'", until the kernel restarted)
        if polars:
            _interrupt.import_whole("polars")
        if wh is not None:  # a result left part-read (a `break`) blocks every query
            wh.release()
            if not wh.closed:
                wh.views_current()
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # DuckDB's "Query interrupted" is a RuntimeError
            if is_interrupt(exc):
                raise KeyboardInterrupt from exc
            raise

    return checked


def _listed(value: str | Sequence[str]) -> list[str]:
    """A name given where names are expected is one name, not a list of its letters; a
    comma-separated string is its names, as on the command line (``"emodb,iemocap"``).

    >>> _listed("svm"), _listed("emodb, iemocap"), _listed(("a", "b"))
    (['svm'], ['emodb', 'iemocap'], ['a', 'b'])
    """
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return list(value)


def _check_seed(seed: Any) -> None:
    """A seed is a whole number from 0 to 2**32 - 1 (numpy's integers too), as ``--seed``
    takes it; anything else is one line."""
    if not _is_whole(seed) or not 0 <= seed < 2**32:
        raise BadParameterError(
            f"seed={seed!r}", hint="give a whole number from 0 to 4294967295, e.g. seed=0"
        )


def _output_dir(wh: Warehouse, out_dir: PathLike | None, name: str) -> Path:
    """Where a report goes: ``out_dir``, or ``WAREHOUSE/reports/<name>``; a folder among the
    warehouse's own files (its parts, models, journals) is one line, never written into."""
    from sercap.format import refuse_inside
    from sercap.store.layout import report_dir

    if out_dir is None:
        return report_dir(wh.root, name)
    if not str(out_dir).strip():  # Path("") is the current folder: two dozen files there
        raise BadParameterError("the output folder is empty", hint="name a folder, e.g. report/")
    refuse_inside(Path(out_dir), wh.root)
    return Path(out_dir)


def _is_whole(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_counts(minimum: int = 1, **values: Any) -> None:
    """Each of ``values`` (name → value) is None or a whole number of at least ``minimum``,
    as the command line's ``IntRange`` options are: ``jobs="2"`` or ``limit=2.5`` is one
    line naming the argument, not a ``TypeError`` from deep inside (or silently rounded)."""
    for name, value in values.items():
        if value is not None and (not _is_whole(value) or value < minimum):
            raise BadParameterError(
                f"{name}={value!r}", hint=f"give a whole number of at least {minimum}"
            )


def _check_params(params: Any) -> dict[str, Any] | None:
    """``params`` is None or a mapping of parameter values (train and tune alike); returns
    it as a dict whose numpy numbers are Python's (``np.int64(20)`` was stored as ``"20"``,
    the run's record saying a string where the model had a number)."""
    from sercap._arguments import plain

    if params is None:
        return None
    if not isinstance(params, Mapping):
        raise BadParameterError(
            f"params must be a dict of parameter values, got {type(params).__name__}",
            hint='e.g. params={"C": 10} (the CLI\'s --params takes JSON)',
        )
    return {key: plain(value) for key, value in params.items()}


def _check_fraction(name: str, value: Any) -> None:
    """``value`` is None or a real number (a string is one line naming ``name``, not a
    ``TypeError`` at the first comparison); its range is checked where it is used."""
    import numbers

    if value is not None and (not isinstance(value, numbers.Real) or isinstance(value, bool)):
        raise BadParameterError(f"{name}={value!r}", hint="give a number, e.g. 0.5")


def _check_text(name: str, value: Any, example: str) -> None:
    """``value`` is None or a string."""
    if value is not None and not isinstance(value, str):
        raise BadParameterError(
            f"{name}={value!r}", hint=f"give {name} as a string, e.g. {name}={example!r}"
        )


def _run_id(value: Any, name: str, where: str) -> str:
    """A run named by its id (or a unique prefix), or the run itself (what :func:`train`
    and :func:`get_run` return: a notebook passes it on); anything else is one line, said
    as the other arguments' checks say it (``where``: the verb)."""
    run_id = getattr(value, "run_id", value)
    hint = f"give a run or a run id, e.g. {name}='svm-20261127-101500-3fa2' (sercap.runs(wh))"
    if value is None:
        raise BadParameterError(f"{where}: {name} is required, not None", hint=hint)
    if not isinstance(run_id, str):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise BadParameterError(f"{where}: {name}={shown}", hint=hint)
    if not run_id.strip():  # an empty prefix matched the only run
        raise BadParameterError(f"{where}: {name}={run_id!r}", hint="give a non-empty value")
    return run_id


def _require_writable(wh: Warehouse, why: str) -> None:
    """One line, before any work, when ``wh`` was opened read-only and ``why`` writes."""
    if wh.read_only:
        raise SercapError(
            f"{wh.root}: the warehouse is open read-only; {why}",
            hint="open it writable (sercap.connect without read_only=True)",
        )
