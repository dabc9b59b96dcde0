"""Every public verb checks its simple arguments against its own annotations.

A notebook passes ``write="false"``, ``jobs=None`` or ``"~/corpus"`` as readily as the
right thing. Without a check the first ran a DELETE (a non-empty string is true), the
second failed with a ``TypeError`` deep inside, the third made a folder named ``~``.
:func:`checked_arguments` wraps a function so that each parameter annotated with simple
types only (``bool``, ``int``, ``float``, ``str``, ``PathLike``, ``Say``, ``None``, or a
union of them) is checked before the body runs: a value of another type, ``None`` where
it is not allowed or a blank string is one :class:`~sercap.errors.BadParameterError`
naming the parameter, and a ``PathLike`` (also in a sequence of paths) has its ``~``
expanded. Parameters with richer annotations are the function's own business; ranges
(``jobs >= 1``) are checked where they are used.

Examples
--------
>>> @checked_arguments
... def verb(name: str, jobs: int = 1, quiet: bool = False) -> str:
...     return f"{name} {jobs} {quiet}"
>>> verb("svm", jobs=2)
'svm 2 False'
>>> verb("svm", quiet="no")
Traceback (most recent call last):
...
sercap.errors.BadParameterError: verb: quiet='no'; give True or False
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from sercap.errors import BadParameterError

#: A function, its signature kept through the wrapping (type checkers and IDEs see the verb's
#: own parameters and return type, not ``(*Any, **Any) -> Any``).
F = TypeVar("F", bound=Callable[..., Any])

#: What each simple annotation accepts, and how to say it.
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "bool": (
        lambda v: isinstance(v, bool) or type(v).__name__ in ("bool_", "bool"),
        "True or False",
    ),
    "int": (
        lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
        "a whole number",
    ),
    "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "PathLike": (lambda v: isinstance(v, str | os.PathLike), "a path (a str or pathlib.Path)"),
    "Say": (callable, "a function that takes one line of text, e.g. print"),
    "None": (lambda v: v is None, "None"),
}
_PATHS = "Sequence[PathLike] | PathLike"  # predict's files: one path or several


def _simple(annotation: Any) -> list[str] | None:
    """The atoms of a union of simple annotations, or None for anything richer."""
    atoms = [a.strip() for a in str(annotation).split("|")]
    return atoms if all(a in _KINDS for a in atoms) else None


def _expand(value: Any) -> Any:
    """``~`` expanded in a path given as str or path-like (``":memory:"`` is left alone)."""
    text = os.fspath(value)
    if not isinstance(text, str) or not text.startswith("~"):
        return value
    return os.path.expanduser(text) if isinstance(value, str) else Path(text).expanduser()


def check_value(where: str, name: str, atoms: list[str], value: Any) -> Any:
    """``value`` if it is one of ``atoms`` (with ``~`` expanded in a path), else one line."""
    if not any(_KINDS[atom][0](value) for atom in atoms):
        wanted = [_KINDS[atom][1] for atom in atoms if atom != "None"]
        hint = "give " + " or ".join(wanted)
        if value is None:
            raise BadParameterError(f"{where}: {name} is required, not None", hint=hint)
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise BadParameterError(f"{where}: {name}={shown}", hint=hint)
    if isinstance(value, str) and not value.strip():  # "" named the current folder, etc.
        raise BadParameterError(f"{where}: {name}={value!r}", hint="give a non-empty value")
    if "PathLike" in atoms and isinstance(value, str | os.PathLike):
        return _expand(value)
    return plain(value)


def plain(value: Any) -> Any:
    """A numpy bool, integer or float as Python's own: DuckDB, JSON and optuna's journal
    refused ``np.int64(1)`` deep inside (after the fits), where ``seed=`` from
    ``np.arange`` is ordinary notebook code.

    >>> import numpy as np
    >>> plain(np.int64(3)), plain(np.bool_(True)), plain(np.float32(0.5)), plain("svm")
    (3, True, 0.5, 'svm')
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value).__name__ in ("bool_", "bool"):  # numpy 2 names its own "bool"
        return bool(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def checked_arguments(func: F) -> F:
    """``func`` with its simple arguments checked (and paths expanded) before each call."""
    signature = inspect.signature(func)
    simple = {
        name: atoms
        for name, parameter in signature.parameters.items()
        if (atoms := _simple(parameter.annotation)) is not None
    }
    paths = [n for n, p in signature.parameters.items() if str(p.annotation) == _PATHS]

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            _suggest_keyword(func.__name__, signature, kwargs)
            return func(*args, **kwargs)  # Python's own message about the call's shape
        for name, value in bound.arguments.items():
            if name in simple:
                bound.arguments[name] = check_value(func.__name__, name, simple[name], value)
            elif name in paths:
                bound.arguments[name] = _expand_paths(value)
        return func(*bound.args, **bound.kwargs)

    return cast(F, checked)


#: Keywords a user brings from elsewhere (the run's own fields, scikit-learn, the CLI's
#: option names) and what the verbs call them.
_SPELLED = {"label_map": "labels", "n_jobs": "jobs", "out": "out_dir", "speaker_normalisation":
            "speaker_norm", "spk_norm": "speaker_norm", "n_trials": "trials"}  # fmt: skip


def _suggest_keyword(name: str, signature: inspect.Signature, kwargs: dict[str, Any]) -> None:
    """A ``TypeError`` that names the keyword meant, when a call used another spelling of
    one (``train(wh, "svm", label_map=run.label_map)``: the run says ``label_map``, the
    verb ``labels``); nothing when no spelling is known (Python's message stands).

    >>> import inspect
    >>> _suggest_keyword("train", inspect.signature(lambda wh, labels=None: 0), {"label_map": "x"})
    Traceback (most recent call last):
    ...
    TypeError: train() got an unexpected keyword argument 'label_map'; did you mean 'labels'?
    """
    import difflib

    known = list(signature.parameters)
    for key in kwargs:
        if key in known:
            continue
        meant = _SPELLED.get(key)
        if meant not in known:
            meant = next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.8)), None)
        if meant is not None:
            raise TypeError(
                f"{name}() got an unexpected keyword argument {key!r}; did you mean {meant!r}?"
            )


def _expand_paths(value: Any) -> Any:
    """One path or a list of them, each with ``~`` expanded (anything else as given)."""
    if isinstance(value, str | os.PathLike):
        return _expand(value)
    if isinstance(value, list | tuple):
        return [_expand(v) if isinstance(v, str | os.PathLike) else v for v in value]
    return value
