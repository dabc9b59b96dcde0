"""openSMILE as an optional extractor: ComParE 2016 / eGeMAPS v02 functionals per utterance.

Only imported where a feature set of kind ``opensmile`` is used; without the package the
error says how to install it. Columns keep openSMILE's own names (``F0final_sma_amean``…),
which is what openSMILE users search for.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from sercap.errors import SercapError


def available() -> bool:
    """Whether the opensmile package imports here."""
    try:
        import opensmile  # noqa: F401
    except Exception:
        return False
    return True


@functools.lru_cache(maxsize=4)
def _smile(feature_set: str, level: str) -> Any:
    try:
        import opensmile
    except Exception as exc:
        raise SercapError(
            "openSMILE feature sets need the opensmile package; pip install 'sercap[opensmile]'"
        ) from exc
    try:
        return opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, feature_set),
            feature_level=getattr(opensmile.FeatureLevel, level),
        )
    except AttributeError as exc:
        raise SercapError(
            f"openSMILE has no feature set {feature_set!r} / level {level!r}"
        ) from exc


def column_names(params: Mapping[str, Any]) -> list[str]:
    """The functionals' names, in openSMILE's order."""
    return list(_smile(params["feature_set"], params["level"]).feature_names)


def functionals(y: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """One utterance's functionals as a float32 vector (order of :func:`column_names`)."""
    smile = _smile(params["feature_set"], params["level"])
    values = smile.process_signal(np.asarray(y, np.float32), int(params["sample_rate"]))
    return np.asarray(values.to_numpy()[0], dtype=np.float32)
