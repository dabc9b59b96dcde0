"""Pictures of results: confusion matrices, per-class recall, model comparison, features.

Pure functions: numbers in, a PNG file out (matplotlib's Agg renderer, no screen needed,
and never pyplot: a notebook's own backend is left as it is).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def figure(**kwargs):
    """A matplotlib ``Figure`` drawn off-screen, without pyplot: nothing global changes (a
    notebook's inline backend stays), and nothing is kept once the figure is dropped.
    ``savefig`` to a ``.png`` renders with Agg. Keyword arguments as ``Figure``'s."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_png(fig, path: Path) -> Path:
    """Lay ``fig`` out and write it to ``path`` (its folder created), at 110 dpi."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # long labels: tight_layout does what it can, silently
        warnings.filterwarnings("ignore", message="Tight layout not applied", category=UserWarning)
        fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # (a legend outside the axes)
    return path


#: Inches a tick label's character takes at matplotlib's default 10-point font.
_CHAR_IN = 0.075


def _class_labels(ax, positions, labels: Sequence[str], spacing_in: float) -> None:
    """x tick labels that stay readable: slanted when the longest would not fit in the
    ``spacing_in`` inches between ticks (ten emotion words ran together into one smear)."""
    labels = list(labels)
    if max((len(c) for c in labels), default=0) * _CHAR_IN > spacing_in:
        ax.set_xticks(positions, labels, rotation=45, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(positions, labels)


def confusion_png(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str,
                  path: Path) -> Path:  # fmt: skip
    """Row-normalised confusion matrix (recall per true class) with the counts in each cell.

    ``title`` says which run it is (a bench and a report draw the same matrix of the same
    run, and an earlier bench's picture may lie beside them); ``n`` is added to it."""
    cm = np.asarray(confusion, dtype=float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.6 * len(classes)
    title = f"{title} (n = {int(cm.sum())})"
    fig = figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if rates[i, j] > 0.55 else "black"
            ax.text(j, i, f"{rates[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center",
                    fontsize=8, color=color)  # fmt: skip
    _class_labels(ax, range(len(classes)), classes, 0.6)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    return save_png(fig, path)


def _run_colors(n: int) -> list:
    """One distinct colour per run: matplotlib's 10-colour cycle repeats after ten (runs 1
    and 11 were the same blue), tab20 has twenty; beyond that a continuous map."""
    import matplotlib

    if n <= 10:
        return [f"C{k}" for k in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](k) for k in range(n)]
    cmap = matplotlib.colormaps["turbo"]
    return [cmap(k / max(n - 1, 1)) for k in range(n)]


def recall_png(recalls: dict[str, Sequence[float]], classes: Sequence[str], path: Path) -> Path:
    """Each model's recall on each class: grouped bars for a few models, a models × classes
    heatmap with the recall in each cell beyond six (15 runs made a 38-inch-wide figure of
    bars in repeating colours)."""
    models = list(recalls)
    if len(models) > 6:
        values = np.array([list(recalls[m]) for m in models], dtype=float)
        fig = figure(figsize=(2.5 + 0.9 * len(classes), 1.2 + 0.38 * len(models)))
        ax = fig.subplots()
        image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        for i in range(len(models)):
            for j in range(len(classes)):
                color = "white" if values[i, j] > 0.55 else "black"
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color=color)  # fmt: skip
        _class_labels(ax, range(len(classes)), classes, 0.9)
        ax.set_yticks(range(len(models)), [_shortened(m) for m in models], fontsize=8)
        ax.set(title=f"per-class recall (out-of-fold; chance {1 / len(classes):.2f})")
        fig.colorbar(image, ax=ax, fraction=0.046, label="recall")
        return save_png(fig, path)
    width = 0.8 / max(len(models), 1)
    fig_width = max(6, 1.1 * len(classes) * max(1, len(models) / 3))
    fig = figure(figsize=(fig_width, 4.6))
    ax = fig.subplots()
    x = np.arange(len(classes))
    for k, (model, color) in enumerate(zip(models, _run_colors(len(models)), strict=True)):
        offset = (k - (len(models) - 1) / 2) * width
        ax.bar(x + offset, recalls[model], width, label=_shortened(model), color=color)
    ax.axhline(1 / len(classes), color="grey", linestyle="--", linewidth=1, label="chance")
    _class_labels(ax, x, classes, 0.8 * fig_width / max(len(classes), 1))
    ax.set(ylabel="recall", ylim=(0, 1), title="per-class recall (out-of-fold)")
    # below the axes: inside, the legend sat on the bars that reach 1
    ax.legend(fontsize=8, ncol=min(len(models) + 1, 4), loc="upper center",
              bbox_to_anchor=(0.5, -0.1))  # fmt: skip
    return save_png(fig, path)


def _shortened(name: str, most: int = 48) -> str:
    """``name`` cut to ``most`` characters with an ellipsis (an average of 15 models' name
    took half a picture's width)."""
    return name if len(name) <= most else name[: most - 1] + "…"


def comparison_png(rows: Sequence[dict], path: Path, n_classes: int | None = None) -> Path:
    """Horizontal bars of UA, WA and macro-F1 per model, in the order of ``rows`` from the
    top (a comparison table's: best UA first, with any row whose ``ranked`` is False, an
    ensemble whose members a person chose, after all others, hatched and marked). A row's
    ``mark`` ("within noise" of the best, "below best") is written beside its UA.

    Bars are not sorted here: sorted by UA, a hand-chosen ensemble sat among the ranked runs.
    """
    rows = list(rows)[::-1]  # barh draws from the bottom
    names = [
        _shortened(r["model"]) + ("" if r.get("ranked", True) else " (not ranked)") for r in rows
    ]
    y = np.arange(len(rows))
    fig = figure(figsize=(8, 1 + 0.45 * len(rows) * 1.6))
    from matplotlib.patches import Patch

    ax = fig.subplots()
    handles = []
    for k, (key, label) in enumerate([("ua", "UA"), ("wa", "WA"), ("macro_f1", "macro-F1")]):
        bars = ax.barh(y + (k - 1) * 0.27, [r[key] for r in rows], 0.27)
        for bar, r in zip(bars, rows, strict=True):
            if not r.get("ranked", True):
                bar.set_hatch("//")
        # (a plain swatch: the container's first bar may be a hatched one)
        handles.append(Patch(facecolor=bars.patches[0].get_facecolor(), label=label))
    marked = False
    for i, r in enumerate(rows):
        mark = r.get("mark") if r.get("ranked", True) else None
        marked = marked or bool(mark)
        text = f"{r['ua']:.3f}" + (f"  {mark}" if mark else "")
        ax.text(r["ua"] + 0.01, i - 0.27, text, va="center", fontsize=7)
    if n_classes:
        handles.append(
            ax.axvline(1 / n_classes, color="grey", linestyle="--", linewidth=1, label="chance")
        )
    ax.set_yticks(y, names)
    note = (  # a ranking of bars alone read as a ranking of models
        "\nbeside UA: against the best, paired bootstrap CI of the difference (see the table)"
        if marked
        else ""
    )
    ax.set(xlim=(0, 1), xlabel="score (pooled out-of-fold)" + note, title="model comparison")
    # beside the axes, at the top: inside, it covered the bottom row's bars (a hand-chosen
    # ensemble's); below, its distance grew with the number of rows
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_png(fig, path)


def boxplots_png(values: dict[str, dict[str, np.ndarray]], path: Path, title: str = "") -> Path:
    """One panel per feature: its distribution in each class (boxes at the quartiles,
    whiskers at 1.5 IQR; the points beyond them are not drawn, and the title says so)."""
    features = list(values)
    cols = min(3, len(features))
    rows = int(np.ceil(len(features) / cols))
    fig = figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, feature in zip(axes.flat, features, strict=False):
        per_class = values[feature]
        data = [v[np.isfinite(v)] for v in per_class.values()]
        ax.boxplot(data, showfliers=False)
        _class_labels(ax, range(1, len(per_class) + 1), list(per_class), 3.4 / len(per_class))
        ax.set_title(feature, fontsize=9)
    for ax in list(axes.flat)[len(features) :]:
        ax.set_axis_off()
    fig.suptitle(
        (title + "\n" if title else "")
        + "boxes: quartiles; whiskers: 1.5 IQR; points beyond them not drawn",
        fontsize=9,
    )
    return save_png(fig, path)


def counts_png(table: dict[str, dict[str, float]], title: str, ylabel: str, path: Path) -> Path:
    """Stacked bars: for each group (speaker), its amount per class."""
    groups = list(table)
    classes = sorted({c for g in table.values() for c in g})
    fig = figure(figsize=(max(6, 0.5 * len(groups) + 2), 3.8))
    ax = fig.subplots()
    bottom = np.zeros(len(groups))
    for c in classes:
        heights = np.array([table[g].get(c, 0.0) for g in groups])
        ax.bar(groups, heights, bottom=bottom, label=c)
        bottom += heights
    ax.set(title=title, ylabel=ylabel)
    ax.tick_params(axis="x", rotation=45)
    # beside the axes: inside, seven columns of it covered the tallest bar on EmoDB, and ten
    # longer class names pushed the bars into a sliver at the right edge
    ax.legend(fontsize=8, ncol=1 + len(classes) // 16, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), title="class", title_fontsize=8)  # fmt: skip
    return save_png(fig, path)


#: Fewest predictions a point of the coverage curve may rest on (the demo's 10% was 3).
MIN_KEPT = 20


def coverage_png(curves: dict[str, dict[str, Sequence[float]]], path: Path,
                 n_classes: int | None = None) -> Path:  # fmt: skip
    """UA (solid) and accuracy (dashed) against coverage, one colour per run, the legend
    (one entry per run) beside the axes.

    ``curves`` maps a run's label to the columns of :func:`sercap.analysis.coverage_curve`
    (``coverage``, ``ua``, ``accuracy``, ``n_kept``), e.g.
    ``{"svm": frame.to_dict(as_series=False)}``. A point kept on fewer than
    :data:`MIN_KEPT` predictions is not drawn (a UA of three predictions is noise), and the
    axis label says so.
    """
    columns = 1 + len(curves) // 16
    fig = figure(figsize=(6 + 2.6 * columns, max(4.0, 0.24 * len(curves) / columns + 1)))
    ax = fig.subplots()
    dropped = False
    for (label, c), color in zip(curves.items(), _run_colors(len(curves)), strict=True):
        kept = np.asarray(c.get("n_kept", [MIN_KEPT] * len(c["coverage"]))) >= MIN_KEPT
        dropped = dropped or not kept.all()
        x = np.asarray(c["coverage"])[kept]
        ax.plot(x, np.asarray(c["ua"])[kept], marker="o", markersize=3, color=color,
                label=_shortened(label))  # fmt: skip
        if "accuracy" in c:
            ax.plot(x, np.asarray(c["accuracy"])[kept], linestyle="--", color=color, alpha=0.7)
    if n_classes:
        ax.axhline(1 / n_classes, color="grey", linestyle=":", linewidth=1, label="chance")
    note = f"\n(points kept on fewer than {MIN_KEPT} predictions not drawn)" if dropped else ""
    ax.set(xlim=(1.02, 0.0), ylim=(0, 1.02),
           xlabel="coverage (share of predictions kept)" + note,
           ylabel="score (solid: UA, dashed: accuracy)",
           title="UA as the least confident predictions are set aside")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), ncol=columns)
    return save_png(fig, path)


def importance_png(
    groups: Sequence[str],
    importance: Sequence[float],
    path: Path,
    std: Sequence[float] | None = None,
    title: str = "permutation importance",
    top: int | None = 25,
) -> Path:
    """Horizontal bars of the mean UA drop when each feature family is shuffled, largest on top.

    Takes the columns of :func:`sercap.analysis.permutation_importance` (``group``,
    ``importance``, ``std``); only the ``top`` most important families are drawn, and the
    title says how many of how many.
    """
    order = np.argsort(np.asarray(importance, dtype=float), kind="stable")
    if top is not None and len(order) > top:
        title = f"{title}: the {top} largest of {len(order)}"
        order = order[-top:]
    names = [groups[i] for i in order]
    values = np.asarray(importance, dtype=float)[order]
    errors = None if std is None else np.asarray(std, dtype=float)[order]
    fig = figure(figsize=(7, 1 + 0.35 * len(names)))
    ax = fig.subplots()
    ax.barh(np.arange(len(names)), values, xerr=errors, color="C0", capsize=2)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_yticks(np.arange(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    whiskers = "" if std is None else " (whiskers: ± 1 std over folds)"
    ax.set(xlabel="mean drop in UA when shuffled" + whiskers)
    ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def cross_corpus_png(
    panels: Sequence[tuple[str, np.ndarray]],
    corpora: Sequence[str],
    path: Path,
    chance: float | None = None,
    title: str = "cross-corpus UA",
) -> Path:
    """Heatmaps of a cross-corpus matrix, one panel per setting (e.g. without and with
    speaker normalisation): rows are train corpora, columns test corpora, the UA written in
    each cell (the diagonal, a corpus' own speaker-independent protocol, framed)."""
    n = len(corpora)
    size = 1.6 + 0.9 * n
    fig = figure(figsize=(size * len(panels) + 1.5, size + 0.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)
    from matplotlib.patches import Rectangle

    image = None
    for k, (ax, (name, values)) in enumerate(zip(axes.flat, panels, strict=True)):
        values = np.asarray(values, dtype=float)
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                color = "black" if values[i, j] > 0.6 else "white"
                ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize=9,
                        color=color, fontweight="bold" if i == j else "normal")  # fmt: skip
            ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, color="white", lw=2))
        ax.set_xticks(range(n), corpora, rotation=30, ha="right")
        ax.set_yticks(range(n), corpora)
        ax.set(xlabel="test corpus", ylabel="train corpus" if k == 0 else "", title=name)
    note = f" (chance {chance:.3f})" if chance else ""
    fig.suptitle(title + note, fontsize=10)
    fig.colorbar(image, ax=list(axes.flat), fraction=0.046, label="UA")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
