"""Names that become SQL view and folder names (feature sets, corpora, label maps)."""

from __future__ import annotations

import re

from sercap.errors import SercapError

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def check_name(name: str, what: str = "name") -> str:
    """Names become view and folder names: lowercase letters, digits and underscores."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SercapError(
            f"{what} {name!r} is not valid: use lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    return name
