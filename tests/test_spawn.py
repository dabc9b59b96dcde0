"""Spawned extraction workers do not run the caller's script again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from sercap._spawn import main_not_rerun

ROOT = Path(__file__).resolve().parents[1]

#: The README's Python example as a user writes it in a file: no __main__ guard. Every time
#: the script runs it leaves a line in runs.txt.
SCRIPT = """
import sercap
with open("runs.txt", "a") as log:
    log.write("ran\\n")
wh = sercap.connect("warehouse")
sercap.ingest(wh, "manifest", "corpus/manifest.csv")
done = sercap.extract(wh, feature_set="default", jobs=2, chunk_size=1).done
print(f"extracted {done}")
wh.close()
"""


def test_the_main_module_is_hidden_while_the_block_runs_and_restored_after() -> None:
    main = sys.modules["__main__"]
    before = (main.__spec__, main.__dict__.get("__file__"))
    with main_not_rerun():
        with main_not_rerun():  # nested: still hidden after the inner block ends
            pass
        assert main.__spec__ is None and "__file__" not in main.__dict__
    assert (main.__spec__, main.__dict__.get("__file__")) == before


def test_a_script_without_a_main_guard_extracts_with_two_jobs(tmp_path: Path) -> None:
    """Without the fix each spawned worker re-ran the script, waited for the warehouse the
    script held open, and the script never finished."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    t = np.arange(16000) / 16000
    for i in range(4):
        y = 0.3 * np.sin(2 * np.pi * (120 + 10 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
        sf.write(corpus / f"u{i}.wav", y.astype(np.float32), 16000)
    rows = [(f"u{i}.wav", "neu", f"s{i % 2}") for i in range(4)]
    pl.DataFrame(rows, schema=["path", "label", "speaker"], orient="row").write_csv(
        corpus / "manifest.csv"
    )
    (tmp_path / "example.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "example.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        runs = (tmp_path / "runs.txt").read_text().count("ran")
        pytest.fail(f"the script did not finish in 120 s; it ran {runs} times")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "extracted 4" in done.stdout
    assert (tmp_path / "runs.txt").read_text() == "ran\n"  # once: no worker ran it again
