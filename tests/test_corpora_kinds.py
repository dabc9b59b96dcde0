"""EmoDB (real files), RAVDESS, CREMA-D, TESS and manifest naming; folds of every protocol."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from sercap.corpora.ingest import ingest
from sercap.errors import SercapError
from sercap.store import Warehouse
from tests.test_corpora_iemocap import make_iemocap, write_wav


def speakers_in_two_folds(wh: Warehouse) -> list:
    return wh.query(
        "SELECT corpus, speaker FROM folds GROUP BY ALL HAVING count(DISTINCT fold) > 1"
    ).rows()


def test_emodb_real_files(wh: Warehouse, emodb_dir: Path) -> None:
    summary = ingest(wh, "emodb", emodb_dir)
    assert (summary.added, summary.per_speaker.height, summary.per_label.height) == (535, 10, 7)
    assert summary.problems == []
    assert wh.scalar("SELECT count(*) FROM emodb7") == 535
    genders = dict(wh.query("SELECT speaker, any_value(gender) FROM utterances GROUP BY 1").rows())
    assert genders["03"] == "M" and genders["08"] == "F" and len(genders) == 10
    row = wh.query("SELECT * FROM utterances u JOIN labels USING (utt_id) WHERE utt_id = '03a01Fa'")
    assert row["emotion"][0] == "hap" and row["text_id"][0] == "a01"
    assert wh.scalar("SELECT count(DISTINCT fold) FROM folds") == 10
    assert speakers_in_two_folds(wh) == []


def test_ravdess_naming_speech_only_and_actor_blocks(wh: Warehouse, tmp_path: Path) -> None:
    root = tmp_path / "ravdess"
    for actor in range(1, 9):
        for emotion in ("01", "02", "05", "08"):
            name = f"03-01-{emotion}-02-01-01-{actor:02d}.wav"
            # Actor_08 lives elsewhere, linked in: rglob skipped it with "0 problems"
            folder = tmp_path / "elsewhere" if actor == 8 else root / f"Actor_{actor:02d}"
            write_wav(folder / name, seconds=0.2, sample_rate=48000)
    (root / "Actor_08").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "Actor_01" / "loop").symlink_to(root, target_is_directory=True)  # read once
    write_wav(root / "Actor_01" / "03-02-03-01-01-01-01.wav")  # song: another corpus
    write_wav(root / "Actor_01" / "01-01-03-01-01-01-01.wav")  # video: skipped
    write_wav(root / "Actor_02" / "03-01-05-01-01-01-02.wav", channels=2)  # stereo is fine
    write_wav(root / "Actor_02" / "notes.wav")
    # no actor 00; actor 03's file in Actor_02/: both were stored as those speakers
    write_wav(root / "Actor_02" / "03-01-05-01-02-01-00.wav", seconds=0.25)
    write_wav(root / "Actor_02" / "03-01-05-01-02-01-03.wav", seconds=0.35)
    summary = ingest(wh, "ravdess", root)
    assert summary.added == 33
    assert [(Path(p.file).name, p.message) for p in summary.problems] == [
        ("03-01-05-01-02-01-00.wav", "actor 00 is not one of 01..24"),
        ("03-01-05-01-02-01-03.wav", "a file of actor 03 in Actor_02/"),
        ("notes.wav", "name is not RAVDESS's MM-CC-EE-II-SS-RR-AA"),
    ]
    row = wh.query(
        "SELECT speaker, gender, sample_rate, channels, emotion, intensity, text_id "
        "FROM utterances JOIN labels USING (utt_id) WHERE utt_id = '03-01-05-01-01-01-02'"
    ).row(0)
    assert row == ("02", "F", 16000, 2, "ang", "normal", "01")
    assert wh.scalar("SELECT any_value(gender) FROM utterances WHERE speaker = '07'") == "M"
    assert wh.scalar("SELECT count(*) FROM ravdess7 WHERE label = 'neu'") == 16  # calm merged
    folds = dict(wh.query("SELECT fold, count(DISTINCT speaker) FROM folds GROUP BY 1").rows())
    assert folds == {"actors01-04": 4, "actors05-08": 4}
    assert speakers_in_two_folds(wh) == []


def test_ravdess_song_files_alone_are_refused_saying_why(wh: Warehouse, tmp_path: Path) -> None:
    """The song zip alone said 'no usable utterances (0 problems)'."""
    root = tmp_path / "ravdess"
    write_wav(root / "Actor_01" / "03-02-03-01-01-01-01.wav")
    write_wav(root / "Actor_01" / "03-02-04-01-01-01-01.wav")
    with pytest.raises(SercapError, match="all 2 .wav files are RAVDESS song or video") as e:
        ingest(wh, "ravdess", root)
    assert "Audio_Speech_Actors_01-24" in str(e.value) and "\n" not in str(e.value)
    assert wh.scalar("SELECT count(*) FROM utterances") == 0


def test_cremad_naming_and_demographics(wh: Warehouse, tmp_path: Path) -> None:
    root = tmp_path / "crema"
    names = ["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1002_DFA_SAD_LO", "1003_TIE_NEU_XX"]
    names += [f"10{n:02d}_ITS_FEA_MD" for n in range(4, 12)]
    for name in names:
        write_wav(root / "AudioWAV" / f"{name}.wav", seconds=0.1)
    summary = ingest(wh, "cremad", root)
    assert summary.added == 12 and summary.problems == []
    assert wh.scalar("SELECT count(*) FROM utterances WHERE gender IS NULL") == 12
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n"
    )
    again = ingest(wh, "cremad", root)
    assert (again.added, again.updated) == (0, 3)  # genders filled in
    row = wh.query(
        "SELECT gender, text_id, emotion, intensity FROM utterances JOIN labels USING (utt_id) "
        "WHERE utt_id = '1002_DFA_SAD_LO'"
    ).row(0)
    assert row == ("F", "DFA", "sad", "low")
    assert wh.scalar("SELECT count(DISTINCT fold) FROM folds") == 5
    assert speakers_in_two_folds(wh) == []
    # Excel's "CSV UTF-8" starts with a BOM; a field over the csv limit was a traceback
    (root / "VideoDemographics.csv").write_text(
        "\ufeffActorID,Age,Sex\n1003,30,Female\n", encoding="utf-8"
    )
    ingest(wh, "cremad", root)
    assert wh.scalar("SELECT gender FROM utterances WHERE utt_id = '1003_TIE_NEU_XX'") == "F"
    (root / "VideoDemographics.csv").write_text("ActorID,Sex\n1004," + "x" * 200_000 + "\n")
    odd = ingest(wh, "cremad", root)
    assert [p.message for p in odd.problems if "CSV" in p.message][0].startswith("malformed CSV")


def test_tess_naming(wh: Warehouse, tmp_path: Path) -> None:
    root = tmp_path / "TESS Toronto emotional speech set data"
    files = [
        "OAF_angry/OAF_back_angry.wav",
        "OAF_Fear/OAF_bite_fear.wav",
        "OAF_Pleasant_surprise/OAF_bite_ps.wav",
        "YAF_pleasant_surprised/YAF_back_ps.wav",
        "YAF_neutral/YAF_germ_neutral.wav",
        "YAF_disgust/YAF_germ_disgust.wav",
        "YAF_disgust/README.wav",
    ]
    for name in files:
        write_wav(root / name, seconds=0.1, sample_rate=24414)
    summary = ingest(wh, "tess", root)
    assert summary.added == 6 and len(summary.problems) == 1
    labels = dict(wh.query("SELECT utt_id, label FROM tess7").rows())
    assert labels["YAF_back_ps"] == "sur" and labels["OAF_bite_fear"] == "fea"
    assert wh.scalar("SELECT string_agg(DISTINCT gender) FROM utterances") == "F"
    assert wh.scalar("SELECT count(DISTINCT fold) FROM folds") == 2
    assert speakers_in_two_folds(wh) == []


def test_manifest_csv_relative_paths_segments_and_parquet(wh: Warehouse, tmp_path: Path) -> None:
    root = tmp_path / "mine"
    write_wav(root / "audio" / "a" / "take.wav", seconds=2.0)
    write_wav(root / "audio" / "b" / "take.wav", seconds=0.5)
    write_wav(root / "audio" / "long.wav", seconds=3.0)
    (root / "manifest.csv").write_text(
        "path,label,speaker,gender,start,end\n"
        "audio/a/take.wav,Angry,s1,female,,\n"
        "audio/b/take.wav,neutral,s2,M,,\n"
        "audio/long.wav,calm,s3,,0.5,1.5\n"
        "audio/long.wav,whatever,s3,,1.5,2.5\n"
        "audio/long.wav,sad,s3,,2.5,9.0\n"
        "audio/missing.wav,sad,s4,,,\n"
        ",sad,s4,,,\n"
        "audio/long.wav,sad,s3,,nan,1.0\n"  # NaN passed every bound check, broke extract
        "audio/long.wav,sad,s3,,2.0,1.0\n"  # was "outside the file"
        "audio/long.wav,sad,s3,,1.0,1.0\n"
    )
    summary = ingest(wh, "manifest", root / "manifest.csv", name="mine")
    assert summary.added == 4
    problems = sorted((p.line, p.message.split(":")[-1].strip()) for p in summary.problems)
    assert [line for line, _ in problems] == [6, 7, 8, 9, 10, 11]
    assert problems[0][1] == "segment 2.5-9.0 s is outside the file (3.00 s long)"
    assert problems[3][1] == "start/end is not a finite number"
    assert problems[4][1] == "segment 2.0-1.0 s ends before it starts"
    assert problems[5][1] == "segment 1.0-1.0 s is empty"
    rows = wh.query(
        "SELECT utt_id, speaker, gender, start_s, end_s, duration_s, label FROM utterances "
        "JOIN manifest USING (utt_id) ORDER BY utt_id"
    ).rows()
    assert rows[0] == ("audio/a/take", "s1", "F", None, None, pytest.approx(2.0), "ang")
    assert rows[2] == ("long@0.500", "s3", None, 0.5, 1.5, pytest.approx(1.0), "cal")
    assert rows[3][0] == "long@1.500" and rows[3][-1] == "whatever"
    assert speakers_in_two_folds(wh) == []

    parquet = root / "other.parquet"
    pl.DataFrame(
        {
            "utt_id": ["p1"],
            "path": [str(root / "audio/long.wav")],
            "label": ["hap"],
            "speaker": ["x"],
        }
    ).write_parquet(parquet)
    assert ingest(wh, "manifest", parquet, name="other").added == 1
    # a NaN speaker (Parquet's null in a float column) was the speaker "nan"; a label with a
    # line break was stored and broke every table that printed it
    pl.DataFrame(
        {
            "path": [str(root / "audio/long.wav")] * 3,
            "label": ["hap", "sad\nangry", "neu"],
            "speaker": [float("nan"), 1.0, 2.0],
            "start": [0.0, 1.0, 2.0],
            "end": [1.0, 2.0, 3.0],
        }
    ).write_parquet(root / "odd.parquet")
    odd = ingest(wh, "manifest", root / "odd.parquet", name="odd")
    assert odd.added == 1
    assert sorted(p.message for p in odd.problems) == [
        "empty path, label or speaker",
        "the label holds a line break or control character",
    ]
    (root / "bad.csv").write_text("file,emotion\nx.wav,sad\n")
    with pytest.raises(SercapError, match="missing column"):
        ingest(wh, "manifest", root / "bad.csv", name="bad")


def test_folds_of_every_protocol_keep_speakers_apart(wh: Warehouse, tmp_path: Path) -> None:
    ingest(wh, "iemocap", make_iemocap(tmp_path / "iemocap"))
    root = tmp_path / "ravdess"
    for actor in range(1, 13):
        write_wav(root / f"Actor_{actor:02d}" / f"03-01-01-01-01-01-{actor:02d}.wav", 0.1)
    ingest(wh, "ravdess", root)
    for speaker in range(1, 8):
        write_wav(tmp_path / "crema" / f"10{speaker:02d}_DFA_ANG_XX.wav", 0.1)
    ingest(wh, "cremad", tmp_path / "crema")
    protocols = set(wh.query("SELECT DISTINCT protocol FROM folds")["protocol"])
    assert protocols == {"leave-one-session-out", "actor-blocks-4", "speaker-kfold-5"}
    assert speakers_in_two_folds(wh) == []
    assert wh.scalar("SELECT count(*) FROM folds WHERE fold IS NULL") == 0


def test_an_audio_problem_names_the_file_once(wh: Warehouse, tmp_path: Path) -> None:
    """Located at the file, the path was said twice ("x.wav: x: empty file (0 bytes): x.wav");
    located at a manifest line, the audio's path is what the line does not say."""
    write_wav(tmp_path / "emodb" / "wav" / "03a01Fa.wav")
    empty = tmp_path / "emodb" / "wav" / "03a02Wa.wav"
    empty.write_bytes(b"")
    problems = ingest(wh, "emodb", tmp_path / "emodb").problems
    assert [str(p) for p in problems] == [f"{empty}: 03a02Wa: empty file (0 bytes)"]
    good = tmp_path / "other.wav"
    write_wav(good)
    (tmp_path / "m.csv").write_text(f"path,label,speaker\n{empty},sad,s1\n{good},sad,s1\n")
    line = ingest(wh, "manifest", tmp_path / "m.csv", name="m").problems
    assert str(line[0]).endswith(f"m.csv:2: 03a02Wa: empty file (0 bytes): {empty}")


def _non_utf8(folder: Path, name: bytes) -> Path:
    """A copy of a good wav under a file name that is not valid UTF-8 (``name``)."""
    import os

    good = folder / "utf8.wav"
    write_wav(good)
    target = os.path.join(os.fsencode(folder), name)
    os.rename(good, target)
    return Path(os.fsdecode(target))


def test_file_names_that_are_not_utf8_are_problems_not_tracebacks(
    wh: Warehouse, tmp_path: Path
) -> None:
    """A well-formed name with a Latin-1 byte was a UnicodeEncodeError traceback (libsndfile
    takes UTF-8); a stray one blocked the whole ingest in DuckDB's words, without naming it."""
    wav = tmp_path / "emodb" / "wav"
    wav.mkdir(parents=True)
    write_wav(wav / "03a01Fa.wav")
    _non_utf8(wav, b"03a02W\xe9.wav")  # not EmoDB's naming: "unknown file name"
    tess = tmp_path / "tess" / "OAF_angry"
    tess.mkdir(parents=True)
    write_wav(tess / "OAF_back_angry.wav")
    _non_utf8(tess, b"OAF_caf\xe9_angry.wav")  # TESS's naming, so its audio is probed
    for kind in ("emodb", "tess"):
        summary = ingest(wh, kind, tmp_path / kind)
        assert summary.added == 1
        (problem,) = summary.problems
        assert "\\xe9" in str(problem) and str(problem).encode("utf-8")
    (stored,) = wh.con.execute(
        "SELECT problem FROM ingest_problems WHERE corpus = 'tess'"
    ).fetchone()
    assert "the file name is not valid UTF-8; rename it" in stored
    folder = _non_utf8(tmp_path, b"d\xe9.wav").with_suffix("")  # a folder of that name
    folder.mkdir()
    with pytest.raises(SercapError, match=r"d\\xe9: the corpus folder's path is not valid UTF-8"):
        ingest(wh, "emodb", folder)


def test_manifest_mistakes_are_one_line_with_what_to_do(wh: Warehouse, tmp_path: Path) -> None:
    """Columns that alias each other were a polars DuplicateError traceback; the other
    cases said what was wrong but not what to do (or, header-only, "0 problems")."""
    cases = {
        b"path,label,speaker,emotion\na.wav,ang,s1,sad\n": (
            r"columns that mean the same: 'label' and 'emotion' \(both 'label'\); keep one"
        ),
        b"path,utt_id,id,label,speaker\na.wav,u,v,ang,s1\n": r"'utt_id' and 'id'",
        b"path;label;speaker\na.wav;ang;s1\n": r"comma-separated, this one seems to use ';'",
        b"path,label,speaker\n": "the manifest has no rows, only its header",
        b"path,label,speaker\na.wav,ang,s1,extra\n": "as many fields as the header",
        b"path,label,speaker\nb\xe9.wav,ang,s1\n": "save the file as UTF-8",
        # polars renamed the second column label_duplicated_0: the first was used silently
        b"path,label,speaker,label\na.wav,ang,s1,sad\n": (
            r"the header names 'label' more than once; keep one column of each name"
        ),
    }
    for i, (content, words) in enumerate(cases.items()):
        (tmp_path / f"m{i}.csv").write_bytes(content)
        with pytest.raises(SercapError, match=words):
            ingest(wh, "manifest", tmp_path / f"m{i}.csv", name=f"m{i}")
    # a wav or a README given as the manifest was read as a CSV ('save the file as UTF-8',
    # 'more fields than defined in Schema'); a device was 'no such file or directory'
    write_wav(tmp_path / "a.wav")
    (tmp_path / "README.md").write_text("# notes, not a manifest\n")
    for path in (tmp_path / "a.wav", tmp_path / "README.md"):
        with pytest.raises(SercapError, match=r"not a manifest; give a \.csv or \.parquet"):
            ingest(wh, "manifest", path, name="m")
    (tmp_path / "m.tsv").write_text("path\tlabel\tspeaker\na.wav\tang\ts1\n")
    with pytest.raises(SercapError, match=r"m\.tsv: a manifest is a comma-separated \.csv"):
        ingest(wh, "manifest", tmp_path / "m.tsv", name="m")
    with pytest.raises(SercapError, match="/dev/null: not a regular file"):
        ingest(wh, "manifest", Path("/dev/null"), name="m")


def test_a_rating_that_is_not_a_number_is_a_problem(wh: Warehouse, tmp_path: Path) -> None:
    """`valence=inf` was dropped without a word (a bad start or end is reported)."""
    write_wav(tmp_path / "a.wav")
    write_wav(tmp_path / "b.wav", seconds=0.4)  # other audio (the same would be a duplicate)
    (tmp_path / "m.csv").write_text(
        "path,label,speaker,valence\na.wav,ang,s1,inf\nb.wav,sad,s1,2.5\n"
    )
    summary = ingest(wh, "manifest", tmp_path / "m.csv", name="m")
    assert summary.added == 2
    assert [str(p) for p in summary.problems] == [
        f"{tmp_path / 'm.csv'}:2: valence 'inf' is not a finite number (stored without it)"
    ]
    assert wh.con.execute("SELECT valence FROM labels ORDER BY utt_id").fetchall() == [
        (None,),
        (2.5,),
    ]


def test_new_ids_for_stored_audio_do_not_double_the_corpus(wh: Warehouse, tmp_path: Path) -> None:
    """A manifest re-ingested with corrected utt_ids stored every file twice (120 utterances
    of 60 files, `check` silent, both copies trained on); each such row is now a problem."""
    for i in range(4):
        write_wav(tmp_path / f"a{i}.wav", seconds=0.3 + 0.05 * i)
    rows = "".join(f"a{i}.wav,ang,s{i}," for i in range(3)).split(",")[:-1]
    first = "\n".join(",".join(rows[k : k + 3]) + f",u{k // 3}" for k in range(0, 9, 3))
    (tmp_path / "m.csv").write_text("path,label,speaker,utt_id\n" + first + "\n")
    assert ingest(wh, "manifest", tmp_path / "m.csv", name="m").added == 3
    (tmp_path / "m.csv").write_text(
        "path,label,speaker,utt_id\n" + first.replace(",u", ",utt_") + "\na3.wav,sad,s3,utt_3\n"
    )
    again = ingest(wh, "manifest", tmp_path / "m.csv", name="m")
    assert again.added == 1 and len(again.problems) == 3  # a3.wav is new
    assert "a0.wav is already utterance u0 of corpus 'm'" in str(again.problems[0])
    assert wh.scalar("SELECT count(*) FROM utterances WHERE corpus = 'm'") == 4


def test_a_line_break_in_a_file_name_is_a_problem_not_part_of_an_id(
    wh: Warehouse, tmp_path: Path
) -> None:
    """`12a01Fa\\n.wav` matched EmoDB's pattern (`$` matches before a final line break) and
    was stored as utterance "12a01Fa\\n"."""
    write_wav(tmp_path / "emodb" / "wav" / "03a01Fa.wav")
    write_wav(tmp_path / "emodb" / "wav" / "12a01Fa\n.wav", seconds=0.4)
    summary = ingest(wh, "emodb", tmp_path / "emodb")
    assert summary.added == 1
    (problem,) = summary.problems
    assert "12a01Fa\\n.wav: the file name holds a control character" in str(problem)
    assert wh.con.execute("SELECT utt_id FROM utterances").fetchall() == [("03a01Fa",)]


def test_an_id_owned_by_another_kind_of_corpus_gets_advice_that_works(
    wh: Warehouse, tmp_path: Path
) -> None:
    """A manifest over EmoDB's files (ids from the file names) was told to use
    --name emodb, which is then refused as a corpus of another kind: the advice looped."""
    write_wav(tmp_path / "emodb" / "wav" / "03a01Fa.wav")
    ingest(wh, "emodb", tmp_path / "emodb")
    wav = tmp_path / "emodb" / "wav" / "03a01Fa.wav"
    (tmp_path / "m.csv").write_text(f"path,label,speaker\n{wav},ang,s1\n")
    with pytest.raises(SercapError, match=r"give these rows other ids \(a utt_id column\)"):
        ingest(wh, "manifest", tmp_path / "m.csv", name="mine")
    (tmp_path / "m.csv").write_text(f"path,label,speaker,utt_id\n{wav},ang,s1,m1\n")
    assert ingest(wh, "manifest", tmp_path / "m.csv", name="mine").added == 1


def test_a_relative_corpus_path_under_a_non_utf8_folder_is_named(
    wh: Warehouse, tmp_path: Path, monkeypatch
) -> None:
    """Given relatively from inside such a folder, every file was told to be renamed."""
    import os

    write_wav(tmp_path / "x" / "emodb" / "wav" / "03a01Fa.wav")
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.rename(tmp_path / "x", odd)
    monkeypatch.chdir(os.fsdecode(odd))
    with pytest.raises(SercapError, match=r"caf\\xe9/emodb: the corpus folder's path is not"):
        ingest(wh, "emodb", "emodb")


def _session_manifest(root: Path, sessions: dict[str, str], name: str) -> Path:
    """A manifest of one clip per speaker and label (clips of different lengths: the same
    audio under two speakers is refused), speaker → session as given."""
    lines = ["path,label,speaker,session"]
    for i, (speaker, session) in enumerate(sessions.items()):
        for j, label in enumerate(("ang", "neu")):
            write_wav(root / name / f"{name}{i}_{j}.wav", seconds=0.2 + 0.01 * (2 * i + j))
            lines.append(f"{name}/{name}{i}_{j}.wav,{label},{speaker},{session}")
    (root / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return root / f"{name}.csv"


def test_a_manifest_of_shared_sessions_deals_whole_sessions_into_folds(
    wh: Warehouse, tmp_path: Path
) -> None:
    """The two speakers of a dyadic session hear each other; dealing speakers put partners
    on both sides of a fold (a review measured UA 0.70 against chance 0.25 from a room
    signature alone). Whole sessions are dealt now; the datasets carry the sessions."""
    from sercap.data import labelled_utterances

    pairs = {f"s{i:02d}{side}": f"Ses{i:02d}" for i in range(1, 11) for side in "FM"}
    path = _session_manifest(tmp_path, pairs, "pairs")
    write_wav(tmp_path / "pairs" / "blank.wav", seconds=0.95)  # one row without its session
    path.write_text(path.read_text() + "pairs/blank.wav,sad,s01F,\n")  # (turned it all off)
    summary = ingest(wh, "manifest", path, name="pairs")
    assert summary.protocol == "session-kfold-5"  # (what ingest prints, and info)
    from sercap.report import warehouse_summary

    assert "session-kfold-5" in warehouse_summary(wh)
    folds = wh.query(
        "SELECT session, count(DISTINCT fold) AS n, any_value(protocol) AS protocol "
        "FROM folds WHERE corpus = 'pairs' GROUP BY session"
    )
    assert folds["n"].to_list() == [1] * 10
    assert set(folds["protocol"]) == {"session-kfold-5"}
    assert wh.scalar("SELECT count(DISTINCT fold) FROM folds WHERE corpus = 'pairs'") == 5
    assert speakers_in_two_folds(wh) == []
    meta = labelled_utterances(wh, "pairs", "manifest")  # (the blank row: its speaker's)
    assert meta["session"].to_list() == [pairs[s] for s in meta["speaker"]]

    # one speaker per session, a speaker in two sessions, or fewer than three sessions (one
    # "session" for all of them was one fold, and training refused): speakers are dealt
    alone = {f"t{i}": f"T{i}" for i in range(6)}
    ingest(wh, "manifest", _session_manifest(tmp_path, alone, "alone"), name="alone")
    together = {f"w{i}": "day1" for i in range(6)}
    ingest(wh, "manifest", _session_manifest(tmp_path, together, "together"), name="together")
    roams = {"u1": "R1", "u2": "R1", "u3": "R2"}
    path = _session_manifest(tmp_path, roams, "roams")
    write_wav(tmp_path / "roams" / "extra.wav", seconds=0.9)
    path.write_text(path.read_text() + "roams/extra.wav,sad,u1,R2\n")
    ingest(wh, "manifest", path, name="roams")
    protocols = dict(
        wh.query(
            "SELECT corpus, string_agg(DISTINCT protocol) FROM folds "
            "WHERE corpus IN ('alone', 'roams', 'together') GROUP BY corpus"
        ).rows()
    )
    assert set(protocols.values()) == {"speaker-kfold-5"} and len(protocols) == 3
    assert wh.scalar("SELECT count(DISTINCT fold) FROM folds WHERE corpus = 'together'") == 5
    assert speakers_in_two_folds(wh) == []


def test_manifest_missing_value_markers_are_missing_not_speakers_or_classes(
    wh: Warehouse, tmp_path: Path
) -> None:
    """R's write.csv writes NA and pandas' astype(str) nan/None: each was stored as a speaker
    of its own (a fold of its own) or as a class, with no problem line."""
    root = tmp_path / "m"
    for i in range(8):  # (lengths differ: the same bytes twice are one recording)
        write_wav(root / "audio" / f"c{i}.wav", seconds=0.3 + 0.05 * i)
    (root / "manifest.csv").write_text(
        "path,label,speaker,gender,session\n"
        "audio/c0.wav,angry,NA,NA,NA\n"
        "audio/c1.wav,NA,s1,F,\n"
        "audio/c2.wav,sad,nan,M,\n"
        "audio/c3.wav,happy,None,M,\n"
        "audio/c4.wav,neutral,null,F,\n"
        "audio/c5.wav,neutral,s2,F,nan\n"
        "audio/c6.wav,sad,s3,N/A,\n"
        "audio/c7.wav,sad,Nan,F,\n"  # a name, not pandas' nan
    )
    summary = ingest(wh, "manifest", root / "manifest.csv", name="m")
    assert summary.added == 3
    said = sorted((p.line, p.message) for p in summary.problems)
    assert [line for line, _ in said] == [2, 3, 4, 5, 6]
    assert "speaker 'NA' is a missing-value marker, not a speaker" in said[0][1]
    assert "label 'NA' is a missing-value marker, not a label" in said[1][1]
    rows = wh.query("SELECT speaker, gender, session FROM utterances ORDER BY 1").rows()
    assert rows == [("Nan", "F", None), ("s2", "F", None), ("s3", None, None)]


def test_manifest_gender_contradicting_its_speakers_is_a_problem(
    wh: Warehouse, tmp_path: Path
) -> None:
    """Speaker 1 given F on one row and M on another: both were stored, the summary showed
    one of them (any_value), and the fairness table split the speaker."""
    root = tmp_path / "g"
    for i in range(4):
        write_wav(root / "audio" / f"c{i}.wav", seconds=0.3 + 0.05 * i)
    (root / "manifest.csv").write_text(
        "path,label,speaker,gender,text\n"
        'audio/c0.wav,ang,1,F,"two\nlines"\n'  # (a quoted line break: lines 2-3)
        "audio/c1.wav,sad,1,M,\n"
        "audio/c2.wav,neu,2,F,\n"
        "audio/missing.wav,hap,2,F,\n"
    )
    summary = ingest(wh, "manifest", root / "manifest.csv", name="g")
    said = sorted((p.line, p.message) for p in summary.problems)
    # line numbers count a quoted cell's line break (it said line 3, then 4)
    assert [line for line, _ in said] == [4, 6], said
    assert "gender M contradicts speaker 1's F (line 2); stored as F" in said[0][1]
    assert "audio file not found" in said[1][1]
    genders = wh.query("SELECT DISTINCT speaker, gender FROM utterances ORDER BY 1").rows()
    assert genders == [("1", "F"), ("2", "F")]


def test_cremad_conflicting_or_missing_demographics_rows_are_problems(
    wh: Warehouse, tmp_path: Path
) -> None:
    """A second row for an actor with the other sex silently won (the last row), and an
    actor without a row was stored with no gender and no word."""
    root = tmp_path / "crema"
    for i, name in enumerate(["1001_DFA_ANG_XX", "1003_DFA_SAD_LO", "1003_IEO_HAP_HI"]):
        write_wav(root / "AudioWAV" / f"{name}.wav", seconds=0.1 + 0.05 * i)
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex\n1001,51,Female\n1002,30,Male\n1001,51,Male\n"
    )
    summary = ingest(wh, "cremad", root)
    said = sorted(p.message for p in summary.problems)
    assert len(said) == 2, said
    assert "actor 1001 is F on line 2 and M here; the first is kept" in said[0]
    assert said[1].endswith("actor 1003 has no row in VideoDemographics.csv: their utterances "
                            "are stored without a gender")  # fmt: skip
    genders = wh.query("SELECT DISTINCT speaker, gender FROM utterances ORDER BY 1").rows()
    assert genders == [("1001", "F"), ("1003", None)]


def test_emodb_file_of_a_speaker_outside_the_ten_is_a_problem(
    wh: Warehouse, tmp_path: Path
) -> None:
    """`17a01Fa.wav` (a copy, or a misnamed file) was stored as speaker 17, with no gender
    and a leave-one-speaker-out fold of its own, without a word."""
    for i, name in enumerate(["03a01Fa", "08a01Wa", "17a01Fa"]):
        write_wav(tmp_path / "emodb" / "wav" / f"{name}.wav", seconds=0.3 + 0.05 * i)
    summary = ingest(wh, "emodb", tmp_path / "emodb")
    assert summary.added == 2
    [problem] = summary.problems
    assert problem.file.endswith("17a01Fa.wav")
    assert problem.message.startswith("speaker 17 is not one of EmoDB's ten (03, 08, ")
    assert wh.query("SELECT DISTINCT speaker FROM utterances ORDER BY 1").rows() == [
        ("03",),
        ("08",),
    ]


def test_emodb_speakers_a_wrapped_readme_list_leaves_out_are_still_the_ten(
    wh: Warehouse, tmp_path: Path
) -> None:
    """A README whose speaker list wraps onto a second line named six speakers, and the
    files of the other four were refused as "not one of EmoDB's ten"."""
    for i, name in enumerate(["03a01Fa", "13a01Fa", "16a01Wa"]):
        write_wav(tmp_path / "emodb" / "wav" / f"{name}.wav", seconds=0.3 + 0.05 * i)
    (tmp_path / "emodb" / "README.md").write_text(
        "Ten actors (speakers): 03 m, 08 f, 09 f, 10 m, 11 m, 12 m,\n13 f, 14 f, 15 m, 16 f.\n"
    )
    summary = ingest(wh, "emodb", tmp_path / "emodb")
    assert summary.added == 3 and summary.problems == []
    genders = wh.query("SELECT speaker, gender FROM utterances ORDER BY 1").rows()
    assert genders == [("03", "M"), ("13", "F"), ("16", "F")]


def test_a_manifest_label_of_one_utterance_is_noted_as_a_possible_typo(
    wh: Warehouse, tmp_path: Path
) -> None:
    """`angy` (a typo of angry) became a class of one utterance without a word."""
    from sercap.format import format_ingest_summary

    root = tmp_path / "t"
    rows = ["path,label,speaker"]
    for i in range(24):
        write_wav(root / "audio" / f"c{i}.wav", seconds=0.3 + 0.01 * i)
        label = "angy" if i == 0 else ("angry", "sad", "happy")[i % 3]
        rows.append(f"audio/c{i}.wav,{label},s{i % 4}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    summary = ingest(wh, "manifest", root / "manifest.csv", name="t")
    assert summary.rare_labels_line().startswith("note: label(s) 'angy' hold one utterance")
    assert "'angy' hold one utterance each: a typo?" in format_ingest_summary(summary)
