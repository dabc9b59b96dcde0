"""sercap.plots: PNG files from numbers, drawn without touching the caller's matplotlib."""

import matplotlib
import numpy as np
import pytest

from sercap import plots


@pytest.fixture
def inline_backend():
    """A notebook's backend in place (a non-GUI one pyplot can switch from and back)."""
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    plt.switch_backend("svg")
    yield "svg"
    plt.switch_backend(before)


def test_every_plot_writes_a_png_and_leaves_the_backend_alone(tmp_path, inline_backend) -> None:
    from sercap.features.images import StoredImage, encode_png, plot_image
    from sercap.tuning import StudySummary, plot_study

    classes = ["ang", "neu", "sad"]
    written = [
        plots.confusion_png([[5, 1, 0], [1, 4, 1], [0, 2, 6]], classes, "svm", tmp_path / "c.png"),
        plots.recall_png(
            {"svm": [0.8, 0.6, 0.7], "dnn": [0.7, 0.7, 0.6]}, classes, tmp_path / "r.png"
        ),  # fmt: skip
        plots.comparison_png(
            [{"model": "svm", "ua": 0.7, "wa": 0.72, "macro_f1": 0.69}],
            tmp_path / "m.png",
            n_classes=3,
        ),  # fmt: skip
        plots.cross_corpus_png(
            [("plain", np.eye(2) * 0.5 + 0.2)], ["a", "b"], tmp_path / "x.png"
        ),  # fmt: skip
    ]
    summary = StudySummary(name="svm", n_trials=3, n_complete=2, n_pruned=1, best_number=2,
                           best_value=0.7, best_params={"C": 1.0}, importances={},
                           history=[(0, "complete", 0.6), (1, "pruned", None),
                                    (2, "complete", 0.7)])  # fmt: skip
    written.append(plot_study(summary, tmp_path / "s.png"))
    rng = np.random.default_rng(0)
    written += [
        plots.boxplots_png(
            {
                "f0_mean": {c: rng.normal(size=20) for c in classes},
                "rms_mean": {c: rng.normal(size=20) for c in classes},
            },
            tmp_path / "b.png",
        ),  # fmt: skip
        plots.counts_png(
            {"s1": {"ang": 3, "neu": 2}, "s2": {"sad": 4}},
            "labels",
            "utterances",
            tmp_path / "n.png",
        ),  # fmt: skip
        plots.coverage_png(
            {"svm": {"coverage": [1.0, 0.5], "ua": [0.6, 0.8], "accuracy": [0.6, 0.85]}},
            tmp_path / "v.png",
            n_classes=3,
        ),  # fmt: skip
        plots.importance_png(["mfcc", "f0"], [0.05, 0.02], tmp_path / "i.png", std=[0.01, 0.01]),
    ]
    pixels = (rng.random((64, 40)) * 255).astype(np.uint8)
    stored = StoredImage(
        "u1",
        encode_png(pixels),
        64,
        40,
        {"hop_ms": 10, "db_min": -80, "db_max": 0, "fmin": 0, "fmax": 8000},
    )
    plot_image(stored, tmp_path / "p.png")  # fmt: skip
    written.append(tmp_path / "p.png")
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert len({p.name for p in written}) == 10
    # sercap used to call matplotlib.use("Agg"): a notebook's plots stopped showing after it
    assert matplotlib.get_backend() == inline_backend


def test_the_comparison_keeps_the_tables_order_and_marks_a_hand_chosen_ensemble(
    tmp_path, monkeypatch
) -> None:
    """Bars were sorted by UA in the picture, so a hand-chosen ensemble with the highest UA
    sat on top of the ranked runs that the table lists first."""
    figures = []
    monkeypatch.setattr(plots, "save_png", lambda fig, path: figures.append(fig) or path)
    rows = [
        {"model": "svm", "ua": 0.70, "wa": 0.71, "macro_f1": 0.69},
        {"model": "rf", "ua": 0.60, "wa": 0.61, "macro_f1": 0.59},
        {"model": "avg(svm+rf)", "ua": 0.75, "wa": 0.76, "macro_f1": 0.74, "ranked": False},
        {"model": "avg(" + "+".join(["resnet34"] * 10) + ")", "ua": 0.5, "wa": 0.5,
         "macro_f1": 0.5},
    ]  # fmt: skip
    plots.comparison_png(rows, tmp_path / "m.png", n_classes=3)
    [ax] = figures[0].axes
    top_down = [t.get_text() for t in ax.get_yticklabels()][::-1]
    assert top_down[:3] == ["svm", "rf", "avg(svm+rf) (not ranked)"]
    assert len(top_down[3]) == 48 and top_down[3].endswith("…")  # a long name, cut
    hatched = [p.get_hatch() for p in ax.patches]
    assert hatched.count("//") == 3  # the ensemble's UA, WA and F1 bars
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["UA", "WA", "macro-F1", "chance"]
    assert not any(h.get_hatch() for h in legend.legend_handles if hasattr(h, "get_hatch"))
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1  # beside the bars


def test_a_study_plot_names_its_metric_and_draws_the_best_as_a_step(tmp_path, monkeypatch):
    """The picture of a `--target` study said "UA" on its axis and legend over CCC values,
    and drew "best so far" as a slope between trials."""
    from sercap.tuning import StudySummary, plot_study

    drawn = []
    real = plots.save_png
    monkeypatch.setattr(plots, "save_png", lambda fig, path: drawn.append(fig) or real(fig, path))
    summary = StudySummary(name="svm", n_trials=2, n_complete=2, n_pruned=0, best_number=1,
                           best_value=0.3, best_params={}, importances={},
                           history=[(0, "complete", 0.1), (1, "complete", 0.3)],
                           metric="CCC")  # fmt: skip
    plot_study(summary, tmp_path / "s.png")
    ax = drawn[0].axes[0]
    assert ax.get_ylabel() == "CCC"
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "trial CCC (validation)"
    best = next(line for line in ax.get_lines() if line.get_label() == "best so far")
    assert best.get_drawstyle() == "steps-post"


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plots save, drawn, for looking at their layout."""
    figures = []
    save = plots.save_png

    def keep(fig, path):
        out = save(fig, path)
        fig.canvas.draw()
        figures.append(fig)
        return out

    monkeypatch.setattr(plots, "save_png", keep)
    return figures


WORDS = ["amusement", "anxiety", "contempt", "despair", "elation", "embarrassment",
         "interest", "irritation", "pride", "relief"]  # fmt: skip


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_the_corpus_chart_keeps_its_legend_off_the_bars(tmp_path, drawn) -> None:
    """Inside the axes, the legend covered EmoDB's tallest bar, and ten emotion words made
    it wider than the axes."""
    table = {f"spk{k:02d}": {c: 5.0 + k + i for i, c in enumerate(WORDS)} for k in range(10)}
    plots.counts_png(table, "utterances per speaker and class", "utterances", tmp_path / "c.png")
    (fig,) = drawn
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert not _overlap(legend, ax.get_window_extent())


def test_ten_emotion_words_stay_readable_under_a_confusion_matrix(tmp_path, drawn) -> None:
    """Ten ordinary emotion words ran together into one smear along the x axis."""
    cm = np.eye(10, dtype=int) * 5 + 1
    plots.confusion_png(cm.tolist(), WORDS, "svm: UA 0.5", tmp_path / "c.png")
    plots.boxplots_png({"f0_mean": {c: np.arange(5.0) for c in WORDS}}, tmp_path / "b.png")
    plots.recall_png({"svm": [0.5] * 10}, WORDS, tmp_path / "r.png")
    for fig in drawn:
        ax = fig.axes[0]
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        assert len(labels) == 10
        boxes = [t.get_window_extent() for t in labels]
        if labels[0].get_rotation() == 0:
            assert not any(_overlap(a, b) for a, b in zip(boxes, boxes[1:], strict=False))
        else:  # slanted: neighbours apart across the text's own direction
            gap = min(b.x1 - a.x1 for a, b in zip(boxes, boxes[1:], strict=False))
            height = labels[0].get_fontsize() * fig.dpi / 72
            assert gap * np.sin(np.radians(labels[0].get_rotation())) > height
    assert "(n = 150)" in drawn[0].axes[0].get_title()


def test_three_letter_codes_stay_level(tmp_path, drawn) -> None:
    plots.confusion_png([[3, 1], [0, 4]], ["ang", "neu"], "svm", tmp_path / "c.png")
    assert all(t.get_rotation() == 0 for t in drawn[0].axes[0].get_xticklabels())


def test_the_coverage_chart_leaves_out_points_of_few_predictions(tmp_path, drawn) -> None:
    """The demo's chart drew a UA of three predictions at 10% coverage."""
    curve = {"coverage": [1.0, 0.5, 0.1], "ua": [0.5, 0.6, 0.9], "accuracy": [0.5, 0.6, 0.9],
             "n_kept": [32, 16, 4]}  # fmt: skip
    long = "avg(" + "+".join(["resnet34"] * 12) + ") (quick)"
    plots.coverage_png({"rf": curve, long: curve}, tmp_path / "c.png", n_classes=4)
    ax = drawn[0].axes[0]
    # the demo's 120-character ensemble name in the legend squeezed the axes to a sliver
    assert max(len(t.get_text()) for t in ax.get_legend().get_texts()) <= 48
    solid = ax.get_lines()[0]
    assert list(solid.get_xdata()) == [1.0]
    assert "fewer than 20 predictions" in ax.get_xlabel()


def test_an_importance_chart_says_how_many_families_it_leaves_out(tmp_path, drawn) -> None:
    groups = [f"family{k}" for k in range(30)]
    plots.importance_png(groups, list(np.linspace(0, 0.1, 30)), tmp_path / "i.png",
                         std=[0.01] * 30, top=25)  # fmt: skip
    ax = drawn[0].axes[0]
    assert "the 25 largest of 30" in ax.get_title() and "std over folds" in ax.get_xlabel()


def test_the_comparison_says_which_runs_are_within_noise_of_the_best(tmp_path, drawn) -> None:
    """The report's table said rf was within noise of the best, while its chart showed
    bare sorted bars, rf plainly shorter."""
    rows = [
        {"model": "dnn", "ua": 0.777, "wa": 0.78, "macro_f1": 0.77, "mark": "best"},
        {"model": "rf", "ua": 0.732, "wa": 0.74, "macro_f1": 0.73, "mark": "within noise"},
        {"model": "avg(dnn+rf)", "ua": 0.79, "wa": 0.79, "macro_f1": 0.79, "ranked": False,
         "mark": "not ranked (members chosen by hand)"},
    ]  # fmt: skip
    plots.comparison_png(rows, tmp_path / "m.png", n_classes=7)
    ax = drawn[0].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "0.777  best" in texts and "0.732  within noise" in texts and "0.790" in texts
    assert "paired bootstrap" in ax.get_xlabel()
