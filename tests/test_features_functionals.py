"""The SQL functionals against numpy/scipy, and the voicing segment statistics."""

import numpy as np
import pytest
import scipy.stats

from sercap.features.functionals import (
    FUNCTIONALS,
    VOICING_COLUMNS,
    compute_functionals,
    frames_table,
    template_queries,
)

HOP = 0.01


def make_frames(seed: int = 0) -> tuple[list[str], list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    ids, cols = [], []
    for i, n in enumerate((57, 120, 9)):
        f0 = (150 + 30 * rng.normal(size=n)).astype(np.float32)
        f0[rng.random(n) < 0.3] = np.nan
        x = (np.linspace(0, 5, n) + rng.normal(size=n)).astype(np.float32)
        ids.append(f"u{i}")
        cols.append({"mfcc_01": x, "f0_hz": f0})
    return ids, cols


def expected(x: np.ndarray) -> dict[str, float]:
    """The functionals by numpy/scipy, over the non-NaN values at their frame indices."""
    frame = np.arange(x.size, dtype=np.float64)
    keep = ~np.isnan(x)
    v, f = x[keep].astype(np.float64), frame[keep]
    slope, intercept, r, *_ = scipy.stats.linregress(f, v)
    q = np.percentile(v, [1, 25, 50, 75, 99])
    return {
        "mean": v.mean(),
        "std": v.std(),
        "min": v.min(),
        "max": v.max(),
        "p01": q[0],
        "p25": q[1],
        "p50": q[2],
        "p75": q[3],
        "p99": q[4],
        "range": q[4] - q[0],
        "iqr": q[3] - q[1],
        "skew": scipy.stats.skew(v, bias=False),
        "kurt": scipy.stats.kurtosis(v),
        "slope": slope,
        "intercept": intercept,
        "resid": v.std() * np.sqrt(1 - r**2),
        "posmax": f[np.argmax(v)] / (x.size - 1),
        "posmin": f[np.argmin(v)] / (x.size - 1),
    }


def test_functionals_match_numpy_and_scipy() -> None:
    ids, cols = make_frames()
    table = compute_functionals(frames_table(ids, cols), HOP)
    assert table.column("utt_id").to_pylist() == ids
    for i, utt in enumerate(ids):
        for name in ("mfcc_01", "f0_hz"):
            want = expected(cols[i][name])
            for func in FUNCTIONALS:
                got = table.column(f"{name}_{func}")[i].as_py()
                assert got == pytest.approx(want[func], rel=2e-3, abs=2e-3), (utt, name, func)


def test_columns_are_descriptor_functional_then_voicing() -> None:
    ids, cols = make_frames()
    names = compute_functionals(frames_table(ids, cols), HOP).column_names
    want = ["utt_id"] + [f"{d}_{f}" for d in ("mfcc_01", "f0_hz") for f in FUNCTIONALS]
    assert names == want + list(VOICING_COLUMNS)


def test_the_template_computes_the_declared_functionals() -> None:
    sql = template_queries("src", HOP)["functionals"]
    for func in FUNCTIONALS:
        assert f" AS {func}" in sql or f"    {func},\n" in sql or f"    {func}\n" in sql, func


def test_voicing_segments() -> None:
    # voiced runs of 3 and 2 frames, unvoiced runs of 2, 1 and 2 frames
    f0 = np.array([np.nan, np.nan, 100, 100, 100, np.nan, 120, 120, np.nan, np.nan], np.float32)
    table = compute_functionals(frames_table(["a"], [{"f0_hz": f0}]), HOP)
    row = {c: table.column(c)[0].as_py() for c in VOICING_COLUMNS}
    assert row["voiced_fraction"] == pytest.approx(0.5)
    assert row["voiced_seg_rate"] == pytest.approx(2 / 0.1)
    assert row["voiced_seg_len_mean"] == pytest.approx(0.025)
    assert row["voiced_seg_len_max"] == pytest.approx(0.03)
    assert row["unvoiced_seg_len_mean"] == pytest.approx(0.05 / 3)
    assert row["unvoiced_seg_len_max"] == pytest.approx(0.02)
    assert row["n_frames"] == 10


def test_an_all_unvoiced_utterance_has_null_pitch_statistics() -> None:
    f0 = np.full(20, np.nan, np.float32)
    x = np.arange(20, dtype=np.float32)
    table = compute_functionals(frames_table(["a"], [{"mfcc_01": x, "f0_hz": f0}]), HOP)
    assert table.column("f0_hz_mean")[0].as_py() is None
    assert table.column("mfcc_01_mean")[0].as_py() == pytest.approx(9.5)
    assert table.column("voiced_fraction")[0].as_py() == 0.0


def test_frames_table_turns_nan_into_null() -> None:
    ids, cols = make_frames()
    table = frames_table(ids, cols)
    assert table.num_rows == sum(len(c["f0_hz"]) for c in cols)
    assert table.column("f0_hz").null_count == sum(int(np.isnan(c["f0_hz"]).sum()) for c in cols)
    assert table.column("frame").to_pylist()[:3] == [0, 1, 2]
