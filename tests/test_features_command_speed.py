"""The whole-command extraction benchmark: real processes, real warehouses, honest sums."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

import sercap
from sercap.errors import SercapError
from sercap.features.command_speed import CommandTiming, commands_table, opensmile_loop
from tests.helpers import SR, voice


def _corpus(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        sf.write(root / f"u{i}.wav", voice(0.5 + 0.1 * i, 140 + 20 * i, i), SR)
        rows.append((f"u{i}.wav", ["ang", "neu", "sad"][i % 3], f"s{i}"))
    pl.DataFrame(rows, schema=["path", "label", "speaker"], orient="row").write_csv(
        root / "manifest.csv"
    )
    return root / "manifest.csv"


def test_commands_table_divides_what_it_measured() -> None:
    rows = [
        CommandTiming("sercap extract --jobs 1", "x", 10.0, 1500.0, (9.0, 10.0, 12.5)),
        CommandTiming("openSMILE eGeMAPSv02, one process", "y", 40.0, 1500.0, (40.0,)),
    ]
    table = commands_table(rows)
    assert table["runs_s"].to_list() == ["9.00 10.00 12.50", "40.00"]
    assert table["x_real_time"].to_list() == [150.0, 37.5]
    assert table["vs_opensmile"].to_list() == [4.0, 1.0]
    no_ref = commands_table(rows[:1])
    assert no_ref["vs_opensmile"].to_list() == [None]


@pytest.mark.slow
def test_whole_commands_extract_in_fresh_warehouses_and_leave_ours_alone(tmp_path) -> None:
    manifest = _corpus(tmp_path / "corpus")
    audio_s = sum(sf.info(str(p)).duration for p in sorted((tmp_path / "corpus").glob("*.wav")))
    # a silent file extract refuses: it was counted in the audio both sides were credited
    # with, and in openSMILE's list, though extract stored nothing of it
    sf.write(tmp_path / "corpus" / "quiet.wav", np.zeros(SR), SR)
    with manifest.open("a") as f:
        f.write("quiet.wav,neu,s9\n")
    wh = sercap.connect(tmp_path / "wh")
    sercap.ingest(wh, "manifest", manifest)
    work = tmp_path / "work"
    said: list[str] = []
    table = sercap.bench_extract_commands(
        wh, jobs=2, opensmile=False, work_dir=work, repeat=1, say=said.append
    )
    assert table["command"].to_list() == ["sercap extract --jobs 1", "sercap extract --jobs 2"]
    assert table["audio_s"].to_list() == [pytest.approx(audio_s, abs=0.1)] * 2
    assert any("1 of 4 utterances failed in extract" in line for line in said), said
    for seconds, speed in zip(table["seconds"], table["x_real_time"], strict=True):
        assert seconds > 0 and speed == pytest.approx(audio_s / seconds, rel=0.02, abs=0.1)
    # each timed command really extracted every utterance, into its own copy
    for name in ("extract-jobs1", "extract-jobs2"):
        copy = sercap.connect(work / name, read_only=True)
        done = copy.query("SELECT count(*) AS n FROM extractions WHERE status = 'ok'")["n"][0]
        copy.close()
        assert done == 3
    # and the benchmarked warehouse was not touched
    assert wh.query("SELECT count(*) AS n FROM extractions")["n"][0] == 0
    wh.close()


def test_a_failing_command_is_one_line_naming_it(tmp_path) -> None:
    manifest = _corpus(tmp_path / "corpus")
    wh = sercap.connect(tmp_path / "wh")
    sercap.ingest(wh, "manifest", manifest)
    manifest.unlink()  # re-ingesting from the corpus' folder now fails
    with pytest.raises(SercapError, match=r"^sercap ingest manifest failed: "):
        sercap.bench_extract_commands(wh, jobs=1, opensmile=False, work_dir=tmp_path / "w")
    wh.close()


def test_the_opensmile_loop_decodes_and_processes_every_file(tmp_path) -> None:
    pytest.importorskip("opensmile")
    manifest = _corpus(tmp_path / "corpus", n=2)
    listing = tmp_path / "audio.json"
    paths = sorted(str(p) for p in manifest.parent.glob("*.wav"))
    listing.write_text(
        str([[p, None, None] for p in paths]).replace("'", '"').replace("None", "null")
    )
    assert opensmile_loop(listing) == 2


def test_rounds_interleave_the_commands_and_rows_are_medians(tmp_path, monkeypatch) -> None:
    """Every round runs every command once, on a fresh copy; a row is its runs' median."""
    from sercap.features import command_speed

    clock = iter([3.0, 9.0, 5.0, 1.0, 4.0, 2.0, 9.0, 9.0])  # extract runs, in call order
    calls: list[list[str]] = []

    def fake_run(argv, what, ok=(0,)):
        calls.append(list(argv))
        if "ingest" in argv:  # the template: a folder with a catalog file
            root = Path(argv[argv.index("-w") + 1])
            root.mkdir(parents=True)
            (root / "sercap.duckdb").write_bytes(b"")
            return 0.1, ""
        if "--limit" in argv and argv[argv.index("--limit") + 1] == "1":
            return 0.1, ""  # the untimed warm-up
        return next(clock), ""

    monkeypatch.setattr(command_speed, "run_timed", fake_run)
    monkeypatch.setattr(command_speed, "_opensmile_available", lambda: False)
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")  # (read once before the clock starts, to warm the OS cache)
    monkeypatch.setattr(
        command_speed, "stored_audio", lambda *a, **k: ([(str(wav), None, None)], 10.0)
    )
    rows = command_speed.time_commands(
        "manifest", tmp_path / "c", "c", jobs=2, repeat=3, work_dir=tmp_path / "w"
    )
    timed = [a[a.index("--jobs") + 1] for a in calls[2:]]
    assert timed == ["1", "2", "1", "2", "1", "2"]  # round by round, not command by command
    assert [r.runs for r in rows] == [(3.0, 5.0, 4.0), (9.0, 1.0, 2.0)]
    assert [r.seconds for r in rows] == [4.0, 2.0]
