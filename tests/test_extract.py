"""Extraction: stored rows, problems recorded, incremental, resumable, parallel, versioned."""

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from click.testing import CliRunner

from cli import main
from sercap.corpora.ingest import ingest
from sercap.errors import SercapError
from sercap.features.extract import extract
from sercap.features.featureset import get_feature_set
from sercap.features.lld import n_frames
from sercap.features.opensmile import available as opensmile_available
from sercap.store import connect
from tests.helpers import BAD, GOOD, SR, make_corpus, voice


@pytest.fixture
def corpus_wh(tmp_path):
    manifest = make_corpus(tmp_path / "corpus")
    wh = connect(tmp_path / "wh")
    ingest(wh, "manifest", manifest, name="toy")
    (tmp_path / "corpus" / "gone.wav").unlink()  # disappears after ingest
    yield wh
    wh.close()


def test_extract_stores_frames_features_and_problems(corpus_wh) -> None:
    wh = corpus_wh
    summary = extract(wh, "default", progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (GOOD, len(BAD), 0)
    status = dict(wh.con.execute("SELECT utt_id, error FROM extractions").fetchall())
    for name, reason in BAD.items():
        assert reason in status[name], (name, status[name])
    assert sum(summary.problems.values()) == len(BAD)
    assert any("with problems" in line for line in summary.lines())

    features = wh.query("SELECT * FROM utterance_features ORDER BY utt_id")
    assert features["utt_id"].to_list() == sorted(f"good{i}" for i in range(GOOD))
    assert features.width == 1 + 2853
    frames = wh.query("SELECT utt_id, count(*) AS n, max(time_s) AS t FROM frames GROUP BY 1")
    stored = dict(wh.con.execute("SELECT utt_id, n_frames FROM extractions").fetchall())
    for utt, n, t in frames.iter_rows():
        assert n == stored[utt]
        assert t == pytest.approx((n - 1) * 0.01 + 0.0125, abs=1e-4)  # the window's centre
    # good1 is 0.7 s at 16 kHz; good0 was 44.1 kHz stereo, 0.8 s once resampled
    assert stored["good1"] == n_frames(int(0.7 * SR), get_feature_set("default").params)
    assert stored["good0"] == n_frames(int(0.8 * SR), get_feature_set("default").params)
    # pauses are unvoiced: NULL F0, so the SQL mean is voiced-only
    nulls = wh.scalar("SELECT count(*) FILTER (WHERE f0_hz IS NULL) / count(*) FROM frames")
    assert 0.1 < nulls < 0.9
    mean_f0 = wh.scalar("SELECT f0_hz_mean FROM utterance_features WHERE utt_id = 'good4'")
    assert mean_f0 == pytest.approx(220, rel=0.1)
    # frame_stats aggregates the frames live; it agrees with the materialised functionals
    live = wh.query("SELECT * FROM frame_stats ORDER BY utt_id")
    assert live["utt_id"].to_list() == features["utt_id"].to_list()
    assert live.width == 2 + 4 * 158
    for col in ("f0_hz_mean", "mfcc_01_std", "rms_db_d_max", "hnr_db_min"):
        np.testing.assert_allclose(live[col].to_numpy(), features[col].to_numpy(), rtol=1e-4)
    # each part's column digest, recorded from the table its worker wrote, is the one its
    # file's footer gives (what a view binding from one footer relies on)
    from sercap.store.parts import schema_digest

    recorded = wh.con.execute("SELECT path, schema_sha256 FROM parts").fetchall()
    assert len(recorded) == 2
    for rel, digest in recorded:
        assert digest == schema_digest(wh.root / rel)
    # the name view and its alias read the parts themselves (not a view of a view)
    views = dict(wh.con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT temporary"
                                " AND view_name IN ('utterance_features', 'features_default')"
                                ).fetchall())  # fmt: skip
    assert len(views) == 2 and all("read_parquet" in sql for sql in views.values())


def test_a_second_run_does_nothing_and_retry_errors_tries_again(corpus_wh) -> None:
    wh = corpus_wh
    extract(wh, "default", progress=False)
    parts = wh.scalar("SELECT count(*) FROM parts")
    again = extract(wh, "default", progress=False)
    # failures are not "already stored": they are counted apart and the retry is named
    assert (again.done, again.failed, again.skipped) == (0, 0, GOOD)
    assert again.failed_before == len(BAD)
    assert any(
        line.startswith(f"{len(BAD)} failed before and were not tried again")
        and "`sercap extract --retry-errors`" in line
        and f"AND feature_set_hash = '{again.feature_set_hash}'" in line
        for line in again.lines()
    )
    assert wh.scalar("SELECT count(*) FROM parts") == parts
    retried = extract(wh, "default", retry_errors=True, progress=False)
    assert (retried.done, retried.failed) == (0, len(BAD))
    assert wh.scalar("SELECT count(*) FROM extractions") == GOOD + len(BAD)
    # another set, one corpus: the retry names both (it named the default set's)
    basic = extract(wh, "basic", corpus="toy", progress=False)
    basic = extract(wh, "basic", corpus="toy", progress=False)
    assert "`sercap extract --feature-set basic --corpus toy --retry-errors`" in "\n".join(
        basic.lines()
    )


def test_limit_extracts_some_and_says_how_many_are_left(corpus_wh) -> None:
    wh = corpus_wh
    total = GOOD + len(BAD)
    first = extract(wh, "default", limit=3, progress=False)
    assert (first.done + first.failed, first.skipped, first.left) == (3, 0, total - 3)
    assert f"{total - 3} utterances left for a later run (--limit)" in first.lines()
    rest = extract(wh, "default", progress=False)
    assert (rest.done + rest.failed, rest.skipped + rest.failed_before) == (total - 3, 3)
    assert rest.left == 0
    assert not any("left for a later run" in line for line in rest.lines())


def test_a_crash_between_chunks_resumes_without_loss_or_duplicates(corpus_wh) -> None:
    wh = corpus_wh
    seen = []

    def crash(result) -> None:
        seen.append(result)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(wh, "default", chunk_size=2, on_chunk=crash, progress=False)
    stored = wh.scalar("SELECT count(*) FROM extractions")
    assert stored == 4
    # a worker killed mid-write leaves an unregistered part behind
    fs = get_feature_set("default")
    stray = wh.part_dir("features", fs.hash, "toy") / "part-stray.parquet"
    stray.write_bytes(b"half a parquet file")
    done_before = wh.scalar("SELECT count(*) FROM utterance_features")

    resumed = extract(wh, "default", chunk_size=2, progress=False)
    assert resumed.orphans_removed == 1 and not stray.exists()
    assert resumed.skipped + resumed.failed_before == stored
    assert resumed.done + done_before == GOOD
    # a stray found when nothing is left to extract goes too ("the next extract removes
    # them", as check says: a call with no work skipped the cleanup)
    stray.write_bytes(b"half a parquet file")
    idle = extract(wh, "default", chunk_size=2, progress=False)
    assert idle.done == 0 and idle.orphans_removed == 1 and not stray.exists()
    ids = wh.query("SELECT utt_id FROM utterance_features")["utt_id"]
    assert ids.len() == GOOD and ids.n_unique() == GOOD
    frame_keys = wh.query("SELECT utt_id, frame FROM frames")
    assert frame_keys.height == frame_keys.unique().height


def test_a_full_disk_names_the_part_and_the_next_run_resumes(corpus_wh, monkeypatch) -> None:
    """pyarrow's "Error writing bytes to file" named no file and left its temporary file;
    the error names the part, removes the temporary file, and the next run resumes."""
    import pyarrow.parquet as pq

    wh = corpus_wh
    real_write, writes = pq.write_table, []

    def fill_up(table, where, **kwargs):
        writes.append(where)
        if len(writes) == 3:  # the second chunk's frames: the first chunk is stored
            Path(where).write_bytes(b"PAR1 half")
            raise OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left")
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", fill_up)
    with pytest.raises(SercapError) as info:
        extract(wh, "default", chunk_size=2, progress=False)
    message = str(info.value)
    final = Path(writes[2]).parent / Path(writes[2]).name.split(".")[1]
    assert message.startswith(f"{final}.parquet: cannot write this part (No space left")
    assert not list(wh.root.rglob("*.tmp"))
    assert wh.scalar("SELECT count(*) FROM extractions") == 2
    monkeypatch.setattr(pq, "write_table", real_write)
    resumed = extract(wh, "default", chunk_size=2, progress=False)
    assert resumed.skipped + resumed.failed_before == 2
    assert wh.query("SELECT utt_id FROM utterance_features").height == GOOD


def test_two_jobs_store_the_same_numbers_as_one(tmp_path, corpus_wh) -> None:
    extract(corpus_wh, "default", progress=False)
    one = corpus_wh.query("SELECT * FROM utterance_features ORDER BY utt_id")
    manifest = make_corpus(tmp_path / "corpus2")
    with connect(tmp_path / "wh2") as wh2:
        ingest(wh2, "manifest", manifest, name="toy")
        summary = extract(wh2, "default", jobs=2, chunk_size=3, progress=False)
        assert summary.done == GOOD + 1  # gone.wav still exists in this copy
        two = wh2.query("SELECT * FROM utterance_features WHERE utt_id <> 'gone' ORDER BY utt_id")
    assert one.equals(two)


def test_a_changed_definition_is_a_new_set_and_old_rows_stay(corpus_wh, monkeypatch) -> None:
    import sercap.features.featureset as featureset

    wh = corpus_wh
    old = get_feature_set("default")
    extract(wh, old, progress=False)
    # a later sercap whose default set has another hop
    builtins = featureset.builtin_definitions()
    kind, params, description = builtins["default"]
    builtins["default"] = (kind, {**params, "hop_ms": 20.0}, description)
    monkeypatch.setattr(featureset, "builtin_definitions", lambda: builtins)
    new = get_feature_set("default")
    assert new.hash != old.hash
    summary = extract(wh, "default", progress=False)
    assert summary.done == GOOD  # nothing reused from the other hash
    n_old = wh.scalar(f"SELECT count(*) FROM frames_default_{old.hash}")
    n_new = wh.scalar("SELECT count(*) FROM frames_default")
    assert n_new == wh.scalar(f"SELECT count(*) FROM frames_default_{new.hash}")
    assert n_new < n_old * 0.6  # twice the hop, about half the frames
    assert wh.scalar(f"SELECT count(*) FROM features_default_{old.hash}") == GOOD


def test_clear_errors(tmp_path, corpus_wh) -> None:
    with connect(tmp_path / "empty") as empty, pytest.raises(SercapError, match="sercap ingest"):
        extract(empty, "default", progress=False)
    # as train says it (it said "no utterances in corpus 'nope'; run sercap ingest")
    with pytest.raises(SercapError, match=r"no corpus 'nope' in the warehouse \(have: toy\)"):
        extract(corpus_wh, "default", corpus="nope", progress=False)
    # a refused request defines nothing: `features list` showed the set as stored
    assert corpus_wh.scalar("SELECT count(*) FROM feature_sets") == 0
    with connect(tmp_path / "empty") as empty:
        assert empty.scalar("SELECT count(*) FROM feature_sets") == 0
    with pytest.raises(SercapError, match="unknown feature set"):
        extract(corpus_wh, "nope", progress=False)


def test_cli_extract_and_features(tmp_path) -> None:
    manifest = make_corpus(tmp_path / "corpus")
    runner = CliRunner()
    w = ["-w", str(tmp_path / "wh")]
    assert runner.invoke(main, [*w, "ingest", "manifest", str(manifest)]).exit_code == 0
    result = runner.invoke(main, [*w, "extract", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert f"{GOOD + 1} extracted, 3 with problems" in result.output
    assert "silent" in result.output
    result = runner.invoke(main, [*w, "extract", "--jobs", "1"])
    assert "0 extracted" in result.output and f"{GOOD + 1} already stored" in result.output
    assert "3 failed before and were not tried again" in result.output
    listing = runner.invoke(main, [*w, "features", "list"])
    assert listing.exit_code == 0
    default_row = next(line for line in listing.output.splitlines() if line.startswith("default"))
    assert f" {GOOD + 1} " in default_row and " 3 " in default_row
    shown = runner.invoke(main, [*w, "features", "show", "default"])
    assert f"stored: {GOOD + 1} utterances, 3 with problems" in shown.output
    query = runner.invoke(main, [*w, "sql", "SELECT count(*) AS n FROM utterance_features"])
    assert query.output.splitlines()[2] == str(GOOD + 1)
    bad = runner.invoke(main, [*w, "extract", "--feature-set", "mel"])
    assert bad.exit_code == 1 and "image set" in bad.output and "Traceback" not in bad.output


def test_cli_extract_fails_when_no_utterance_could_be_extracted(tmp_path) -> None:
    """Every recording silent: extract printed "0 extracted, 2 with problems" and exited 0, so
    `extract && train` went on to train's "features_default does not exist yet; run
    extract first"."""
    root = tmp_path / "corpus"
    root.mkdir()
    for i, name in enumerate(("a", "b")):  # (two lengths: one recording twice is one)
        sf.write(root / f"{name}.wav", np.zeros(SR // 2 + i, np.float32), SR)
    pl.DataFrame(
        {"path": ["a.wav", "b.wav"], "label": ["ang", "neu"], "speaker": ["1", "2"]}
    ).write_csv(root / "manifest.csv")
    runner = CliRunner()
    w = ["-w", str(tmp_path / "wh")]
    assert (
        runner.invoke(main, [*w, "ingest", "manifest", str(root / "manifest.csv")]).exit_code == 0
    )
    result = runner.invoke(main, [*w, "extract", "--jobs", "1"])
    assert result.exit_code == 1, result.output
    assert "0 extracted, 2 with problems" in result.output
    assert result.output.rstrip().endswith(
        "error: no utterance of 'default' could be extracted: each of the 2 failed (the problems "
        "above)"
    )
    again = runner.invoke(main, [*w, "extract", "--jobs", "1"])  # nothing tried: nothing failed
    assert again.exit_code == 0 and "2 failed before" in again.output
    train = runner.invoke(main, [*w, "train", "svm"])  # it said "run sercap extract first"
    assert train.exit_code == 1
    assert "the extraction of each of the 2 utterance(s) failed; each one's reason" in train.output


def test_a_failure_of_every_readable_file_alike_stops_the_run_storing_nothing(
    tmp_path, monkeypatch
) -> None:
    """A damaged numba cache made every kernel raise UnpicklingError: each utterance of the
    corpus was stored as failed (exit 0), every later run said they "failed before", and the
    cache's marker kept the probe that would have set it aside from running again."""
    import pickle

    import sercap.features.extract as ex
    import sercap.numba_cache as numba_cache

    manifest = _voice_manifest(tmp_path / "corpus", 4, seconds=0.6)
    cache = tmp_path / "numba"
    cache.mkdir()
    (cache / f"{numba_cache.MARKER_PREFIX}x").write_text("ok")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    monkeypatch.setattr(numba_cache, "ensure_numba_cache", lambda *a, **k: cache)  # (no compile)

    def damaged(task, y):
        raise pickle.UnpicklingError("pickle data was truncated")

    monkeypatch.setattr(ex, "_compute", damaged)
    with connect(tmp_path / "wh") as wh:
        ingest(wh, "manifest", manifest)
        with pytest.raises(SercapError, match=r"each of 4 readable files failed with the same "
                           r"error \(UnpicklingError: pickle data was truncated\)"):  # fmt: skip
            extract(wh, "basic", jobs=1, chunk_size=4, progress=False)
        assert wh.scalar("SELECT count(*) FROM extractions") == 0  # nothing stored as failed
        assert not list(cache.glob(f"{numba_cache.MARKER_PREFIX}*"))  # the next run probes

        def unsuitable(task, y):  # the set's parameters, not the installation: each file's
            raise ValueError("fmax above Nyquist")

        monkeypatch.setattr(ex, "_compute", unsuitable)
        summary = extract(wh, "basic", jobs=1, chunk_size=4, progress=False)
        assert summary.failed == 4
        errors = wh.query("SELECT error FROM extractions WHERE status = 'error'")["error"]
        assert errors.len() == 4 and errors.str.contains("ValueError: fmax above Nyquist").all()


@pytest.mark.skipif(not opensmile_available(), reason="the opensmile package is not installed")
def test_opensmile_functionals_are_stored_like_ours(corpus_wh) -> None:
    summary = extract(corpus_wh, "egemaps02", progress=False)
    assert summary.done == GOOD
    table = corpus_wh.query("SELECT * FROM features_egemaps02")
    assert table.height == GOOD and table.width == 1 + 88
    assert "F0semitoneFrom27.5Hz_sma3nz_amean" in table.columns


def _extract_in_background(tmp_path: Path, jobs: int) -> tuple[Any, Path]:
    """A warehouse of 40 ingested voices and an `extract --jobs N --chunk-size 1` process
    started on it: (the process, the warehouse's folder)."""
    import subprocess
    import sys

    manifest = _voice_manifest(tmp_path / "corpus", 40)
    wh_dir = tmp_path / "wh"
    with connect(wh_dir) as wh:
        ingest(wh, "manifest", manifest, name="toy")
    cli = Path(__file__).resolve().parents[1] / "cli.py"
    proc = subprocess.Popen(
        [sys.executable, str(cli), "-w", str(wh_dir), "extract", "--jobs", str(jobs)]
        + ["--chunk-size", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, wh_dir


def test_kill_9_mid_extraction_loses_and_duplicates_nothing(tmp_path) -> None:
    import os
    import signal
    import time

    proc, wh_dir = _extract_in_background(tmp_path, jobs=1)
    parts = wh_dir / "features"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.rglob("*.parquet"))) < 5:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with connect(wh_dir) as wh:
        stored = wh.scalar("SELECT count(*) FROM extractions")
        print("stored before the kill:", stored)
        summary = extract(wh, "default", progress=False)
        assert summary.skipped == stored and summary.done == 40 - stored
        ids = wh.query("SELECT utt_id FROM utterance_features")["utt_id"]
        assert ids.len() == 40 and ids.n_unique() == 40
        keys = wh.query("SELECT utt_id, frame FROM frames")
        assert keys.height == keys.unique().height == 40 * n_frames(SR, summary_params())


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_kill_9_of_extract_ends_its_worker_processes_too(tmp_path) -> None:
    """The pool's workers outlived a kill -9'd (or OOM-killed) extract, asleep on its task
    queue for ever at ~300 MB each, and ignoring Ctrl-C."""
    import os
    import signal
    import time

    proc, wh_dir = _extract_in_background(tmp_path, jobs=2)

    def children(pid: int) -> set[int]:
        found = set()
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            found |= {int(c) for c in task.read_text().split()}
        return found

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
        except (FileNotFoundError, IndexError):
            return False

    deadline = time.time() + 90
    while time.time() < deadline and not any((wh_dir / "features").rglob("*.parquet")):
        time.sleep(0.05)
    workers = children(proc.pid)
    assert len(workers) >= 2, "the pool had not started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if alive(w)]
    for w in left:  # (do not leave them behind when the test fails)
        os.kill(w, signal.SIGKILL)
    assert not left, f"{len(left)} processes outlived the killed extract"


def summary_params():
    return get_feature_set("default").params


def click_unset() -> object:
    """click 8.3 marks an option without a default by a sentinel, older ones by None."""
    import click.core

    return getattr(click.core, "UNSET", None)


def test_the_cli_chunk_size_is_the_library_default() -> None:
    from cli import main

    for command in ("extract", "images"):
        option = next(p for p in main.commands[command].params if p.name == "chunk_size")
        assert option.default in (None, click_unset())  # auto_chunk_size, as the library


def test_auto_chunk_size_gives_each_worker_four_chunks_within_bounds() -> None:
    from sercap.features.extract import CHUNK_SIZE, MIN_CHUNK_SIZE, auto_chunk_size

    assert auto_chunk_size(535, 1) == CHUNK_SIZE == 128  # EmoDB, one process
    assert auto_chunk_size(535, 2) == 67  # 8 chunks for 2 workers
    assert auto_chunk_size(10, 2) == MIN_CHUNK_SIZE
    assert auto_chunk_size(10_039, 8) == CHUNK_SIZE


# ----------------------------------------------------------------------------- item 5, 7
def _huge_corpus(root: Path, n_good: int = 3) -> Path:
    """``n_good`` voices and ``huge.wav``: a float32 wav with finite samples around 1e20."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_good):
        sf.write(root / f"g{i}.wav", voice(0.6, 130 + 20 * i, i), SR)
        rows.append((f"g{i}.wav", "neu", f"s{i % 2}"))
    sf.write(root / "huge.wav", voice(0.6, 150, 7) * np.float32(1e20), SR, subtype="FLOAT")
    rows.append(("huge.wav", "ang", "s0"))
    pl.DataFrame(rows, schema=["path", "label", "speaker"], orient="row").write_csv(
        root / "manifest.csv"
    )
    return root / "manifest.csv"


@pytest.fixture
def huge_wh(tmp_path):
    wh = connect(tmp_path / "wh")
    ingest(wh, "manifest", _huge_corpus(tmp_path / "corpus"), name="toy")
    yield wh
    wh.close()


def _errors(wh) -> dict[str, str]:
    rows = wh.con.execute("SELECT utt_id, error FROM extractions WHERE status = 'error'")
    return dict(rows.fetchall())


def test_a_huge_amplitude_file_is_recorded_and_the_others_are_stored(huge_wh) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = extract(huge_wh, "default", progress=False)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert (summary.done, summary.failed) == (3, 1)
    (utt, error), *_ = _errors(huge_wh).items()
    assert "absurd amplitude" in error and "\n" not in error
    text = "\n".join(summary.lines())
    assert "absurd amplitude" in text and "huge.wav" in text  # the file is named
    assert huge_wh.scalar("SELECT count(*) FROM utterance_features") == 3


def test_descriptor_and_sql_failures_are_recorded_per_utterance(huge_wh, monkeypatch) -> None:
    """Past the audio checks, the same file breaks the SQL functionals of its chunk (DuckDB:
    SKEW is out of range) and, before them, the descriptors (inf): each failure is recorded
    against that file and the other utterances of the chunk are stored."""
    import sercap.audio
    import sercap.features.extract as ex

    monkeypatch.setattr(sercap.audio, "MAX_PEAK", float("inf"))
    check_finite = ex._check_finite
    monkeypatch.setattr(ex, "_check_finite", lambda value: value)
    summary = extract(huge_wh, "default", chunk_size=64, progress=False)
    assert (summary.done, summary.failed) == (3, 1)
    error = next(iter(_errors(huge_wh).values()))
    assert error.startswith(f"{ex.FUNCTIONALS_FAILED} on ") and "huge.wav" in error
    assert "out of range" in error.lower() and "\n" not in error
    ids = huge_wh.query("SELECT utt_id FROM utterance_features")["utt_id"]
    assert ids.len() == ids.n_unique() == 3

    monkeypatch.setattr(ex, "_check_finite", check_finite)
    summary = extract(huge_wh, "default", retry_errors=True, progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (0, 1, 3)
    error = next(iter(_errors(huge_wh).values()))
    assert error.startswith(f"{ex.DESCRIPTORS_FAILED} on ") and "huge.wav" in error
    assert "huge.wav" in "\n".join(summary.lines())


def _voice_manifest(root: Path, n: int, seconds: float = 1.0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sf.write(root / f"u{i:02d}.wav", voice(seconds, 110 + 5 * i, i), SR)
        rows.append((f"u{i:02d}.wav", "neu", f"s{i % 4}"))
    pl.DataFrame(rows, schema=["path", "label", "speaker"], orient="row").write_csv(
        root / "manifest.csv"
    )
    return root / "manifest.csv"


def sigint_when(
    args: list[str], ready, delay: float, timeout: float = 180.0, sig=None, group=False
):
    """Run ``cli.py ARGS``, send a real SIGINT (or ``sig``) ``delay`` s after ``ready()``
    turns true (or the process ends), and return (exit code, stderr). With ``group`` the
    signal goes to the command's whole process group, as a closing terminal or `timeout`
    sends it (its workers and multiprocessing's resource tracker get it too)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cli = Path(__file__).resolve().parents[1] / "cli.py"
    proc = subprocess.Popen(
        [sys.executable, str(cli), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,
    )
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline and not ready():
        time.sleep(0.02)
    time.sleep(delay)
    sent = time.time()
    if proc.poll() is None:
        (os.killpg if group else os.kill)(proc.pid, sig or signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    print(f"{args[2]}: exit {proc.returncode}, {time.time() - sent:.1f} s after the signal")
    return proc.returncode, err


def assert_one_line_interrupt(code: int, err: str, status: int = 130) -> None:
    assert code in (0, status), (code, err)
    assert "Traceback" not in err and "Error" not in err, err
    if code == status:
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines == ["interrupted: everything already stored is kept; rerun to resume"], err


def assert_stored_once(wh_dir: Path, n: int) -> int:
    with connect(wh_dir, read_only=True) as wh:
        stored = wh.scalar("SELECT count(*) FROM extractions")
        ids = wh.query("SELECT utt_id FROM utterance_features")["utt_id"]
        assert ids.len() == ids.n_unique() == stored
        if stored:  # (with nothing stored, `frames` is an empty placeholder)
            keys = wh.query("SELECT utt_id, frame FROM frames")
            assert keys.height == keys.unique().height
            assert keys["utt_id"].n_unique() == stored
        return stored


@pytest.mark.slow
def test_sigint_at_any_moment_of_extract_ends_in_one_line(tmp_path) -> None:
    """Real SIGINTs early (pool starting), mid and late in `extract`, with one job and with a
    pool: exit 130 and one line (no traceback, no "transaction is aborted"), then the
    warehouse opens and a rerun stores every utterance exactly once."""
    n = 12
    wh_dir = tmp_path / "wh"
    with connect(wh_dir) as wh:
        ingest(wh, "manifest", _voice_manifest(tmp_path / "corpus", n, 0.5), name="toy")
    parts = wh_dir / "features"

    def n_parts() -> int:
        return len(list(parts.rglob("*.parquet")))

    args = ["-w", str(wh_dir), "extract", "--chunk-size", "1"]
    moments = [  # (jobs, ready, delay)
        ("2", lambda: parts.exists(), 0.3),  # early: the workers are being spawned
        ("1", lambda: n_parts() >= 1, 0.0),  # mid, inline: DuckDB queries in flight
        ("2", lambda: n_parts() >= 3, 0.1),  # mid, in the workers' pool
        ("1", lambda: n_parts() >= n - 1, 0.0),  # late
    ]
    for jobs, ready, delay in moments:
        code, err = sigint_when([*args, "--jobs", jobs], ready, delay)
        assert_one_line_interrupt(code, err)
        assert_stored_once(wh_dir, n)
    with connect(wh_dir) as wh:
        before = wh.scalar("SELECT count(*) FROM extractions")
        summary = extract(wh, "default", progress=False)
        assert summary.skipped == before and summary.done == n - before
        assert summary.failed == 0
    assert assert_stored_once(wh_dir, n) == n
    assert len(list(parts.rglob("*.parquet"))) == len(list((wh_dir / "frames").rglob("*.parquet")))
    # `timeout` or `docker stop`: SIGTERM stops the pool like Ctrl-C (was 4 tracebacks from
    # orphaned workers and parts nobody registered), exit 143
    import signal

    other = tmp_path / "wh2"
    with connect(other) as wh:
        ingest(wh, "manifest", tmp_path / "corpus" / "manifest.csv", name="toy")
    stored = other / "features"
    code, err = sigint_when(["-w", str(other), *args[2:], "--jobs", "2"],
                            lambda: len(list(stored.rglob("*.parquet"))) >= 2, 0.0,
                            sig=signal.SIGTERM)  # fmt: skip
    assert_one_line_interrupt(code, err, status=143)
    assert_stored_once(other, n)
    # a closing terminal: SIGHUP to the whole process group killed multiprocessing's
    # resource tracker too, whose relaunched copy printed 5 KeyError tracebacks (exit 129)
    code, err = sigint_when(["-w", str(other), *args[2:], "--jobs", "2"],
                            lambda: len(list(stored.rglob("*.parquet"))) >= 4, 0.0,
                            sig=signal.SIGHUP, group=True)  # fmt: skip
    assert_one_line_interrupt(code, err, status=129)
    assert_stored_once(other, n)


def test_a_descriptor_with_infinite_values_is_rejected_by_name() -> None:
    from sercap.features.extract import _check_finite
    from sercap.features.featureset import get_feature_set
    from sercap.features.lld import compute_frames

    y = (0.3 * np.sin(2 * np.pi * 200 * np.arange(8000) / 16000)).astype(np.float32)
    cols = compute_frames(y, get_feature_set("default").params)
    assert _check_finite(cols) is cols
    cols.matrix[list(cols).index("spectral_flux"), 3] = np.inf  # in place: still the rows
    with pytest.raises(FloatingPointError, match="^spectral_flux has infinite values"):
        _check_finite(cols)
    with pytest.raises(FloatingPointError, match="features has infinite"):
        _check_finite(np.array([1.0, np.inf]))


def test_a_worker_killed_mid_task_stops_the_pool_in_one_line_instead_of_hanging() -> None:
    """multiprocessing.Pool waited for a dead worker's task for ever (no CPU, no output)."""
    from sercap.features.extract import pool_results
    from tests.helpers import double_or_die

    assert sorted(pool_results(iter([0, 1, 2, 4]), 2, work=double_or_die)) == [0, 2, 4, 8]
    got = []
    with pytest.raises(SercapError, match="an extraction worker process died") as info:
        for result in pool_results(iter(range(8)), 2, work=double_or_die):
            got.append(result)
    assert "\n" not in str(info.value) and 6 not in got


def test_no_worker_starts_outside_the_sigint_guard() -> None:
    """Workers are started by ``submit`` in the main thread while SIGINT is ignored, so a
    Ctrl-C during a worker's start-up reaches only the main process. A pool that replaces
    workers after N tasks (max_tasks_per_child) starts the replacement from its manager
    thread, outside that guard: the replacement then dies of Ctrl-C with a traceback."""
    from sercap.features.extract import pool_results
    from tests.helpers import worker_pid

    pids = set(pool_results(iter(range(120)), 2, work=worker_pid))
    assert len(pids) <= 2


def test_tasks_name_their_folders_absolutely(tmp_path, monkeypatch) -> None:
    """With a relative -w, tasks named relative folders: a Dask worker (another current
    folder) refused them as invisible, or wrote into an older copy of that name."""
    from sercap.features.extract import make_tasks, pending

    manifest = make_corpus(tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    with connect("wh") as wh:
        ingest(wh, "manifest", manifest, name="toy")
        fs = get_feature_set("default")
        from sercap.features.stored import register

        register(wh, fs)
        items, *_ = pending(wh, fs, None, False, None)
        tasks = list(make_tasks(wh, fs, items, 4))
    assert tasks and all(Path(t.out_dir).is_absolute() for t in tasks)
    assert all(Path(t.frames_dir).is_absolute() for t in tasks)


def test_frame_times_are_whole_samples_at_the_sets_rate(corpus_wh) -> None:
    """A 10 ms hop at 22.05 kHz is 220 samples (9.977 ms): time_s and the voicing segment
    lengths used the nominal 10 ms and drifted 0.23 % late."""
    wh = corpus_wh
    fs = get_feature_set("default").with_params(name="sr22", sample_rate=22050, n_fft=1024)
    # only such a set's numbers changed, so only its hash: the built-in sets keep theirs
    assert fs.versions["frame_times"] == "samples"
    assert "frame_times" not in get_feature_set("default").versions
    extract(wh, fs, progress=False)
    frames = wh.query("SELECT utt_id, count(*) AS n, max(time_s) AS t FROM frames_sr22 GROUP BY 1")
    assert frames.height == GOOD
    for _utt, n, t in frames.iter_rows():
        assert t == pytest.approx((n - 1) * 220 / 22050 + 551 / 2 / 22050, abs=1e-6)
    # a voiced stretch lasts a whole number of hops
    longest = wh.query("SELECT voiced_seg_len_max AS s FROM features_sr22 WHERE s > 0")["s"]
    assert longest.len() > 0
    for seconds in longest:
        hops = seconds * 22050 / 220
        assert abs(hops - round(hops)) < 1e-4, seconds


def test_progress_lines_where_no_bar_shows(corpus_wh) -> None:
    """`extract` into a log file printed nothing for minutes at IEMOCAP's size."""
    import re

    lines: list[str] = []
    summary = extract(corpus_wh, "default", progress=False, chunk_size=2, say=lines.append,
                      every_s=0.0)  # fmt: skip
    total = summary.done + summary.failed
    assert len(lines) == -(-total // 2)  # a line per chunk when every_s is 0
    counts = [int(re.match(r"  (\d+) of (\d+) utterances", line).group(1)) for line in lines]
    assert counts == sorted(counts) and counts[-1] == total
    assert lines[-1].startswith(f"  {total} of {total} utterances (100%), ")
    assert lines[-1].endswith("× real time")
    quiet: list[str] = []
    extract(corpus_wh, "default", progress=False, say=quiet.append, retry_errors=True)
    assert quiet == []  # nothing to do, or under every_s: no line


def test_an_in_process_extract_leaves_no_functionals_connection_open(corpus_wh) -> None:
    """The functionals keep one DuckDB per thread across a run's chunks; kept after the run,
    a notebook's process held DuckDB's buffers (~70 MB on EmoDB) until it ended."""
    from sercap.features import functionals

    extract(corpus_wh, "default", jobs=1, progress=False)
    assert getattr(functionals._LOCAL, "con", None) is None


def test_a_chunk_runs_with_the_collector_paused_and_gives_it_back(monkeypatch) -> None:
    """The cyclic collector is off while a chunk computes (its passes walked the 140,000
    objects numba and scipy hold), and on again after, even when the chunk fails; a caller
    that had turned it off keeps it off."""
    import gc

    from sercap.features import extract as module

    seen = []

    def chunk(task):
        seen.append(gc.isenabled())
        if task == "fail":
            raise RuntimeError("chunk failed")
        return task

    monkeypatch.setattr(module, "_run_task", chunk)
    assert gc.isenabled()
    assert module.run_task("ok") == "ok"
    with pytest.raises(RuntimeError):
        module.run_task("fail")
    assert seen == [False, False] and gc.isenabled()
    gc.disable()
    try:
        module.run_task("ok")
        assert not gc.isenabled()
    finally:
        gc.enable()
