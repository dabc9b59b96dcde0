import numpy as np
import polars as pl
import pytest

from sercap.compare import BenchSpec, bench_models, bench_table, write_bench_report
from sercap.report import feature_ranking, format_confusion, format_table, write_report
from tests.helpers import add_corpus, add_features


def test_format_table_aligns_and_counts() -> None:
    frame = pl.DataFrame({"name": ["a", "bb"], "x": [1.23456, None], "l": [[1, 2], [3]]})
    text = format_table(frame)
    lines = text.splitlines()
    assert lines[0].split() == ["name", "x", "l"]
    assert "1.2346" in text and "NULL" in text and "[1, 2]" in text
    assert lines[-1] == "(2 rows)"
    assert "more rows" in format_table(frame, limit=1)


def test_format_confusion_shows_recall() -> None:
    text = format_confusion([[3, 1], [0, 2]], ["ang", "neu"])
    assert "0.750" in text and "1.000" in text


def test_feature_ranking_puts_the_informative_feature_first() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    X = rng.normal(size=(90, 5))
    X[:, 3] += 3 * y
    X[0, 1] = np.nan
    X[:, 4] = 1.0  # constant: skipped, not an error
    ranking = feature_ranking(X, y, ["a", "b", "c", "d", "e"])
    assert ranking["feature"][0] == "d"
    assert "e" not in ranking["feature"].to_list()


def test_bench_and_report_write_tables_and_pictures(wh, tmp_path) -> None:
    add_features(wh, add_corpus(wh, n_speakers=4, per_class=4))
    specs = [BenchSpec("svm"), BenchSpec("rf")]
    run_ids = bench_models(wh, specs, params={"rf": {"n_estimators": 20}}, progress=False)
    table = bench_table(wh, run_ids)
    assert sorted(table["name"].to_list()) == ["rf (n_estimators=20)", "svm"]
    assert table["ua"].to_list() == sorted(table["ua"].to_list(), reverse=True)
    written = write_bench_report(wh, run_ids, tmp_path / "bench")
    md = written["markdown"].read_text()
    assert "| svm |" in md and "leave-one-speaker-out" in md and "no speaker normalisation" in md
    assert pl.read_csv(written["csv"]).height == 2
    for key in ("comparison", "recall", "confusion-svm", "confusion-rf_n_estimators_20"):
        assert written[key].stat().st_size > 1000
    report = write_report(wh, tmp_path / "report")
    text = report.read_text()
    assert "## Results" in text and "ANOVA" in text and "corpus at a glance" in text
    assert "| vs best (95% CI, jointly) |" in text and "| best |" in text
    assert "## Fairness" in text and "## Uncertainty" in text
    assert "Permutation importance of `svm`" in text or "Permutation importance of `rf`" in text
    pngs = ["features-top.png", "corpus-utterances.png", "corpus-minutes.png", "coverage.png",
            "importance-descriptor.png", "importance-functional.png"]  # fmt: skip
    for png in pngs:
        assert (tmp_path / "report" / png).stat().st_size > 1000
        assert f"]({png})" in text


def test_report_lists_the_newest_run_not_the_best(wh, tmp_path) -> None:
    """Choosing the run to show by its test UA is selection on the test set: the report
    shows the newest run of each model (fails on the arg_max(run_id, ua) report)."""
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    old, new = bench_models(wh, [BenchSpec("svm")], progress=False), None
    wh.execute("UPDATE runs SET ua = 0.99 WHERE run_id = ?", [old[0]])  # the older is "best"
    new = bench_models(wh, [BenchSpec("svm")], progress=False)
    text = write_report(wh, tmp_path / "r", importance=False).read_text()
    assert new[0] in text and old[0] not in text


def test_tuning_comparison_says_when_tuning_gained_nothing() -> None:
    from types import SimpleNamespace

    from sercap.evaluate import PairedDifference
    from sercap.report import format_tuning_comparison

    def comparison(model, low, high):
        diff = PairedDifference(0.70, 0.70 + (low + high) / 2, (low + high) / 2, low, high,
                                1000, 0.95)  # fmt: skip
        run = SimpleNamespace(run_id=f"{model}-run")
        return SimpleNamespace(model=model, difference=diff, default=run, tuned=run)

    text = format_tuning_comparison(
        [comparison("svm", -0.02, 0.03), comparison("lgbm", 0.01, 0.05)]
    )
    lines = text.splitlines()
    assert any(line.split()[:1] == ["svm"] and "0.7000" in line for line in lines)
    assert "svm: tuning gained nothing within noise" in text
    assert "lgbm: tuning helped" in text and "lgbm: tuning gained nothing" not in text


def test_runs_under_another_protocol_are_left_out_and_counted(wh, tmp_path) -> None:
    """A run an older sercap scored under other folds (speaker-kfold-5 before dyadic
    sessions were kept whole) stood in the report's table beside today's runs, ranked
    against them, under today's protocol caption."""
    import sercap
    from tests.test_regression import add_ratings

    utts = add_corpus(wh, n_speakers=3, per_class=3)
    add_features(wh, utts)
    add_ratings(wh, utts, "activation")
    old = sercap.train(wh, "rf", params={"n_estimators": 5}, progress=False).run_id
    new = sercap.train(wh, "svm", progress=False).run_id
    wh.execute("UPDATE runs SET protocol = 'speaker-kfold-5' WHERE run_id = ?", [old])
    text = write_report(wh, tmp_path / "r", importance=False).read_text()
    assert new in text and old not in text
    assert "Left out: 1 run(s) scored under another protocol" in text
    assert "1 under speaker-kfold-5" in text
    # `runs` lists both, each with its folds (two svm rows under other folds read alike)
    listed = dict(sercap.runs(wh).select("run_id", "protocol").iter_rows())
    assert listed[old] == "speaker-kfold-5" and listed[new] != "speaker-kfold-5"
    # a rating run, and every classification run, under the old folds: all left out
    rating = sercap.train(wh, "svm", target="activation", progress=False).run_id
    wh.execute("UPDATE runs SET protocol = 'speaker-kfold-5'")
    text = write_report(wh, tmp_path / "r2", importance=False).read_text()
    assert rating not in text and new not in text
    assert "Left out: 3 run(s)" in text and "No runs under this protocol yet" in text


@pytest.mark.parametrize("writer", ["bench", "report"])
def test_a_disk_that_refuses_a_picture_is_one_line_and_leaves_no_half(
    wh, tmp_path, monkeypatch, writer
) -> None:
    """On a full disk the report and bench said "error: No space left on device" (no
    folder named), and bench left comparison.png and the confusion PNGs without bench.md."""
    import errno

    import sercap.plots as plots
    from sercap.errors import SercapError

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    ids = bench_models(wh, [BenchSpec("svm")], progress=False)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "recall_png", full)  # after comparison.png and the confusions
    out = tmp_path / "out"
    with pytest.raises(SercapError) as caught:
        if writer == "bench":
            write_bench_report(wh, ids, out, "toy")
        else:
            write_report(wh, out, importance=False)
    message = str(caught.value)
    assert message.startswith(f"{out}: cannot write the ")
    assert "(No space left on device)" in message and "\n" not in message
    assert not out.exists()  # what this call made is gone
    # into a folder an earlier bench or report wrote: left as it was (the report removed its
    # report.md first and overwrote the pictures in place)
    import sercap

    def write(run_ids):
        if writer == "bench":
            write_bench_report(wh, run_ids, out, "toy")
        else:
            write_report(wh, out, importance=False)

    monkeypatch.undo()
    write(ids)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    more = [*ids, sercap.train(wh, "rf", params={"n_estimators": 5}, progress=False).run_id]
    monkeypatch.setattr(plots, "recall_png", full)  # comparison.png of 2 rows is drawn
    with pytest.raises(SercapError, match=f"{out}: cannot write the "):
        write(more)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_run_on_some_columns_is_its_own_row_and_says_so(wh, tmp_path) -> None:
    """`train svm --columns P` after `train svm` replaced the all-columns row in the report,
    under the bare name svm."""
    import sercap

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    every = sercap.train(wh, "svm", progress=False).run_id
    some = sercap.train(wh, "svm", columns="^mfcc_", progress=False).run_id
    text = write_report(wh, tmp_path / "r", importance=False).read_text()
    assert every in text and some in text
    assert "| svm columns /^mfcc_/ |" in text


def test_a_named_feature_set_that_does_not_exist_is_refused(wh, tmp_path) -> None:
    """`report --feature-set nope` wrote a report (exit 0) with a note inside it."""
    from sercap.errors import SercapError

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    with pytest.raises(SercapError, match="unknown feature set 'nope'"):
        write_report(wh, tmp_path / "r", feature_set="nope", importance=False)
    assert not (tmp_path / "r").exists()


def test_rows_that_share_a_model_get_their_own_pictures(wh, tmp_path, monkeypatch) -> None:
    """Pictures were keyed by the bare model name: svm with and without speaker
    normalisation wrote one confusion-svm.png (the last one's), one recall series and two
    unlabelled 'svm' bars."""
    from sercap import compare, plots

    add_features(wh, add_corpus(wh, n_speakers=4, per_class=4))
    plain = bench_models(wh, [BenchSpec("svm")], progress=False)
    normed = bench_models(wh, [BenchSpec("svm")], speaker_norm=True, progress=False)
    bars: list = []
    original = plots.comparison_png
    monkeypatch.setattr(
        plots, "comparison_png", lambda rows, *a, **k: bars.extend(rows) or original(rows, *a, **k)
    )
    written = write_bench_report(wh, plain + normed, tmp_path / "bench")
    confusions = sorted(k for k in written if k.startswith("confusion-"))
    assert confusions == ["confusion-svm", "confusion-svm_speaker-norm"], confusions
    assert sorted(b["model"] for b in bars) == ["svm", "svm (speaker-norm)"]
    table = bench_table(wh, plain + normed)
    assert sorted(compare.row_labels(table).values()) == ["svm", "svm (speaker-norm)"]
    # two runs of one recipe (as on two versions of a feature set) read apart by run id
    again = bench_models(wh, [BenchSpec("svm")], progress=False)
    labels = compare.row_labels(bench_table(wh, plain + again))
    assert len(set(labels.values())) == 2 and all(v.startswith("svm #") for v in labels.values())


def test_a_run_with_parameters_set_by_hand_never_reads_as_the_default(wh) -> None:
    """`train svm`, then `train svm --params '{"C": 0.1}'`: the report showed one row, "svm",
    the newer run, marked best, with nothing pointing at the C a user may have picked by its
    score on these folds; `runs` listed both runs alike."""
    import sercap
    from sercap.report import newest_runs
    from sercap.store.runs import list_runs

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    default = sercap.train(wh, "svm").run_id
    chosen = sercap.train(wh, "svm", params={"C": 0.1}).run_id
    shown = newest_runs(wh, "toy", "emodb7")
    assert sorted(shown) == sorted([default, chosen])  # each its own row
    named = dict(zip(*bench_table(wh, shown).select("run_id", "name"), strict=True))
    assert named == {default: "svm", chosen: "svm (C=0.1)"}
    listed = dict(zip(*list_runs(wh).select("run_id", "params"), strict=True))
    assert listed == {default: None, chosen: '{"C": 0.1}'}


def test_report_keeps_the_newest_run_of_each_ensemble_recipe(wh, tmp_path) -> None:
    """Ensembles were grouped by their member run ids, so each `bench --ensemble` rerun added
    a row of the same avg(svm+rf), sorted by UA: a best-of-N in a table that promises the
    newest of each configuration."""
    from sercap.ensemble import ensemble_runs
    from sercap.report import newest_runs

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    ensembles = []
    for seed in (1, 2):
        members = bench_models(
            wh, [BenchSpec("svm"), BenchSpec("rf")], params={"rf": {"n_estimators": 10}},
            seed=seed, progress=False,
        )  # fmt: skip
        ensembles.append(ensemble_runs(wh, members)[0])
    weighted = ensemble_runs(wh, members, weights=[3, 1])[0]  # another recipe: its own row
    shown = newest_runs(wh, "toy", "emodb7")
    assert ensembles[1] in shown and weighted in shown and ensembles[0] not in shown
    assert sorted(shown) == sorted([*members, ensembles[1], weighted])


def test_an_ensemble_of_members_with_other_parameters_is_another_recipe(wh) -> None:
    """A recipe named each member's model, feature set and tuning but not its parameters:
    a `bench --ensemble --quick` replaced the default-settings ensemble's row, under the
    same name avg(svm+rf)."""
    from sercap.ensemble import ensemble_runs
    from sercap.report import newest_runs

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    ensembles = {}
    for trees in (10, 20):
        members = bench_models(
            wh, [BenchSpec("svm"), BenchSpec("rf")], params={"rf": {"n_estimators": trees}},
            progress=False,
        )  # fmt: skip
        ensembles[trees] = ensemble_runs(wh, members, fixed_rule=True)[0]
    shown = newest_runs(wh, "toy", "emodb7")
    assert set(ensembles.values()) <= set(shown)
    table = bench_table(wh, list(ensembles.values()))
    names = dict(zip(table["run_id"], table["name"], strict=True))
    assert names == {
        ensembles[10]: "avg(svm+rf (n_estimators=10))",
        ensembles[20]: "avg(svm+rf (n_estimators=20))",
    }


def test_an_ensemble_chosen_by_hand_is_never_the_best_nor_ranked(wh, tmp_path) -> None:
    """`sercap ensemble A B --weights 3,1` (perhaps picked by reading test scores) sat in the
    results table like a declared ensemble and could be marked best; an equal-weight one
    made by hand replaced bench's declared average of the same members in the report."""
    from sercap.ensemble import ensemble_runs, members_chosen_by
    from sercap.report import newest_runs
    from sercap.report_analysis import MARK_HAND, MARK_UNRECORDED, significance_marks
    from sercap.store.runs import get_run

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    members = bench_models(
        wh, [BenchSpec("svm"), BenchSpec("rf")], params={"rf": {"n_estimators": 10}},
        progress=False,
    )  # fmt: skip
    declared = ensemble_runs(wh, members, fixed_rule=True)[0]
    by_hand = ensemble_runs(wh, members, weights=[3, 1])[0]
    same_by_hand = ensemble_runs(wh, members)[0]  # the declared recipe, made by hand later
    old = ensemble_runs(wh, members)[0]
    wh.execute(  # stored before sercap recorded who chose the members
        'UPDATE runs SET params_json = \'{"members": ["svm", "rf"]}\' WHERE run_id = ?',
        [old],
    )
    assert members_chosen_by(get_run(wh, declared)) == "fixed rule"
    assert members_chosen_by(get_run(wh, by_hand)) == "hand"
    assert members_chosen_by(get_run(wh, old)) == "unrecorded"
    assert members_chosen_by(get_run(wh, members[0])) is None
    shown = newest_runs(wh, "toy", "emodb7")
    assert {declared, by_hand, same_by_hand, old} <= set(shown)  # each its own row
    wh.execute("UPDATE runs SET ua = 0.99 WHERE run_id = ?", [by_hand])  # the top UA
    marks = significance_marks(wh, [*members, by_hand, declared, old])
    assert marks[by_hand] == MARK_HAND and marks[old] == MARK_UNRECORDED
    assert list(marks.values()).count("best") == 1 and marks[declared] != MARK_HAND
    text = write_report(wh, tmp_path / "r", importance=False).read_text()
    assert f"| {MARK_HAND} |" in text


def test_runs_on_two_versions_of_a_feature_set_say_which(wh) -> None:
    """A report mixed a trees run on an older version of `default` with runs on the
    current one, all named plainly."""
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    svm, rf = bench_models(
        wh, [BenchSpec("svm"), BenchSpec("rf")], params={"rf": {"n_estimators": 10}},
        progress=False,
    )  # fmt: skip
    assert sorted(bench_table(wh, [svm, rf])["name"]) == ["rf (n_estimators=10)", "svm"]
    wh.execute("UPDATE runs SET feature_set_hash = 'old0version0' WHERE run_id = ?", [rf])
    table = bench_table(wh, [svm, rf])
    current = wh.scalar("SELECT feature_set_hash FROM runs WHERE run_id = ?", [svm])[:8]
    named = dict(zip(table["run_id"], table["name"], strict=True))
    fs = wh.scalar("SELECT feature_set FROM runs WHERE run_id = ?", [svm])
    assert named == {svm: f"svm [{fs}@{current}]", rf: f"rf (n_estimators=10) [{fs}@old0vers]"}


def test_the_report_links_its_own_confusion_matrices_only(wh, tmp_path) -> None:
    """The list globbed the folder: a picture an earlier report left there was linked too."""
    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    bench_models(wh, [BenchSpec("svm")], progress=False)
    out = tmp_path / "r"
    out.mkdir()
    (out / "confusion-old_model.png").write_bytes(b"left by an earlier report")
    text = write_report(wh, out, importance=False).read_text()
    assert "[confusion-svm.png](confusion-svm.png)" in text
    assert "confusion-old_model" not in text


def test_an_interrupted_report_leaves_the_earlier_report_as_it_was(
    wh, tmp_path, monkeypatch
) -> None:
    """Ctrl-C half-way left the previous report.md beside new pictures it did not describe
    (and, in a new folder, pictures without any report); then report.md was removed first,
    so an interrupted report lost the earlier one. The earlier report stays whole."""
    import sercap.report

    add_features(wh, add_corpus(wh, n_speakers=4, per_class=4))
    bench_models(wh, [BenchSpec("svm")], progress=False)
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("# the previous report\n")
    (out / "comparison.png").write_bytes(b"the previous picture")
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(wh, folder, *args, **kwargs):
        (folder / "comparison.png").write_bytes(b"png")  # a picture made before the Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(sercap.report, "_write_report_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(wh, out, importance=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(KeyboardInterrupt):  # a folder the call made goes with it
        write_report(wh, tmp_path / "new" / "report", importance=False)
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    assert write_report(wh, out, importance=False).read_text().startswith("# sercap report")


def test_importance_refits_a_single_classical_model_before_the_trees_vote(wh) -> None:
    """The report's importance refitted the newest classical run, the trees vote (rf, xgb
    and lgbm per fold: 11 minutes at IEMOCAP's size) over an svm stored before it."""
    import sercap
    from sercap.report_analysis import importance_run

    add_features(wh, add_corpus(wh, n_speakers=3, per_class=3))
    svm = sercap.train(wh, "svm", progress=False).run_id
    trees = sercap.train(wh, "trees", params={"rf__n_estimators": 5}, progress=False).run_id
    assert importance_run(wh, [trees, svm]) == svm
    assert importance_run(wh, [trees]) == trees


def test_the_reports_chart_marks_each_run_as_its_table_does(wh, tmp_path, monkeypatch) -> None:
    """The table said "within noise" of the best; the chart beside it did not."""
    from sercap import plots

    add_features(wh, add_corpus(wh, n_speakers=4, per_class=4))
    specs = [BenchSpec("svm"), BenchSpec("rf")]
    bench_models(wh, specs, params={"rf": {"n_estimators": 10}}, progress=False)
    bars: list = []
    original = plots.comparison_png
    monkeypatch.setattr(
        plots, "comparison_png", lambda rows, *a, **k: bars.extend(rows) or original(rows, *a, **k)
    )
    write_report(wh, tmp_path / "r", importance=False)
    marks = {b["mark"] for b in bars}
    assert "best" in marks and marks <= {"best", "within noise", "below best"}, bars
