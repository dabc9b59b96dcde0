"""Results a notebook shows as the command line prints them (no heavy imports here:
``import sercap`` stays light)."""

from __future__ import annotations


class ShownAsText:
    """A result a notebook renders as what the command line prints (its ``str``)."""

    __slots__ = ()

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


class Text(ShownAsText, str):
    """Text a person reads (``sercap.info(wh)``): a ``str``, shown as itself rather than as a
    quoted literal full of ``\\n`` when a notebook or the REPL displays it.

    >>> Text("a\\nb")
    a
    b
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)
