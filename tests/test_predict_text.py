"""predict with transcripts (issue 17 item 4): --text / --texts CSV, text runs predicting from
the words, the fallback to an audio run for files without words, audio runs ignoring them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import sercap
from cli import main
from sercap.corpora.synthetic import generate
from sercap.errors import SercapError
from sercap.predict_text import match_texts
from sercap.prediction import final_model
from sercap.store import connect

SMALL = {"word_max_n": 1, "char_max_n": 3}
ANGRY = "I hate this, damn it, I am furious!"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """A tiny synthetic corpus: a warehouse with an svm and a text-lr run, and one with only a
    text-lr run (no features extracted, so no audio run to fall back to)."""
    base = tmp_path_factory.mktemp("predtext")
    corpus = generate(base / "corpus", sessions=2, per_speaker=4, seed=3).root
    only_text = connect(base / "text-only")
    sercap.ingest(only_text, "iemocap", corpus)
    lonely = sercap.train(only_text, "text-lr", params=SMALL, progress=False).run_id
    only_text.close()
    wh = connect(base / "wh")
    sercap.ingest(wh, "iemocap", corpus)
    sercap.extract(wh, progress=False)
    audio = sercap.train(wh, "svm", progress=False).run_id
    text = sercap.train(wh, "text-lr", params=SMALL, progress=False).run_id
    wh.close()
    broken = base / "broken.wav"
    broken.write_bytes(b"not audio")
    return {
        "wh": base / "wh",
        "text-only": base / "text-only",
        "lonely": lonely,
        "audio": audio,
        "text": text,
        "wavs": sorted(corpus.rglob("*.wav"))[:3],
        "broken": broken,
    }


# ----------------------------------------------------------------------------- the CSV
def _csv(tmp_path: Path, content: str | bytes, name: str = "texts.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "path,words\na.wav,hello\n",
            r"texts\.csv: no 'text' column \(the header has: path, words\)",
        ),
        ("file,text\na.wav,hello\n", r"texts\.csv: no 'path' column"),
        ("", r"texts\.csv is empty"),
        ("path,text\nc.wav,hello\n", r"texts\.csv line 2: 'c\.wav' is not one of the files"),
        (
            "path,text\na.wav,hello\nb.wav,hi\n./a.wav,again\n",
            r"texts\.csv line 4: a second transcript for '\./a\.wav' \(the first: line 2\)$",
        ),
        ("path,text\n,hello\n", r"texts\.csv line 2: no path"),
        (
            'path,text\r\na.wav,"unclosed\r\n',
            r"texts\.csv line 2: not valid CSV \(unexpected end of data\)",
        ),
        ("path,text\na.wav,caf\xe9\n".encode("latin-1"), r"texts\.csv: not UTF-8 text .* line 2"),
        # an unquoted comma kept "Well" and dropped the rest; a repeated column won silently
        (
            "path,text\na.wav,Well, I do not know\n",
            r"texts\.csv line 2: more fields than the header's 2; put a text with commas",
        ),
        ("path,text,text\na.wav,real words,x\n", r"texts\.csv: the header names 'text' twice"),
    ],
)
def test_texts_csv_errors_name_the_file_and_the_problem(
    tmp_path: Path, monkeypatch, content, message
) -> None:
    monkeypatch.chdir(tmp_path)
    csv = _csv(tmp_path, content)
    with pytest.raises(SercapError, match=message) as err:
        match_texts([Path("a.wav"), Path("b.wav")], csv)
    assert "\n" not in str(err.value)


def test_texts_csv_reads_quotes_bom_crlf_and_blank_transcripts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    content = (
        '\ufefftext,path,speaker\r\n"Oh, no: ""really""?",a.wav,x\r\n\r\n'
        "  ,b.wav,y\r\nnaïve café ☺,sub/c.wav,z\r\n"
    )
    csv = _csv(tmp_path, content)
    paths = [Path("a.wav"), Path("./b.wav"), tmp_path / "sub" / "c.wav"]
    found = match_texts(paths, csv)
    # columns in any order; quotes and commas kept; a blank transcript counts as none
    assert found == {"a.wav": 'Oh, no: "really"?', str(paths[2]): "naïve café ☺"}
    # a spreadsheet's trailing empty columns and fields lose nothing: read, not refused
    trailing = _csv(tmp_path, "path,text,,\na.wav,hello there,\nb.wav,hi,,\n")
    assert match_texts(paths[:2], trailing) == {"a.wav": "hello there", "b.wav": "hi"}
    assert match_texts(paths, None) == {}
    with pytest.raises(SercapError, match=r"gone\.csv: no such file"):
        match_texts(paths, tmp_path / "gone.csv")


def test_texts_mapping_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = [Path("a.wav")]
    assert match_texts(paths, {tmp_path / "a.wav": "hi"}) == {"a.wav": "hi"}
    with pytest.raises(SercapError, match=r"texts\['b\.wav'\]: 'b\.wav' is not one of"):
        match_texts(paths, {"b.wav": "hi"})
    with pytest.raises(SercapError, match="a second transcript"):
        match_texts(paths, {"a.wav": "hi", "./a.wav": "ho"})
    with pytest.raises(SercapError, match="must be a string, not int"):
        match_texts(paths, {"a.wav": 3})


# ----------------------------------------------------------------------------- predict
def test_text_run_predicts_from_the_words_and_falls_back_without_them(built) -> None:
    wh = connect(built["wh"])
    first, second, _ = built["wavs"]
    notes: list[str] = []
    table = sercap.predict(
        wh,
        [first, built["broken"], second],
        run=built["text"],
        texts={first: ANGRY, built["broken"]: "so sad, I miss her", second: "   "},
        say=notes.append,
        progress=False,
    )
    # the words were read: the text model's own probabilities for them (a text model does
    # not read the audio, so the unreadable file is predicted from its words too)
    assert table["run_id"].to_list() == [built["text"]] * 2 + [built["audio"]]
    assert table["error"].null_count() == 3
    words = final_model(wh, built["text"], progress=False)
    classes = words.classes
    expected = words.model.predict_proba(np.array([ANGRY, "so sad, I miss her"], dtype=object))
    assert np.allclose(table.select(classes).to_numpy()[:2], expected)
    # blank words are no words: the newest audio-only run predicts, named in one line
    notes = [n for n in notes if not n.startswith("fitting run ")]  # (progress, not notes)
    assert len(notes) == 1 and "\n" not in notes[0]
    assert f"run {built['text']} (text-lr) reads text" in notes[0]
    assert f"no transcript for 1 of 3 files ({second.name})" in notes[0]
    assert f"predicted with run {built['audio']} (svm), the newest audio-only run" in notes[0]
    alone = sercap.predict(wh, [second], run=built["audio"], progress=False)
    assert np.allclose(table.select(classes).to_numpy()[2:], alone.select(classes).to_numpy())
    # words for a file that cannot be opened at all: still predicted from them (the check
    # that no file can be opened, for runs that need the audio, refused this)
    gone = built["wh"].parent / "no-such-clip.wav"
    said: list[str] = []
    words_only = sercap.predict(wh, [gone], run=built["text"], texts={gone: ANGRY}, say=said.append)
    assert words_only["error"][0] is None and np.allclose(
        words_only.select(classes).to_numpy(), expected[:1]
    )
    # ... and it says so: a mistyped path got a prediction with nothing said
    assert any(n.startswith(f"note: {gone} is not there; run ") for n in said), said
    wh.close()


def test_coverage_keeps_each_file_by_the_run_that_predicted_it(built) -> None:
    """--coverage is a share of a run's own out-of-fold predictions: files that fell back to
    the audio run were kept or not by the text run's threshold."""
    from sercap.analysis_store import abstain_threshold

    wh = connect(built["wh"], read_only=True)
    wavs = built["wavs"]
    share = 0.5
    fell_back = sercap.predict(wh, wavs, run=built["text"], texts={}, coverage=share)
    direct = sercap.predict(wh, wavs, run=built["audio"], coverage=share)
    assert fell_back["run_id"].to_list() == [built["audio"]] * len(wavs)
    thresholds = {r: abstain_threshold(wh, r, share) for r in (built["text"], built["audio"])}
    assert thresholds[built["text"]] != thresholds[built["audio"]]
    assert fell_back["abstained"].to_list() == direct["abstained"].to_list()
    assert direct["abstained"].to_list() == [
        c < thresholds[built["audio"]] for c in direct["confidence"].to_list()
    ]
    wh.close()


def test_text_run_with_no_audio_run_to_fall_back_to(built) -> None:
    wh = connect(built["text-only"])
    notes: list[str] = []
    first, second, _ = built["wavs"]
    table = sercap.predict(
        wh, [first, second], run=built["lonely"], texts={first: ANGRY}, say=notes.append
    )
    assert table["emotion"][0] is not None and table["emotion"][1] is None
    assert "no audio-only run of iemocap (iemocap4)" in table["error"][1]
    notes = [n for n in notes if not n.startswith("fitting run ")]  # (progress, not notes)
    assert len(notes) == 1 and "no audio-only run to fall back to" in notes[0]
    wh.close()


def test_audio_run_ignores_transcripts_with_a_note(built) -> None:
    wh = connect(built["wh"])
    notes: list[str] = []
    first = built["wavs"][0]
    plain = sercap.predict(wh, [first], run=built["audio"], progress=False)
    given = sercap.predict(wh, [first], run=built["audio"], texts={first: ANGRY}, say=notes.append)
    assert given.equals(plain)
    assert notes == [
        f"note: run {built['audio']} (svm) reads audio only; the transcripts given are ignored"
    ]
    wh.close()


def test_cli_predict_text_and_texts(built, tmp_path: Path) -> None:
    first, second, third = (str(p) for p in built["wavs"])
    runner = CliRunner()
    w = ["-w", str(built["wh"]), "predict", "--model", "text-lr"]
    one = runner.invoke(main, [*w, first, "--text", ANGRY])
    assert one.exit_code == 0, one.output
    assert f"run {built['text']}" in one.stderr and "note:" not in one.stderr
    csv = _csv(tmp_path, f'path,text\n{first},"{ANGRY}"\n{second},so sad\n')
    mixed = runner.invoke(main, [*w, first, second, third, "--texts", str(csv), "--format", "csv"])
    assert mixed.exit_code == 0, mixed.output
    rows = mixed.stdout.splitlines()
    assert rows[0].startswith("run_id,path,emotion")  # two runs: each row says which
    assert [r.split(",")[0] for r in rows[1:]] == [built["text"]] * 2 + [built["audio"]]
    assert "predicted with run" in mixed.stderr
    both = runner.invoke(main, [*w, first, first, "--text", "hi"])
    assert both.exit_code == 1
    assert both.output.strip().endswith("use --texts FILE.csv (columns path,text)")
    twice = runner.invoke(main, [*w, first, "--text", "hi", "--texts", str(csv)])
    assert "give --text (one file) or --texts FILE.csv, not both" in twice.output
    bad = _csv(tmp_path, "path,words\nx,y\n", "bad.csv")
    refused = runner.invoke(main, [*w, first, "--texts", str(bad)])
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1] == (
        f"error: {bad}: no 'text' column (the header has: path, words); "
        "give a header line path,text"
    )


class _Pairs:
    """A stand-in fusion model reading ``(features, text)`` pairs: records its batches."""

    input_kind = "multimodal"
    seen: list = []

    def predict_proba(self, batch):
        self.seen.append(batch)
        return np.full((len(batch), 4), 0.25)


class _Own(_Pairs):
    """One that builds its own batch from the (1, d) row and the words."""

    @staticmethod
    def prediction_input(features, texts):
        return [("own", features, list(texts))]


def test_a_fused_model_gets_audio_features_and_words_through_the_input_hook(built) -> None:
    from sercap.audio import AudioError, load_audio
    from sercap.predict_batch import predict_chunk
    from sercap.predict_inputs import FinalModel, model_input

    wh = connect(built["wh"])
    audio = final_model(wh, built["audio"], progress=False)
    wh.close()
    wav = built["wavs"][0]
    row = model_input(audio, load_audio(wav, int(audio.feature_set["params"]["sample_rate"])))
    for cls in (_Pairs, _Own):
        fused = FinalModel(cls(), audio.classes, "multimodal", audio.feature_set, audio.columns)
        assert fused.modality == "fused" and audio.modality == "audio"
        [proba] = predict_chunk(fused, [wav], [ANGRY])
        assert np.allclose(proba, 0.25)
        [pair] = cls.seen[-1]
        if cls is _Pairs:  # the audio model's functionals row, and the words
            features, text = pair
            assert features.shape == (row.shape[1],) and text == ANGRY
            assert np.allclose(features, row[0], equal_nan=True)
        else:
            tag, features, texts = pair
            assert tag == "own" and texts == [ANGRY]
            assert np.allclose(features, row, equal_nan=True)
        [error] = predict_chunk(fused, [wav], [None])
        assert isinstance(error, AudioError) and "no transcript" in str(error)


def test_models_to_fit_counts_the_audio_run_files_without_words_fall_back_to(
    built, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "wh"
    shutil.copytree(built["wh"], copy)
    first, second, _ = built["wavs"]
    with connect(copy) as wh:
        wh.execute("DELETE FROM artifacts")
        with_words = sercap.models_to_fit(wh, [first], run=built["text"], texts={first: ANGRY})
        assert with_words == [built["text"]]  # every file has words: no fallback needed
        assert sercap.models_to_fit(
            wh, [first, second], run=built["text"], texts={first: ANGRY}
        ) == [built["text"], built["audio"]]
        sercap.predict(wh, [first, second], run=built["text"], texts={first: ANGRY})
        assert sercap.models_to_fit(wh, [first, second], run=built["text"]) == []
