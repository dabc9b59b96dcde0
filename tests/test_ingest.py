"""The ingest and corpus synth commands through the CLI: summaries and one-line errors."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from cli import main
from tests.test_corpora_iemocap import N_UTTERANCES, make_iemocap


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "Traceback" not in result.output


def test_synth_then_ingest_prints_summary(tmp_path: Path) -> None:
    synth = run(
        "-w",
        tmp_path / "wh",
        "corpus",
        "synth",
        tmp_path / "demo",
        "--sessions",
        1,
        "--per-speaker",
        3,
        "--seed",
        2,
    )
    assert synth.exit_code == 0, synth.output
    assert "wrote 6 utterances" in synth.output and "sercap ingest iemocap" in synth.output
    first = run("-w", tmp_path / "wh", "ingest", "iemocap", tmp_path / "demo")
    assert first.exit_code == 0, first.output
    assert "added 6" in first.output
    assert "utterances per label" in first.output and "utterances per speaker" in first.output
    assert "Ses01F" in first.output and "Ses01M" in first.output
    again = run("-w", tmp_path / "wh", "ingest", "iemocap", tmp_path / "demo", "--name", "iemocap")
    assert "added 0, updated 0, unchanged 6" in again.output


def test_problems_are_listed_with_where_the_rest_are(tmp_path: Path) -> None:
    release = make_iemocap(tmp_path / "corpus")
    for wav in sorted(release.glob("Session1/sentences/wav/*/Ses01*.wav"))[:6]:
        wav.unlink()
    result = run("-w", tmp_path / "wh", "ingest", "iemocap", release, "--name", "mine")
    assert result.exit_code == 0, result.output
    assert f"added {N_UTTERANCES - 6}" in result.output
    assert "6 problem(s):" in result.output and "… 1 more;" in result.output
    assert "SELECT * FROM ingest_problems WHERE corpus = 'mine'" in result.output
    listed = run("-w", tmp_path / "wh", "sql", "SELECT count(*) AS n FROM ingest_problems")
    assert "6" in listed.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    assert_one_line_error(run("-w", warehouse, "ingest", "iemocap", tmp_path / "nope"), "no such")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run("-w", warehouse, "ingest", "iemocap", tmp_path / "empty"), "Session")
    release = make_iemocap(tmp_path / "corpus", sessions=(1,))
    assert run("-w", warehouse, "ingest", "iemocap", release).exit_code == 0
    assert_one_line_error(
        run("-w", warehouse, "ingest", "iemocap", release, "--name", "twin"), "already belongs"
    )
    wrong_kind = run("-w", warehouse, "ingest", "iemocapp", release)
    assert wrong_kind.exit_code == 1 and "Traceback" not in wrong_kind.output
    assert wrong_kind.output.strip().splitlines() == [
        "error: unknown corpus kind 'iemocapp'; choose one of: "
        "iemocap, emodb, ravdess, cremad, tess, manifest"
    ]


def test_help_shows_layouts() -> None:
    result = run("ingest", "--help")
    assert "IEMOCAP_full_release/Session1..5/" in result.output
    assert "Actor_NN/03-01-EE-II-SS-RR-AA.wav" in result.output
    assert "--per-speaker" in run("corpus", "synth", "--help").output
