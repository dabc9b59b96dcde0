"""IEMOCAP reader and ingest on hand-written annotation files with every line variant."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sercap.corpora import iemocap
from sercap.corpora.ingest import ingest
from sercap.corpora.records import Problem
from sercap.errors import SercapError
from sercap.store import Warehouse

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"

#: Session → dialog → blocks (written in this order: NOT time order).
ANNOTATIONS: dict[int, dict[str, list[str]]] = {
    1: {
        "Ses01F_impro01": [
            "[10.0100 - 11.3925]\tSes01F_impro01_F001\tneu\t[2.5000, 2.0000, 2.5000]\n"
            "C-E2:\tNeutral;\t()\n"
            "C-E3:\tNeutral;\t()\n"
            "C-E4:\tNeutral;\t()\n"
            "C-F1:\tNeutral;\t(curious)\n"
            "A-E3:\tval 3; act 2; dom  2;\t()\n"
            "A-E4:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)\n"
            "A-F1:\tval 3; act 2; dom  1;\t()",
            "[6.2901 - 8.2357]\tSes01F_impro01_F000\tfru\t[2.0000, 3.0000, 3.5000]\n"
            "C-E1:\tFrustration; Disgust; Anger;\t(comment)\n"
            "C-E2:\tFrustration;\t()\n"
            "C-E3:\tNeutral;\t()\n"
            "A-E1:\tval  2; act 3;  dom 4;\t()",
            "[14.0000 - 16.5000]\tSes01F_impro01_M000\txxx\t[3.0000, 3.0000, 3.0000]\n"
            "C-E1:\tNeutral;\t()\n"
            "C-E2:\tSadness;\t()\n"
            "C-E3:\tFrustration;\t()\n"
            "C-M1:\tSadness;\t()\n"
            "A-M1:\tval 2; act 2; dom 2;\t()",
        ],
        "Ses01F_script01_1": [
            "[3.1000 - 5.0000]\tSes01F_script01_1_M001\texc\t[4.0000, 4.0000, 3.0000]\n"
            "C-E1:\tExcited;\t()\nC-E2:\tExcited; Happiness;\t()\nC-E3:\tHappiness;\t()",
            "[0.5000 - 2.9000]\tSes01F_script01_1_F002\thap\t[4.5000, 3.0000, 3.0000]\n"
            "C-E1:\tHappiness;\t()\nC-E2:\tHappiness;\t()\nC-E4:\tSurprise;\t()",
            "[6.0000 - 7.2500]\tSes01F_script01_1_M002\tang\t[1.5000, 4.5000, 4.0000]\n"
            "C-E1:\tAnger;\t()\nC-E3:\tAnger; Frustration;\t()\nC-E5:\tAnger;\t()",
        ],
    },
    3: {
        "Ses03M_impro05a": [
            "[1.0000 - 2.0000]\tSes03M_impro05a_F000\tang\t[2.0000, 4.0000, 4.0000]\n"
            "C-E1:\tAnger;\t()\nC-E2:\tAnger;\t()\nA-E1:\tval 2; act 4; dom 4;\t()",
            "[2.5000 - 4.0000]\tSes03M_impro05a_M000\texc\t[4.0000, 4.0000, 3.0000]\n"
            "C-E1:\tExcited;\t()\nC-E2:\tExcited;\t()",
            "[4.5000 - 5.5000]\tSes03M_impro05a_M001\tneu\t[3.0000, 2.0000, 3.0000]\n"
            "C-E1:\tNeutral;\t()\nC-E2:\tNeutral;\t()",
        ],
        "Ses03M_impro05b": [
            "[0.2000 - 1.9000]\tSes03M_impro05b_M003\tsur\t[3.5000, 3.5000, 2.5000]\n"
            "C-E1:\tSurprise;\t()\nC-E2:\tSurprise; Excited;\t()",
            "[2.0000 - 3.0000]\tSes03M_impro05b_F000\tsad\t[1.5000, 1.5000, 2.0000]\n"
            "C-E1:\tSadness;\t()\nC-E2:\tSadness;\t()\nC-F1:\tFear;\t()",
        ],
    },
    5: {
        "Ses05M_script01_1b": [
            "[9.0000 - 10.0000]\tSes05M_script01_1b_M010\thap\t[4.0000, 3.0000, 3.0000]\n"
            "C-E1:\tHappiness;\t()\nC-E2:\tHappiness;\t()",
            "[1.0000 - 3.0000]\tSes05M_script01_1b_F003\texc\t[4.0000, 4.5000, 3.5000]\n"
            "C-E1:\tExcited;\t()\nC-E2:\tExcited;\t()\nA-E2:\tval 4;act 5; dom 3;\t()",
            "[4.0000 - 6.0000]\tSes05M_script01_1b_F004\tsad\t[2.0000, 2.0000, 2.0000]\n"
            "C-E1:\tSadness;\t()\nC-E2:\tSadness;\t()",
        ],
    },
}
EXPECTED_LABELS = {"neu": 2, "fru": 1, "xxx": 1, "hap": 2, "exc": 3, "ang": 2, "sad": 2, "sur": 1}
N_UTTERANCES = sum(EXPECTED_LABELS.values())


def write_wav(path: Path, seconds: float = 0.3, sample_rate: int = 16000, channels: int = 1):
    """A short tone (valid audio) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    data = np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone
    sf.write(path, data, sample_rate, subtype="PCM_16")


def make_iemocap(root: Path, sessions: tuple[int, ...] = (1, 3, 5)) -> Path:
    """IEMOCAP_full_release/ with the given sessions, distractor files and one wav each."""
    release = root / "IEMOCAP_full_release"
    for session in sessions:
        base = release / f"Session{session}"
        evaluation = base / "dialog" / "EmoEvaluation"
        for sub in ("Categorical", "Attribute", "Self-evaluation"):
            (evaluation / sub).mkdir(parents=True, exist_ok=True)
            (evaluation / sub / "junk_e1_cat.txt").write_text("Ses01F_impro01_F000 :Neutral;\n")
        for dialog, blocks in ANNOTATIONS[session].items():
            (evaluation / f"{dialog}.txt").write_text(HEADER + "\n\n".join(blocks) + "\n\n")
            (evaluation / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
            for block in blocks:
                utt_id = block.split("\t")[1]
                wav_dir = base / "sentences" / "wav" / dialog
                write_wav(wav_dir / f"{utt_id}.wav")
                (wav_dir / f"._{utt_id}.wav").write_bytes(b"\x00\x05\x16\x07")
    return release


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return make_iemocap(tmp_path / "corpus")


def read_all(root: Path) -> tuple[dict, list[Problem]]:
    problems: list[Problem] = []
    records = {r.utt_id: r for r in iemocap.read(root, problems)}
    return records, problems


def table_dump(wh: Warehouse) -> dict[str, list]:
    tables = ("corpora", "utterances", "labels", "evaluations", "ingest_problems")
    return {table: wh.query(f"SELECT * FROM {table} ORDER BY ALL").rows() for table in tables}


# ---------------------------------------------------------------------------- reader
def test_reader_parses_every_line_variant(release: Path) -> None:
    records, problems = read_all(release)
    assert problems == []
    assert len(records) == N_UTTERANCES
    f000 = records["Ses01F_impro01_F000"]
    assert (f000.speaker, f000.session, f000.gender, f000.emotion) == (
        "Ses01F",
        "Ses01",
        "F",
        "fru",
    )
    assert f000.votes == ("fru", "dis", "ang", "fru", "neu")  # external evaluators only
    assert (f000.valence, f000.activation, f000.dominance) == (2.0, 3.0, 3.5)
    assert (f000.source_start_s, f000.source_end_s) == (6.2901, 8.2357)
    assert f000.start_s is None and f000.end_s is None  # the per-utterance wav is loaded whole
    assert (
        f000.path
        == (release / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav").absolute()
    )
    attribute = next(e for e in f000.evaluations if e.kind == "attribute")
    assert (attribute.valence, attribute.activation, attribute.dominance) == (2.0, 3.0, 4.0)
    comment = next(e for e in f000.evaluations if e.evaluator == "E1" and e.kind == "categorical")
    assert comment.comment == "comment" and comment.emotions == ("fru", "dis", "ang")

    f001 = records["Ses01F_impro01_F001"]
    self_votes = [e for e in f001.evaluations if e.is_self]
    assert {(e.evaluator, e.kind) for e in self_votes} == {
        ("F1", "categorical"),
        ("F1", "attribute"),
    }
    assert f001.evaluations[-2].comment == "mildly aggravated but staying polite, attitude"
    # the speaker is the LAST F/M of the id, whatever the dialog's letter
    assert records["Ses03M_impro05a_F000"].speaker == "Ses03F"
    assert records["Ses05M_script01_1b_M010"].speaker == "Ses05M"
    assert records["Ses05M_script01_1b_F003"].text_id == "script01_1b"
    assert records["Ses05M_script01_1b_F003"].activation == 4.5
    speakers = {r.speaker for r in records.values()}
    assert speakers == {"Ses01F", "Ses01M", "Ses03F", "Ses03M", "Ses05F", "Ses05M"}


def test_an_annotation_file_saved_with_a_bom_reads_the_same(release: Path) -> None:
    """Saved by an editor as "UTF-8 with BOM": the BOM glued to the header made its first
    line a malformed summary line."""
    before, _ = read_all(release)
    path = release / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    path.write_text("\ufeff" + path.read_text(), encoding="utf-8")
    after, problems = read_all(release)
    assert problems == [] and after == before


@pytest.mark.parametrize("where", ["corpus", "release", "session"])
def test_reader_accepts_release_parent_release_or_one_session(release: Path, where: str) -> None:
    root = {"corpus": release.parent, "release": release, "session": release / "Session3"}[where]
    records, _ = read_all(root)
    assert len(records) == (5 if where == "session" else N_UTTERANCES)


# ---------------------------------------------------------------------------- ingest
def test_ingest_counts_label_maps_and_tables(wh: Warehouse, release: Path) -> None:
    summary = ingest(wh, "iemocap", release)
    assert (summary.added, summary.updated, summary.problems) == (N_UTTERANCES, 0, [])
    assert dict(summary.per_label.rows()) == EXPECTED_LABELS
    assert summary.per_speaker.height == 6
    assert summary.in_label_map == 11
    counts = {
        view: wh.scalar(f"SELECT count(*) FROM {view}")
        for view in ("iemocap4", "iemocap4_strict", "iemocap4_impro", "iemocap6")
    }
    assert counts == {"iemocap4": 11, "iemocap4_strict": 8, "iemocap4_impro": 5, "iemocap6": 12}
    scripted = wh.scalar("SELECT count(*) FROM iemocap4_impro WHERE utt_id LIKE '%script%'")
    assert scripted == 0
    merged = dict(wh.query("SELECT label, count(*) FROM iemocap4 GROUP BY 1").rows())
    assert merged == {"neu": 2, "ang": 2, "sad": 2, "hap": 5}
    corpus = wh.query("SELECT kind, label_map, protocol FROM corpora").row(0)
    assert corpus == ("iemocap", "iemocap4", "leave-one-session-out")
    row = wh.query(
        "SELECT sample_rate, channels, duration_s, start_s, source_start_s FROM utterances "
        "WHERE utt_id = 'Ses01F_impro01_F000'"
    ).row(0)
    assert row == (16000, 1, pytest.approx(0.3), None, 6.2901)
    assert wh.scalar("SELECT count(*) FROM evaluations WHERE is_self") == 5
    assert wh.scalar("SELECT count(*) FROM evaluations") == 44
    folds = dict(wh.query("SELECT fold, count(DISTINCT speaker) FROM folds GROUP BY 1").rows())
    assert folds == {"Ses01": 2, "Ses03": 2, "Ses05": 2}


def test_ingest_twice_changes_nothing(wh: Warehouse, release: Path) -> None:
    ingest(wh, "iemocap", release)
    before = table_dump(wh)
    again = ingest(wh, "iemocap", release)
    assert (again.added, again.updated, again.unchanged) == (0, 0, N_UTTERANCES)
    assert table_dump(wh) == before


def test_bigger_copy_adds_only_what_is_new(wh: Warehouse, tmp_path: Path) -> None:
    release = make_iemocap(tmp_path / "corpus", sessions=(1,))
    assert ingest(wh, "iemocap", release).added == 6
    make_iemocap(tmp_path / "corpus", sessions=(3, 5))  # the same folder grows
    grown = ingest(wh, "iemocap", release)
    assert (grown.added, grown.updated, grown.unchanged) == (N_UTTERANCES - 6, 0, 6)
    assert wh.scalar("SELECT count(*) FROM utterances") == N_UTTERANCES
    moved = ingest(wh, "iemocap", make_iemocap(tmp_path / "copy"))  # a copy elsewhere
    assert (moved.added, moved.updated) == (0, N_UTTERANCES)  # only the paths changed
    assert wh.scalar("SELECT count(*) FROM utterances WHERE path LIKE '%/copy/%'") == N_UTTERANCES


def test_corpus_name_and_id_ownership(wh: Warehouse, release: Path) -> None:
    ingest(wh, "iemocap", release, name="demo")
    assert wh.scalar("SELECT name FROM corpora") == "demo"
    assert wh.scalar("SELECT count(*) FROM iemocap4 WHERE corpus = 'demo'") == 11
    with pytest.raises(SercapError, match="already belongs to corpus 'demo'"):
        ingest(wh, "iemocap", release, name="other")
    assert wh.scalar("SELECT count(*) FROM corpora") == 1
    with pytest.raises(SercapError, match="not valid"):
        ingest(wh, "iemocap", release, name="Bad Name")


# ---------------------------------------------------------------------------- bad input
def _session1(release: Path) -> Path:
    return release / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _line_of(path: Path, fragment: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


def test_missing_wav_is_a_problem_at_its_annotation_line(wh: Warehouse, release: Path) -> None:
    wav = release / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    wav.unlink()
    summary = ingest(wh, "iemocap", release)
    assert summary.added == N_UTTERANCES - 1
    (problem,) = summary.problems
    annotation = _session1(release)
    assert (problem.file, problem.line) == (str(annotation), _line_of(annotation, "_F000\t"))
    assert "Ses01F_impro01_F000" in problem.message and "not found" in problem.message
    stored = wh.query("SELECT file, line, problem FROM ingest_problems").rows()
    assert stored == [(problem.file, problem.line, problem.message)]


@pytest.mark.parametrize("missing", ["sentences", "sentences/wav/Ses01F_impro01"])
def test_a_missing_audio_folder_is_one_problem(wh: Warehouse, release: Path, missing: str) -> None:
    """A session without sentences/ (an unfinished copy) was one problem per utterance:
    about 2,000 lines for a real session. It is one line naming the folder."""
    folder = release / "Session1" / missing
    lost = len(list(folder.rglob("Ses*.wav")))
    shutil.rmtree(folder)
    summary = ingest(wh, "iemocap", release)
    assert lost > 1 and summary.added == N_UTTERANCES - lost
    (problem,) = summary.problems
    expected = folder if missing != "sentences" else folder / "wav"
    assert problem.file == str(expected) and "folder not found" in problem.message


@pytest.mark.parametrize(
    ("old", "new", "fragment", "skipped"),
    [
        ("[6.2901 - 8.2357]\t", "[6.2901 - ]\t", "[6.2901 - ]", 1),  # malformed summary
        ("\tfru\t[2.0000", "\tzzz\t[2.0000", "\tzzz\t", 1),  # unknown majority label
        ("C-E2:\tFrustration;", "C-E2 Frustration", "C-E2 Frustration", 0),  # malformed line
        ("C-E3:\tNeutral;\t()\nA-E1", "C-E3:\tConfusion;\t()\nA-E1", "Confusion", 0),
        ("A-E1:\tval  2; act 3;  dom 4;", "A-E1:\tnothing here", "nothing here", 0),
        # one value not a number: the line is kept, and said (it was silent)
        ("A-E1:\tval  2; act 3;  dom 4;", "A-E1:\tval x; act;  dom 4;", "val x; act;", 0),
    ],
)
def test_bad_lines_name_file_and_line(
    wh: Warehouse, release: Path, old: str, new: str, fragment: str, skipped: int
) -> None:
    annotation = _session1(release)
    _edit(annotation, old, new)
    summary = ingest(wh, "iemocap", release)
    assert summary.added == N_UTTERANCES - skipped
    (problem,) = summary.problems
    assert problem.file == str(annotation)
    assert problem.line == _line_of(annotation, fragment)
    assert "\n" not in str(problem) and str(problem).startswith(f"{annotation}:{problem.line}: ")


def test_an_entry_of_another_dialog_does_not_hide_that_utterance(
    wh: Warehouse, release: Path
) -> None:
    """A summary line pasted into the wrong dialog's file claimed the id first (its audio is
    not in that session) and the utterance's own entry was dropped as a duplicate."""
    dialog, blocks = next(iter(ANNOTATIONS[3].items()))
    other = blocks[0].split("\t")[1]
    annotation = _session1(release)
    stray = f"[1.0000 - 2.0000]\t{other}\tang\t[1.5000, 4.5000, 4.0000]\n"
    annotation.write_text(annotation.read_text() + stray + "\n")
    summary = ingest(wh, "iemocap", release)
    assert summary.added == N_UTTERANCES
    assert wh.scalar("SELECT count(*) FROM utterances WHERE utt_id = ?", [other]) == 1
    (problem,) = summary.problems
    assert problem.file == str(annotation) and problem.line == _line_of(annotation, other)
    assert f"{other} is not of this file's dialog Ses01F_impro01" in problem.message


def test_unreadable_evaluation_folder_is_a_problem(wh: Warehouse, release: Path) -> None:
    broken = release / "Session3" / "dialog" / "EmoEvaluation"
    shutil.rmtree(broken)
    broken.write_text("not a folder")
    summary = ingest(wh, "iemocap", release)
    assert summary.added == N_UTTERANCES - 5
    assert [p.file for p in summary.problems] == [str(broken)]


@pytest.mark.parametrize("case", ["no such dir", "no sessions", "wrong kind"])
def test_fatal_errors_write_nothing(wh: Warehouse, tmp_path: Path, case: str) -> None:
    (tmp_path / "empty").mkdir()
    kind, root = {
        "no such dir": ("iemocap", tmp_path / "missing"),
        "no sessions": ("iemocap", tmp_path / "empty"),
        "wrong kind": ("iemocapp", tmp_path / "empty"),
    }[case]
    with pytest.raises(SercapError) as error:
        ingest(wh, kind, root)
    assert "\n" not in str(error.value)
    assert wh.scalar("SELECT count(*) FROM utterances") == 0
    assert wh.scalar("SELECT count(*) FROM corpora") == 0


@pytest.mark.parametrize("interruption", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_inside_the_transaction_leaves_nothing_half_written(
    wh: Warehouse, release: Path, monkeypatch: pytest.MonkeyPatch, interruption: BaseException
) -> None:
    from sercap.store import corpora as corpora_store

    def fail(*args, **kwargs):
        raise interruption

    monkeypatch.setattr(corpora_store, "store_corpus_row", fail)  # after utterances are written
    with pytest.raises(type(interruption)):
        ingest(wh, "iemocap", release)
    assert wh.scalar("SELECT count(*) FROM utterances") == 0
    assert wh.scalar("SELECT count(*) FROM labels") == 0
    assert wh.scalar("SELECT count(*) FROM evaluations") == 0


def test_a_lost_blank_line_between_blocks_does_not_merge_two_turns(release: Path) -> None:
    """Without the blank line before a summary line, the second turn was dropped as a
    "malformed evaluator line" and its evaluators' votes (a self-evaluation too) were filed
    under the first turn."""
    records, _ = read_all(release)
    path = next(release.glob("Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"))
    text = path.read_text()
    first, second = text.split("\n\n")[1:3]  # (after the header) two turns' blocks
    path.write_text(text.replace(f"{first}\n\n{second}", f"{first}\n{second}", 1))
    merged, problems = read_all(release)
    assert problems == []
    assert merged.keys() == records.keys()
    for utt in (first.split("\t")[1], second.split("\t")[1]):
        assert merged[utt].evaluations == records[utt].evaluations
