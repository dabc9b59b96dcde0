import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

import sercap.tuning as tune_module
from sercap.data import load_dataset
from sercap.errors import SercapError
from sercap.models.registry import MODELS
from sercap.store import connect
from sercap.tuning import (
    DEFAULT_TRIALS,
    fold_study_name,
    nested_studies,
    open_storage,
    run_nested,
    run_study,
    store_best,
    study_name,
)
from tests.helpers import add_corpus, add_features, add_frames, add_images, add_transcripts

ROOT = Path(__file__).resolve().parents[1]

#: Tiny settings so that every model family tunes in seconds.
TINY = {
    "svm": {},
    "rf": {"n_estimators": 10},
    "xgb": {"n_estimators": 10},
    "lgbm": {"n_estimators": 10},
    "trees": {"rf__n_estimators": 5, "xgb__n_estimators": 5, "lgbm__n_estimators": 5},
    "dnn": {"epochs": 2},
    "lstm": {"epochs": 2},
    "cnn": {"epochs": 1},
    "resnet18": {"epochs": 1},
    "resnet34": {"epochs": 1},
    "text-lr": {"min_df": 1},
    "text-svm": {"min_df": 1},
    "text-cnn": {"epochs": 2},
    "fusion": {"inner_folds": 2},
    "early-fusion": {"min_df": 1},
}


@pytest.fixture
def toy(wh):
    utts = add_corpus(wh, n_speakers=4, per_class=3)
    add_features(wh, utts)
    add_frames(wh, utts)
    add_images(wh, utts)
    add_transcripts(wh, utts)
    return wh


def test_each_fold_study_reads_only_its_training_rows(toy, monkeypatch, tmp_path) -> None:
    data = load_dataset(toy, "tabular")
    seen: list[np.ndarray] = []
    real = tune_module.cross_validate

    def spy(data_, model, params, **kwargs):
        seen.append(data_.utt_ids)
        return real(data_, model, params, **kwargs)

    monkeypatch.setattr(tune_module, "cross_validate", spy)
    storage = open_storage(None, tmp_path, "s")
    nested = run_nested("svm", data, storage, "s", n_trials=2, final=False, progress=False)
    assert sorted(nested.folds) == sorted(set(data.folds))
    tests = {f: set(data.utt_ids[test]) for f, _, test in tune_module.outer_splits(data)}
    assert len(seen) == 2 * len(tests)
    for (fold, study), chunk in zip(
        nested.folds.items(), np.split(np.arange(len(seen)), 4), strict=True
    ):
        assert study.study_name == fold_study_name("s", fold) == f"s/fold={fold}"
        for i in chunk:
            assert not set(seen[i]) & tests[fold]
            assert set(seen[i]) == set(data.utt_ids) - tests[fold]


def test_a_new_study_starts_from_the_default_parameters(toy, tmp_path) -> None:
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "d")
    study = run_study("svm", data, storage, "d", n_trials=2, pruner="none", progress=False)
    first = study.trials[0]
    assert first.params == {"C": 1.0, "gamma_rel": 1.0} and first.user_attrs["default"]
    assert first.user_attrs["model_params"]["gamma"] == pytest.approx(1.0 / data.X.shape[1])
    study = run_study("svm", data, storage, "d", n_trials=1, pruner="none", progress=False)
    assert sum(bool(t.user_attrs.get("default")) for t in study.trials) == 1  # resumed


def test_a_failed_default_trial_is_queued_again_on_resume(toy, tmp_path) -> None:
    """The default trial is the baseline a study keeps unless clearly beaten: a study
    whose default trial failed (its process was killed) must not resume without it."""
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "f")
    rows = np.arange(len(data))
    study = tune_module.prepare_study("svm", data, storage, "f", rows=rows)
    trial = study.ask()
    assert trial.user_attrs["default"]
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    study = tune_module.prepare_study("svm", data, storage, "f", rows=rows)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs.get("default") for t in waiting] == [True]
    again = tune_module.prepare_study("svm", data, storage, "f", rows=rows)
    assert len(again.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 1  # once


def test_a_tuner_opening_a_study_another_just_created_leaves_it_its_default(toy, tmp_path) -> None:
    """Two tuners opening a new study at the same moment both found no default trial and
    queued it twice (6 of 6 rounds on PostgreSQL): a wasted trial counted in --top-up.
    Here the other tuner has created the study and queues its default 0.3 s later."""
    import threading

    data = load_dataset(toy, "tabular")
    rows = np.arange(len(data))
    other = optuna.create_study(study_name="r", storage=open_storage(None, tmp_path, "r"))
    later = threading.Timer(
        0.3, other.enqueue_trial, (DEFAULT_TRIALS["svm"],), {"user_attrs": {"default": True}}
    )
    later.start()
    tune_module.prepare_study("svm", data, open_storage(None, tmp_path, "r"), "r", rows=rows)
    later.join()
    study = optuna.load_study(study_name="r", storage=open_storage(None, tmp_path, "r"))
    assert [t.user_attrs.get("default") for t in study.get_trials()] == [True]


def test_a_study_resumes_only_with_its_own_fixed_parameters(toy, tmp_path) -> None:
    """A study started with --params kept them in its chosen parameters whatever a later
    run passed: `tune lgbm --params '{"num_leaves": 1}'` then `tune lgbm` chose num_leaves 1."""
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "p")
    rows = np.arange(len(data))
    tune_module.prepare_study("svm", data, storage, "p", rows=rows, fixed={"C": 2.0})
    tune_module.prepare_study("svm", data, storage, "p", rows=rows, fixed={"C": 2.0})
    with pytest.raises(SercapError, match=r'started with fixed parameters \{"C": 2.0\}'):
        tune_module.prepare_study("svm", data, storage, "p", rows=rows)


def test_refused_fixed_parameters_create_no_study(tmp_path) -> None:
    import sercap
    from sercap.errors import BadParameterError

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=4, per_class=3))
    refused = (  # the choices too, not only the numeric ranges: they failed inside a trial
        ("lgbm", {"num_leaves": 1}, "lgbm: num_leaves must be in"),
        ("svm", {"class_weight": "foo"}, "svm: class_weight must be 'balanced' or null"),
        ("svm", {"gamma": -1}, "svm: gamma must be 'scale', 'auto' or a positive number"),
        ("trees", {"xgb__class_weight": 1}, "trees: xgb: class_weight must be"),
    )
    for model, params, words in refused:
        with pytest.raises(BadParameterError, match=words):
            sercap.tune(wh, model, params=params, trials=1, progress=False)
    for timeout in (0, -5):  # it created journals, then failed "no completed trial yet"
        with pytest.raises(BadParameterError, match=f"--timeout / timeout= {timeout};"):
            sercap.tune(wh, "svm", trials=1, timeout=timeout, progress=False)
    # an unknown outer fold: it said so after creating the study's empty journal
    with pytest.raises(SercapError, match=r"^no outer fold 99; the folds are 01, 02, 03, 04$"):
        sercap.tune(wh, "svm", trials=1, folds=["99"], progress=False)
    assert not list((tmp_path / "wh").rglob("*.journal"))
    wh.close()


def test_train_tuned_uses_each_folds_own_parameters(toy, tmp_path) -> None:
    from sercap.experiment import run_model, tuned_params
    from sercap.tuning import store_nested

    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "x")
    with pytest.raises(SercapError, match="no nested tuning for svm"):
        tuned_params(toy, "svm", data)
    partial = run_nested("svm", data, storage, "x", n_trials=1, final=False,
                         only_folds=["01"], progress=False)  # fmt: skip
    store_nested(toy, partial, "svm", data, "journal")
    with pytest.raises(SercapError, match="no tuned parameters for outer fold"):
        tuned_params(toy, "svm", data)
    nested = run_nested("svm", data, storage, "x", n_trials=3, progress=False)
    store_nested(toy, nested, "svm", data, "journal")
    tuning = tuned_params(toy, "svm", data)
    assert tuning.base == "x" and sorted(tuning.fold_params) == sorted(nested.folds)
    outcome = run_model(toy, "svm", data, tuned=True, progress=False)
    stored = toy.query("SELECT * FROM runs WHERE run_id = ?", [outcome.run_id]).to_dicts()[0]
    assert stored["tuned_from"] == "x"
    assert json.loads(stored["fold_params_json"]) == outcome.fold_params == tuning.fold_params
    assert json.loads(stored["params_json"]) == tuning.final  # for predict, never scored


def test_tuned_parameters_are_refused_once_their_fold_tests_a_speaker_they_saw(wh, tmp_path):
    """speaker-kfold-5 deals speakers into folds by rank: removing one moves the others, and
    fold names alone would score fold1 with parameters tuned on its new test speaker."""
    from sercap.experiment import tuned_params
    from sercap.tuning import store_nested

    add_features(wh, add_corpus(wh, protocol="speaker-kfold-5", n_speakers=6, per_class=2))
    data = load_dataset(wh, "tabular")
    assert sorted(set(data.speakers[data.folds == "fold1"])) == ["01", "06"]
    storage = open_storage(None, tmp_path, "k")
    nested = run_nested("svm", data, storage, "k", n_trials=1, final=False, progress=False)
    assert nested.folds["fold1"].user_attrs["speakers"] == ["02", "03", "04", "05"]
    store_nested(wh, nested, "svm", data, "journal")
    assert tuned_params(wh, "svm", data).base == "k"  # the same speakers: accepted
    wh.execute("DELETE FROM labels WHERE utt_id IN (SELECT utt_id FROM utterances "
               "WHERE speaker = '01')")  # fmt: skip
    wh.execute("DELETE FROM utterances WHERE speaker = '01'")
    changed = load_dataset(wh, "tabular")
    assert sorted(set(changed.speakers[changed.folds == "fold1"])) == ["02"]
    with pytest.raises(SercapError, match=r"tuned outer fold fold1 on speaker\(s\) 02, which"):
        tuned_params(wh, "svm", changed)
    with pytest.raises(SercapError, match="was tuned on speakers 02, 03, 04, 05, this run"):
        run_nested("svm", changed, storage, "k", n_trials=2, final=False, progress=False)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_tunes_and_resumes(toy, tmp_path, model) -> None:
    from sercap.experiment import data_request, load_for

    columns = "^mfcc_" if model == "dnn" else None
    data = load_for(toy, data_request(model, columns=columns))
    storage = open_storage(None, tmp_path, "study")
    kwargs = dict(fixed=TINY[model], pruner="none", inner_folds=2, progress=False)
    study = run_study(model, data, storage, "study", n_trials=2, **kwargs)
    assert len(study.trials) == 2
    study = run_study(model, data, storage, "study", n_trials=1, **kwargs)
    assert len(study.trials) == 3  # resumed, not restarted
    store_best(toy, study, model, data, "journal")
    stored = toy.query("SELECT * FROM tuned_params WHERE model = ?", [model])
    assert stored.height == 1 and 0.0 <= stored["value"][0] <= 1.0
    for key, value in TINY[model].items():
        assert f'"{key}": {value}' in stored["params_json"][0]


def test_pruner_stops_bad_trials(toy, tmp_path) -> None:
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "p")
    study = run_study("svm", data, storage, "p", n_trials=12, pruner="median", progress=False)
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.COMPLETE in states
    assert optuna.trial.TrialState.PRUNED in states
    # per-inner-fold intermediate values were reported for the pruner
    assert all(len(t.intermediate_values) >= 1 for t in study.trials)


def test_bad_storage_is_one_line(tmp_path) -> None:
    with pytest.raises(SercapError, match="neither a storage URL"):
        open_storage("not-a-url", tmp_path, "s")
    with pytest.raises(SercapError, match="storage "):
        open_storage("nosuchdialect://x", tmp_path, "s")
    # studies that would be gone when the command ends
    for memory in ("sqlite:///", "sqlite:///:memory:", "sqlite://", "sqlite+pysqlite://"):
        with pytest.raises(SercapError, match="in-memory SQLite database"):
            open_storage(memory, tmp_path, "s")
    # a driver split this at the first "@" and printed "hunter2@topsecret99@…" back
    with pytest.raises(SercapError, match="percent-encoded as %40") as refused:
        open_storage("postgresql+psycopg://ana:hunter2@topsecret99@127.0.0.1:1/s", tmp_path, "s")
    assert "hunter2" not in str(refused.value) and "topsecret99" not in str(refused.value)
    (tmp_path / "a@b").mkdir()  # an '@' in a file's path is no password
    open_storage(f"sqlite:///{tmp_path}/a@b/c@d.db", tmp_path, "s")
    # a file that is no journal, or one damaged before its last record: JSONDecodeError
    log = tmp_path / "app.log"
    log.write_text("12:00 server started\n12:01 listening\n")
    with pytest.raises(SercapError, match="app.log: not an Optuna journal, or damaged inside"):
        open_storage(str(log), tmp_path, "s")
    journal = tmp_path / "j.journal"
    optuna.create_study(storage=open_storage(str(journal), tmp_path, "s"), study_name="a")
    optuna.create_study(storage=open_storage(str(journal), tmp_path, "s"), study_name="b")
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text(lines[0][:5] + "\n" + "".join(lines[1:]))
    with pytest.raises(SercapError, match="j.journal: not an Optuna journal, or damaged"):
        open_storage(str(journal), tmp_path, "s")


def test_a_storage_among_the_warehouses_own_files_is_refused(tmp_path) -> None:
    """`--storage W/features/…/svm.journal` was accepted, and the next extract deleted the
    journal as a crash's leftover; a SQLite file over the catalog would damage it."""
    root = tmp_path / "wh"
    inside = [
        str(root / "features" / "feature_set=ab" / "corpus=c" / "svm.journal"),
        f"sqlite:///{root}/sercap.duckdb",
        str(root / "artifacts" / "x.journal"),
    ]
    for url in inside:
        with pytest.raises(SercapError, match="where only sercap writes|catalog"):
            open_storage(url, root, "s")
    assert not (root / "features").exists() and not (root / "artifacts").exists()
    open_storage(str(root / "studies" / "mine.journal"), root, "s")  # at home there
    open_storage(str(root / "elsewhere" / "s.journal"), root, "s")  # a folder of the user's
    # a study already there (from before the refusal) can still be read
    older = root / "features" / "old.journal"
    older.parent.mkdir(parents=True)
    (root / "elsewhere" / "s.journal").rename(older)
    open_storage(str(older), root, "s", create=False)


def test_a_relative_sqlite_storage_is_recorded_absolute(tmp_path, monkeypatch) -> None:
    """`tune --storage sqlite:///st.db` recorded the URL as typed, so `tune --show` from
    another folder said "no study yet"."""
    from cli import main

    wh_dir, runner, base = _svm_tune_cli(tmp_path)
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(
        main, [*base, "--trials", "1", "--storage", "sqlite:///st.db", "--study", "r"]
    )
    assert done.exit_code == 0, done.output
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    shown = runner.invoke(main, [*base, "--show", "--study", "r"])
    assert shown.exit_code == 0 and "nested tuning r:" in shown.stdout, shown.output


def test_study_name_separates_corpora_and_feature_sets(toy) -> None:
    data = load_dataset(toy, "tabular")
    assert study_name("xgb", data) == "xgb-toy-emodb7-default-abc123"


def test_a_column_pattern_is_its_own_tuning(toy, tmp_path) -> None:
    """`tune svm --columns P` went into the all-columns study, and `train --columns P
    --tuned` took parameters tuned on all columns; a different --inner-folds also resumed
    the same study, ranking trials scored on different objectives together."""
    from sercap.experiment import tuned_params
    from sercap.tuning import store_nested

    every = load_dataset(toy, "tabular")
    some = load_dataset(toy, "tabular", columns="^mfcc_")
    assert study_name("svm", every) == "svm-toy-emodb7-default-abc123"
    assert study_name("svm", some).startswith("svm-toy-emodb7-default-abc123-cols")
    storage = open_storage(None, tmp_path, "c")
    nested = run_nested("svm", every, storage, "c", n_trials=1, progress=False)
    store_nested(toy, nested, "svm", every, "journal")
    assert tuned_params(toy, "svm", every).base == "c"
    with pytest.raises(SercapError, match=r"no nested tuning for svm .*--columns '\^mfcc_'"):
        tuned_params(toy, "svm", some)  # not the all-columns parameters
    rows = np.arange(len(some))
    for kwargs, flag in (({}, "--columns"), ({"inner_folds": 2}, "--inner-folds")):
        data = some if flag == "--columns" else every
        with pytest.raises(SercapError, match=f"study c/fold=01 was started with {flag}"):
            tune_module.prepare_study("svm", data, storage, "c/fold=01", rows=rows, **kwargs)


def test_a_resumed_study_must_match_its_model_data_and_splits(toy, tmp_path) -> None:
    """`tune lgbm --study <an svm study>` resumed the svm trials as lgbm's (and stored C and
    gamma as lgbm's parameters); another seed (other inner splits), feature set or set of
    utterances resumed the same study too, mixing trials scored on different things."""
    from dataclasses import replace

    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "s")
    rows = np.arange(len(data))
    tune_module.prepare_study("svm", data, storage, "s/final", rows=rows)
    tune_module.prepare_study("svm", data, storage, "s/final", rows=rows)  # the same: resumes
    other_set = replace(data, feature_set_hash="other")
    for call, words in (
        (lambda: tune_module.prepare_study("lgbm", data, storage, "s/final", rows=rows),
         "the model 'svm', this run gives 'lgbm'"),
        (lambda: tune_module.prepare_study("svm", data, storage, "s/final", rows=rows, seed=5),
         "--seed / seed=0, this run gives 5"),
        (lambda: tune_module.prepare_study("svm", other_set, storage, "s/final", rows=rows),
         "the feature set .its hash. 'abc123', this run gives 'other'"),
    ):  # fmt: skip
        with pytest.raises(SercapError, match=f"study s/final was started with {words}"):
            call()
    with pytest.raises(SercapError, match=f"tuned on {len(rows)} utterances, this run's data "
                       f"has {len(rows) - 1}: the data changed since"):  # fmt: skip
        tune_module.prepare_study("svm", data, storage, "s/final", rows=rows[:-1])


@pytest.mark.slow
def test_two_processes_share_one_journal(tmp_path) -> None:
    wh_dir = tmp_path / "wh"
    wh = connect(wh_dir)
    add_features(wh, add_corpus(wh, n_speakers=4, per_class=3))
    wh.close()
    cmd = [sys.executable, str(ROOT / "cli.py"), "-w", str(wh_dir), "tune", "svm", "--trials", "3",
           "--pruner", "none"]  # fmt: skip
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    journal = wh_dir / "studies" / "svm-toy-emodb7-default-abc123.journal"
    nested = nested_studies(open_storage(str(journal), wh_dir, ""), journal.stem)
    assert sorted(nested.folds) == ["01", "02", "03", "04"] and nested.final is not None
    for study in [*nested.folds.values(), nested.final]:
        assert len(study.trials) == 6
        assert len({t.number for t in study.trials}) == 6


def test_fold_median_pruner_compares_running_means_at_the_same_fold() -> None:
    from sercap.tuning import FoldMedianPruner

    study = optuna.create_study(direction="maximize", pruner=FoldMedianPruner(3, 1))
    # an easy first fold then harder ones: running means fall over the folds
    for means in ([0.80, 0.70, 0.72], [0.82, 0.74, 0.75], [0.78, 0.66, 0.68], [0.81, 0.72, 0.7]):
        study.add_trial(
            optuna.trial.create_trial(
                value=means[-1],
                intermediate_values=dict(enumerate(means)),
                distributions={},
                params={},
            )
        )
    weak = study.ask()
    weak.report(0.85, 0)  # the best first fold of all: optuna's MedianPruner keeps it forever
    assert not weak.should_prune()  # warm-up: no decision after one fold
    weak.report(0.69, 1)  # below the median 0.71 of the others' means after two folds
    assert weak.should_prune()
    strong = study.ask()
    strong.report(0.75, 0)
    strong.report(0.73, 1)
    assert not strong.should_prune()
    assert not optuna.pruners.MedianPruner(1, 1).prune(study, study.trials[-2])  # the bug


def test_fold_median_pruner_waits_for_startup_trials() -> None:
    from sercap.tuning import FoldMedianPruner

    study = optuna.create_study(direction="maximize", pruner=FoldMedianPruner(5, 0))
    study.add_trial(
        optuna.trial.create_trial(value=0.9, intermediate_values={0: 0.9}, distributions={})
    )
    trial = study.ask()
    trial.report(0.1, 0)
    assert not trial.should_prune()


def _svm_tune_cli(tmp_path):
    """A small warehouse, a CliRunner, and the start of its `tune svm` command line."""
    from click.testing import CliRunner

    wh_dir = tmp_path / "wh"
    wh = connect(wh_dir)
    add_features(wh, add_corpus(wh, n_speakers=4, per_class=3))
    wh.close()
    return wh_dir, CliRunner(), ["-w", str(wh_dir), "tune", "svm", "--inner-folds", "2"]


def test_tune_show_lists_every_fold_study(tmp_path) -> None:
    from cli import main

    wh_dir, runner, base = _svm_tune_cli(tmp_path)
    done = runner.invoke(main, [*base, "--trials", "2", "--pruner", "none"])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(main, [*base, "--show"])
    assert shown.exit_code == 0, shown.output
    for fold in ("01", "02", "03", "04"):
        assert any(line.split()[:3] == [fold, "2", "2"] for line in shown.stdout.splitlines())
    assert "final study (all speakers" in shown.stdout
    assert "chosen params (the default unless the best beats it" in shown.stdout  # svm's rule
    # the final study says what predict fits, not only its best trial (C=4.43 was read as
    # the final model's while the default was kept)
    with connect(wh_dir, read_only=True) as wh:
        final = json.loads(
            wh.scalar("SELECT params_json FROM tuned_params WHERE study LIKE '%final'")
        )
    chosen = next(line for line in shown.stdout.splitlines() if "what `predict` fits" in line)
    assert all(f"{k}=" in chosen for k in final)
    trained = runner.invoke(main, ["-w", str(wh_dir), "train", "svm", "--tuned"])
    assert trained.exit_code == 0, trained.output
    assert "01: {" in trained.stdout and "95% CI" in trained.stdout
    verdicts = ("svm: tuning gained nothing within noise", "svm: tuning helped",
                "svm: tuning made it worse")  # fmt: skip
    assert sum(v in trained.stdout for v in verdicts) == 1
    bench = runner.invoke(
        main, ["-w", str(wh_dir), "bench", "svm", "--tuned", "--out", str(tmp_path / "b")]
    )
    assert bench.exit_code == 0, bench.output
    assert "svm nested-tuned" in bench.stdout and "default vs nested-tuned" in bench.stdout
    assert sum(v in bench.stdout for v in verdicts) == 1
    # a model without a nested tuning stops the bench before anything is fitted or stored
    with connect(wh_dir, read_only=True) as wh:
        before = wh.scalar("SELECT count(*) FROM runs")
    refused = runner.invoke(
        main, ["-w", str(wh_dir), "bench", "svm", "rf", "--tuned", "--out", str(tmp_path / "c")]
    )
    assert refused.exit_code == 1 and "no nested tuning for rf" in refused.output
    with connect(wh_dir, read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM runs") == before


def test_tune_show_reads_the_recorded_storage_and_creates_nothing(tmp_path) -> None:
    """`tune --show` created an empty journal for a study that did not exist (and the
    folder of a --storage path); for a study tuned into SQLite it said "no study yet", and
    following that advice would have started a fresh one."""
    from cli import main

    wh_dir, runner, base = _svm_tune_cli(tmp_path)
    db = f"sqlite:///{tmp_path / 's.db'}"
    done = runner.invoke(main, [*base, "--trials", "1", "--storage", db, "--study", "s"])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(main, [*base, "--show", "--study", "s"])
    assert shown.exit_code == 0 and "nested tuning s:" in shown.stdout, shown.output
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for extra in ([], ["--storage", str(tmp_path / "new" / "zz.journal")]):
        missing = runner.invoke(main, [*base, "--show", "--study", "zz", *extra])
        assert missing.exit_code == 1 and "no study 'zz' yet" in missing.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_default_is_kept_unless_clearly_beaten() -> None:
    from sercap.tuning import best_params, chosen_trial

    study = optuna.create_study(direction="maximize")
    dist = {"C": optuna.distributions.FloatDistribution(0.1, 100, log=True)}

    def add(value, C, default=False):
        study.add_trial(
            optuna.trial.create_trial(
                value=value, params={"C": C}, distributions=dist,
                user_attrs={"default": default, "model_params": {"C": C}},
            )
        )  # fmt: skip

    add(0.700, 1.0, default=True)
    add(0.705, 5.0)
    assert chosen_trial(study).number == 0 and best_params(study) == {"C": 1.0}
    add(0.730, 9.0)
    assert chosen_trial(study).number == 2 and best_params(study) == {"C": 9.0}
    assert best_params(study, min_gain=0.05) == {"C": 1.0}


def test_open_storage_retries_the_table_creation_race(monkeypatch, tmp_path) -> None:
    """Processes creating optuna's tables at once: the loser gets an IntegrityError from
    PostgreSQL's catalog (UniqueViolation on pg_type) and must retry, not fail. The race
    itself is exercised on a real server in tests/test_cluster.py; here it is forced."""
    import optuna
    import sqlalchemy.exc

    real = optuna.storages.RDBStorage
    calls: list[str] = []

    def racing(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise sqlalchemy.exc.IntegrityError("CREATE TABLE studies", {}, Exception("pg_type"))
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    url = f"sqlite:///{tmp_path / 'race.db'}"
    storage = open_storage(url, tmp_path, "s")
    assert isinstance(storage, real) and len(calls) == 2
    calls.clear()
    monkeypatch.setattr(
        optuna.storages, "RDBStorage",
        lambda url, **kw: (_ for _ in ()).throw(sqlalchemy.exc.OperationalError("x", {}, "no")),
    )  # fmt: skip
    with pytest.raises(SercapError, match="storage "):  # not a race: one line at once
        open_storage(url, tmp_path, "s")


def test_the_rule_shown_is_the_models_own(toy, tmp_path) -> None:
    """Only models with a default trial keep their defaults unless clearly beaten; the
    table of a dnn study said they did."""
    from sercap.format import format_nested

    storage = open_storage(None, tmp_path, "r")
    data = load_dataset(toy, "tabular")
    nested = run_nested("dnn", data, storage, "r", n_trials=1, final=False, fixed=TINY["dnn"],
                        only_folds=["01"], progress=False)  # fmt: skip
    shown = format_nested(nested)
    assert "chosen params (the best trial's)" in shown and "the default unless" not in shown
    # a final study without a finished trial (a tuning stopped early) leaves the folds shown
    from sercap.tuning import NestedStudies

    empty = optuna.create_study(study_name="r/final", storage=storage)
    shown = format_nested(NestedStudies(base="r", folds=nested.folds, final=empty))
    assert "final study: 0 trials, no completed trial yet" in shown and "  01  " in shown


def test_a_trial_stopped_by_ctrl_c_logs_no_traceback() -> None:
    """Ctrl-C in `tune` printed Optuna's "Trial 4 failed … KeyboardInterrupt()" with a full
    traceback and "Trial 4 failed with value None" before sercap's one line."""
    import logging

    from optuna.study._optimize import _log_failed_trial

    tune_module._quiet_interrupted_trials()
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("optuna.study._optimize")
    logger.addHandler(handler)
    try:
        stop = KeyboardInterrupt()
        _log_failed_trial(4, {"C": 1.0}, repr(stop), exc_info=(KeyboardInterrupt, stop, None))
        error = ValueError("bad")
        _log_failed_trial(5, {"C": 2.0}, repr(error), exc_info=(ValueError, error, None))
        # sercap's own errors (a diverged network) end the command in one line: theirs
        # came after Optuna's 20-line traceback (new-user review)
        from sercap.errors import SercapError

        ours = SercapError("dnn: training diverged in epoch 1")
        _log_failed_trial(6, {"lr": 1.0}, repr(ours), exc_info=(SercapError, ours, None))
    finally:
        logger.removeHandler(handler)
    assert seen == [  # trials 4 and 6: their lines are gone; a real failure still shows
        "Trial 5 failed with parameters: {'C': 2.0} because of the following error: "
        "ValueError('bad').",
        "Trial 5 failed with value None.",
    ]


def test_the_header_says_how_many_inner_folds_a_fold_really_gets(tmp_path) -> None:
    """Three speakers under leave-one-speaker-out leave two per fold: the inner split can
    only deal them into 2 folds, which the header used to hide ("3 inner folds each")."""
    import sercap

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    notes: list[str] = []
    sercap.tune(wh, "svm", trials=1, progress=False, final=False, say=notes.append)
    assert "3 inner folds each (2 where a fold has 2 training speakers)" in notes[0]
    wh.close()


def test_a_say_that_raises_leaves_the_callers_warehouse_open(tmp_path) -> None:
    """tune closes the warehouse while trials run and opens it again in a `finally`; its
    header was said between the two, so a `say` that raised left the caller's wh closed."""
    import sercap

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))

    def broken(line: str) -> None:
        raise RuntimeError("the logger broke")

    with pytest.raises(RuntimeError, match="the logger broke"):
        sercap.tune(wh, "svm", trials=1, progress=False, final=False, say=broken)
    assert wh.scalar("SELECT count(*) FROM utterances") == 27
    wh.close()


def test_tune_says_a_line_as_each_trial_and_study_ends(tmp_path) -> None:
    """In a log file (no progress bar) a tuning of many studies printed its header and then
    nothing until the end; each study now ends with a line of its trials and inner score.
    At IEMOCAP's size a study took a quarter of an hour, with nothing in the log until it
    ended: each trial gets a line too."""
    import sercap

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    notes: list[str] = []
    sercap.tune(wh, "svm", trials=2, pruner="none", progress=False, say=notes.append)
    trials = [n.strip() for n in notes[1:] if n.startswith("    ")]
    assert [n.split(":")[0] for n in trials[:3]] == [
        "fold=01 trial 0 (the defaults)", "fold=01 trial 1", "fold=02 trial 0 (the defaults)"
    ], notes  # fmt: skip
    assert len(trials) == 8 and all(
        re.fullmatch(r"\S+ trial \d( \(the defaults\))?: inner UA [01]\.\d{3} \(\d+\.\d s\)", t)
        for t in trials
    ), trials
    studies = [n.strip() for n in notes[1:] if not n.startswith("    ")]
    assert [n.split(":")[0] for n in studies] == [
        "fold=01", "fold=02", "fold=03", "final"
    ], notes  # fmt: skip
    for line in studies:
        final = "; all speakers: not a score for new ones" if line.startswith("final") else ""
        pattern = r"\S+: 2 trials, best inner UA [01]\.\d{3} \(trial [01]\)" + re.escape(final)
        assert re.fullmatch(pattern, line), line
    wh.close()


def test_a_study_is_not_resumed_on_replaced_recordings(tmp_path) -> None:
    """A recording replaced and re-extracted (same ids, labels and row count): the resumed
    study mixed trials scored on the old features with new ones and picked its best from
    both."""
    import sercap

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    wh.execute("UPDATE utterances SET audio_sha256 = 'bytes of ' || utt_id")
    common = dict(trials=1, pruner="none", final=False, folds=["01"], progress=False)
    sercap.tune(wh, "svm", **common)
    sercap.tune(wh, "svm", **common)  # the same data: resumed
    # a recording of fold 01's own test speaker: its study never read it, and resumes
    wh.execute("UPDATE utterances SET audio_sha256 = 'new bytes' WHERE utt_id = 'toy_01_ang_0'")
    sercap.tune(wh, "svm", **common)
    wh.execute("UPDATE utterances SET audio_sha256 = 'new bytes 2' WHERE utt_id = 'toy_02_ang_0'")
    with pytest.raises(SercapError, match="was tuned on other data"):
        sercap.tune(wh, "svm", **common)
    sercap.tune(wh, "svm", study="again", **common)  # a new name starts over
    wh.close()


def test_top_up_brings_every_study_to_the_same_total(toy, tmp_path) -> None:
    """`tune --trials N` adds N trials to each study, so the same command resumed after a
    Ctrl-C gave the folds unequal budgets; with top_up every study ends with N finished
    trials, a failed one (a killed process's) is not counted, and a complete tuning adds
    nothing."""
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "t")
    first = fold_study_name("t", "01")
    run_nested("svm", data, storage, "t", n_trials=3, inner_folds=2, pruner="none",
               progress=False, only_folds=["01"], final=False)  # fmt: skip
    killed = optuna.load_study(study_name=first, storage=storage)
    killed.tell(killed.ask(), state=optuna.trial.TrialState.FAIL)  # interrupted mid-trial
    nested = run_nested("svm", data, storage, "t", n_trials=4, inner_folds=2, pruner="none",
                        progress=False, top_up=True)  # fmt: skip
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for study in [*nested.folds.values(), nested.final]:
        assert len(study.get_trials(states=finished)) == 4, study.study_name
    assert len(nested.folds["01"].trials) == 5  # its 3, the failed one, and 1 more
    again = run_nested("svm", data, storage, "t", n_trials=4, inner_folds=2, pruner="none",
                       progress=False, top_up=True)  # fmt: skip
    assert [len(s.trials) for s in again.folds.values()] == [5, 4, 4, 4]
    added = run_nested("svm", data, storage, "t", n_trials=1, inner_folds=2, pruner="none",
                       progress=False, only_folds=["02"], final=False)  # fmt: skip
    assert len(added.folds["02"].trials) == 5  # without top_up: one more


def test_top_up_stops_when_another_process_has_filled_the_study(toy, tmp_path) -> None:
    """Processes sharing a budget: once the study holds N finished trials (some made by
    another process while this one runs), this one starts no more."""
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "s")
    other = optuna.load_study  # the "other process": adds trials from inside a trial
    objective = tune_module.objective_for

    def busy(*args, **kwargs):
        inner = objective(*args, **kwargs)

        def score(trial):
            if trial.number == 0:  # meanwhile another process finishes three trials
                shared = other(study_name="s", storage=storage)
                for _ in range(3):
                    shared.tell(shared.ask(), 0.5)
            return inner(trial)

        return score

    import unittest.mock

    with unittest.mock.patch.object(tune_module, "objective_for", busy):
        study = run_study("svm", data, storage, "s", n_trials=3, pruner="none",
                          progress=False, top_up=True)  # fmt: skip
    assert len(study.trials) == 4  # trial 0 and the other's 3: not 3 more of its own


def test_train_tuned_can_name_its_tuning(tmp_path) -> None:
    """`train --tuned` took the newest tuning of the model and data: an older one (other
    --params, another pruner) could not be scored again. --study names it."""
    import sercap
    from sercap.errors import NotFoundError
    from tests.test_cli import _one_line_error, run

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    common = dict(trials=2, inner_folds=2, pruner="none", progress=False)
    sercap.tune(wh, "svm", study="wide", **common)
    sercap.tune(wh, "svm", study="narrow", params={"C": 0.01}, **common)
    assert sercap.train(wh, "svm", tuned=True, progress=False).record["tuned_from"] == "narrow"
    wide = sercap.train(wh, "svm", tuned="wide", progress=False)
    assert wide.record["tuned_from"] == "wide" and wide.comparison is not None
    from sercap.prediction import newest_run

    assert newest_run(wh, "svm") == wide.run_id  # predict uses the tuned run, not its default
    assert all(p.get("C") != 0.01 for p in wide.fold_params.values())
    with pytest.raises(NotFoundError, match=r"no nested tuning 'nope'.*stored: narrow, wide"):
        sercap.train(wh, "svm", tuned="nope", progress=False)
    wh.close()
    result = run("-w", tmp_path / "wh", "train", "svm", "--tuned", "--study", "wide")
    assert result.exit_code == 0 and "runs (default / tuned)" in result.output
    _one_line_error(run("-w", tmp_path / "wh", "train", "svm", "--study", "wide"), "add --tuned")


def test_top_up_never_ends_short_for_a_trial_that_may_be_dead(toy, tmp_path) -> None:
    """A trial left RUNNING (another tuner's, or a killed one's whose heartbeat is still
    fresh) is not counted against the budget: counting it ended studies short when the
    tuner had died. The study still gets a scored default trial, which that trial was."""
    data = load_dataset(toy, "tabular")
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", tmp_path, "r")
    tune_module.prepare_study("svm", data, storage, "r", rows=np.arange(len(data)))
    other = optuna.load_study(study_name="r", storage=storage)
    assert other.ask().user_attrs["default"]  # the default, running in "another process"
    study = run_study("svm", data, storage, "r", n_trials=3, pruner="none", progress=False,
                      top_up=True)  # fmt: skip
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") >= 3 and states.count("RUNNING") == 1, states
    assert any(t.user_attrs.get("default") and t.state.name == "COMPLETE" for t in study.trials)


def test_a_killed_default_trial_is_failed_and_queued_again(toy, tmp_path) -> None:
    """A tuner killed during the default trial left it RUNNING; it was never queued again,
    and the study chose among random trials, breaking "the default is kept unless clearly
    beaten". A stale heartbeat now fails it; a journal (no heartbeat) queues it again."""
    data = load_dataset(toy, "tabular")
    rows = np.arange(len(data))
    url = f"sqlite:///{tmp_path}/k.db"
    storage = open_storage(url, tmp_path, "k", heartbeat_s=1, grace_s=1)
    tune_module.prepare_study("svm", data, storage, "k", rows=rows)
    killed = optuna.load_study(study_name="k", storage=storage)
    trial = killed.ask()
    storage.record_heartbeat(trial._trial_id)
    import time

    time.sleep(2.5)  # past the grace period: its process is gone
    study = run_study("svm", data, storage, "k", n_trials=2, pruner="none", progress=False)
    defaults = [(t.state.name, t.user_attrs.get("default")) for t in study.trials]
    assert defaults[0] == ("FAIL", True) and ("COMPLETE", True) in defaults[1:], defaults
    journal = open_storage(None, tmp_path, "j")
    tune_module.prepare_study("svm", data, journal, "j", rows=rows)
    optuna.load_study(study_name="j", storage=journal).ask()  # RUNNING for ever
    study = run_study("svm", data, journal, "j", n_trials=1, pruner="none", progress=False)
    assert any(t.user_attrs.get("default") and t.state.name == "COMPLETE" for t in study.trials), [
        (t.state.name, t.user_attrs) for t in study.trials
    ]


def test_a_cluster_trial_task_skips_a_study_another_submitter_filled(toy, tmp_path) -> None:
    """Two `tune --top-up --cluster` submitters each queued the trials a study lacked, and
    every task ran: 6 trials for a budget of 3. A task now re-checks the budget."""
    from sercap.tuning import TrialContext, TrialTask, run_trial_task

    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "c")
    run_study("svm", data, storage, "c", n_trials=2, pruner="none", progress=False)
    rows = np.arange(len(data))
    task = TrialTask("c", "svm", rows, 2, None, 0, 7, "none", 1, None, None, total=2)
    assert run_trial_task((TrialContext(data, storage), task)) == ("c", "skipped")
    more = TrialTask("c", "svm", rows, 2, None, 0, 7, "none", 1, None, None, total=3)
    assert run_trial_task((TrialContext(data, storage), more)) == ("c", "complete")


def test_a_tuner_that_finds_a_new_study_checks_its_settings_before_any_trial(
    toy, tmp_path, monkeypatch
) -> None:
    """Two tuners starting one study at once: the one that lost the race to create it found
    no trial, skipped every check and wrote its --seed over the creator's, so the study
    mixed trials of two inner splits. (rf queues no default trial: nothing but the
    description is there.)"""
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "r")
    rows = np.arange(len(data))
    tune_module.prepare_study("rf", data, storage, "r", rows=rows, seed=0)
    with pytest.raises(SercapError, match="was started with --seed / seed=0"):
        tune_module.prepare_study("rf", data, storage, "r", rows=rows, seed=1)
    tune_module.prepare_study("rf", data, storage, "r", rows=rows, seed=0)  # the same: fine
    # a study whose inner splits grouped speakers is not resumed with session-grouped ones
    # (IEMOCAP's studies from before they were; they recorded nothing: speakers)
    from dataclasses import replace

    sessions = np.array([f"Ses{int(s):02d}" for s in data.speakers])  # one speaker each
    by_session = replace(data, protocol="leave-one-session-out", folds=sessions)
    assert by_session.validation_unit(rows) == "session"
    with pytest.raises(SercapError, match="inner splits kept speakers apart; this run's keep"):
        tune_module.prepare_study("rf", by_session, storage, "r", rows=rows, seed=0)
    older = optuna.load_study(study_name="r", storage=storage)
    storage.set_study_user_attr(older._study_id, "inner_groups", None)  # as before the record
    with pytest.raises(SercapError, match="made before sercap recorded what they keep apart"):
        tune_module.prepare_study("rf", by_session, storage, "r", rows=rows, seed=0)
    older = optuna.load_study(study_name="r", storage=storage)
    storage.set_study_user_attr(older._study_id, "inner_groups", "session")
    tune_module.prepare_study("rf", by_session, storage, "r", rows=rows, seed=0)
    # a study its creator left bare (it died before describing it) is described by the next
    bare = optuna.create_study(study_name="bare", storage=storage)
    waited = tune_module._described
    monkeypatch.setattr(tune_module, "_described", lambda study: waited(study, wait_s=0.2))
    assert not tune_module._described(bare)
    tune_module.prepare_study("rf", data, storage, "bare", rows=rows, seed=1)
    assert bare.user_attrs["seed"] == 1 and bare.user_attrs[tune_module.DESCRIBED]


def test_a_cluster_timeout_counts_for_each_study_from_its_first_task(toy, tmp_path) -> None:
    """`tune --timeout 5 --cluster` set one deadline for every task of every study: the
    studies queued last started no trial, and tune ended "has no completed trial yet"."""
    import time

    from sercap.tuning import TrialContext, TrialTask, run_trial_task

    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "t")
    rows = np.arange(len(data))
    for name in ("a", "b"):
        tune_module.prepare_study("svm", data, storage, name, rows=rows, inner_folds=2)
    context = TrialContext(data, storage)

    def task(name: str, k: int) -> TrialTask:
        return TrialTask(name, "svm", rows, 2, None, 0, k, "none", 1, None, 1.0, None, "s1")

    assert run_trial_task((context, task("a", 1))) == ("a", "complete")
    time.sleep(1.2)  # past a's deadline, which its first task set
    assert run_trial_task((context, task("a", 2))) == ("a", "skipped")
    assert run_trial_task((context, task("b", 3))) == ("b", "complete")  # b's own second
    # another submission (a rerun) counts anew
    again = TrialTask("a", "svm", rows, 2, None, 0, 4, "none", 1, None, 1.0, None, "s2")
    assert run_trial_task((context, again)) == ("a", "complete")


def test_a_database_password_is_never_printed_or_stored(tmp_path) -> None:
    import sercap
    from sercap.tuning import shown_url

    url = "postgresql+psycopg://ana:s3cret@127.0.0.1:1/studies"
    assert shown_url(url) == "postgresql+psycopg://ana:***@127.0.0.1:1/studies"
    with pytest.raises(SercapError) as caught:
        open_storage(url, tmp_path, "x", attempts=1)
    assert "s3cret" not in str(caught.value) and "ana:***@" in str(caught.value)
    # postgres:// (as hosting services write it) is PostgreSQL too, not "Can't load plugin"
    with pytest.raises(SercapError, match="connect") as caught:
        open_storage("postgres://ana:s3cret@127.0.0.1:1/studies", tmp_path, "x", attempts=1)
    assert "plugin" not in str(caught.value) and "s3cret" not in str(caught.value)
    in_query = "postgresql+psycopg://ana@127.0.0.1:1/studies?password=s3cret"
    with pytest.raises(SercapError) as caught:
        open_storage(in_query, tmp_path, "x", attempts=1)
    assert "s3cret" not in str(caught.value)
    # what tune prints and stores (a SQLite URL with a secret-looking query: it opens)
    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    said: list[str] = []
    db = f"sqlite:///{tmp_path}/t.db?password=s3cret"
    sercap.tune(wh, "svm", trials=1, inner_folds=2, storage=db, say=said.append, progress=False)
    stored = wh.query("SELECT DISTINCT storage FROM tuned_params")["storage"].to_list()
    assert stored == [f"sqlite:///{tmp_path}/t.db?password=***"], stored
    assert "s3cret" not in said[0] and "password=***" in said[0]
    wh.close()


def test_a_storage_that_goes_away_mid_tuning_is_one_line(tmp_path, monkeypatch) -> None:
    """PostgreSQL stopped mid-tune: 335 lines and 7 tracebacks ending in Optuna's own
    UnboundLocalError, with the database error only in its context."""
    import sqlalchemy.exc

    import sercap
    import sercap.tuning

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))

    def server_gone(*args, **kwargs):
        try:
            raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("server closed"))
        except sqlalchemy.exc.OperationalError:
            raise UnboundLocalError("cannot access local variable 'updated_state'")  # noqa: B904

    monkeypatch.setattr(sercap.tuning, "run_nested", server_gone)
    with pytest.raises(SercapError) as caught:
        sercap.tune(wh, "svm", trials=1, progress=False)
    assert "stopped answering" in caught.value.message and "server closed" in caught.value.message
    monkeypatch.setattr(sercap.tuning, "run_nested", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # anything else is not dressed up as a storage error
        sercap.tune(wh, "svm", trials=1, progress=False)
    wh.close()


def test_one_fold_named_as_a_string_is_one_fold(tmp_path) -> None:
    import sercap

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    said: list[str] = []
    study = sercap.tune(wh, "svm", trials=1, folds="01", final=False, inner_folds=2,
                        pruner="none", progress=False, say=said.append)  # fmt: skip
    assert sorted(study.folds) == ["01"] and "1 outer-fold studies" in said[0], said
    wh.close()


def test_a_study_from_before_speakers_were_recorded_resumes_only_on_as_much_data(toy, tmp_path):
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "old")
    rows = np.flatnonzero(data.folds != "01")
    study = tune_module.prepare_study("svm", data, storage, "old", rows=rows)
    study.set_user_attr("speakers", None)  # as studies made before this attribute existed
    tune_module.prepare_study("svm", data, storage, "old", rows=rows)  # same data: resumes
    fewer = rows[data.speakers[rows] != "02"]  # one speaker less
    with pytest.raises(SercapError, match="was tuned on 3 speakers and 27 utterances"):
        tune_module.prepare_study("svm", data, storage, "old", rows=fewer)
    swapped = np.flatnonzero(data.folds != "02")  # as many speakers and rows, others
    with pytest.raises(SercapError, match="was tuned on speakers 02, 03, 04, this run"):
        study.set_user_attr("speakers", ["02", "03", "04"])
        tune_module.prepare_study("svm", data, storage, "old", rows=swapped)


def test_a_journal_record_torn_by_a_killed_writer_is_cut_before_the_next_append(
    tmp_path,
) -> None:
    """kill -9 mid-append left a last line without its newline; the next record was written
    onto it, and from then on every `tune` of the study was a JSONDecodeError. The lock every
    append takes cuts it first: for a tuner opened after the kill and for one already
    running. Reading the study (`tune --show`) changes no byte."""
    import hashlib

    def study():
        store = open_storage(str(tmp_path / "s.journal"), tmp_path, "s")
        return optuna.create_study(study_name="s", storage=store, load_if_exists=True)

    def objective(trial):
        return trial.suggest_float("x", 0, 1)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    live = study()
    live.optimize(objective, n_trials=2)
    journal = tmp_path / "s.journal"
    whole = journal.read_bytes()

    def tear() -> None:  # a second tuner killed mid-append: half a record, no newline
        with open(journal, "ab") as f:
            f.write(whole.splitlines(keepends=True)[-1][:-37])

    tear()
    torn = hashlib.sha256(journal.read_bytes()).hexdigest()
    assert len(open_storage(str(journal), tmp_path, "s", create=False).get_all_studies()) == 1
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == torn  # reading: no byte
    live.optimize(objective, n_trials=1)  # a tuner that was already running
    tear()
    study().optimize(objective, n_trials=1)  # one opened after the kill
    assert len(study().trials) == 4
    for line in journal.read_bytes().splitlines():
        json.loads(line)  # every line whole


def test_a_short_password_is_masked_where_it_stands_alone_not_inside_words() -> None:
    """The password "e" was replaced everywhere: "(psycopg.Op***rationalError) conn***ction
    fail***d … us***r "postgr***s"". It is still masked where it appears on its own."""
    from sercap.tuning import _first_line

    url = "postgresql+psycopg://postgres:e@127.0.0.1:5433/db"
    exc = RuntimeError(
        "(psycopg.OperationalError) connection failed: password authentication failed for "
        'user "postgres" (password=e) ' + url
    )
    line = _first_line(exc, url)
    assert "OperationalError" in line and 'user "postgres"' in line
    assert "(password=***)" in line and "postgres:***@127.0.0.1" in line
    assert ":e@" not in line and "=e)" not in line
    long = "postgresql://ana:s3cr3t-pw@db/x"
    assert "s3cr3t-pw" not in _first_line(RuntimeError("bad auth s3cr3t-pw here"), long)


def test_a_worker_without_the_journal_says_it_cannot_see_the_warehouse(tmp_path) -> None:
    """A Dask worker without the client's filesystem said only "X.journal: No such file or
    directory", about a file the client can see."""
    from sercap.tuning import _require_journal_here

    store = open_storage(None, tmp_path, "s")
    optuna.create_study(study_name="s", storage=store)
    _require_journal_here(store)  # here: fine
    journal = tmp_path / "studies" / "s.journal"
    journal.rename(tmp_path / "elsewhere.journal")  # as the worker sees the folder
    with pytest.raises(SercapError, match=r"cannot see .*s\.journal: workers need the ware"):
        _require_journal_here(store)


def test_a_study_name_is_a_name_not_a_path(tmp_path) -> None:
    """`--study ../../escaped` wrote its journal outside the warehouse."""
    from cli import main

    wh_dir, runner, base = _svm_tune_cli(tmp_path)
    for name in ("../../escaped", "team/exp1"):
        out = runner.invoke(main, [*base, "--trials", "1", "--study", name])
        assert out.exit_code == 1 and "a name, not a path" in out.output, out.output
    assert not list(tmp_path.rglob("*.journal"))


def test_a_diverging_trial_is_pruned_and_the_search_goes_on(toy, tmp_path, monkeypatch) -> None:
    """A trial whose predictions were NaN (or whose network blew up) ended the whole tuning
    with an error; it is one trial's parameters that cannot be scored."""
    from sercap import evaluate

    real = evaluate.fit_fold

    def nan_for_large_c(data, model, params, *args, **kwargs):
        proba, seconds = real(data, model, params, *args, **kwargs)
        if float(params.get("C", 1.0)) > 3.0:
            proba[:] = np.nan
        return proba, seconds

    monkeypatch.setattr(evaluate, "fit_fold", nan_for_large_c)
    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "nan")
    study = tune_module.run_study(
        "svm", data, storage, "nan", n_trials=8, pruner="none", inner_folds=2, progress=False
    )
    states = [t.state for t in study.trials]
    assert len(states) == 8 and optuna.trial.TrialState.PRUNED in states, states
    assert optuna.trial.TrialState.COMPLETE in states


def test_overlapping_studies_keep_optuna_quiet_until_the_last_ends() -> None:
    """Two trial tasks on one multi-thread worker: the first to end restored INFO while the
    second still ran, and the last left WARNING behind."""
    import threading

    from sercap.tuning import _optuna_warnings_only

    optuna.logging.set_verbosity(optuna.logging.INFO)
    seen: list[int] = []
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with _optuna_warnings_only():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with _optuna_warnings_only():
            second_in.set()
            first_out.wait(5)
            seen.append(optuna.logging.get_verbosity())

    try:
        threads = [threading.Thread(target=f) for f in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen == [optuna.logging.WARNING]
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_tuning_a_corpus_of_two_speakers_is_refused_before_any_study(tmp_path) -> None:
    """With one training speaker per outer fold, tune created the studies, then stopped at
    "inner validation needs at least two training speakers", leaving them behind; and
    `train --tuned` then advised running that tune."""
    import sercap

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=2, per_class=3))
    with pytest.raises(SercapError, match="training part has one speaker") as caught:
        sercap.tune(wh, "svm", trials=1, progress=False)
    assert "\n" not in str(caught.value)
    assert not any((tmp_path / "wh").rglob("*.journal"))
    with pytest.raises(SercapError, match="training part has one speaker"):  # not "run tune"
        sercap.train(wh, "svm", tuned=True, progress=False)
    wh.close()


def test_a_tuner_waits_for_the_whole_description_of_a_study_just_created(toy, tmp_path) -> None:
    """The waiting tuner took a study as described once `n_rows` was there, before the
    creator had written its fixed parameters: it refused the same --params as different."""
    import threading
    import time

    data = load_dataset(toy, "tabular")
    storage = open_storage(None, tmp_path, "w")
    rows = np.arange(len(data))
    fixed = {"n_estimators": 5}
    study = optuna.create_study(study_name="w", storage=storage)  # created, not described

    def creator() -> None:  # writes as prepare_study does: settings, n_rows, then the rest
        for key, value in (("model", "rf"), ("seed", 0), ("inner_folds", 3)):
            study.set_user_attr(key, value)
        study.set_user_attr("n_rows", len(rows))
        time.sleep(0.5)
        study.set_user_attr("fixed_params", fixed)
        study.set_user_attr(tune_module.DESCRIBED, True)

    writer = threading.Thread(target=creator)
    writer.start()
    tune_module.prepare_study("rf", data, storage, "w", rows=rows, fixed=fixed, seed=0)
    writer.join()
    with pytest.raises(SercapError, match="was started with --seed / seed=0"):
        tune_module.prepare_study("rf", data, storage, "w", rows=rows, fixed=fixed, seed=1)


def test_tuned_parameters_of_a_study_tuned_on_other_data_are_refused(tmp_path) -> None:
    """A manifest ingested again with recordings moved to another speaker kept every study's
    speaker names, and `train --tuned` scored a fold with parameters whose study had trained
    on recordings that fold now tests; `tune` itself refused to resume those studies."""
    import sercap

    corpus = sercap.synth(tmp_path / "corpus", sessions=3, per_speaker=8, progress=False)
    wh = sercap.connect(tmp_path / "wh")
    sercap.ingest(wh, "iemocap", corpus.root, progress=False)
    sercap.extract(wh, progress=False)
    sercap.tune(wh, "svm", trials=1, inner_folds=2, progress=False)
    assert sercap.train(wh, "svm", tuned=True, progress=False).record["tuned_from"]
    stored = wh.query("SELECT data_sha256 FROM tuned_params")["data_sha256"].to_list()
    assert len(stored) == 4 and all(stored)  # three folds' studies and the final one
    # one utterance of Ses01F changes its label: the other folds' studies (and the final
    # one) trained on it; the speakers are the same
    utt = wh.scalar("SELECT min(utt_id) FROM iemocap4 JOIN utterances USING (utt_id) "
                    "WHERE speaker = 'Ses01F'")  # fmt: skip
    wh.execute("UPDATE labels SET emotion = CASE WHEN emotion = 'ang' THEN 'sad' ELSE 'ang' "
               "END WHERE utt_id = ?", [utt])  # fmt: skip
    with pytest.raises(SercapError, match="was tuned on other data than this run's"):
        sercap.train(wh, "svm", tuned=True, progress=False)
    wh.close()


@pytest.mark.parametrize("column", ["data_sha256", "speakers"])
def test_tuned_parameters_from_before_studies_recorded_their_data_are_refused(
    tmp_path, column
) -> None:
    """A study stored by an older sercap has no fingerprint (before sql/017) or no speakers
    (before sql/012): `train --tuned` used it without a check, so after an ingest that moved
    recordings between speakers, or an upgrade that dealt the folds otherwise, a fold was
    scored with parameters tuned on its own test recordings. `tune` refused to resume it."""
    import sercap

    corpus = sercap.synth(tmp_path / "corpus", sessions=3, per_speaker=8, progress=False)
    wh = sercap.connect(tmp_path / "wh")
    sercap.ingest(wh, "iemocap", corpus.root, progress=False)
    sercap.extract(wh, progress=False)
    sercap.tune(wh, "svm", trials=1, inner_folds=2, progress=False)
    wh.execute(f"UPDATE tuned_params SET {column} = NULL")  # as an older sercap stored it
    words = "by an older sercap" if column == "speakers" else "without a fingerprint of the data"
    with pytest.raises(SercapError, match=words) as caught:
        sercap.train(wh, "svm", tuned=True, progress=False)
    assert "--study NEW_NAME" in str(caught.value)
    wh.close()


def test_a_run_tuned_with_fixed_parameters_names_them(tmp_path) -> None:
    """`tune svm --params '{"C": 0.5}'` then `train svm --tuned` read "svm nested-tuned",
    and the report kept that row in place of the real nested-tuned one."""
    import sercap
    from sercap.run_labels import display_name

    wh = sercap.connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    sercap.tune(wh, "svm", trials=1, inner_folds=2, progress=False, study="plain")
    sercap.tune(wh, "svm", trials=1, inner_folds=2, progress=False, study="fixc",
                params={"C": 0.5})  # fmt: skip
    plain = sercap.train(wh, "svm", tuned="plain", progress=False)
    fixed = sercap.train(wh, "svm", tuned="fixc", progress=False)
    assert display_name(plain.record) == "svm nested-tuned"
    assert display_name(fixed.record) == "svm (C=0.5) nested-tuned"
    assert all(p["C"] == 0.5 for p in json.loads(fixed.record["fold_params_json"]).values())
    wh.close()


def test_a_named_study_tuned_with_other_options_says_so(tmp_path) -> None:
    """`train svm --tuned --study NAME-spknorm` without --speaker-norm was refused (rightly)
    with the advice to run a tune under that name, which would itself be refused."""
    import sercap

    wh = sercap.connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    sercap.tune(wh, "svm", trials=1, inner_folds=2, progress=False, study="sn",
                speaker_norm=True)  # fmt: skip
    with pytest.raises(sercap.NotFoundError, match="'sn' was tuned with other options"):
        sercap.train(wh, "svm", tuned="sn", progress=False)  # (no other tuning stored)
    sercap.tune(wh, "svm", trials=1, inner_folds=2, progress=False, study="plain")
    with pytest.raises(sercap.NotFoundError, match="'sn' was tuned with other options"):
        sercap.train(wh, "svm", tuned="sn", progress=False)  # (another tuning is stored)
    wh.close()


def test_a_study_journal_the_disk_cannot_take_is_one_line(tmp_path, monkeypatch) -> None:
    """A full disk while trials ran: Optuna's journal backend failed on its flush, then on
    its own ("AssertionError: Should not reach"), and tune printed ~60 lines of traceback."""
    import errno

    from optuna.storages.journal import JournalFileBackend

    import sercap

    wh = connect(tmp_path / "wh")
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    real = JournalFileBackend.append_logs
    calls = {"n": 0}

    def full(self, logs):
        calls["n"] += 1
        if calls["n"] > 12:  # the studies are created, then the disk fills mid-trials
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, logs)

    monkeypatch.setattr(JournalFileBackend, "append_logs", full)
    with pytest.raises(SercapError) as caught:
        sercap.tune(wh, "svm", trials=2, inner_folds=2, progress=False)
    message = str(caught.value)
    assert "\n" not in message and ".journal could not be written (No space left" in message
    assert "trials it stored are kept" in message and "resumes" in caught.value.hint
    wh.close()


def test_a_tuned_bench_writes_its_verdict_into_bench_md(toy, tmp_path) -> None:
    """`bench --tuned` printed default vs tuned with its CI and verdict, but the bench.md
    it saved had only the table (and its chart the tuned row on top): a reader of the saved
    files saw tuning win where it had gained nothing within noise."""
    import sercap

    sercap.tune(toy, "svm", trials=1, inner_folds=2, final=False, progress=False)
    result = sercap.bench(toy, ["svm"], tuned=True, out_dir=tmp_path / "b", progress=False)
    (comparison,) = result.comparisons
    md = (tmp_path / "b" / "bench.md").read_text()
    assert "default vs nested-tuned" in md and comparison.default.run_id in md
    assert "svm: tuning " in md
