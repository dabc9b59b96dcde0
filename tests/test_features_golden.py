"""The default set's descriptor values on a fixed signal are pinned to ``LLD_VERSION``.

The feature-set hash names the descriptor code by ``sercap.features.versions.LLD_VERSION``, which
a person bumps. A change to ``voice.py`` once changed jitter and shimmer (0.057 -> 0.042 on
one EmoDB file) under the same hash, so stored rows of old and new code mixed in one set.
This test fails whenever the default set's numbers move while the version stays: bump it,
then write the new values with ``python -m tests.test_features_golden``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sercap.features import lld
from sercap.features.featureset import get_feature_set
from tests.helpers import voice

GOLDEN = Path(__file__).parent / "data" / "lld_golden.json"


def summary() -> dict[str, list[float]]:
    """Mean and standard deviation of every default descriptor on a fixed voice-like signal."""
    y = np.concatenate([voice(1.2, 130, 11), voice(0.8, 240, 12)])
    cols = lld.compute_frames(y, get_feature_set("default").params)
    out = {}
    for name, values in cols.items():
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        out[name] = [float(v.mean()), float(v.std())] if v.size else [float("nan")] * 2
    return out


def test_descriptor_values_move_only_with_the_version() -> None:
    stored = json.loads(GOLDEN.read_text())
    now = summary()
    assert stored["lld_version"] == lld.LLD_VERSION, (
        f"LLD_VERSION is {lld.LLD_VERSION} but {GOLDEN.name} holds version "
        f"{stored['lld_version']}'s values: run `python -m tests.test_features_golden`"
    )
    assert list(now) == list(stored["columns"]), "the default set's columns changed"
    moved = [
        name
        for name, (mean, std) in now.items()
        if not np.allclose(
            [mean, std], stored["columns"][name], rtol=2e-3, atol=1e-4, equal_nan=True
        )  # fmt: skip
    ]
    assert not moved, (
        f"descriptor values changed under LLD_VERSION {lld.LLD_VERSION} ({', '.join(moved[:5])}"
        f"{'…' if len(moved) > 5 else ''}): bump LLD_VERSION in sercap/features/versions.py, then "
        "run `python -m tests.test_features_golden`"
    )


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(
        json.dumps({"lld_version": lld.LLD_VERSION, "columns": summary()}, indent=0) + "\n"
    )
    print(f"wrote {GOLDEN}")
