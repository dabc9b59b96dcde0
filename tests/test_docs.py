"""The quickstarts in docs/ run as written, so they cannot rot.

docs/python.md: every ```python block runs, in order, in one namespace, in a fresh folder.
docs/cli.md: every ``$ sercap …`` line of its ```console blocks runs, in order, through the
CLI group in a fresh folder; a line ending in ``# fails`` must exit with status 1.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

DOCS = Path(__file__).resolve().parents[1] / "docs"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(path: Path, language: str) -> list[str]:
    """The fenced blocks of ``language`` in a Markdown file, in order."""
    return [body for lang, body in _BLOCK.findall(path.read_text()) if lang == language]


def console_commands(path: Path) -> list[tuple[list[str], bool]]:
    """(arguments after ``sercap``, expected to fail) for each ``$ sercap`` line."""
    commands = []
    for body in blocks(path, "console"):
        for line in body.splitlines():
            if not line.startswith("$ sercap "):
                continue
            fails = line.rstrip().endswith("# fails")
            commands.append((shlex.split(line[len("$ sercap ") :], comments=True), fails))
    return commands


def test_block_parsing_finds_every_block() -> None:
    """A doc whose blocks the runner silently skipped would prove nothing."""
    text = DOCS / "python.md"
    assert len(blocks(text, "python")) == text.read_text().count("```python")
    cli = DOCS / "cli.md"
    lines = [line for line in cli.read_text().splitlines() if line.startswith("$ sercap ")]
    assert len(console_commands(cli)) == len(lines) >= 8


@pytest.mark.slow
def test_python_quickstart_runs(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks(DOCS / "python.md", "python")):
        exec(compile(code, f"docs/python.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "utterances extracted" in out and "error: unknown model" in out
    assert namespace["table"]["error"].to_list()[0] is None
    assert "audio file not found" in namespace["table"]["error"].to_list()[1]


@pytest.mark.slow
def test_cli_quickstart_runs(tmp_path, monkeypatch) -> None:
    from sercap.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args, fails in console_commands(DOCS / "cli.md"):
        result = runner.invoke(main, args, env={"SERCAP_WAREHOUSE": "warehouse"})
        shown = f"sercap {shlex.join(args)}\n{result.output}"
        if fails:
            assert result.exit_code == 1, shown
            assert result.output.strip().splitlines()[-1].startswith("error: "), shown
        else:
            assert result.exit_code == 0, shown + repr(result.exception)


def test_cheap_docstring_examples_run() -> None:
    """The examples of sercap.errors and of the API's warehouse-only functions (the others
    synthesise and extract a corpus each: `pytest --doctest-modules sercap/api` runs all)."""
    import doctest

    import sercap.api
    import sercap.errors

    assert doctest.testmod(sercap.errors).failed == 0
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    cheap = {"sercap.api", "sercap.api.connect", "sercap.api.get_run"} | {
        f"sercap.api.{name}"
        for name in (
            "warehouse_exists", "damage", "use_numba_cache", "sql_statements", "sql", "info",
            "verify", "repair", "get_feature_set", "feature_sets", "describe_feature_set",
            "image", "runs", "ensemble_runs", "check_model", "iter_sql", "resolve_corpus",
            "prediction_table",
        )
    }  # fmt: skip
    tests = [t for t in finder.find(sercap.api) if t.name in cheap]
    assert len(tests) == len(cheap)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_the_examples_of_pure_helpers_run() -> None:
    """Examples that are the only check of a helper's edge (the sessions rule of inner
    splits, SHOW TABLES with comments…) ran nowhere: the suite collects no module
    doctests. These are pure and quick."""
    import doctest
    import importlib

    chosen = {
        "sercap.data": ["Dataset.validation_groups"],
        "sercap.audio": ["unfinished_wav", "wav_shortfall"],
        "sercap.cluster": ["parse_spec", "cluster_threads"],
        "sercap.tuning": ["storage_url", "study_line"],
        "sercap.analysis_store": ["bonferroni_resamples"],
        "sercap.api._sql": ["_as_run"],
        "sercap.models.tabular": ["lgbm_leaf_size"],
        "sercap.store.warehouse": ["_as_text_where_needed", "_dates_as_text", "_numbered"],
        "sercap.run_labels": ["display_name", "params_tag"],
        "sercap.features.featureset": ["store_step", "_refuse_unknown_group_keys"],
        "sercap.corpora.manifest": ["_words", "_given"],
        "sercap.corpora.iemocap": ["_blocks"],
        "sercap.evaluate": ["data_notes", "check_recordings_in_one_fold"],
        "sercap.prediction": ["_train_step", "run_compute"],
        "sercap.format": [
            "_python_range",
            "csv_chunks",
            "json_chunks",
            "print_frame",
            "_torch_compute_lines",
            "format_confusion",
        ],
    }
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    ran = 0
    for name, functions in chosen.items():
        module = importlib.import_module(name)
        wanted = {f"{name}.{f}" for f in functions}
        tests = [t for t in finder.find(module) if t.name in wanted and t.examples]
        assert {t.name for t in tests} == wanted, name
        for test in tests:
            runner.run(test)
            ran += 1
    assert ran == sum(len(f) for f in chosen.values())
    assert runner.summarize(verbose=False).failed == 0
