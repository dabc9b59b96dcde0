"""Pictures of results: confusion matrices, per-class recall, model comparison, features.

Pure functions: numbers in, a PNG file out (matplotlib's Agg backend, no screen needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def confusion_png(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str,
                  path: Path) -> Path:  # fmt: skip
    """Row-normalised confusion matrix (recall per true class) with the counts in each cell."""
    plt = _pyplot()
    cm = np.asarray(confusion, dtype=float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.6 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            color = "white" if rates[i, j] > 0.55 else "black"
            ax.text(j, i, f"{rates[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center",
                    fontsize=8, color=color)  # fmt: skip
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    return _save(fig, path)


def recall_png(recalls: dict[str, Sequence[float]], classes: Sequence[str], path: Path) -> Path:
    """Grouped bars: each model's recall on each class (chance level marked)."""
    plt = _pyplot()
    models = list(recalls)
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(classes) * max(1, len(models) / 3)), 4))
    x = np.arange(len(classes))
    for k, model in enumerate(models):
        ax.bar(x + (k - (len(models) - 1) / 2) * width, recalls[model], width, label=model)
    ax.axhline(1 / len(classes), color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(x, classes)
    ax.set(ylabel="recall", ylim=(0, 1), title="per-class recall (out-of-fold)")
    ax.legend(fontsize=8, ncol=min(len(models) + 1, 4), loc="upper right")
    return _save(fig, path)


def comparison_png(rows: Sequence[dict], path: Path, n_classes: int | None = None) -> Path:
    """Horizontal bars of UA, WA and macro-F1 per model, best on top."""
    plt = _pyplot()
    rows = sorted(rows, key=lambda r: r["ua"])
    names = [r["model"] for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 1 + 0.45 * len(rows) * 1.6))
    for k, (key, label) in enumerate([("ua", "UA"), ("wa", "WA"), ("macro_f1", "macro-F1")]):
        ax.barh(y + (k - 1) * 0.27, [r[key] for r in rows], 0.27, label=label)
    for i, r in enumerate(rows):
        ax.text(r["ua"] + 0.01, i - 0.27, f"{r['ua']:.3f}", va="center", fontsize=7)
    if n_classes:
        ax.axvline(1 / n_classes, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_yticks(y, names)
    ax.set(xlim=(0, 1), xlabel="score (pooled out-of-fold)", title="model comparison")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def boxplots_png(values: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """One panel per feature: its distribution in each class."""
    plt = _pyplot()
    features = list(values)
    cols = min(3, len(features))
    rows = int(np.ceil(len(features) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, feature in zip(axes.flat, features, strict=False):
        per_class = values[feature]
        data = [v[np.isfinite(v)] for v in per_class.values()]
        ax.boxplot(data, tick_labels=list(per_class), showfliers=False)
        ax.set_title(feature, fontsize=9)
    for ax in list(axes.flat)[len(features) :]:
        ax.set_axis_off()
    return _save(fig, path)


def counts_png(table: dict[str, dict[str, float]], title: str, ylabel: str, path: Path) -> Path:
    """Stacked bars: for each group (speaker), its amount per class."""
    plt = _pyplot()
    groups = list(table)
    classes = sorted({c for g in table.values() for c in g})
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(groups) + 2), 3.8))
    bottom = np.zeros(len(groups))
    for c in classes:
        heights = np.array([table[g].get(c, 0.0) for g in groups])
        ax.bar(groups, heights, bottom=bottom, label=c)
        bottom += heights
    ax.set(title=title, ylabel=ylabel)
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=8, ncol=min(len(classes), 7))
    return _save(fig, path)
