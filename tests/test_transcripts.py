"""IEMOCAP transcriptions: the exact line format, the reader, the transcripts table, the
manifest's text column and the synthetic corpus' transcription files (issue 17)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sercap.corpora import synthetic
from sercap.corpora.ingest import ingest
from sercap.corpora.records import Problem
from sercap.corpora.transcripts import parse_transcription
from sercap.errors import SercapError
from sercap.store import Warehouse
from sercap.textdata import load_text_dataset
from tests.helpers import add_corpus
from tests.test_corpora_iemocap import write_wav

#: The format of the real files, as the issue gives it.
LINE = re.compile(r"^Ses\d\d[FM]_\S+_[FM](\d{3}|XX\d+) \[\d{3}\.\d{4}-\d{3}\.\d{4}\]: \S.*$")


def parse(text: str) -> tuple[dict[str, str], list[Problem]]:
    problems: list[Problem] = []
    return parse_transcription(text, "t.txt", problems), problems


def test_exact_format_with_padding() -> None:
    turns, problems = parse(
        "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n"
        "Ses01F_impro01_M000 [007.5712-010.4750]: Do you have your forms?\n"
        "Ses01F_script01_1b_F012 [123.0000-130.5000]:   spaces   inside  \n"
    )
    assert problems == []
    assert turns == {
        "Ses01F_impro01_F000": "Excuse me.",
        "Ses01F_impro01_M000": "Do you have your forms?",
        "Ses01F_script01_1b_F012": "spaces inside",
    }


def test_unannotated_turns_are_skipped_silently() -> None:
    turns, problems = parse(
        "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n"
        "Ses01F_impro01_MXX0 [008.3000-008.9000]: Mm-hmm.\n"
        "Ses01M_impro05a_FXX12 [010.0000-011.0000]: [LAUGHTER]\n"
    )
    assert list(turns) == ["Ses01F_impro01_F000"] and problems == []


def test_blank_lines_crlf_bom_and_non_ascii() -> None:
    text = (
        "\ufeffSes01F_impro01_F000 [006.2901-008.2357]: Ça va? Naïve café — señor.\r\n"
        "\r\n"
        "   \r\n"
        "Ses01F_impro01_M000 [009.0000-010.0000]: Ok.\r\n"
    )
    turns, problems = parse(text)
    assert problems == []
    assert turns == {
        "Ses01F_impro01_F000": "Ça va? Naïve café — señor.",
        "Ses01F_impro01_M000": "Ok.",
    }


def test_malformed_lines_are_one_problem_each_with_their_line() -> None:
    turns, problems = parse(
        "Ses01F_impro01_F000 [006.2901-008.2357]: Fine.\n"
        "Ses01F_impro01_F001 006.2901-008.2357: no brackets\n"
        "\n"
        "garbage\n"
        "Ses01F_impro01_F002 [009.0000-008.0000]: ends before it starts\n"
        "Ses01F_impro01_F000 [010.0000-011.0000]: again\n"
        "Ses01F_impro01_Q003 [012.0000-013.0000]: odd speaker\n"
        "Ses01F_impro01_F004 [014.0000-015.0000]:   \n"
    )
    assert turns == {"Ses01F_impro01_F000": "Fine."}
    assert [p.line for p in problems] == [2, 4, 5, 6, 7, 8]
    assert "a turn without words" in problems[-1].message  # (a text model learnt from '')
    assert all(p.file == "t.txt" and "\n" not in p.message for p in problems)


def make_tiny(root: Path) -> Path:
    synthetic.generate(root, sessions=2, per_speaker=2, seed=1)
    return root


def test_synthetic_files_follow_the_format_and_ingest_into_transcripts(
    wh: Warehouse, tmp_path: Path
) -> None:
    root = make_tiny(tmp_path / "c")
    files = sorted(root.glob("Session*/dialog/transcriptions/*.txt"))
    annotations = sorted(root.glob("Session*/dialog/EmoEvaluation/*.txt"))
    assert [f.name for f in files] == [f.name for f in annotations]
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    assert lines and all(LINE.match(line) for line in lines), lines
    assert any("XX" in line for line in lines)  # unannotated turns are there to be skipped
    summary = ingest(wh, "iemocap", root)
    assert summary.problems == []
    stored = wh.query("SELECT utt_id, text FROM transcripts ORDER BY utt_id")
    assert stored["utt_id"].to_list() == sorted(summary_ids(wh))
    assert all(text and "XX" not in text for text in stored["text"])
    again = ingest(wh, "iemocap", root)  # idempotent
    assert again.added == again.updated == 0
    assert wh.query("SELECT utt_id, text FROM transcripts ORDER BY utt_id").equals(stored)


def summary_ids(wh: Warehouse) -> list[str]:
    return wh.query("SELECT utt_id FROM utterances")["utt_id"].to_list()


def test_reader_reports_bad_lines_and_missing_files_and_keeps_going(
    wh: Warehouse, tmp_path: Path
) -> None:
    root = make_tiny(tmp_path / "c")
    folder = root / "Session1" / "dialog" / "transcriptions"
    (folder / "Ses01F_impro01.txt").unlink()
    damaged = folder / "Ses01M_impro02.txt"
    lines = damaged.read_text(encoding="utf-8").splitlines()
    first_id = lines[0].split()[0]
    damaged.write_bytes(("\r\n".join(["this is not a turn", *lines[1:]]) + "\r\n").encode())
    summary = ingest(wh, "iemocap", root)
    messages = [str(p) for p in summary.problems]
    assert any("Ses01F_impro01.txt" in m and "no transcription" in m for m in messages)
    assert any("Ses01M_impro02.txt:1: malformed transcription line" in m for m in messages)
    assert any(first_id in m and "no line" in m for m in messages)
    stored = set(wh.query("SELECT utt_id FROM transcripts")["utt_id"].to_list())
    expected = {u for u in summary_ids(wh) if u != first_id and not u.startswith("Ses01F_impro01_")}
    assert stored == expected and len(stored) < summary.stored  # the audio is all there


def test_manifest_text_column(wh: Warehouse, tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", seconds=0.5)
    write_wav(tmp_path / "b.wav", seconds=0.5)
    (tmp_path / "manifest.csv").write_text(
        "path,label,speaker,text\na.wav,angry,s1,Go away — now!\nb.wav,sad,s2,\n",
        encoding="utf-8",
    )
    ingest(wh, "manifest", tmp_path / "manifest.csv", name="mine")
    assert wh.query("SELECT utt_id, text FROM transcripts").rows() == [("a", "Go away — now!")]


def test_words_draw_from_their_own_stream(tmp_path: Path, monkeypatch) -> None:
    """Words leave every other file of a seed byte-identical: without any word drawn (nor
    transcription written) the wavs and annotations are the same bytes."""
    with_words = tmp_path / "with"
    synthetic.generate(with_words, sessions=1, per_speaker=2, seed=4)
    monkeypatch.setattr(synthetic, "_write_transcription", lambda *a, **k: None)
    monkeypatch.setattr(synthetic, "utterance_words", lambda emotion, rng: "Okay.")
    without = tmp_path / "without"
    synthetic.generate(without, sessions=1, per_speaker=2, seed=4)
    others = sorted(
        p.relative_to(without) for p in without.rglob("*") if p.is_file() and p.name != "README.txt"
    )
    assert others and all(
        (with_words / p).read_bytes() == (without / p).read_bytes() for p in others
    )


def test_words_lean_on_the_emotion_only_partly() -> None:
    rng = np.random.default_rng(0)
    for emotion in ("ang", "sad"):
        words = [synthetic.utterance_words(emotion, rng) for _ in range(300)]
        tokens = [w.lower().strip(".?!") for line in words for w in line.split()]
        own = np.mean([t in synthetic.LEANING[emotion] for t in tokens])
        assert 0.05 < own < 0.25  # some emotion-leaning words, mostly filler and topics
        no_cue = np.mean(
            [not any(w.lower().strip(".?!") in synthetic.LEANING[emotion] for w in line.split())
             for line in words]
        )  # fmt: skip
        assert no_cue > 0.2  # many turns carry no word of their own emotion


def test_text_dataset_needs_transcripts(wh: Warehouse) -> None:
    add_corpus(wh)
    with pytest.raises(SercapError, match="no transcripts"):
        load_text_dataset(wh)


def test_a_blank_transcript_is_left_out_like_a_missing_one(wh: Warehouse) -> None:
    """A stored '' was trained on and scored as text, while predict treats blank as none."""
    utts = add_corpus(wh)
    ids = utts["utt_id"].to_list()
    texts = ["  ", ""] + [f"words of {u}" for u in ids[2:]]
    wh.execute(
        "INSERT INTO transcripts SELECT * FROM (SELECT unnest(?) AS utt_id, unnest(?) AS text)",
        [ids, texts],
    )
    data = load_text_dataset(wh)
    assert len(data) == len(ids) - 2 and ids[0] not in set(data.utt_ids)
    assert data.left_out == 2


def test_a_class_without_any_transcript_is_said(wh: Warehouse) -> None:
    """A text run of a corpus where one emotion had no transcripts became a run of a class
    fewer without a word (and bench's report then failed on its confusion matrix)."""
    from sercap.evaluate import data_notes

    utts = add_corpus(wh)
    kept = utts.filter(utts["emotion"] != "sad")["utt_id"].to_list()
    wh.execute(
        "INSERT INTO transcripts SELECT * FROM (SELECT unnest(?) AS utt_id, unnest(?) AS text)",
        [kept, [f"words of {u}" for u in kept]],
    )
    data = load_text_dataset(wh)
    assert data.classes == ["ang", "neu"] and data.classes_left_out == ("sad",)
    assert any("class(es) 'sad' of label map" in n and "2 classes" in n for n in data_notes(data))


def test_ingesting_one_session_after_another_keeps_the_first_sessions_words(
    wh: Warehouse, tmp_path: Path
) -> None:
    """Each ingest deleted every transcript of the corpus and wrote its own: after
    `ingest iemocap s1` then `ingest iemocap s2`, Session1 had no words left and text
    models trained on Session2 alone, saying nothing. Only this ingest's utterances get
    their words replaced now, and a text dataset counts labelled utterances without words."""
    import shutil

    full = make_tiny(tmp_path / "full")
    for session in ("Session1", "Session2"):
        shutil.copytree(full / session, tmp_path / session.lower() / session)
    ingest(wh, "iemocap", tmp_path / "session1")
    first = wh.query("SELECT utt_id, text FROM transcripts ORDER BY utt_id")
    assert first.height and all(u.startswith("Ses01") for u in first["utt_id"])
    ingest(wh, "iemocap", tmp_path / "session2")
    both = wh.query("SELECT utt_id, text FROM transcripts ORDER BY utt_id")
    assert first.rows() == [r for r in both.rows() if r[0].startswith("Ses01")]
    assert any(u.startswith("Ses02") for u in both["utt_id"])
    data = load_text_dataset(wh)
    assert data.left_out == 0  # every labelled utterance has words
    assert any(u.startswith("Ses01") for u in data.utt_ids)
    # a transcription file removed: that dialog's words go, on the next ingest of it
    gone = next(
        f
        for f in sorted((tmp_path / "session1").rglob("transcriptions/*.txt"))
        if any(u.startswith(f.stem + "_") for u in data.utt_ids)
    )
    dialog = gone.stem
    gone.unlink()
    ingest(wh, "iemocap", tmp_path / "session1")
    kept = wh.query("SELECT utt_id FROM transcripts")["utt_id"].to_list()
    assert not any(u.startswith(dialog + "_") for u in kept)
    assert len(kept) < both.height and any(u.startswith("Ses02") for u in kept)
    fewer = load_text_dataset(wh)
    labelled_gone = sum(u.startswith(dialog + "_") for u in data.utt_ids)
    assert fewer.left_out == labelled_gone > 0 and len(fewer) == len(data) - labelled_gone


def test_a_turn_without_words_is_one_problem_and_latin1_is_said(tmp_path: Path) -> None:
    """A turn line with no words was two problems, the second ('no line') wrong; a Latin-1
    transcription was decoded with replacements ('caf\\ufffd') without a word."""
    from sercap.corpora.iemocap import with_transcripts
    from sercap.corpora.records import UtteranceRecord
    from sercap.corpora.transcripts import read_transcription

    path = tmp_path / "Ses01F_script01_1.txt"
    path.write_text("Ses01F_script01_1_F000 [006.2901-008.2357]: \n")
    record = UtteranceRecord(
        utt_id="Ses01F_script01_1_F000", path=tmp_path / "x.wav",
        speaker="Ses01F", session="Ses01", emotion="neu",
    )  # fmt: skip
    problems: list[Problem] = []
    list(with_transcripts(iter([record]), path, problems))
    assert [p.message for p in problems] == ["Ses01F_script01_1_F000: a turn without words"]
    path.write_bytes("Ses01F_script01_1_F000 [006.2901-008.2357]: Awful café\n".encode("latin-1"))
    problems = []
    words = read_transcription(path, problems)
    assert words == {"Ses01F_script01_1_F000": "Awful café"}
    assert [p.message.split(";")[0] for p in problems] == [
        "not UTF-8 text (byte 0xE9 at offset 53)"
    ]
