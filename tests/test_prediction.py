"""Prediction on new audio with a run's final model, stored as a warehouse artifact."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from cli import main
from sercap.errors import SercapError
from sercap.experiment import data_request, load_for, run_model
from sercap.prediction import newest_run, predict_files
from sercap.store import connect
from sercap.store.runs import get_run
from tests.helpers import predicting_warehouse


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A tiny synthetic corpus, ingested and extracted, with svm and rf runs stored."""
    base = tmp_path_factory.mktemp("predict")
    return predicting_warehouse(
        base, per_speaker=10, seed=1, models={"svm": {}, "rf": {"n_estimators": 20}}
    )


def _about_the_model(notes: list[str]) -> list[str]:
    """The notes about a run's stored model, without those about the files (the test tone
    is far from the synthetic speech the runs were trained on, and predict says so) and
    without the progress line of a final model being fitted."""
    return [
        n
        for n in notes
        if "outside the range of every training utterance" not in n
        and not n.startswith("fitting run ")
    ]


@pytest.fixture(scope="module")
def wavs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    out = {}
    for name, sr, channels in (("mono16k", 16000, 1), ("stereo44k", 44100, 2)):
        t = np.arange(int(1.2 * sr)) / sr
        f0 = 160 + 40 * np.sin(2 * np.pi * 2 * t)
        y = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / sr) + 0.01 * rng.normal(size=t.size)
        data = np.stack([y] * channels, axis=1) if channels > 1 else y
        out[name] = folder / f"{name}.wav"
        sf.write(out[name], data.astype(np.float32), sr)
    out["broken"] = folder / "broken.wav"
    out["broken"].write_bytes(b"not audio")
    return out


def test_predict_returns_probabilities_for_any_rate_and_channels(trained, wavs) -> None:
    wh_dir, runs = trained
    wh = connect(wh_dir)
    files = [wavs["mono16k"], wavs["stereo44k"], wavs["broken"]]
    said: list[str] = []
    results = predict_files(wh, runs["svm"], files, progress=False, say=said.append)
    good, stereo, broken = results
    # the first prediction fits the final model (minutes at IEMOCAP's size): it says so
    assert any(line.startswith(f"fitting run {runs['svm']}'s final model on ") for line in said)
    for r in (good, stereo):
        assert r.error is None and r.label in r.proba
        assert sum(r.proba.values()) == pytest.approx(1.0)
        assert set(r.proba) == {"ang", "hap", "neu", "sad"}
    assert broken.label is None and "unreadable" in broken.error
    # the final model is stored once and reused: same answer, no retraining
    stored = wh.query("SELECT * FROM artifacts WHERE run_id = ?", [runs["svm"]])
    assert stored.height == 1 and (wh_dir / stored["path"][0] / "inputs.json").is_file()
    said.clear()
    again = predict_files(wh, runs["svm"], [wavs["mono16k"]], progress=False, say=said.append)[0]
    assert again.proba == pytest.approx(good.proba)
    assert not any(line.startswith("fitting") for line in said)
    wh.close()


def test_ensemble_prediction_averages_members(trained, wavs) -> None:
    wh_dir, runs = trained
    wh = connect(wh_dir)
    members = [
        predict_files(wh, runs[m], [wavs["mono16k"]], progress=False)[0] for m in ("svm", "rf")
    ]
    avg = predict_files(wh, runs["ensemble"], [wavs["mono16k"]], progress=False)[0]
    for c in avg.proba:
        assert avg.proba[c] == pytest.approx((members[0].proba[c] + members[1].proba[c]) / 2)
    wh.close()


def test_predict_confidence_and_abstain_api_and_cli(trained, wavs) -> None:
    import sercap

    wh_dir, runs = trained
    wh = connect(wh_dir)
    table = sercap.predict(wh, [wavs["mono16k"], wavs["broken"]], run=runs["svm"])
    probs = table.select("ang", "hap", "neu", "sad").row(0)
    assert table["confidence"][0] == pytest.approx(max(probs)) and "abstained" not in table.columns
    assert table["confidence"][1] is None  # an unreadable file has no confidence
    sure = table["confidence"][0]
    gone = sercap.predict(wh, [wavs["mono16k"]], run=runs["svm"], abstain=sure + 1e-6)
    assert gone["emotion"][0] is None and gone["abstained"][0]
    # --coverage: the threshold that kept that share of the run's stored out-of-fold predictions
    oof = wh.query("SELECT list_max(proba) AS c FROM predictions WHERE run_id = ?", [runs["svm"]])
    everything = sercap.predict(wh, [wavs["mono16k"]], run=runs["svm"], coverage=1.0)
    assert everything["abstained"][0] == (sure < oof["c"].min() - 1e-6)
    if not everything["abstained"][0]:
        assert everything["emotion"][0] == table["emotion"][0]
    with pytest.raises(SercapError, match="not both"):
        sercap.predict(wh, [wavs["mono16k"]], run=runs["svm"], abstain=0.5, coverage=0.5)
    wh.close()
    runner = CliRunner()
    cli = ["-w", str(wh_dir), "predict", "--run", runs["svm"], str(wavs["mono16k"])]
    shown = runner.invoke(main, [*cli, "--abstain", "1.0"])
    assert shown.exit_code == 0, shown.output
    header, row = shown.stdout.splitlines()[:3:2]
    assert "confidence" in header and row.split()[1] == "?"
    csv = runner.invoke(main, [*cli, "--abstain", "1.0", "--format", "csv"]).stdout
    assert csv.splitlines()[0].endswith("confidence,error,abstained")
    assert csv.splitlines()[1].split(",")[1] == ""  # null emotion in csv/json


def test_predict_cli_json_and_errors(trained, wavs) -> None:
    wh_dir, _ = trained
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["-w", str(wh_dir), "predict", "--model", "svm", str(wavs["stereo44k"]), "--format", "csv"],
    )
    assert result.exit_code == 0, result.output
    header, row = result.stdout.strip().splitlines()[:2]
    assert header.startswith("path,emotion,ang,hap,neu,sad")
    assert row.split(",")[1] in {"ang", "hap", "neu", "sad"}
    none = runner.invoke(main, ["-w", str(wh_dir), "predict", str(wavs["mono16k"])])
    assert none.exit_code == 1 and "exactly one of --run" in none.output
    missing = runner.invoke(
        main, ["-w", str(wh_dir), "predict", "--model", "lstm", str(wavs["mono16k"])]
    )
    assert missing.exit_code == 1 and "sercap train lstm" in missing.output


def test_speaker_normalised_runs_are_refused(trained, wavs) -> None:
    wh_dir, _ = trained
    wh = connect(wh_dir)
    data = load_for(wh, data_request("svm", speaker_norm=True))
    run_id = run_model(wh, "svm", data, progress=False).run_id
    with pytest.raises(SercapError, match="speaker normalisation"):
        predict_files(wh, run_id, [wavs["mono16k"]], progress=False)
    # models_to_fit refuses it too: it listed the run, and the CLI opened writable for it
    import sercap

    for verb in (sercap.models_to_fit, sercap.predict):
        with pytest.raises(sercap.BadParameterError, match=f"run {run_id} used speaker norm"):
            verb(wh, [wavs["mono16k"]], run=run_id)
    # Though it is the newest, --model NAME passes over it to a run that can predict.
    notes: list[str] = []
    chosen = newest_run(wh, "svm", say=notes.append)
    assert chosen != run_id and not get_run(wh, chosen)["speaker_norm"]
    # ...and says so, rather than quietly using an older run
    assert notes == [
        f"note: run {run_id} of svm is newer but used speaker normalisation, which cannot "
        f"predict single files; predicting with run {chosen}, the newest without it"
    ]
    wh.execute("UPDATE runs SET started_at = started_at - INTERVAL 1 DAY WHERE run_id = ?",
               [run_id])  # fmt: skip
    assert newest_run(wh, "svm", say=notes.append) == chosen and len(notes) == 1
    wh.execute("UPDATE runs SET model = 'svm-normed' WHERE run_id = ?", [run_id])
    with pytest.raises(SercapError, match="every stored run of 'svm-normed' used speaker norm"):
        newest_run(wh, "svm-normed")
    wh.close()


def test_model_name_predicts_with_the_newest_run_not_the_highest_scoring(trained) -> None:
    """The best UA of several runs is picked on their test folds: never the rule."""
    wh_dir, _ = trained
    wh = connect(wh_dir)
    first = newest_run(wh, "svm")
    data = load_for(wh, data_request("svm"))
    second = run_model(wh, "svm", data, params={"C": 0.01}, progress=False).run_id
    wh.execute("UPDATE runs SET ua = 1.0 WHERE run_id = ?", [first])  # the older scores best
    wh.execute("UPDATE runs SET ua = 0.1 WHERE run_id = ?", [second])
    assert newest_run(wh, "svm") == second
    wh.close()


def test_model_name_says_when_runs_of_other_classes_or_inputs_exist(trained) -> None:
    """The newest run decides the classes predict prints: another label map (or an ablation
    on some columns) trained last would change them without a word."""
    wh_dir, _ = trained
    wh = connect(wh_dir)
    params = {"n_estimators": 5}
    run_model(wh, "xgb", load_for(wh, data_request("xgb")), params=params, progress=False)
    notes: list[str] = []
    newest_run(wh, "xgb", say=notes.append)
    assert notes == []  # one kind of run: nothing to say
    six = load_for(wh, data_request("xgb", label_map="iemocap6"))
    chosen = run_model(wh, "xgb", six, params=params, progress=False).run_id
    assert newest_run(wh, "xgb", say=notes.append) == chosen
    assert notes == [
        f"note: predicting with run {chosen}, the newest of xgb (iemocap6); other runs of it "
        "use iemocap4: name one with --run / run="
    ]
    wh.close()


def test_predict_fails_only_when_no_file_could_be_predicted(trained, wavs, tmp_path) -> None:
    wh_dir, _ = trained
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF garbage")
    runner = CliRunner()
    w = ["-w", str(wh_dir), "predict", "--model", "svm"]
    some = runner.invoke(main, [*w, str(broken), str(wavs["mono16k"])])
    assert some.exit_code == 0 and f"warning: {broken}: unreadable audio" in some.output
    none = runner.invoke(main, [*w, str(broken)])
    assert none.exit_code == 1  # one line naming the file: no table, no separate warning
    assert none.output.strip().splitlines() == [
        f"error: {broken}: unreadable audio (not a recognised audio format, or damaged); "
        "nothing predicted"
    ]


def test_predict_applies_the_audio_checks_of_extraction(trained, wavs, tmp_path) -> None:
    """Silence, a directory, /dev/null, a truncated, a too short and an absurdly loud file
    each get a one-line reason; the good file beside them is predicted (exit 0, as for any partial
    failure), with every run kind (svm, rf, their ensemble)."""
    import os

    wh_dir, runs = trained
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32000, np.float32), 16000)
    short = tmp_path / "short.wav"
    sf.write(short, np.full(100, 0.1, np.float32), 16000)
    huge = tmp_path / "huge.wav"
    y, sr = sf.read(wavs["mono16k"], dtype="float32")
    sf.write(huge, y * np.float32(1e20), sr, subtype="FLOAT")
    folder = tmp_path / "folder"
    folder.mkdir()
    cut = tmp_path / "cut.wav"  # an interrupted copy: libsndfile alone reads what is there
    cut.write_bytes(Path(wavs["mono16k"]).read_bytes()[:4000])
    bad = {
        cut: "truncated WAV",
        silent: "silent",
        short: "shorter than one analysis window",
        huge: "absurd amplitude",
        folder: "not an audio file",
        tmp_path / "nothing.wav": "audio file not found",
    }
    if os.path.exists("/dev/null"):
        bad[Path("/dev/null")] = "not an audio file"
    files = [*bad, wavs["mono16k"]]
    wh = connect(wh_dir)
    for run_id in runs.values():
        results = predict_files(wh, run_id, files)
        assert results[-1].error is None and results[-1].label is not None
        for path, reason in bad.items():
            got = next(r for r in results if r.path == str(path))
            assert got.label is None and reason in got.error, (path, got.error)
            assert "\n" not in got.error
    wh.close()
    runner = CliRunner()
    w = ["-w", str(wh_dir), "predict", "--model", "svm"]
    result = runner.invoke(main, [*w, str(huge), str(wavs["mono16k"]), str(folder)])
    assert result.exit_code == 0, result.output
    assert f"warning: {huge}: samples exceed" in result.output
    assert f"warning: {folder}: not an audio file" in result.output
    assert "Traceback" not in result.output
    only_bad = runner.invoke(main, [*w, str(silent), str(huge)])
    assert only_bad.exit_code == 1
    last = only_bad.output.strip().splitlines()[-1]
    assert last == "error: none of the 2 files could be predicted"
    assert f"warning: {silent}: silent" in only_bad.output


def test_a_damaged_stored_final_model_is_fitted_again_with_a_note(trained, wavs) -> None:
    """A truncated model file or an edited inputs.json is a cache miss, not a crash (the
    CLI printed click's bare "Aborted!" for the first and a KeyError traceback for the
    second): the model is fitted again from the run, replaced, and a note says so."""
    wh_dir, runs = trained
    wh = connect(wh_dir)
    first = predict_files(wh, runs["rf"], [wavs["mono16k"]], progress=False)[0]
    folder = wh_dir / wh.scalar("SELECT path FROM artifacts WHERE run_id = ?", [runs["rf"]])
    model_file = max(
        (p for p in (folder / "model").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    damages = {
        model_file: model_file.read_bytes()[:300],
        folder / "inputs.json": b"{}",
    }
    for path, damaged in damages.items():
        path.write_bytes(damaged)
        notes: list[str] = []
        again = predict_files(wh, runs["rf"], [wavs["mono16k"]], progress=False, say=notes.append)
        assert again[0].error is None and again[0].proba == pytest.approx(first.proba)
        notes = _about_the_model(notes)
        assert len(notes) == 1 and f"the stored final model of run {runs['rf']}" in notes[0]
        assert notes[0].endswith("fitting it again")
        notes.clear()  # replaced: the next prediction reads it without a note
        predict_files(wh, runs["rf"], [wavs["mono16k"]], progress=False, say=notes.append)
        assert _about_the_model(notes) == []
    wh.close()
    # through the CLI: a note on stderr, the prediction on stdout, exit 0
    (folder / "inputs.json").write_text("not json")
    done = CliRunner().invoke(
        main, ["-w", str(wh_dir), "predict", "--run", runs["rf"], str(wavs["mono16k"])]
    )
    assert done.exit_code == 0, done.output
    assert "cannot be read (SercapError: inputs.json: its SHA-256 differs" in done.output
    assert "Traceback" not in done.output


def test_an_edited_but_readable_stored_model_is_caught_by_its_checksums(trained, wavs) -> None:
    """Classes swapped in inputs.json still load, and every prediction came out under the
    wrong label; the artifact's checksums catch it and the model is fitted again."""
    import json

    wh_dir, runs = trained
    with connect(wh_dir) as wh:
        first = predict_files(wh, runs["svm"], [wavs["mono16k"]], progress=False)[0]
        folder = wh_dir / wh.scalar("SELECT path FROM artifacts WHERE run_id = ?", [runs["svm"]])
        meta = json.loads((folder / "inputs.json").read_text())
        meta["classes"] = meta["classes"][::-1]
        (folder / "inputs.json").write_text(json.dumps(meta, indent=1))
        notes: list[str] = []
        again = predict_files(wh, runs["svm"], [wavs["mono16k"]], progress=False, say=notes.append)
    assert again[0].label == first.label and again[0].proba == pytest.approx(first.proba)
    notes = _about_the_model(notes)
    assert len(notes) == 1 and "inputs.json: its SHA-256 differs from the one stored" in notes[0]


def test_read_only_prediction_changes_no_byte_and_ignores_unrecorded_models(
    trained, wavs, tmp_path
) -> None:
    """On a read-only warehouse predict wrote artifacts/ and then failed with DuckDB's raw
    error; a second call loaded that unrecorded folder. Now the model is fitted in memory,
    nothing is written, and a folder the catalog does not record is never loaded."""
    import hashlib
    import shutil

    wh_dir, runs = trained
    copy = tmp_path / "wh"
    shutil.copytree(wh_dir, copy)
    with connect(copy) as wh:
        expected = predict_files(wh, runs["svm"], [wavs["mono16k"]], progress=False)[0]
        folder = copy / wh.scalar("SELECT path FROM artifacts WHERE run_id = ?", [runs["svm"]])
        wh.execute("DELETE FROM artifacts")  # the folder stays, unrecorded
    (folder / "inputs.json").write_text('{"classes": ["x"], "input_kind": "tabular"}')

    def digest() -> dict[str, str]:
        return {
            str(p.relative_to(copy)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(copy.rglob("*"))
            if p.is_file()
        }

    before = digest()
    for _ in range(2):
        with connect(copy, read_only=True) as wh:
            notes: list[str] = []
            got = predict_files(
                wh, runs["svm"], [wavs["mono16k"]], progress=False, say=notes.append
            )
        assert got[0].error is None and got[0].proba == pytest.approx(expected.proba)
        notes = _about_the_model(notes)
        assert len(notes) == 1 and "not kept (the warehouse is open read-only" in notes[0]
    assert digest() == before


def test_files_unlike_the_training_audio_get_a_note(trained, wavs, tmp_path) -> None:
    """An 8 kHz recording (empty upper bands) or a clip shorter than every training
    utterance got a prediction as confident-looking as any, without a word."""
    wh_dir, runs = trained
    y, sr = sf.read(wavs["mono16k"])
    sf.write(tmp_path / "phone.wav", y[::2], sr // 2)
    sf.write(tmp_path / "short.wav", y[: sr // 10], sr)
    # silent and short: refused by the audio checks, it gets its error and no note (it was
    # told its prediction is "less reliable", then that it has none)
    sf.write(tmp_path / "silence.wav", np.zeros(sr // 10, np.float32), sr)
    files = [tmp_path / "phone.wav", tmp_path / "short.wav", wavs["mono16k"]]
    notes: list[str] = []
    with connect(wh_dir) as wh:
        got = predict_files(
            wh, runs["svm"], [*files, tmp_path / "silence.wav"], progress=False, say=notes.append
        )
    assert [g.error for g in got[:3]] == [None, None, None] and got[3].error
    notes = [n for n in notes if "final model" not in n]  # fitted now, if not yet stored
    # (the test tone is also far from the synthetic speech: its note says only that)
    notes = [n for n in notes if not n.startswith(f"note: {files[2]}: ")]
    assert len(notes) == 2, notes
    assert notes[0].startswith(f"note: {files[0]}: recorded at 8000 Hz")
    assert "above 4000 Hz are empty" in notes[0]
    assert notes[1].startswith(f"note: {files[1]}: 0.10 s long, shorter than every utterance")


def test_a_file_longer_than_training_or_beyond_full_scale_gets_a_note(
    trained, wavs, tmp_path
) -> None:
    """A 5-minute recording (length is a feature: n_frames) and a float file at 50 times
    full scale got the answer white noise gets, with no note: too few of their features lay
    outside the training range for that note."""
    from sercap.store.corpora import duration_range

    wh_dir, runs = trained
    y, sr = sf.read(wavs["mono16k"], dtype="float32")
    with connect(wh_dir, read_only=True) as wh:
        longest = duration_range(wh, "iemocap")[1]
    reps = int(np.ceil(longest * 1.5 * sr / y.size))
    sf.write(tmp_path / "long.wav", np.tile(y, reps), sr)
    sf.write(tmp_path / "loud.wav", y * 50, sr, subtype="FLOAT")
    sf.write(tmp_path / "fine.wav", y * 0.9, sr, subtype="FLOAT")  # (the test tone: ~0.3)
    files = [tmp_path / "long.wav", tmp_path / "loud.wav", tmp_path / "fine.wav"]
    notes: list[str] = []
    with connect(wh_dir) as wh:
        got = predict_files(wh, runs["svm"], files, progress=False, say=notes.append)
    assert [g.error for g in got] == [None, None, None]
    by_file = {f: [n for n in notes if n.startswith(f"note: {f}: ")] for f in files}
    long_note, loud_note, fine_note = (" ".join(by_file[f]) for f in files)
    assert f"longer than every utterance the model was trained on (longest {longest:.2f} s" in (
        long_note
    ), notes
    assert "times full scale" not in long_note
    assert f"its samples reach {np.abs(y).max() * 50:.3g} times full scale" in loud_note, notes
    assert "longer than every" not in loud_note
    assert "longer than every" not in fine_note and "full scale" not in fine_note


def test_a_file_far_from_every_training_utterance_gets_a_note(trained, wavs, tmp_path) -> None:
    """White noise got the SVM's saturated answer, as confident-looking as any, without a
    word; a file like the training audio gets no such note."""
    from sercap.audio import load_audio
    from sercap.predict_inputs import model_input
    from sercap.prediction import OUTSIDE_NOTE, final_model, outside_training_range

    wh_dir, runs = trained
    noise = tmp_path / "noise.wav"
    sf.write(
        noise, (0.1 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32), 16000
    )
    notes: list[str] = []
    with connect(wh_dir) as wh:
        speech = Path(wh.scalar("SELECT path FROM utterances ORDER BY utt_id LIMIT 1"))
        got = predict_files(wh, runs["svm"], [noise, speech], progress=False, say=notes.append)
        final = final_model(wh, runs["svm"], progress=False)
        rows = {p: model_input(final, load_audio(p, 16000)) for p in (noise, speech)}
        shares = outside_training_range(wh, get_run(wh, runs["svm"]), rows)
    assert got[0].error is None  # still predicted, but said to be far from the data
    # one of its own utterances: inside the range but for rounding (in the full suite, 10 of
    # its 2,853 functionals recomputed alone came out a last bit beyond the stored ones that
    # set the range; 0.3% is held-out speech's median share)
    assert shares[noise] > OUTSIDE_NOTE and shares[speech] < 0.01
    far = [n for n in notes if "outside the range of every training utterance" in n]
    assert len(far) == 1 and far[0].startswith(f"note: {noise}: ")
    # an ensemble of runs on functionals says it too (it kept no member's rows: no note)
    import shutil

    import sercap

    shutil.copytree(wh_dir, tmp_path / "copy")
    with connect(tmp_path / "copy") as wh:
        both = sercap.ensemble_runs(wh, [runs["svm"], runs["rf"]]).run_id
        notes.clear()
        predict_files(wh, both, [noise, speech], progress=False, say=notes.append)
    far = [n for n in notes if "outside the range of every training utterance" in n]
    assert len(far) == 1 and far[0].startswith(f"note: {noise}: ")


def test_a_model_edited_with_its_checksums_file_removed_is_caught_and_check_finds_it(
    trained, wavs, tmp_path
) -> None:
    """The checksums file lived in the folder it protected: deleting it after editing the
    model made predict use any bytes, and `check` never looked at stored models. The
    catalog now holds the checksums file's SHA-256; check names the damage and --repair
    drops the model, which predict then fits again."""
    import json
    import shutil

    from sercap.check import check, repair

    wh_dir, runs = trained
    copy = tmp_path / "wh"
    shutil.copytree(wh_dir, copy)
    with connect(copy) as wh:
        first = predict_files(wh, runs["svm"], [wavs["mono16k"]], progress=False)[0]
        assert check(wh) == []
        folder = copy / wh.scalar("SELECT path FROM artifacts WHERE run_id = ?", [runs["svm"]])
        meta = json.loads((folder / "inputs.json").read_text())
        meta["classes"] = meta["classes"][::-1]  # every prediction under the wrong label
        (folder / "inputs.json").write_text(json.dumps(meta, indent=1))
        (folder / "checksums.json").unlink()
        found = check(wh)
        assert [p.artifact for p in found] == [runs["svm"]], found
        assert "checksums.json: missing" in found[0].line()
        notes: list[str] = []
        again = predict_files(wh, runs["svm"], [wavs["mono16k"]], progress=False, say=notes.append)
        assert again[0].label == first.label  # refitted, not the edited model
        assert any("checksums.json: missing" in n for n in _about_the_model(notes)), notes
        assert check(wh) == []  # predict stored the refitted model whole
        model = next(p for p in (folder / "model").rglob("*") if p.is_file())
        model.write_bytes(b"\0" + model.read_bytes())
        summary = repair(wh, check(wh))
        assert summary.models_dropped == [runs["svm"]] and not folder.exists()
        assert "fits it again" in summary.lines()[-1]
        assert check(wh) == []
        predict_files(wh, runs["svm"], [wavs["mono16k"]], progress=False)  # stored again
        shutil.rmtree(copy / "artifacts")  # the cache deleted is no damage: predict refits
        assert check(wh) == []


def _digest(root: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_cli_predict_with_stored_models_opens_read_only_and_changes_no_byte(
    trained, wavs, tmp_path
) -> None:
    """`sercap predict` opened the warehouse writable even when every final model it
    needed was stored, which rewrote the catalog file (and failed beside a notebook holding
    it read-only). Now it opens read-only then, and writable only to store a new model."""
    import shutil

    wh_dir, runs = trained
    copy = tmp_path / "wh"
    shutil.copytree(wh_dir, copy)
    cli = ["-w", str(copy), "predict", str(wavs["mono16k"]), "--run", runs["ensemble"]]
    first = CliRunner().invoke(main, cli)
    assert first.exit_code == 0, first.output
    with connect(copy, read_only=True) as wh:  # the first call stored both members
        stored = wh.query("SELECT run_id FROM artifacts")["run_id"].to_list()
    assert {runs["svm"], runs["rf"]} <= set(stored)
    before = _digest(copy)
    again = CliRunner().invoke(main, cli)
    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout
    assert _digest(copy) == before
    # a warehouse of an older schema (read-only opens refuse it) is migrated, as before
    with connect(copy) as wh:
        wh.execute("UPDATE schema_info SET value = '0' WHERE key = 'version'")
    older = CliRunner().invoke(main, cli)
    assert older.exit_code == 0, older.output
    assert older.stdout == first.stdout


def test_models_to_fit_names_the_members_still_to_train(trained, wavs, tmp_path) -> None:
    import shutil

    import sercap

    wh_dir, runs = trained
    copy = tmp_path / "wh"
    shutil.copytree(wh_dir, copy)
    wav = [wavs["mono16k"]]
    with connect(copy) as wh:
        wh.execute("DELETE FROM artifacts")  # nothing stored
        assert sercap.models_to_fit(wh, wav, run=runs["ensemble"]) == [runs["svm"], runs["rf"]]
        sercap.predict(wh, wav, run=runs["svm"])  # stores svm's final model
        assert sercap.models_to_fit(wh, wav, run=runs["ensemble"]) == [runs["rf"]]
        assert sercap.models_to_fit(wh, wav, run=runs["svm"]) == []
        folder = copy / wh.scalar("SELECT path FROM artifacts WHERE run_id = ?", [runs["svm"]])
    (folder / "inputs.json").write_text("{}")  # damaged: predict would fit it again
    with connect(copy, read_only=True) as wh:
        assert sercap.models_to_fit(wh, wav, run=runs["svm"]) == [runs["svm"]]
        with pytest.raises(sercap.BadParameterError, match="exactly one of run or model"):
            sercap.models_to_fit(wh, wav)


def test_no_openable_file_is_refused_before_a_final_model_is_trained(
    trained, wavs, tmp_path
) -> None:
    """A typo'd path trained the run's final model (minutes on a real corpus), stored it,
    and only then said that nothing could be predicted."""
    import shutil

    import sercap

    wh_dir, runs = trained
    copy = tmp_path / "wh"
    shutil.copytree(wh_dir, copy)
    gone = [tmp_path / "nope.wav", tmp_path / "folder"]
    gone[1].mkdir()
    with connect(copy) as wh:
        wh.execute("DELETE FROM artifacts")  # nothing stored: svm's final model is to train
        assert sercap.models_to_fit(wh, gone, run=runs["svm"]) == []  # nothing will train
        with pytest.raises(
            sercap.NotFoundError,
            match=r"^none of the 2 files can be opened \(.*nope\.wav: audio file not found; "
            r".*folder: not an audio file \(a directory\)\); nothing predicted$",
        ):
            sercap.predict(wh, gone, run=runs["svm"])
        assert wh.scalar("SELECT count(*) FROM artifacts") == 0
        # one openable file among them: predicted, the others get their reason
        table = sercap.predict(wh, [*gone, wavs["mono16k"]], run=runs["svm"])
        assert table["error"].to_list()[:2] == ["audio file not found", table["error"][1]]
        assert table["error"][2] is None and wh.scalar("SELECT count(*) FROM artifacts") == 1
    result = CliRunner().invoke(main, ["-w", str(copy), "predict", "--model", "rf", str(gone[0])])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {gone[0]}: audio file not found; nothing predicted"
    ]
    with connect(copy, read_only=True) as wh:  # rf's final model was not trained either
        assert wh.scalar("SELECT count(*) FROM artifacts WHERE run_id = ?", [runs["rf"]]) == 0


def test_a_final_model_is_not_fitted_on_data_its_run_was_not_scored_on(wh) -> None:
    """A recording replaced and re-extracted after a run: predict fitted the run's final
    model on the new features with no word, under the scores of the old ones."""
    import sercap
    from sercap.prediction import final_model
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    wh.execute("UPDATE utterances SET audio_sha256 = 'bytes of ' || utt_id")
    run = sercap.train(wh, "svm")
    wh.execute("UPDATE utterances SET audio_sha256 = 'new bytes' WHERE utt_id = 'toy_01_ang_0'")
    with pytest.raises(SercapError, match="scored on data that changed since"):
        final_model(wh, run.run_id, progress=False)
    assert wh.scalar("SELECT count(*) FROM artifacts") == 0
    wh.execute("UPDATE labels SET emotion = 'sad' WHERE utt_id = 'toy_01_ang_0'")
    wh.execute("UPDATE utterances SET audio_sha256 = 'bytes of ' || utt_id")
    with pytest.raises(SercapError, match="scored on data that changed since"):  # relabelled
        final_model(wh, run.run_id, progress=False)
    wh.execute("UPDATE labels SET emotion = 'ang' WHERE utt_id = 'toy_01_ang_0'")
    final_model(wh, run.run_id, progress=False)  # the data it was scored on: fitted, stored
    assert wh.scalar("SELECT count(*) FROM artifacts") == 1


def test_a_run_from_before_data_fingerprints_is_checked_as_far_as_it_can_be(wh) -> None:
    """A run stored by an older sercap has no data fingerprint: predict fitted its final
    model on today's data without a word, a relabelled utterance included."""
    import sercap
    from sercap.prediction import final_model
    from tests.helpers import add_corpus, add_features

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    run = sercap.train(wh, "svm")
    wh.execute("UPDATE runs SET data_sha256 = NULL")  # as an older sercap stored it
    wh.execute("UPDATE labels SET emotion = 'sad' WHERE utt_id = 'toy_01_ang_0'")
    with pytest.raises(SercapError, match="scored on data that changed since"):  # relabelled
        final_model(wh, run.run_id, progress=False)
    wh.execute("UPDATE labels SET emotion = 'ang' WHERE utt_id = 'toy_01_ang_0'")
    said: list[str] = []
    final_model(wh, run.run_id, progress=False, say=said.append)
    assert any(
        line.startswith(f"note: run {run.run_id} was stored without a fingerprint of its data")
        for line in said
    )
    assert wh.scalar("SELECT count(*) FROM artifacts") == 1


def test_a_run_whose_features_this_sercap_computes_differently_is_refused(
    trained, wavs, monkeypatch
) -> None:
    """After an upgrade that changed how a set is computed (its descriptor code, a library
    version), predict fed a run's model new files' features computed the new way, with no
    word: on EmoDB p(bor) 0.5683 where the old code gave 0.5719, 510 of 2,853 columns
    different. The stored model and a refit from the stored features were both used."""
    from sercap.features import versions

    wh_dir, runs = trained
    wh = connect(wh_dir)
    try:
        predict_files(wh, runs["svm"], [wavs["mono16k"]], progress=False)  # stored model
        stored = wh.scalar("SELECT count(*) FROM artifacts")
        monkeypatch.setattr(versions, "LLD_VERSION", versions.LLD_VERSION + 1)  # a later sercap
        for run_id in (runs["svm"], runs["rf"]):  # stored, and to be fitted
            words = r"read feature set 'default' as another sercap or other library versions"
            with pytest.raises(SercapError, match=words) as refused:
                predict_files(wh, run_id, [wavs["mono16k"]], progress=False)
            assert "sercap extract" in refused.value.hint
        assert wh.scalar("SELECT count(*) FROM artifacts") == stored  # refused before a fit
    finally:
        wh.close()


def test_predict_on_a_read_only_disk_fits_the_model_in_memory(
    trained, wavs, tmp_path, monkeypatch
) -> None:
    """With no final model stored, `predict` reopened a warehouse on a read-only mount for
    writing and failed ("Read-only file system"), where the README says it fits the model
    in memory and writes nothing (as sercap.predict on a read-only connection does)."""
    import os
    import shutil

    from click.testing import CliRunner

    import sercap
    import sercap.cli.models as cli_models
    from cli import main

    wh_dir, _runs = trained
    copy = tmp_path / "copy"
    shutil.copytree(wh_dir, copy)
    with connect(copy) as wh:
        run = sercap.train(wh, "svm", progress=False).run_id  # no final model stored
    real_access, real_open = os.access, cli_models.open_warehouse

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and str(path).startswith(str(copy)):
            return False  # as on a read-only mount (root passes chmod 555)
        return real_access(path, mode, *args, **kwargs)

    def open_warehouse(ctx, read_only=False, **kwargs):
        if not read_only:  # what the mount does to a writable open
            raise sercap.SercapError(f"{copy}: cannot open the warehouse (Read-only file system)")
        return real_open(ctx, read_only=read_only, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(cli_models, "open_warehouse", open_warehouse)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    result = CliRunner().invoke(
        main, ["-w", str(copy), "predict", str(wavs["mono16k"]), "--run", run]
    )
    assert result.exit_code == 0, result.output
    assert "mono16k.wav" in result.output
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before  # nothing stored


def test_predict_on_a_full_disk_predicts_with_the_model_it_could_not_store(
    trained, wavs, tmp_path, monkeypatch
) -> None:
    """The final model was fitted, only caching it failed, and predict printed
    "error: No space left on device" (no file named) and no prediction."""
    import errno
    import shutil

    from click.testing import CliRunner

    import sercap
    import sercap.prediction as prediction_module
    from cli import main

    wh_dir, _runs = trained
    copy = tmp_path / "copy"
    shutil.copytree(wh_dir, copy)
    with connect(copy) as wh:
        run = sercap.train(wh, "svm", progress=False).run_id  # no final model stored
    real = prediction_module.runs.write_artifact_checksums

    def full(folder):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prediction_module.runs, "write_artifact_checksums", full)
    result = CliRunner().invoke(
        main, ["-w", str(copy), "predict", str(wavs["mono16k"]), "--run", run]
    )
    assert result.exit_code == 0, result.output
    assert "mono16k.wav" in result.stdout
    assert f"note: run {run}'s final model could not be stored in" in result.stderr
    assert "(No space left on device); it was fitted for this call and not kept" in (result.stderr)
    assert not list(copy.rglob("*.tmp"))  # nothing half-written left
    with connect(copy, read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM artifacts WHERE run_id = ?", [run]) == 0
    monkeypatch.setattr(prediction_module.runs, "write_artifact_checksums", real)


def test_a_lost_final_model_is_fitted_again_on_its_runs_own_feature_set_version(
    tmp_path,
) -> None:
    """After `default` was redefined and extracted again, a run whose stored final model
    was lost could not be fitted again: the refit read the newest version and refused
    ("the warehouse now has …"), though the run's own version was still stored."""
    import sercap
    from sercap.prediction import final_model
    from tests.helpers import add_corpus, add_features, add_transcripts
    from tests.test_regression import add_ratings

    with connect(tmp_path / "wh") as wh:
        utts = add_corpus(wh, n_speakers=3, per_class=2)
        add_features(wh, utts, digest="v1")
        add_transcripts(wh, utts)
        add_ratings(wh, utts)
        data = load_for(wh, data_request("svm"))
        run_id = run_model(wh, "svm", data, progress=False).run_id
        # a regression run and a fused one (its hash names audio and words together) were
        # refitted on the newest version and refused
        regression = sercap.train(wh, "svm", target="valence", progress=False).run_id
        fused = sercap.train(wh, "early-fusion", progress=False).run_id
        add_features(wh, utts, digest="v2", seed=1)  # a newer definition of `default`
        wh.execute(
            "UPDATE feature_sets SET created_at = created_at + INTERVAL 1 HOUR WHERE hash = 'v2'"
        )  # (newest beyond doubt)
        assert load_for(wh, data_request("svm")).feature_set_hash == "v2"
        assert wh.scalar("SELECT count(*) FROM artifacts") == 0  # none stored: it is fitted
        for run in (run_id, regression, fused):
            fitted = final_model(wh, run, progress=False)
            assert fitted.feature_set["hash"] == "v1", run
        with pytest.raises(SercapError, match="has no version 'v9'"):
            load_for(wh, replace(data_request("svm"), version="v9"))
        # a version of a set of the other kind: the same line as without version=
        with pytest.raises(SercapError, match="'default' is an audio feature set"):
            load_for(wh, replace(data_request("cnn", image_set="default"), version="v1"))


def test_the_final_models_fit_leaves_the_warehouse_to_other_processes(
    trained, wavs, monkeypatch
) -> None:
    """The first predict with a run fits its final model (minutes on an IEMOCAP-sized
    corpus) with the warehouse open writable: `info`, `extract` and every other command gave
    up after their minute's wait. It gives the lock back while it fits, as train does."""
    import sercap
    from sercap.models.registry import get_model

    wh_dir, _ = trained
    wh = connect(wh_dir)
    run = sercap.train(wh, "svm", params={"C": 0.5}, progress=False).run_id
    cls = get_model("svm")
    original, seen = cls.fit, []

    def fit(self, *args, **kwargs):
        # another process's open, as this process can make it: DuckDB opens a file one way
        # per process, so a writable handle still open here makes this fail
        reader = connect(wh_dir, read_only=True, wait_s=0)
        seen.append(reader.scalar("SELECT count(*) FROM runs WHERE run_id = ?", [run]))
        reader.close()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", fit)
    predicted = predict_files(wh, run, [wavs["mono16k"]], progress=False)
    assert seen == [1] and predicted[0].error is None
    assert wh.scalar("SELECT count(*) FROM runs WHERE run_id = ?", [run]) == 1  # taken back
    wh.close()
