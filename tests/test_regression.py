"""Dimensional regression (issue 16, item 2): `train/tune/bench MODEL --target RATING`.

Tiny in-memory warehouses whose valence follows the emotion (which the first feature columns
carry), so every regressor family can learn it; scores checked against numpy references
computed from the stored predictions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import sercap
from cli import main
from sercap.errors import SercapError
from sercap.store import Warehouse, connect
from tests.helpers import add_corpus, add_features

#: Valence by emotion; ratings add rater noise (as IEMOCAP's evaluator means do).
CENTRES = {"ang": 1.5, "neu": 3.0, "sad": 4.5, "fru": 2.0}

#: Small settings so that each family fits in well under a second per fold here.
FAST = {
    "svm": {},
    "rf": {"n_estimators": 40},
    "xgb": {"n_estimators": 60},
    "lgbm": {"n_estimators": 60, "min_child_samples": 3},
    "trees": {
        "rf__n_estimators": 40,
        "xgb__n_estimators": 60,
        "lgbm__n_estimators": 60,
        "lgbm__min_child_samples": 3,
    },  # fmt: skip
    "dnn": {"epochs": 15, "hidden_size": 16, "n_layers": 1, "batch_size": 64, "lr": 1e-2},
}


def add_ratings(wh: Warehouse, utts, target: str = "valence", seed: int = 0) -> dict[str, float]:
    """Give every utterance a rating that depends on its emotion, plus noise."""
    rng = np.random.default_rng(seed)
    values = {
        u: CENTRES[e] + float(rng.normal(0, 0.3))
        for u, e in zip(utts["utt_id"], utts["emotion"], strict=True)
    }
    for utt, value in values.items():
        wh.execute(f"UPDATE labels SET {target} = ? WHERE utt_id = ?", [value, utt])
    return values


@pytest.fixture
def rated(wh: Warehouse) -> Warehouse:
    """4 speakers × 3 emotions × 5 utterances with features and valence ratings."""
    utts = add_corpus(wh, n_speakers=4, per_class=5)
    add_features(wh, utts)
    add_ratings(wh, utts)
    return wh


def reference_ccc(t: np.ndarray, p: np.ndarray) -> float:
    """Lin's CCC written from its definition with numpy's population covariance."""
    cov = np.cov(t, p, bias=True)
    return float(2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (t.mean() - p.mean()) ** 2))


def test_stored_scores_recompute_from_stored_predictions(rated: Warehouse) -> None:
    first = rated.query("SELECT min(utt_id) AS u FROM labels")["u"][0]
    rated.execute("UPDATE labels SET valence = NULL WHERE utt_id = ?", [first])
    said: list[str] = []
    run = sercap.train(rated, "svm", target="valence", say=said.append, progress=False)
    # Utterances without a rating are left out, and said so in one line.
    assert run.record["n_utterances"] == 59 and run.left_out == 1
    assert said == [
        "svm → valence: 59 utterances of toy, 4 folds (leave-one-speaker-out); "
        "1 utterance without a valence rating left out"
    ]
    stored = sercap.get_run(rated, run.run_id)  # read back from the warehouse
    preds = stored.predictions
    assert preds.height == 59 and first not in preds["utt_id"].to_list()
    truth = rated.query(
        "SELECT utt_id, valence FROM labels WHERE valence IS NOT NULL ORDER BY utt_id"
    )
    assert preds["utt_id"].to_list() == truth["utt_id"].to_list()
    np.testing.assert_allclose(preds["value"].to_numpy(), truth["valence"].to_numpy())
    t, p = preds["value"].to_numpy(), preds["predicted"].to_numpy()
    assert stored.ccc == pytest.approx(reference_ccc(t, p), abs=1e-12)
    assert stored.pearson == pytest.approx(np.corrcoef(t, p)[0, 1], abs=1e-12)
    assert stored.mae == pytest.approx(np.abs(t - p).mean(), abs=1e-12)
    # Out of fold: each fold is one held-out speaker, and a stored fold's CCC is reproduced.
    folds = sorted(set(preds["fold"].to_list()))
    per_fold = []
    for fold in folds:
        mask = (preds["fold"] == fold).to_numpy()
        per_fold.append(reference_ccc(t[mask], p[mask]))
    assert stored.record["ccc_fold_mean"] == pytest.approx(np.mean(per_fold), abs=1e-12)
    assert stored.record["ua"] is None and stored.record["target"] == "valence"


@pytest.mark.parametrize("model", sorted(FAST))
def test_each_family_learns_a_rating(rated: Warehouse, model: str) -> None:
    run = sercap.train(rated, model, target="valence", params=FAST[model], progress=False)
    assert run.ccc > 0.6, (model, run.ccc)
    assert run.predictions["predicted"].std() > 0.3  # not a constant guess


def test_the_trees_regressor_is_the_mean_of_its_three_members() -> None:
    from sercap.models.registry import get_model
    from sercap.models.regressors import get_regressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6))
    X[rng.random(X.shape) < 0.05] = np.nan  # imputed (rf) or native (xgb, lgbm) alike
    y = np.nan_to_num(X[:, 0]) * 2 - np.nan_to_num(X[:, 1]) + rng.normal(0, 0.1, 80)
    trees = get_regressor("trees")(FAST["trees"], seed=3).fit(X[:60], y[:60])
    members = [
        get_regressor(m)(FAST[m], seed=3).fit(X[:60], y[:60]).predict(X[60:])
        for m in ("rf", "xgb", "lgbm")
    ]
    np.testing.assert_allclose(trees.predict(X[60:]), np.mean(members, axis=0), rtol=1e-10)
    assert set(get_regressor("trees").default_params()) == {
        k for k in get_model("trees").default_params()
        if not k.endswith(("class_weight", "early_stopping_rounds", "valid_fraction"))
    }  # fmt: skip


def test_models_without_a_regressor_refuse_in_one_line(rated: Warehouse) -> None:
    for model in ("text-lr", "fusion"):
        with pytest.raises(SercapError) as err:
            sercap.train(rated, model, target="valence")
        text = str(err.value)
        assert "\n" not in text and repr(model) in text
        assert text.endswith(
            "--target / target= works with: "
            "svm, rf, xgb, lgbm, trees, dnn, lstm, cnn, resnet18, resnet34"
        )
    with pytest.raises(SercapError, match="unknown target 'arousal'; choose one of: valence"):
        sercap.train(rated, "svm", target="arousal")


def test_a_regression_bench_refuses_options_it_cannot_honour(rated: Warehouse) -> None:
    """`bench --modalities text --target valence` ignored --modalities and ran four audio
    regressors for minutes; every classifier-only option is refused before any work."""
    for given in ({"modalities": ["text"]}, {"ensemble": True}, {"quick": True}):
        name = next(iter(given))
        with pytest.raises(SercapError, match=f"does not take --{name} / {name}="):
            sercap.bench(rated, ["svm"], target="valence", progress=False, **given)
    assert rated.scalar("SELECT count(*) FROM runs") == 0


def test_corpus_without_ratings_refuses_naming_it(wh: Warehouse) -> None:
    add_features(wh, add_corpus(wh, n_speakers=4, per_class=3))
    with pytest.raises(SercapError, match=r"^corpus 'toy' has no dominance ratings;") as err:
        sercap.train(wh, "svm", target="dominance")
    assert "\n" not in str(err.value)
    assert wh.scalar("SELECT count(*) FROM runs") == 0


def test_cli_train_runs_and_bench_print_the_scores(tmp_path: Path) -> None:
    path = tmp_path / "wh"
    wh = connect(path)
    utts = add_corpus(wh, n_speakers=4, per_class=4)
    add_features(wh, utts)
    add_ratings(wh, utts, "activation")
    wh.close()

    def cli(*args: str):
        return CliRunner().invoke(main, ["-w", str(path), *args], catch_exceptions=False)

    trained = cli("train", "svm", "--target", "activation")
    assert trained.exit_code == 0, trained.output
    assert "target activation, 48 utterances" in trained.output
    assert "CCC" in trained.output and "Pearson r" in trained.output and "MAE" in trained.output
    listed = cli("runs")
    header = listed.output.splitlines()[0].split()
    assert {"target", "ccc", "pearson", "mae"} <= set(header)
    assert "activation" in listed.output
    info = cli("info")  # its "latest runs" showed the regression run with NULL scores only
    latest = info.output[info.output.index("latest runs") :].splitlines()
    assert {"target", "ccc"} <= set(latest[1].split()), info.output
    bench = cli("bench", "svm", "lgbm", "--target", "activation")
    assert bench.exit_code == 0, bench.output
    # (after what each dataset holds, said as train says it)
    assert bench.output.splitlines()[0].startswith("svm → activation: 48 utterances")
    header = next(line for line in bench.output.splitlines() if line.startswith("name "))
    assert header.split()[:4] == ["name", "ccc", "pearson", "mae"]
    assert "target activation" in bench.output and "bench.md" in bench.output
    run_id = listed.output.splitlines()[2].split()[0]
    shown = cli("runs", "show", run_id)  # a regression run has no class predictions
    assert shown.exit_code == 0 and "error" not in shown.output, shown.output
    catalog = (Path(path) / "sercap.duckdb").read_bytes()
    report = cli("report", "--out", str(tmp_path / "report"), "--no-importance")
    assert report.exit_code == 0, report.output
    assert (Path(path) / "sercap.duckdb").read_bytes() == catalog  # stores nothing: no byte
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Dimensional regression" in text
    # regression runs alone: not "No runs yet", and no note about a refit that cannot happen
    assert "No runs yet" not in text and "No classification runs yet" in text
    quiet = cli("report", "--out", str(tmp_path / "r1"))
    assert quiet.exit_code == 0 and "permutation importance" not in quiet.output
    rows = [line for line in text.splitlines() if line.startswith("| activation | ")]
    assert sorted(r.split(" | ")[1] for r in rows) == ["lgbm", "svm"]  # the newest per model
    # a run on some columns is its own row and says so (it hid the all-columns run, unnamed)
    assert cli("train", "svm", "--target", "activation", "--columns", "^mfcc_").exit_code == 0
    assert cli("report", "--out", str(tmp_path / "r2"), "--no-importance").exit_code == 0
    text = (tmp_path / "r2" / "report.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| activation | ")]
    assert sorted(r.split(" | ")[1] for r in rows) == ["lgbm", "svm", "svm columns /^mfcc_/"]
    # --tuned: the defaults beside, and the CI of the difference printed (it returned early)
    assert cli("tune", "svm", "--target", "activation", "--trials", "2").exit_code == 0
    tuned = cli("bench", "svm", "--target", "activation", "--tuned")
    assert "default vs nested-tuned (pooled outer CCC" in tuned.output, tuned.output
    refused = cli("train", "text-lr", "--target", "activation")
    assert refused.exit_code == 1 and refused.output.startswith("error: model 'text-lr' cannot")
    assert len(refused.output.strip().splitlines()) == 1
    missing = cli("train", "svm", "--target", "valence")
    assert missing.output.strip().splitlines() == [
        "error: corpus 'toy' has no valence ratings; --target / target= needs dimensional labels "
        "(IEMOCAP, the synthetic corpus, or a manifest with valence/activation/dominance)"
    ]


def test_tuning_on_ccc_is_kept_apart_from_classification(rated: Warehouse) -> None:
    from sercap.regression import load_target_dataset, score_regression
    from sercap.tuning import inner_splits, objective_for

    # A classification tuning must never hand its parameters to a regression, and back.
    sercap.tune(rated, "svm", trials=1, progress=False)
    with pytest.raises(SercapError, match="no nested tuning for svm on toy/valence"):
        sercap.train(rated, "svm", target="valence", tuned=True, progress=False)
    study = sercap.tune(rated, "svm", target="valence", trials=2, progress=False)
    assert study.name.startswith("svm-toy-valence-")
    shown = str(sercap.load_study(rated, "svm", target="valence"))
    assert "inner CCC (best)" in shown and "UA" not in shown
    run = sercap.train(rated, "svm", target="valence", tuned=True, progress=False)
    assert sorted(run.fold_params) == ["01", "02", "03", "04"]
    assert run.record["tuned_from"].startswith(study.name)
    # The objective is the mean inner CCC (not UA) over the fold's training speakers.
    data, _ = load_target_dataset(rated, "svm", "valence")
    rows = np.flatnonzero(data.folds != "01")
    objective = objective_for("svm", data, rows, inner_folds=3)
    import optuna

    value = objective(optuna.trial.FixedTrial({"C": 3.0, "gamma_rel": 1.0}))
    sub = data.subset(rows)
    cccs = []
    for _, tr, te in inner_splits(sub, n_splits=3, seed=0):
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR

        svr = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            SVR(C=3.0, gamma=1.0 / sub.X.shape[1], epsilon=0.1),
        ).fit(sub.X[tr], sub.y[tr])
        cccs.append(score_regression(sub.y[te], svr.predict(sub.X[te])).ccc)
    assert value == pytest.approx(np.mean(cccs), abs=1e-9)


def test_schema_file_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):  # every writable connect applies sql/008_regression.sql again
        wh = connect(tmp_path / "wh")
        columns = wh.query("SELECT * FROM runs LIMIT 0").columns
        assert {"target", "ccc", "pearson", "mae"} <= set(columns)
        assert wh.has_relation("regression_predictions")
        wh.close()


def test_regression_runs_stay_out_of_class_only_verbs(rated: Warehouse) -> None:
    a = sercap.train(rated, "svm", target="valence", progress=False)
    b = sercap.train(rated, "lgbm", target="valence", params=FAST["lgbm"], progress=False)
    with pytest.raises(SercapError, match="predicts valence ratings; an ensemble averages"):
        sercap.ensemble_runs(rated, [a.run_id, b.run_id])
    # predict takes a regression run (test_predict_with_a_regression_run…), but not the
    # options that only make sense for classes
    with pytest.raises(
        SercapError, match="valence ratings; --coverage / coverage= is for emotion classes only"
    ):
        sercap.predict(rated, ["/nowhere.wav"], run=a.run_id, coverage=0.8)


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("lstm", {"epochs": 15, "hidden_size": 16, "lr": 1e-2, "patience": 0, "batch_size": 16,
                  "scheduler": "none"}),
        ("cnn", {"epochs": 12, "channels": 8, "crop_frames": 32, "lr": 3e-3, "patience": 0,
                 "batch_size": 16, "scheduler": "none", "deltas": False, "pooling": "mean",
                 "norm": "global"}),
    ],
)  # fmt: skip
def test_sequence_and_image_networks_learn_a_rating(
    wh: Warehouse, model: str, params: dict
) -> None:
    from tests.helpers import add_frames, add_images

    utts = add_corpus(wh, n_speakers=4, per_class=5)
    add_frames(wh, utts)
    add_images(wh, utts)
    add_ratings(wh, utts)
    run = sercap.train(wh, model, target="valence", params=params, progress=False)
    assert run.record["n_utterances"] == 60
    assert run.ccc > 0.5, (model, run.ccc)


def test_a_label_map_chooses_the_utterances(wh: Warehouse) -> None:
    utts = add_corpus(
        wh, kind="iemocap", protocol="leave-one-session-out", classes=("ang", "fru", "neu")
    )
    add_features(wh, utts)
    add_ratings(wh, utts)
    every = sercap.train(wh, "svm", target="valence", progress=False)
    kept = sercap.train(wh, "svm", target="valence", labels="iemocap4", progress=False)
    assert every.record["n_utterances"] == 36 and every.record["label_map"] == "valence"
    assert kept.record["n_utterances"] == 24 and kept.record["label_map"] == "valence.iemocap4"
    assert not any("fru" in u for u in kept.predictions["utt_id"].to_list())
    assert "24 utterances of label map iemocap4" in str(kept)


def test_predict_with_a_regression_run_gives_each_file_its_rating(tmp_path: Path) -> None:
    corpus = sercap.synth(tmp_path / "corpus", sessions=2, per_speaker=6)
    wh = connect(tmp_path / "wh")
    sercap.ingest(wh, "iemocap", corpus.root, progress=False)
    sercap.extract(wh, progress=False)
    run = sercap.train(wh, "svm", target="activation", progress=False)
    wavs = sorted(corpus.root.rglob("*.wav"))[:3]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    table = sercap.predict(wh, [*wavs, broken], run=run.run_id, progress=False)
    assert table.columns == ["run_id", "path", "activation", "error"]
    assert table["error"].to_list()[:3] == [None] * 3 and table["error"][3]
    values = table["activation"].to_list()
    assert all(np.isfinite(values[:3])) and values[3] is None
    # the final regressor, fitted on every rated utterance, predicts what a fit here predicts
    from sercap.models.regressors import get_regressor
    from sercap.predict_inputs import _audio_input
    from sercap.prediction import final_model
    from sercap.regression import load_target_dataset

    data, _ = load_target_dataset(wh, "svm", "activation")
    here = get_regressor("svm")({}, seed=0).fit(data.X, data.y)
    final = final_model(wh, run.run_id)  # loaded from the stored artifact this time
    rows = np.concatenate(
        [_audio_input(final, sercap.audio.load_audio(w, 16000)) for w in wavs]
    )  # fmt: skip
    np.testing.assert_allclose(values[:3], here.predict(rows), rtol=1e-6)
    # the notes on files unlike the training audio, as for emotions (a rating run said none)
    import soundfile as sf

    noise, low = tmp_path / "noise.wav", tmp_path / "low.wav"
    sf.write(noise, 0.1 * np.random.default_rng(0).standard_normal(32000), 16000)
    y, rate = sf.read(wavs[0])
    sf.write(low, y[::2], rate // 2)
    notes: list[str] = []
    sercap.predict(wh, [noise, low], run=run.run_id, progress=False, say=notes.append)
    assert any(n.startswith(f"note: {noise}: ") and "outside the range" in n for n in notes)
    assert any(n.startswith(f"note: {low}: recorded at {rate // 2} Hz") for n in notes)
    with pytest.raises(SercapError, match="--abstain / abstain= is for emotion classes only"):
        sercap.predict(wh, wavs, run=run.run_id, abstain=0.5)
    # --model picks emotion runs only, and says the runs there are predict ratings
    with pytest.raises(SercapError, match="the stored runs of 'svm' predict ratings") as info:
        sercap.predict(wh, wavs, model="svm")
    assert f"--run / run= {run.run_id}" in str(info.value)
    wh.close()


def test_a_network_never_rates_outside_the_training_range() -> None:
    """A linear head extrapolates: on a row unlike any training row the dnn rated 23 and
    −16 on a 1–5 scale before predictions were clipped to the training ratings' range."""
    from sercap.models.regressors import DNNRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (120, 3)).astype(np.float32)
    y = 1 + 4 * X[:, 0]
    model = DNNRegressor({"epochs": 60}, seed=0).fit(X, y)
    far = model.predict(np.array([[6, 0.5, 0.5], [-5, 0.5, 0.5]], dtype=np.float32))
    np.testing.assert_allclose(far, [y.max(), y.min()])
    inside = model.predict(X[:20])
    assert np.abs(inside - y[:20]).max() < 0.5  # clipping leaves ordinary rows alone


def test_a_tuned_regression_shows_the_default_ccc_beside_it(rated: Warehouse) -> None:
    """`train svm --target valence --tuned` printed the tuned CCC alone; it now also fits
    the defaults on the same folds and gives the paired bootstrap CI of the difference, as
    a tuned classifier does for UA."""
    from sercap.analysis import ccc
    from sercap.regression import paired_bootstrap_ccc

    sercap.tune(rated, "svm", target="valence", trials=2, inner_folds=2, progress=False)
    run = sercap.train(rated, "svm", target="valence", tuned=True, progress=False)
    c = run.comparison
    assert c.tuned_run == run.run_id and c.ccc_tuned == pytest.approx(run.ccc)
    # the tuned run is stored last, so `predict --model svm` uses it (it used the default)
    from sercap.store.runs import newest_rating_run

    assert newest_rating_run(rated, "svm", None) == (run.run_id, "valence")
    default = sercap.get_run(rated, c.default_run)
    assert default.record["tuned_from"] is None and c.ccc_default == pytest.approx(default.ccc)
    plain = sercap.train(rated, "svm", target="valence", progress=False)
    assert plain.ccc == pytest.approx(default.ccc) and plain.comparison is None
    both = run.predictions.join(default.predictions, on="utt_id", suffix="_default")
    y, tuned, base = (both[c].to_numpy() for c in ("value", "predicted", "predicted_default"))
    assert c.diff == pytest.approx(ccc(y, tuned) - ccc(y, base))
    speaker = dict(rated.query("SELECT utt_id, speaker FROM utterances").rows())
    groups = np.array([speaker[u] for u in both["utt_id"]])  # resampled by speaker
    assert (c.low, c.high) == pytest.approx(paired_bootstrap_ccc(y, base, tuned, groups=groups))
    from sercap.evaluate import paired_bootstrap_interval

    alone = paired_bootstrap_interval(ccc, y, base, tuned)
    by_speaker = paired_bootstrap_interval(ccc, y, base, tuned, groups=groups)
    assert (c.low, c.high) == pytest.approx(
        (min(alone[0], by_speaker[0]), max(alone[1], by_speaker[1]))
    )
    text = str(run)
    assert "default vs nested-tuned (pooled outer CCC" in text and f"{c.ccc_default:.4f}" in text


def test_paired_bootstrap_ccc_matches_a_hand_resampling() -> None:
    from sercap.analysis import ccc
    from sercap.regression import paired_bootstrap_ccc

    rng = np.random.default_rng(3)
    y = rng.normal(size=40)
    a, b = y + rng.normal(scale=1.0, size=40), y + rng.normal(scale=0.3, size=40)
    draws = np.random.default_rng(0)
    diffs = []
    for _ in range(300):
        i = draws.integers(0, 40, 40)
        diffs.append(ccc(y[i], b[i]) - ccc(y[i], a[i]))
    expected = np.quantile(diffs, [0.025, 0.975])
    assert paired_bootstrap_ccc(y, a, b, n_boot=300) == pytest.approx(tuple(expected))


def test_a_torch_rating_run_predicts_new_audio_and_its_final_model_reloads(
    tmp_path: Path,
) -> None:
    # The torch regressors were classes made at run time (and their network a class made
    # inside a method), which pickle cannot name: predict's final model failed to store.
    corpus = sercap.synth(tmp_path / "corpus", sessions=2, per_speaker=4)
    wh = connect(tmp_path / "wh")
    sercap.ingest(wh, "iemocap", corpus.root, progress=False)
    sercap.extract(wh, progress=False)
    tiny = {"epochs": 1, "hidden_size": 8, "batch_size": 8}
    run = sercap.train(wh, "lstm", target="activation", params=tiny, progress=False)
    wavs = sorted(corpus.root.rglob("*.wav"))[:2]
    first = sercap.predict(wh, wavs, run=run.run_id, progress=False)  # fits and stores it
    again = sercap.predict(wh, wavs, run=run.run_id, progress=False)  # loads it
    assert first["error"].to_list() == [None, None]
    assert np.all(np.isfinite(first["activation"].to_numpy()))
    np.testing.assert_allclose(again["activation"].to_numpy(), first["activation"].to_numpy())


@pytest.mark.parametrize("model", ["lstm", "cnn"])
def test_fitted_torch_regressors_pickle_by_name(model: str) -> None:
    import pickle

    from sercap.models import regressors

    rng = np.random.default_rng(0)
    if model == "lstm":
        X = [rng.normal(size=(int(rng.integers(5, 12)), 3)).astype(np.float32) for _ in range(16)]
        params = {"epochs": 1, "hidden_size": 4, "batch_size": 8}
    else:
        X = [rng.integers(0, 255, size=(8, int(rng.integers(10, 40))), dtype=np.uint8)
             for _ in range(16)]  # fmt: skip
        params = {"epochs": 1, "batch_size": 8, "crop_frames": 16, "window_stride": 8}
    y = rng.normal(size=16)
    reg = regressors.get_regressor(model)(params, seed=0).fit(X, y)
    assert type(reg) is getattr(regressors, type(reg).__name__)
    back = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))


def test_bench_tuned_runs_the_defaults_beside_and_gives_the_ci(rated: Warehouse) -> None:
    """`bench svm --target valence --tuned` ran the tuned model alone: no default run and
    no interval, though --help promises "default vs tuned with a 95% CI" (as train does)."""
    from sercap.format import format_tuning_comparison

    sercap.tune(rated, "svm", target="valence", trials=2, inner_folds=2, progress=False)
    result = sercap.bench(rated, ["svm"], target="valence", tuned=True, progress=False)
    assert result.table["name"].to_list() == ["svm", "svm nested-tuned"]
    (c,) = result.comparisons
    assert c.default_run == result.table["run_id"][0] and c.tuned_run == result.table["run_id"][1]
    assert c.low <= c.diff <= c.high
    ccc = dict(zip(result.table["name"], result.table["ccc"], strict=True))
    assert c.ccc_default == pytest.approx(ccc["svm"]) and c.ccc_tuned == pytest.approx(
        ccc["svm nested-tuned"]
    )
    assert "default vs nested-tuned (pooled outer CCC" in format_tuning_comparison([c])
    assert "default vs nested-tuned (pooled outer CCC" in result.report.read_text()


def test_a_fold_that_predicts_nan_is_an_error_not_fewer_utterances(
    rated: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NaN predictions were dropped from the pooled scores and n_utterances without a word."""
    from sercap import evaluate, regression

    def with_nan(fit, rows: int):
        def fitted(*args, **kwargs):
            out, seconds = fit(*args, **kwargs)
            out[:rows] = np.nan
            return out, seconds

        return fitted

    monkeypatch.setattr(
        regression, "fit_fold_regression", with_nan(regression.fit_fold_regression, 2)
    )
    with pytest.raises(SercapError, match=r"svm: fold 01 predicted 2 of \d+ ratings as NaN"):
        sercap.train(rated, "svm", target="valence", progress=False)
    monkeypatch.setattr(evaluate, "fit_fold", with_nan(evaluate.fit_fold, 1))
    with pytest.raises(SercapError, match=r"fold 01: 1 of \d+ predictions hold NaN"):
        sercap.train(rated, "svm", progress=False)
    assert rated.scalar("SELECT count(*) FROM runs") == 0  # nothing stored


@pytest.mark.parametrize("model", ["dnn", "lstm"])
def test_a_bad_loss_is_refused_before_any_data_is_read(model: str) -> None:
    # (an empty warehouse: reading data first would say "no corpus yet" instead)
    with connect(":memory:") as wh, pytest.raises(SercapError, match="loss must be one of"):
        sercap.train(wh, model, target="valence", params={"loss": "huber"}, progress=False)


def test_a_rating_run_records_its_data_and_refuses_a_refit_on_other_data(
    rated: Warehouse,
) -> None:
    """Regression runs stored no data fingerprint: a re-rated utterance or a replaced
    recording left predict fitting the run's final regressor on data it was not scored on."""
    from sercap.prediction import final_model

    rated.execute("UPDATE utterances SET audio_sha256 = 'bytes of ' || utt_id")
    run = sercap.train(rated, "svm", target="valence", progress=False)
    stored = rated.scalar("SELECT data_sha256 FROM runs WHERE run_id = ?", [run.run_id])
    assert stored and len(stored) == 16
    again = sercap.train(rated, "svm", target="valence", progress=False)  # same data, same print
    assert rated.scalar("SELECT data_sha256 FROM runs WHERE run_id = ?", [again.run_id]) == stored
    utt = "toy_01_ang_0"
    was = rated.scalar("SELECT valence FROM labels WHERE utt_id = ?", [utt])
    rated.execute("UPDATE labels SET valence = ? WHERE utt_id = ?", [was + 0.5, utt])
    with pytest.raises(SercapError, match="scored on data that changed since"):  # re-rated
        final_model(rated, run.run_id, progress=False)
    rated.execute("UPDATE labels SET valence = ? WHERE utt_id = ?", [was, utt])
    rated.execute("UPDATE utterances SET audio_sha256 = 'new bytes' WHERE utt_id = ?", [utt])
    with pytest.raises(SercapError, match="scored on data that changed since"):  # new audio
        final_model(rated, run.run_id, progress=False)
    rated.execute("UPDATE utterances SET audio_sha256 = 'bytes of ' || utt_id")
    final_model(rated, run.run_id, progress=False)  # the data it was scored on: fitted
    assert rated.scalar("SELECT count(*) FROM artifacts") == 1


def test_a_fold_with_one_rating_to_train_on_is_named(rated: Warehouse) -> None:
    """Speaker 01 alone had varied ratings: the fold testing 01 trained on one rating and
    the regressor said "every training rating is 3.0" without naming the fold."""
    rated.execute(
        "UPDATE labels SET valence = CASE WHEN utt_id IN (SELECT utt_id FROM utterances "
        "WHERE speaker = '01') THEN 1 + random() * 4 ELSE 3.0 END"
    )
    with pytest.raises(SercapError, match=r"^fold 01: every rating of its training part is 3"):
        sercap.train(rated, "svm", target="valence", progress=False)


def test_a_regression_run_with_parameters_set_by_hand_is_a_row_of_its_own(rated) -> None:
    """The report's regression table kept one row per model whatever its parameters: a
    `--params '{"C": 30}'` run replaced the default run, named plainly "svm"."""
    from sercap.report import _regression_setting
    from sercap.store.regression import newest_regression_runs

    default = sercap.train(rated, "svm", target="valence", progress=False).run_id
    by_hand = sercap.train(rated, "svm", target="valence", params={"C": 30}, progress=False)
    rows = {r["run_id"]: r for r in newest_regression_runs(rated, "toy").iter_rows(named=True)}
    assert {default, by_hand.run_id} <= set(rows)
    assert _regression_setting(rows[default]) == "svm"
    assert _regression_setting(rows[by_hand.run_id]) == "svm (C=30)"


def test_a_regression_bench_says_what_it_left_out_as_train_does(rated: Warehouse) -> None:
    """`bench svm rf --target valence` computed how many utterances had no rating and threw
    the count away: neither the terminal nor bench.md said 11 utterances were left out."""
    first = rated.query("SELECT min(utt_id) AS u FROM labels")["u"][0]
    rated.execute("UPDATE labels SET valence = NULL WHERE utt_id = ?", [first])
    said: list[str] = []
    sercap.bench(rated, ["svm"], target="valence", say=said.append, progress=False)
    assert any(line.endswith("1 utterance without a valence rating left out") for line in said)
