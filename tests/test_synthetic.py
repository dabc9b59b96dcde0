"""The synthetic IEMOCAP-layout corpus: deterministic, parses back, carries emotion."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sercap.corpora import iemocap
from sercap.corpora.ingest import ingest
from sercap.corpora.records import Problem
from sercap.corpora.synthetic import PROSODY, generate, make_speaker, synthesize
from sercap.errors import SercapError
from sercap.store import Warehouse


def file_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_corpus(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", sessions=2, per_speaker=4, seed=3)
    second = generate(tmp_path / "b", sessions=2, per_speaker=4, seed=3)
    other = generate(tmp_path / "c", sessions=2, per_speaker=4, seed=4)
    assert first.labels == second.labels
    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b")
    assert file_bytes(tmp_path / "a") != file_bytes(tmp_path / "c")
    assert other.labels.keys() == first.labels.keys()  # ids depend on the plan, not the seed


def test_layout_and_annotations_parse_back(wh: Warehouse, tmp_path: Path) -> None:
    result = generate(tmp_path / "synth", sessions=2, per_speaker=14, seed=0)
    assert len(result.labels) == 56
    problems: list[Problem] = []
    records = list(iemocap.read(tmp_path / "synth", problems))
    assert problems == []
    assert {r.utt_id: r.emotion for r in records} == result.labels
    ids = set(result.labels)
    for pattern in ("_impro05a_", "_impro05b_", "_script01_1b_", "_impro01_"):
        assert any(pattern in i for i in ids), pattern
    assert all(
        re.fullmatch(r"Ses0[12][FM]_(impro0\d[ab]?|script0\d_\d[ab]?)_[FM]\d{3}", i) for i in ids
    )
    text = "".join(
        p.read_text() for p in (tmp_path / "synth").glob("Session*/dialog/EmoEvaluation/*.txt")
    )
    assert re.search(r"^C-E\d:\t\w+;", text, re.M) and re.search(r"^C-[FM]1:\t", text, re.M)
    assert re.search(r"^A-E\d:\tval \d; act  ?\d; dom  \d;", text, re.M)  # irregular spacing
    assert any(len(r.votes or ()) > 3 for r in records)  # multi-vote lines
    starts = [r.source_start_s for r in records if r.utt_id.startswith("Ses01F_impro01")]
    assert starts != sorted(starts)  # blocks out of time order

    summary = ingest(wh, "iemocap", tmp_path / "synth")
    assert summary.added == 56 and summary.problems == []
    assert summary.per_speaker.height == 4
    info = wh.query(
        "SELECT min(duration_s), max(duration_s), min(sample_rate), max(channels) FROM utterances"
    ).row(0)
    assert info[0] >= 0.8 and info[1] <= 3.0 and info[2:] == (16000, 1)


def test_default_corpus_has_the_labels_that_make_label_maps_matter() -> None:
    from sercap.corpora.synthetic import plan_corpus

    acted = {u.emotion for u in plan_corpus(5, 36, 0)}
    assert {"neu", "ang", "sad", "hap", "exc", "fru", "sur"} <= acted


def test_emotion_sets_loudness_and_pitch_speaker_sets_pitch() -> None:
    female = make_speaker(1, "F", np.random.default_rng(1))
    male = make_speaker(1, "M", np.random.default_rng(1))

    def level_db(speaker, emotion: str) -> float:
        clips = [synthesize(speaker, emotion, np.random.default_rng(i)) for i in range(8)]
        return float(np.mean([10 * np.log10(np.mean(c**2)) for c in clips]))

    assert level_db(female, "ang") > level_db(female, "neu") + 3 > level_db(female, "sad") + 6
    assert PROSODY["ang"].f0 > PROSODY["neu"].f0 > PROSODY["sad"].f0
    assert female.f0 > 1.5 * male.f0
    clip = synthesize(male, "hap", np.random.default_rng(0))
    assert clip.dtype == np.float32 and np.max(np.abs(clip)) < 1.0 and clip.size >= 0.8 * 16000


def test_written_wavs_are_16k_mono(tmp_path: Path) -> None:
    generate(tmp_path / "s", sessions=1, per_speaker=2, seed=0)
    wavs = sorted((tmp_path / "s").rglob("*.wav"))
    assert len(wavs) == 4
    info = sf.info(str(wavs[0]))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")


def test_rewrites_its_own_folder_and_refuses_others(tmp_path: Path) -> None:
    generate(tmp_path / "s", sessions=2, per_speaker=3, seed=0)
    generate(tmp_path / "s", sessions=1, per_speaker=1, seed=0)
    assert len(list((tmp_path / "s").rglob("*.wav"))) == 2
    assert not (tmp_path / "s" / "Session2").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SercapError, match="not empty"):
        generate(tmp_path / "mine", sessions=1, per_speaker=1)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_an_interrupted_synth_leaves_nothing_the_rerun_refuses(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C half-way left wavs without README.txt: the rerun said "folder is not empty"."""
    from sercap.corpora import synthetic

    calls = {"n": 0}
    real = synthetic.synthesize

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "synthesize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "new", sessions=1, per_speaker=4)
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()  # a folder of the user's, empty: it stays, empty
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "mine", sessions=1, per_speaker=4)
    assert list((tmp_path / "mine").iterdir()) == []
    # the command's line says what happened: it said "everything already stored is kept;
    # rerun to resume" over a folder it had just removed
    from click.testing import CliRunner

    from cli import main

    calls["n"] = 0
    said = CliRunner().invoke(main, ["corpus", "synth", str(tmp_path / "cli")])
    assert said.exit_code == 130 and not (tmp_path / "cli").exists()
    assert "interrupted: the corpus is unfinished" in said.output
    monkeypatch.setattr(synthetic, "synthesize", real)
    assert generate(tmp_path / "mine", sessions=1, per_speaker=1).root == tmp_path / "mine"


def test_a_synth_killed_half_way_is_replaced_by_the_rerun(tmp_path: Path) -> None:
    """kill -9 left wavs without the folder's mark: the rerun refused the folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "corpus"
    command = [sys.executable, str(root / "cli.py"), "corpus", "synth", str(out)]
    child = subprocess.Popen(
        command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not any(out.rglob("*.wav")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert any(out.rglob("*.wav")) and "incomplete" in (out / "README.txt").read_text()
    again = subprocess.run(
        [*command, "--sessions", "1", "--per-speaker", "1"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert "incomplete" not in (out / "README.txt").read_text()


@pytest.mark.parametrize("what", ["wav", "annotation"])
def test_a_corpus_the_disk_cannot_take_is_one_line_naming_the_file(
    tmp_path, monkeypatch, what
) -> None:
    """On a full disk libsndfile said only "System error." (a LibsndfileError, not an
    OSError), and `corpus synth` and `demo` ended in a traceback; an annotation's write
    error named no file."""
    import errno
    from pathlib import Path

    from sercap.corpora import synthetic
    from sercap.errors import SercapError

    full = OSError(errno.ENOSPC, "No space left on device")
    if what == "wav":
        real = Path.write_bytes

        def write_bytes(self, data):
            if self.suffix == ".wav":
                raise full
            return real(self, data)

        monkeypatch.setattr(Path, "write_bytes", write_bytes)
    else:
        monkeypatch.setattr(
            synthetic, "_write_annotation", lambda *a, **k: (_ for _ in ()).throw(full)
        )
    with pytest.raises(SercapError) as caught:
        synthetic.generate(tmp_path / "c", sessions=1, per_speaker=2)
    message = str(caught.value)
    assert "\n" not in message and "No space left on device" in message
    if what == "wav":
        assert message.split(": ")[0].endswith(".wav") and "cannot write" in message
    else:
        assert message.startswith(f"{tmp_path / 'c'}: cannot write the corpus")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.wav"))
