"""The report's analysis sections: significance marks, fairness, uncertainty, explanations.

Everything but the importance chart is computed from the runs' stored predictions
(:mod:`sercap.analysis_store`); the importance chart refits the chosen run's model once per
outer fold (:func:`sercap.explain.run_importances`) and can be left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from sercap import analysis_store
from sercap.errors import SercapError
from sercap.format import md_cell
from sercap.store import Warehouse
from sercap.store.runs import get_run, largest_fold

#: What the runs table says of each run against the best listed one.
MARK_BEST = "best"
MARK_NOISE = "within noise"
MARK_BELOW = "below best"
MARK_HAND = "not ranked (members chosen by hand)"
MARK_UNRECORDED = "not ranked (who chose its members is not recorded)"
#: The marks of ensembles left out of the ranking (not among the k of the adjustment).
UNRANKED = (MARK_HAND, MARK_UNRECORDED)
#: Coverages of the report's curve.
COVERAGES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def significance_marks(
    wh: Warehouse, run_ids: Sequence[str], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, str]:
    """Run id → ``"best"``, ``"within noise"`` (the paired bootstrap CI of its UA difference
    from the best listed run contains 0; Bonferroni-adjusted over the k − 1 comparisons, 95 %
    jointly) or ``"below best"``.

    Runs whose predictions cannot be paired with the best one's (other classes, other
    utterances) are left out of the result. An ensemble whose members a fixed rule did not
    name (:func:`sercap.ensemble.members_chosen_by`: by hand, perhaps after reading their
    test scores, or not recorded) is neither the best nor ranked against it.
    """
    from sercap.ensemble import FIXED_RULE, members_chosen_by

    chosen = {r: members_chosen_by(get_run(wh, r)) for r in run_ids}
    marks = {
        r: MARK_HAND if who == "hand" else MARK_UNRECORDED
        for r, who in chosen.items()
        if who not in (None, FIXED_RULE)
    }
    return marks | _ranked_marks(wh, [r for r in run_ids if r not in marks], n_boot, seed)


def _ranked_marks(wh: Warehouse, run_ids: Sequence[str], n_boot: int, seed: int) -> dict:
    ids = list(run_ids)
    if len(ids) < 2:
        return {r: MARK_BEST for r in ids}
    table = analysis_store.significance_to_best(
        wh, ids, n_boot=n_boot, seed=seed, skip_unpairable=True
    )
    marks = {}
    for r in table.iter_rows(named=True):
        if r["is_best"]:
            marks[r["run_id"]] = MARK_BEST
        else:
            marks[r["run_id"]] = MARK_NOISE if r["within_noise"] else MARK_BELOW
    return marks


def _label(wh: Warehouse, run_id: str, names: dict[str, str] | None) -> str:
    if names and run_id in names:
        return names[run_id]
    run = get_run(wh, run_id)
    return str(run["model"])


def fairness_markdown(
    wh: Warehouse, run_ids: Sequence[str], names: dict[str, str] | None = None
) -> str:
    """One row per run: UA per gender, worst and best speaker, and the worst-group gaps."""
    rows = []
    genders: list[str] = []
    for run_id in run_ids:
        table = analysis_store.fairness_table(wh, run_id)
        summary = {
            r["group_by"]: r
            for r in analysis_store.fairness_summary(wh, run_id).iter_rows(named=True)
        }
        per_gender = {
            r["group_name"]: r["ua"]
            for r in table.filter(pl.col("group_by") == "gender").iter_rows(named=True)
        }
        genders += [g for g in sorted(per_gender) if g not in genders]
        rows.append((run_id, per_gender, summary))
    head = ["model", *[f"UA {g}" for g in genders], "gender gap", "worst speaker",
            "best speaker", "speaker gap", "run"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for run_id, per_gender, summary in rows:
        s, g = summary.get("speaker"), summary.get("gender")
        cells = [md_cell(_label(wh, run_id, names))]
        cells += [f"{per_gender[x]:.3f}" if x in per_gender else "—" for x in genders]
        known = [x for x in per_gender if x not in ("?", "", None)]  # a corpus without
        cells.append(f"{g['worst_gap']:.3f}" if g and len(known) >= 2 else "—")  # genders: 0
        cells += [
            f"{s['worst_group']} ({s['worst_ua']:.3f})" if s else "—",
            f"{s['best_group']} ({s['best_ua']:.3f})" if s else "—",
            f"{s['worst_gap']:.3f}" if s else "—",
            f"`{run_id}`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def coverage_section(
    wh: Warehouse, run_ids: Sequence[str], out_dir: Path, names: dict[str, str] | None = None
) -> list[str]:
    """``coverage.png`` (UA against coverage for each run) and a small table; Markdown lines."""
    from sercap.plots import coverage_png

    curves, n_classes = {}, None
    rows = []
    for run_id in run_ids:
        curve = analysis_store.coverage_curve(wh, run_id, coverages=COVERAGES)
        label = _label(wh, run_id, names)
        curves[label] = curve.to_dict(as_series=False)
        n_classes = len(get_run(wh, run_id)["classes"] or []) or None
        ua = dict(zip(curve["coverage"], curve["ua"], strict=True))
        rows.append(f"| {md_cell(label)} | {ua[1.0]:.3f} | {ua[0.8]:.3f} | {ua[0.5]:.3f} |")
    coverage_png(curves, out_dir / "coverage.png", n_classes=n_classes)
    return [
        "## Uncertainty: UA against coverage",
        "",
        "Each run's stored out-of-fold predictions ranked by their top probability; the least "
        "confident are set aside and UA is computed on the rest (what `predict --abstain` "
        "trades: fewer answers, more of them right).",
        "",
        "| model | UA at 100 % | at 80 % | at 50 % |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        "![UA against coverage](coverage.png)",
        "",
    ]


#: Test utterances per fold the report's importance permutes at most: every family and
#: repeat predicts them again (EmoDB's folds hold about 50; IEMOCAP's about 1,200).
IMPORTANCE_ROWS = 300


def importance_run(wh: Warehouse, run_ids: Sequence[str]) -> str | None:
    """The newest tabular model run among ``run_ids`` (a single classical model before the
    ``trees`` vote of three, and that before a network: their refits are cheaper; the vote
    refitted rf, xgb and lgbm per fold, 11 minutes at IEMOCAP's size), or None."""
    from sercap.models.registry import get_model
    from sercap.models.tabular import TabularModel

    candidates = []
    for run_id in run_ids:
        run = get_run(wh, run_id)
        if run["kind"] != "model":
            continue
        try:
            cls = get_model(run["model"])
        except SercapError:
            continue
        if cls.input_kind == "tabular":
            # a single classical model, then the trees vote (in the same module), then a net
            single, classical = (
                issubclass(cls, TabularModel),
                cls.__module__ == TabularModel.__module__,
            )
            candidates.append((single, classical, run["started_at"], run["run_id"]))
    return max(candidates)[-1] if candidates else None


def importance_section(
    wh: Warehouse,
    run_id: str,
    out_dir: Path,
    *,
    n_repeats: int = 2,
    max_folds: int | None = None,
    n_jobs: int = 1,
    max_rows: int = IMPORTANCE_ROWS,
    progress: bool = False,
) -> list[str]:
    """``importance-descriptor.png`` and ``importance-functional.png`` for one tabular run
    (refits its model once per outer fold, permutes at most ``max_rows`` test utterances
    of each); Markdown lines."""
    from sercap.explain import run_importances
    from sercap.plots import importance_png

    frames = run_importances(
        wh, run_id, n_repeats=n_repeats, max_folds=max_folds, n_jobs=n_jobs, max_rows=max_rows,
        progress=progress,
    )  # fmt: skip
    run = get_run(wh, run_id)
    largest = largest_fold(wh, run_id)
    sampled = (
        f" At most {max_rows} utterances of each test fold are shuffled (a seeded sample; the "
        f"largest fold has {largest})."
        if largest and largest > max_rows
        else ""
    )
    lines = [
        "## Which feature families the model relies on",
        "",
        f"Permutation importance of `{run['model']}` (run `{run_id}`) on its outer test folds: "
        "each family of functional columns is shuffled across a held-out fold's utterances and "
        f"the drop in UA is averaged over {n_repeats} shuffles and "
        f"{frames['descriptor']['n_folds'].max()} folds (a refit per fold, on speakers the "
        f"test fold does not contain).{sampled}",
        "",
    ]
    titles = {"descriptor": "by descriptor family", "functional": "by functional"}
    for key, frame in frames.items():
        png = f"importance-{key}.png"
        importance_png(
            frame["group"].to_list(), frame["importance"].to_list(), out_dir / png,
            std=frame["std"].to_list(),
            title=f"{run['model']} ({run_id}): permutation importance {titles.get(key, key)}",
        )  # fmt: skip
        pairs = zip(frame["group"][:3], frame["importance"][:3], strict=True)
        top = ", ".join(f"{g} ({v:+.3f})" for g, v in pairs)
        lines += [f"Top {titles.get(key, key)}: {top}.", "", f"![importance {key}]({png})", ""]
    return lines


def analysis_sections(
    wh: Warehouse,
    run_ids: Sequence[str],
    out_dir: Path,
    *,
    names: dict[str, str] | None = None,
    importance: bool = True,
    importance_folds: int | None = None,
    progress: bool = False,
) -> list[str]:
    """Fairness, uncertainty and (optionally) importance sections of the report."""
    if not run_ids:
        return []
    lines = [
        "## Fairness: UA per gender and per speaker",
        "",
        "From each run's stored out-of-fold predictions (no refit); a gap is the best group's "
        "UA minus the worst one's. The `run_groups` and `run_fairness` views hold the same "
        "numbers.",
        "",
        fairness_markdown(wh, run_ids, names),
        "",
    ]
    lines += coverage_section(wh, run_ids, out_dir, names)
    if importance:
        chosen = importance_run(wh, run_ids)
        if chosen is None:
            lines += ["## Feature importance", "", "No tabular model run to explain.", ""]
        else:
            try:
                lines += importance_section(
                    wh, chosen, out_dir, max_folds=importance_folds, progress=progress
                )
            except SercapError as exc:
                lines += ["## Feature importance", "", f"No importance chart: {exc}", ""]
    return lines
