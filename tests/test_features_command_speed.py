"""The whole-command extraction benchmark: real processes, real warehouses, honest sums."""

from pathlib import Path

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


def test_whole_commands_extract_in_fresh_warehouses_and_leave_ours_alone(tmp_path) -> None:
    manifest = _corpus(tmp_path / "corpus")
    wh = sercap.connect(tmp_path / "wh")
    sercap.ingest(wh, "manifest", manifest)
    work = tmp_path / "work"
    said: list[str] = []
    table = sercap.bench_extract_commands(
        wh, jobs=2, opensmile=False, work_dir=work, repeat=2, say=said.append
    )
    assert table["command"].to_list() == ["sercap extract --jobs 1", "sercap extract --jobs 2"]
    # interleaved rounds; each row is the median of its own runs
    timed = [line for line in said if line.startswith("round ")]
    assert timed == [
        f"round {r}/2: timing sercap extract --jobs {n}" for r in (1, 2) for n in (1, 2)
    ]
    for seconds, runs in zip(table["seconds"], table["runs_s"], strict=True):
        values = [float(x) for x in runs.split()]
        assert len(values) == 2 and seconds == pytest.approx(sum(values) / 2, abs=0.011)
    audio_s = sum(sf.info(str(p)).duration for p in sorted((tmp_path / "corpus").glob("*.wav")))
    assert table["audio_s"].to_list() == [pytest.approx(audio_s, abs=0.1)] * 2
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
