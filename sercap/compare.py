"""Benchmark models side by side: one run each, one table, pictures a person can read.

Models that read the same inputs share one read of the warehouse. Every row of the table is
a stored run, so `sercap runs show ID` explains any figure, and `report` can redraw it.

Ensembles here are fixed before any member is scored (every model at default settings; the
seed's resnet34 + dnn + trees): no run is chosen by its outer-fold UA. With ``tuned`` each
model runs twice on the same folds, with default and with nested-tuned parameters, and the
difference gets a paired bootstrap CI.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from sercap.data import Dataset
from sercap.errors import BadParameterError, SercapError, option
from sercap.experiment import DataRequest, data_request, dataset_notes, load_for, run_model
from sercap.format import md_cell, norm_tag, protocol_caption
from sercap.run_labels import QUICK_PARAMS, display_name
from sercap.store import Warehouse
from sercap.store import runs as store_runs

TABULAR_MODELS = ("svm", "rf", "xgb", "lgbm", "trees")


@dataclass(frozen=True)
class BenchSpec:
    """One line of a benchmark: a model, optionally on another feature set."""

    model: str
    feature_set: str | None = None

    @property
    def label(self) -> str:
        return self.model if self.feature_set is None else f"{self.model} [{self.feature_set}]"


@dataclass
class BenchRuns:
    """The stored runs of a benchmark: default-parameter runs and, with --tuned, the nested
    tuned run of each model beside its default one."""

    default: list[tuple[BenchSpec, str]]
    comparisons: list = field(default_factory=list)  # TuningComparison, one per model

    @property
    def run_ids(self) -> list[str]:
        tuned = [c.tuned.run_id for c in self.comparisons]
        return [r for _, r in self.default] + tuned


def bench_runs(
    wh: Warehouse,
    specs: Sequence[BenchSpec],
    *,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    speaker_norm: bool = False,
    tuned: bool = False,
    params: dict[str, dict] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
    say: Callable[[str], None] | None = None,
    resume: bool = False,
) -> BenchRuns:
    """Cross-validate every spec with default parameters (and, with ``tuned``, with its
    nested-tuned ones too, compared by a paired bootstrap CI); return the stored runs.

    With ``resume``, a spec whose run is already stored with the same data, parameters,
    seed, library versions and sercap code (:func:`sercap.evaluate.stored_same_run`; an interrupted
    bench's, or an earlier one's) takes that run instead of fitting again.

    With ``cluster`` (a Dask Client or a spec such as ``"local:4"``) every (model, outer
    fold) fit of the whole bench is one task, all submitted at once; the runs stored are
    those the in-process path stores (same seed, same predictions)."""
    from sercap.evaluate import stored_same_run
    from sercap.experiment import compare_tuned, tuned_params

    if resume and (tuned or cluster is not None):
        raise BadParameterError(
            f"{option('resume')} reuses default runs fitted in this process",
            hint=f"leave out {option('tuned')} and {option('cluster')} to resume, or "
            f"{option('resume')} to fit everything again",
        )

    def request_for(spec: BenchSpec) -> DataRequest:
        return data_request(
            spec.model,
            corpus=corpus,
            label_map=label_map,
            feature_set=spec.feature_set or feature_set,
            image_set=image_set,
            speaker_norm=speaker_norm,
        )

    cache: dict[DataRequest, Dataset] = {}
    if tuned:  # every model's nested tuning must exist before the first run is stored
        for spec in specs:
            request = request_for(spec)
            if request not in cache:
                cache[request] = load_for(wh, request)
            tuned_params(wh, spec.model, cache[request])
    if say is not None:  # what train says of the data, once per dataset, before any fit
        said: set[DataRequest] = set()
        for spec in specs:
            request = request_for(spec)
            if request in said:
                continue
            said.add(request)
            if request not in cache:
                cache[request] = load_for(wh, request)
            for note in dataset_notes(wh, cache[request]):
                say(f"    {spec.label}: {note}")
    if cluster is not None:
        return _bench_on_cluster(
            wh, specs, cluster, corpus=corpus, label_map=label_map, feature_set=feature_set,
            image_set=image_set, speaker_norm=speaker_norm, tuned=tuned, params=params,
            seed=seed, n_jobs=n_jobs, device=device, progress=progress, cache=cache,
        )  # fmt: skip
    out = BenchRuns(default=[])
    bar = tqdm(specs, desc="bench", unit="model", disable=not progress)
    # a line per model where no bar shows (a log file); the notes above show either way
    lines = say if not progress else None
    for spec in bar:
        bar.set_postfix_str(spec.label)
        request = request_for(spec)
        if request not in cache:
            cache[request] = load_for(wh, request)
        kwargs = dict(
            params=(params or {}).get(spec.model), seed=seed, n_jobs=n_jobs, device=device,
            progress=progress,
        )  # fmt: skip
        if resume and (
            found := stored_same_run(
                wh,
                spec.model,
                cache[request],
                kwargs["params"],
                seed,
                n_jobs=n_jobs,
                device=device,
                cluster=cluster is not None,
            )  # fmt: skip
        ):
            out.default.append((spec, found))
            if lines is not None:
                ua = store_runs.get_run(wh, found)["ua"]
                lines(f"    {spec.label}: UA {ua:.3f} (stored run {found}, reused: --resume)")
            continue
        if tuned:
            comparison = compare_tuned(wh, spec.model, cache[request], **kwargs)
            out.comparisons.append(comparison)
            out.default.append((spec, comparison.default.run_id))
            done = comparison.default
        else:
            done = run_model(wh, spec.model, cache[request], **kwargs)
            out.default.append((spec, done.run_id))
        if lines is not None:
            lines(
                f"    {spec.label}: UA {done.result.pooled.ua:.3f} ({done.result.duration_s:.0f} s)"
            )
    return out


def _bench_on_cluster(
    wh: Warehouse,
    specs: Sequence[BenchSpec],
    cluster: Any,
    *,
    corpus: str | None,
    label_map: str | None,
    feature_set: str | None,
    image_set: str | None,
    speaker_norm: bool,
    tuned: bool,
    params: dict[str, dict] | None,
    seed: int,
    n_jobs: int,
    device: str | None,
    progress: bool,
    cache: dict[DataRequest, Dataset],
) -> BenchRuns:
    """:func:`bench_runs` with every fold of every run in one batch of cluster tasks;
    ``cache`` holds the datasets :func:`bench_runs` has loaded already (each is read once)."""
    from sercap.experiment import TuningComparison, plan_run, run_plans, tuning_difference

    items = []
    for spec in specs:
        request = data_request(
            spec.model, corpus=corpus, label_map=label_map,
            feature_set=spec.feature_set or feature_set, image_set=image_set,
            speaker_norm=speaker_norm,
        )  # fmt: skip
        if request not in cache:
            cache[request] = load_for(wh, request)
        data, user = cache[request], (params or {}).get(spec.model)
        tuned_plan = plan_run(wh, spec.model, data, params=user, tuned=True) if tuned else None
        # the order compare_tuned stores them in: default, then tuned (the newer run, the
        # one predict uses)
        items.append((data, plan_run(wh, spec.model, data, params=user)))
        if tuned_plan is not None:
            items.append((data, tuned_plan))
    outcomes = iter(
        run_plans(
            wh,
            items,
            seed=seed,
            n_jobs=n_jobs,
            device=device,
            progress=progress,
            cluster=cluster,
        )  # fmt: skip
    )
    out = BenchRuns(default=[])
    data_of = iter(data for data, _ in items)
    for spec in specs:
        if tuned:
            default_run, data = next(outcomes), next(data_of)
            tuned_run, _ = next(outcomes), next(data_of)
            difference = tuning_difference(data, default_run, tuned_run, seed)
            out.comparisons.append(TuningComparison(spec.model, default_run, tuned_run, difference))
        else:
            default_run, _ = next(outcomes), next(data_of)
        out.default.append((spec, default_run.run_id))
    return out


def bench_models(wh: Warehouse, specs: Sequence[BenchSpec], **kwargs) -> list[str]:
    """Cross-validate every spec under the corpus' protocol; return the stored run ids
    (keyword arguments as :func:`bench_runs`)."""
    return bench_runs(wh, specs, **kwargs).run_ids


def bench_table(wh: Warehouse, run_ids: Sequence[str]) -> pl.DataFrame:
    """The comparison table of some runs, best UA first; ensembles whose members a person
    chose (:func:`sercap.ensemble.members_chosen_by`, perhaps after reading the members'
    scores) come after every other row, so that none sits among the ranked ones."""
    from sercap.ensemble import FIXED_RULE, members_chosen_by

    if not run_ids:
        raise SercapError("nothing to compare")
    frame = store_runs.bench_rows(wh, run_ids)
    versions: dict[str, set] = {}
    for r in frame.iter_rows(named=True):
        if r["feature_set"] is not None:
            versions.setdefault(r["feature_set"], set()).add(r["feature_set_hash"])
    names = []
    for r in frame.iter_rows(named=True):
        name = display_name(r)
        if len(versions.get(r["feature_set"], ())) > 1:  # runs on two versions of one set
            name += f" [{r['feature_set']}@{str(r['feature_set_hash'] or '')[:8]}]"
        names.append(name)
    chosen = [members_chosen_by(r) not in (None, FIXED_RULE) for r in frame.iter_rows(named=True)]
    return (
        frame.with_columns(
            name=pl.Series(names, dtype=pl.String), by_hand_=pl.Series(chosen, dtype=pl.Boolean)
        )
        .sort(["by_hand_", "ua"], descending=[False, True])
        .drop("by_hand_")
    )


def row_labels(table: pl.DataFrame) -> dict[str, str]:
    """Run id → the label its row, picture and chart series carry: the table's name with
    its speaker-normalisation tag, plus the run id's last part where two rows would still
    read the same (two runs of one recipe, e.g. on two versions of a feature set)."""
    labels = {r["run_id"]: r["name"] + norm_tag(r) for r in table.iter_rows(named=True)}
    counts = Counter(labels.values())
    return {
        run_id: label if counts[label] == 1 else f"{label} #{run_id.rsplit('-', 1)[-1]}"
        for run_id, label in labels.items()
    }


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def table_markdown(
    table: pl.DataFrame, corpus: str | None = None, marks: Mapping[str, str] | None = None
) -> str:
    """The comparison as a Markdown table with the protocol stated under it.

    ``marks`` (run id → text, e.g. "within noise") adds a "vs best" column.
    """
    extra = " vs best (95% CI, jointly) |" if marks is not None else ""
    rest = " WA | macro-F1 | UA per fold (mean ± std) | fit time (s) | run |"
    lines = [
        "| model | UA |" + extra + rest,
        "| --- | --- |" + (" --- |" if extra else "") + " --- | --- | --- | --- | --- |",
    ]
    labels = row_labels(table)
    for r in table.iter_rows(named=True):
        name = md_cell(labels[r["run_id"]])
        lines.append(
            f"| {name} | {r['ua']:.4f} |"
            + (f" {marks.get(r['run_id'], '—')} |" if marks is not None else "")
            + f" {r['wa']:.4f} | {r['macro_f1']:.4f} | "
            f"{r['ua_fold_mean']:.3f} ± {r['ua_fold_std']:.3f} | {r['fit_s']:.1f} | "
            f"`{r['run_id']}` |"
        )
    lines += ["", protocol_caption(table, corpus), "UA = mean per-class recall, WA = accuracy."]
    return "\n".join(lines)


def write_bench_report(
    wh: Warehouse,
    run_ids: Sequence[str],
    out_dir: Path,
    corpus: str | None = None,
    *,
    table: pl.DataFrame | None = None,
    again: str = "run it again",
) -> dict[str, Path]:
    """bench.md, bench.csv, comparison.png, recall.png and one confusion PNG per run
    (``table``: their :func:`bench_table`, when the caller has it already). The files are
    written in a folder of their own inside ``out_dir`` and moved into place once all are
    written, so a disk that refuses one (full, read-only) leaves the folder as it was
    (pictures without their bench.md, or an earlier bench's half overwritten, were left),
    and is one line naming the folder; ``again`` is what that line says to do next."""
    from sercap._newfiles import write_all_or_nothing

    return write_all_or_nothing(
        out_dir,
        lambda folder: write_bench_files(wh, run_ids, folder, corpus, table),
        "the tables and pictures (the runs are stored)",
        again,
    )


def write_bench_files(
    wh: Warehouse,
    run_ids: Sequence[str],
    out_dir: Path,
    corpus: str | None,
    table: pl.DataFrame | None,
    marks: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """The files of :func:`write_bench_report`, written straight into ``out_dir`` (an
    existing folder; the report writes them into its own staging folder). ``marks`` (run id
    → "best", "within noise", "below best", as the report's table has them) are written
    beside each UA in the comparison chart."""
    from sercap.plots import comparison_png, confusion_png, recall_png

    table = bench_table(wh, run_ids) if table is None else table
    # every run's classes, the first run's first: a text run of a corpus where one emotion
    # has no transcripts has a class fewer than its audio runs (its matrix was drawn with
    # the audio run's classes, and the bench ended in an IndexError after fitting)
    classes = list(dict.fromkeys(c for cs in table["classes"] for c in cs))
    written: dict[str, Path] = {}
    md = table_markdown(table, corpus)
    pictures = [
        "",
        "![model comparison](comparison.png)",
        "",
        "![per-class recall](recall.png)",
        "",
    ]
    recalls = {}
    labels = row_labels(table)  # one picture per row: two svm rows are two pictures
    for r in table.iter_rows(named=True):
        cm = json.loads(r["confusion_json"])
        label = labels[r["run_id"]]
        slug = _slug(label)
        own = list(r["classes"])
        where = ", ".join(str(v) for v in (corpus, r.get("protocol")) if v)
        png = confusion_png(
            cm,
            own,
            f"{label}: UA {r['ua']:.3f}\nrun {r['run_id']}" + (f", {where}" if where else ""),
            out_dir / f"confusion-{slug}.png",
        )
        written[f"confusion-{slug}"] = png
        pictures.append(f"![confusion {md_cell(label)}]({png.name})")
        recall = {
            c: row[i] / max(sum(row), 1) for i, (c, row) in enumerate(zip(own, cm, strict=True))
        }
        recalls[label] = [recall.get(c, float("nan")) for c in classes]  # (NaN: not its class)
    from sercap.ensemble import FIXED_RULE, members_chosen_by

    written["comparison"] = comparison_png(
        [  # in the table's order: ranked rows by UA, then hand-chosen ensembles
            {
                "model": labels[r["run_id"]],
                "ua": r["ua"],
                "wa": r["wa"],
                "macro_f1": r["macro_f1"],
                "ranked": members_chosen_by(r) in (None, FIXED_RULE),
                "mark": (marks or {}).get(r["run_id"]),
            }  # fmt: skip
            for r in table.iter_rows(named=True)
        ],
        out_dir / "comparison.png",
        n_classes=len(classes),
    )
    written["recall"] = recall_png(recalls, classes, out_dir / "recall.png")
    (out_dir / "bench.md").write_text("# Benchmark\n\n" + md + "\n" + "\n".join(pictures) + "\n")
    written["markdown"] = out_dir / "bench.md"
    # who named an ensemble's members: a hand-made average and bench's fixed-rule one of
    # the same runs read alike otherwise, and only the hand-made one may follow the scores
    chosen_by = [members_chosen_by(r) for r in table.iter_rows(named=True)]  # None: a model
    csv = table.with_columns(members_chosen_by=pl.Series(chosen_by, dtype=pl.String)).select(
        "name", "run_id", "feature_set", "label_map", "protocol", "speaker_norm", "tuned",
        "members_chosen_by", "ua", "wa", "macro_f1", "ua_fold_mean", "ua_fold_std", "fit_s",
    )  # fmt: skip
    csv.write_csv(out_dir / "bench.csv")
    written["csv"] = out_dir / "bench.csv"
    return written


#: The seed project's combination: a CNN on images, the MFCC DNN and the tree ensemble.
SEED_ENSEMBLE = ("resnet34", "dnn", "trees")
#: The seed's multimodal TODO: that pool plus the text model (issue 17).
SEED_POOL = (*SEED_ENSEMBLE, "text-lr")


def plan_bench(
    models: Sequence[str],
    *,
    all_models: bool = False,
    opensmile: bool = False,
    modalities: Sequence[str] | None = None,
) -> list[BenchSpec]:
    """The specs a bench command asked for, checked against the registry; with
    ``modalities`` (:func:`plan_modalities`) the models of each modality asked for."""
    from sercap.models.registry import MODELS, get_model

    if modalities:
        names = plan_modalities(models, modalities)
    else:
        names = list(MODELS) if all_models else list(models) or list(TABULAR_MODELS)
    for name in names:
        get_model(name)
    specs = [BenchSpec(n) for n in dict.fromkeys(names)]
    if opensmile:
        from sercap.features.opensmile import available

        if not available():
            raise SercapError(
                f"{option('opensmile')}True needs the opensmile package: pip install opensmile"
            )
        specs += [BenchSpec("svm", "compare2016"), BenchSpec("lgbm", "egemaps02")]
    return specs


def ensure_feature_sets(
    wh: Warehouse,
    specs: Sequence[BenchSpec],
    corpus: str,
    n_jobs: int,
    progress: bool = True,
) -> None:
    """Extract the openSMILE feature sets a bench needs, if they are not stored yet."""
    from sercap.features.extract import extract

    for name in sorted({s.feature_set for s in specs if s.feature_set}):
        extract(wh, name, corpus=corpus, jobs=n_jobs, progress=progress)


def run_bench(
    wh: Warehouse,
    specs: Sequence[BenchSpec],
    out_dir: Path,
    *,
    corpus: str,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    speaker_norm: bool = False,
    tuned: bool = False,
    ensemble: bool = False,
    quick: bool = False,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
    cluster: Any = None,
    say: Callable[[str], None] | None = None,
    resume: bool = False,
) -> tuple[pl.DataFrame, dict[str, Path], list]:
    """Run a whole benchmark (optionally with fixed ensembles and nested-tuned runs) and
    write its report; return the table, the files written and the tuning comparisons.
    ``cluster`` fits every (model, outer fold) as a task there (:func:`bench_runs`)."""
    from sercap.ensemble import ensemble_runs

    require_transcripts(wh, corpus, [s.model for s in specs])
    ensure_feature_sets(wh, specs, corpus, n_jobs, progress=progress)
    runs = bench_runs(
        wh, specs, corpus=corpus, label_map=label_map, feature_set=feature_set,
        image_set=image_set, speaker_norm=speaker_norm, tuned=tuned,
        params=QUICK_PARAMS if quick else None, seed=seed, n_jobs=n_jobs, device=device,
        progress=progress, cluster=cluster, say=say, resume=resume,
    )  # fmt: skip
    run_ids = runs.run_ids
    if ensemble:
        default_runs = [(s.model, r) for s, r in runs.default if not s.feature_set]
        for members in fixed_ensembles(default_runs):
            run_ids.append(ensemble_runs(wh, members, fixed_rule=True)[0])
    written = write_bench_report(
        wh, run_ids, out_dir, corpus,
        again="run it again with --resume (resume=True in Python), which reuses the stored "
        "runs",
    )  # fmt: skip
    return bench_table(wh, run_ids), written, runs.comparisons


def fixed_ensembles(runs: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Ensembles declared before any score is looked at: every model of the bench at
    default settings, and the seed's resnet34 + dnn + trees when all three were run.

    ``runs`` are (model, run_id) of default-parameter runs. No score is read here: choosing
    members by their outer-fold UA would be selection on the test set.
    """
    by_model: dict[str, str] = {}
    for model, run_id in runs:
        by_model.setdefault(model, run_id)
    groups = []
    if len(by_model) >= 2:
        groups.append(list(by_model.values()))
    if all(m in by_model for m in SEED_ENSEMBLE):
        seed_members = [by_model[m] for m in SEED_ENSEMBLE]
        if not groups or sorted(seed_members) != sorted(groups[0]):
            groups.append(seed_members)
    if all(m in by_model for m in SEED_POOL):
        pool = [by_model[m] for m in SEED_POOL]
        if all(sorted(pool) != sorted(g) for g in groups):
            groups.append(pool)
    return groups


def ensembles_vs_best_member(
    wh: Warehouse, table: pl.DataFrame, *, n_boot: int = 2000, seed: int = 0
) -> pl.DataFrame:
    """Each ensemble run of a bench table against its best member: the UA difference
    (ensemble − member) and its paired bootstrap 95 % CI on the utterances both predicted,
    spanning the intervals over their speakers and over single utterances
    (:func:`sercap.analysis_store.compare_runs`).

    The members are fixed before scoring (:func:`fixed_ensembles`); the member compared
    against is the one with the highest pooled UA, chosen after scoring. That choice favours
    the member, so "beats its best member" is the harder test, the one issue 14 asks for.

    Returns
    -------
    polars.DataFrame
        ``ensemble, ensemble_run, member, member_run, ua_ensemble, ua_member, difference,
        low, high, within_noise``, one row per ensemble; empty when the table has none.

    Examples
    --------
    >>> frame = ensembles_vs_best_member(wh, sercap.bench(wh, ["svm", "lgbm"],
    ...                                                   ensemble=True).table)  # doctest: +SKIP
    """
    from sercap.analysis_store import compare_runs

    rows = []
    for r in table.filter(pl.col("kind") == "ensemble").iter_rows(named=True):
        members = store_runs.ensemble_members(wh, r["run_id"])
        if members.is_empty():
            continue
        best = members.row(0, named=True)
        c = compare_runs(wh, r["run_id"], best["run_id"], n_boot=n_boot, seed=seed)
        # members with the same UA: the first alone was named, as if it stood out
        tied = [m for m in members.rows(named=True)[1:] if m["ua"] == best["ua"]]
        member = best["model"] + (f" (= {', '.join(m['model'] for m in tied)})" if tied else "")
        rows.append(
            {
                "ensemble": r["name"], "ensemble_run": r["run_id"], "member": member,
                "member_run": best["run_id"], "ua_ensemble": c.ua.a, "ua_member": c.ua.b,
                "difference": c.ua.difference, "low": c.ua.low, "high": c.ua.high,
                "within_noise": c.ua.within_noise,
            }
        )  # fmt: skip
    return pl.DataFrame(rows)


# ----------------------------------------------------------------------------- modalities
MODALITIES = ("audio", "text", "fusion")
#: What a modality benches when the command names none of its models.
MODALITY_DEFAULTS: dict[str, tuple[str, ...]] = {
    "audio": ("svm",),
    "text": ("text-lr", "text-svm", "text-cnn"),
    "fusion": ("fusion", "early-fusion"),
}


def modality_of(model: str) -> str:
    """``audio`` (functionals, frames, spectrograms), ``text`` (transcripts) or ``fusion``
    (both) — from the model's input kind."""
    from sercap.models.registry import get_model

    kind = get_model(model).input_kind
    return {"text": "text", "multimodal": "fusion"}.get(kind, "audio")


def plan_modalities(models: Sequence[str], modalities: Sequence[str]) -> list[str]:
    """Model names for ``bench --modalities``: the named models of each modality asked for,
    or that modality's defaults (:data:`MODALITY_DEFAULTS`) when none is named."""
    wanted = [m.strip() for m in modalities if m.strip()]
    unknown = [m for m in wanted if m not in MODALITIES]
    if unknown or not wanted:
        raise BadParameterError(
            f"unknown modality {(unknown or [''])[0]!r}; choose among {', '.join(MODALITIES)}"
        )
    given = {m: modality_of(m) for m in models}
    stray = [m for m, kind in given.items() if kind not in wanted]
    if stray:
        raise SercapError(
            f"{stray[0]} is a {given[stray[0]]} model; add {given[stray[0]]} to "
            f"{option('modalities')}"
        )
    names: list[str] = []
    for modality in MODALITIES:
        if modality in wanted:
            mine = [m for m in models if given[m] == modality]
            names += mine or list(MODALITY_DEFAULTS[modality])
    return list(dict.fromkeys(names))


def require_transcripts(wh: Warehouse, corpus: str, models: Sequence[str]) -> None:
    """Refuse, in one line naming the corpus, text or fusion models on a corpus without
    transcripts."""
    from sercap.models.registry import NEEDS_TEXT, get_model
    from sercap.store.corpora import has_transcripts

    needing = [m for m in models if get_model(m).input_kind in NEEDS_TEXT]
    if needing and not has_transcripts(wh, corpus):
        raise SercapError(
            f"corpus {corpus!r} has no transcripts, so {', '.join(needing)} cannot run; text "
            "and fusion rows need words (IEMOCAP dialog/transcriptions/, or a manifest with a "
            "text column)"
        )


def available_models(wh: Warehouse, corpus: str, models: Sequence[str]) -> list[str]:
    """``models`` less the text and fusion ones when ``corpus`` has no transcripts."""
    from sercap.models.registry import NEEDS_TEXT, get_model
    from sercap.store.corpora import has_transcripts

    if has_transcripts(wh, corpus):
        return list(models)
    return [m for m in models if get_model(m).input_kind not in NEEDS_TEXT]


def with_modality(table: pl.DataFrame) -> pl.DataFrame:
    """The bench table with a ``modality`` column first (``ensemble`` for averaged runs)."""
    kinds = [
        "ensemble" if r["kind"] == "ensemble" else modality_of(r["model"])
        for r in table.iter_rows(named=True)
    ]
    return table.select(pl.Series("modality", kinds, dtype=pl.String), pl.all())


def fusion_vs_single(
    wh: Warehouse, table: pl.DataFrame, *, n_boot: int = 2000, seed: int = 0
) -> pl.DataFrame:
    """Each fused run against the best single-modality run of the same bench: the UA
    difference (fused − single) and its paired bootstrap 95 % CI on the utterances both
    predicted, spanning the intervals over their speakers and over single utterances
    (:func:`sercap.analysis_store.compare_runs`).

    The single-modality baseline is the audio or text row with the highest pooled UA, chosen
    after scoring: a selection that favours the baseline, so the comparison is, if anything,
    harder on fusion than a baseline fixed in advance would be.

    Returns
    -------
    polars.DataFrame
        ``fused, fused_run, single, single_modality, single_run, ua_fused, ua_single,
        difference, low, high, within_noise``; empty when the table lacks either side.
    """
    from sercap.analysis_store import compare_runs

    table = with_modality(table)
    single = table.filter(pl.col("modality").is_in(["audio", "text"])).sort("ua", descending=True)
    fused = table.filter(pl.col("modality") == "fusion")
    if single.is_empty() or fused.is_empty():
        return pl.DataFrame()
    best = single.row(0, named=True)
    rows = []
    for r in fused.iter_rows(named=True):
        c = compare_runs(wh, r["run_id"], best["run_id"], n_boot=n_boot, seed=seed)
        rows.append(
            {
                "fused": r["name"], "fused_run": r["run_id"], "single": best["name"],
                "single_modality": best["modality"], "single_run": best["run_id"],
                "ua_fused": c.ua.a, "ua_single": c.ua.b, "difference": c.ua.difference,
                "low": c.ua.low, "high": c.ua.high, "within_noise": c.ua.within_noise,
                "n_common": c.n_common,
            }
        )  # fmt: skip
    return pl.DataFrame(rows)
