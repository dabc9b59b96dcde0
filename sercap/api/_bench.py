"""Benchmarks: models side by side, extraction and SQL speed, scale-out, cross-corpus."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sercap.api._common import (
    PathLike,
    Say,
    _bars,
    _check_counts,
    _check_params,
    _check_seed,
    _cluster,
    _listed,
    _output_dir,
    _quiet,
    _require_writable,
    _takes_warehouse,
)
from sercap.api._corpora import ingest
from sercap.api._features import get_feature_set
from sercap.api._warehouse import connect, resolve_corpus
from sercap.errors import BadParameterError, NotExtractedError, NotFoundError, option

if TYPE_CHECKING:  # only for annotations: the heavy modules load when a verb runs
    import polars as pl
    from distributed import Client

    from sercap.store import Warehouse


@dataclass(eq=False)  # its frames do not compare as values: one bench is itself
class Bench:
    """A model comparison: ``table`` (one row per run), ``corpus``, ``report`` (bench.md),
    ``written`` (every file of the report folder by role) and, with ``tuned=True``,
    ``comparisons`` (default vs nested-tuned UA per model with a paired bootstrap 95 % CI;
    with ``target``, the CCC: :class:`sercap.regression.TunedCCC`)."""

    table: pl.DataFrame
    corpus: str
    report: Path
    written: dict[str, Path] = field(repr=False)
    comparisons: list[Any] = field(default_factory=list, repr=False)
    #: With ``modalities``: each fused run against the best single-modality run (UA
    #: difference, paired bootstrap 95 % CI); see :func:`sercap.compare.fusion_vs_single`.
    fusion: pl.DataFrame | None = field(default=None, repr=False)
    #: With ``ensemble``: each fixed ensemble against its best member (UA difference,
    #: paired bootstrap 95 % CI); see :func:`sercap.compare.ensembles_vs_best_member`.
    ensembles: pl.DataFrame | None = field(default=None, repr=False)


@_takes_warehouse
def bench(
    wh: Warehouse,
    models: Sequence[str] = (),
    *,
    all_models: bool = False,
    corpus: str | None = None,
    labels: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    speaker_norm: bool = False,
    tuned: bool = False,
    ensemble: bool = False,
    opensmile: bool = False,
    quick: bool = False,
    out_dir: PathLike | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    cluster: str | Client | None = None,
    progress: bool | None = None,
    modalities: Sequence[str] | None = None,
    target: str | None = None,
    resume: bool = False,
    say: Say | None = None,
) -> Bench:
    """Cross-validate several models (default: svm rf xgb lgbm trees) and compare them.

    Writes bench.md, bench.csv, a comparison chart, a per-class recall chart and a confusion
    matrix per model into ``out_dir`` (default ``WAREHOUSE/reports/bench-CORPUS``).

    Parameters
    ----------
    wh : Warehouse
        An open warehouse, writable (the runs are stored).
    models : sequence of str
        Model names (empty: the tabular ones); ``all_models`` takes every registered model.
    tuned : bool
        Also run each model with its nested-tuned parameters and compare with the defaults
        (``Bench.comparisons``).
    ensemble : bool
        Add fixed ensembles (declared before scoring): every model at default settings, and
        resnet34+dnn+trees; each is compared with its best member (``Bench.ensembles``: UA
        difference and paired bootstrap 95 % CI).
    opensmile : bool
        Add svm on openSMILE ComParE 2016 and lgbm on eGeMAPS (extracted if needed).
    quick : bool
        Small settings for the torch models, and 200 trees instead of 500 for rf and
        trees (the demo's).
    out_dir : str or Path, optional
        Where the report files go (default ``WAREHOUSE/reports/bench-CORPUS``; a folder
        among the warehouse's own files is refused).
    corpus, labels, feature_set, image_set, speaker_norm, seed, jobs, device, cluster
        As for :func:`train`.
    progress : bool, optional
        Progress bars per model and fold (default: when stderr is a terminal).
    modalities : sequence of str, optional
        Any of ``"audio"``, ``"text"``, ``"fusion"``: bench the named models of each (or its
        defaults: svm; text-lr, text-svm, text-cnn; fusion, early-fusion), add a
        ``modality`` column to ``Bench.table`` and compare each fused run with the best
        single-modality one (``Bench.fusion``). Text and fusion need a corpus with
        transcripts.
    target : str, optional
        Compare the models' regressors of this rating instead (default models: svm rf xgb
        lgbm; ``all_models``: every model with a regressor): the table has ``ccc``,
        ``pearson``, ``mae``, and the report folder defaults to
        ``WAREHOUSE/reports/bench-CORPUS-TARGET``.
    resume : bool
        Take a model's stored run instead of fitting it again when one exists with the same
        data (every utterance with the same label), parameters, seed, library versions and
        sercap code (a hash of its files): the runs an interrupted bench stored, or an
        earlier bench's. Leave it out to measure again. Not with ``tuned``, ``cluster`` or
        ``target``.
    say : callable, optional
        Receives the notes ``train`` gives on each model's data (utterances left out, a
        class found in one fold only…), once per dataset, and, where no progress bar shows
        (a log file: all that says the bench is alive), a line per model as it finishes.

    Returns
    -------
    Bench

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> wh = sercap.connect(":memory:")
    >>> _ = sercap.ingest(wh, "iemocap", corpus.root)
    >>> _ = sercap.extract(wh)
    >>> sorted(sercap.bench(wh, ["svm", "rf"]).table["name"].to_list())  # best UA first
    ['rf', 'svm']
    >>> wh.close()
    """
    _check_counts(jobs=jobs)
    _output_dir(wh, out_dir, "")  # a bad --out is refused before any fit
    _check_seed(seed)
    _require_writable(wh, "bench stores its runs")
    from sercap.compare import available_models, plan_bench, run_bench

    if models is None or not (
        isinstance(models, str)
        or (isinstance(models, Sequence) and all(isinstance(m, str) for m in models))
    ):
        raise BadParameterError(
            f"models={models!r}", hint='give model names, e.g. ["svm", "lgbm"], or all_models=True'
        )
    models = _listed(models)
    # (each dropped one of the two without a word: `bench --all svm` fitted every model)
    if all_models and models:
        raise BadParameterError(
            f"--all / all_models=True takes every model; naming {', '.join(models)} too is "
            "one choice too many",
            hint="name the models, or give --all / all_models=True alone",
        )
    if all_models and modalities is not None:
        raise BadParameterError(
            f"--all / all_models=True and {option('modalities')} each choose the models",
            hint="--modalities audio,text,fused takes each modality's defaults; name models "
            "to choose within it",
        )

    spec = _cluster(cluster)
    corpus = resolve_corpus(wh, corpus)
    if out_dir is not None:  # writable before any fit, not after the runs are stored
        from sercap.format import make_output_dir

        make_output_dir(_output_dir(wh, out_dir, f"bench-{corpus}"))
    if target is not None:  # regressors of a rating (sercap.regression)
        from sercap.format import format_tuning_comparison
        from sercap.regression import bench_target

        table, written, comparisons = bench_target(
            wh, models, target, all_models=all_models, corpus=corpus, label_map=labels,
            feature_set=feature_set, image_set=image_set, speaker_norm=speaker_norm,
            tuned=tuned, refused={"ensemble": ensemble, "opensmile": opensmile, "quick": quick,
                                  "modalities": modalities is not None, "resume": resume},
            out_dir=out_dir, seed=seed, n_jobs=jobs, device=device, progress=_bars(progress),
            cluster=spec, say=say, describe=format_tuning_comparison,
        )  # fmt: skip
        return Bench(table, corpus, written["markdown"], written, comparisons)
    if all_models and not modalities:  # every model the corpus can feed
        from sercap.models.registry import MODELS

        models, all_models = available_models(wh, corpus, list(MODELS)), False
    specs = plan_bench(
        models,
        all_models=all_models,
        opensmile=opensmile,
        modalities=None if modalities is None else _listed(modalities),
    )
    out = _output_dir(wh, out_dir, f"bench-{corpus}")
    table, written, comparisons = run_bench(
        wh,
        specs,
        out,
        corpus=corpus,
        label_map=labels,
        feature_set=feature_set,
        image_set=image_set,
        speaker_norm=speaker_norm,
        tuned=tuned,
        ensemble=ensemble,
        quick=quick,
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(progress),
        cluster=spec,
        resume=resume,
        say=say,
    )
    from sercap._newfiles import append_whole
    from sercap.compare import ensembles_vs_best_member, fusion_vs_single, with_modality
    from sercap.format import (
        format_ensemble_comparison,
        format_fusion_comparison,
        format_tuning_comparison,
    )

    md = written["markdown"]
    if comparisons:  # bench.md and its chart showed the tuned row on top, not this verdict
        append_whole(md, f"\n```\n{format_tuning_comparison(comparisons)}\n```\n")
    ensembles = ensembles_vs_best_member(wh, table, seed=seed) if ensemble else None
    if ensembles is not None and not ensembles.is_empty():  # the CI goes into bench.md too
        append_whole(md, f"\n```\n{format_ensemble_comparison(ensembles)}\n```\n")
    if not modalities:
        return Bench(table, corpus, md, written, comparisons, ensembles=ensembles)
    fusion = fusion_vs_single(wh, table, seed=seed)
    if not fusion.is_empty():
        append_whole(md, f"\n```\n{format_fusion_comparison(fusion)}\n```\n")
    return Bench(
        with_modality(table), corpus, md, written, comparisons, fusion, ensembles=ensembles
    )


@_takes_warehouse
def bench_extract(
    wh: Warehouse,
    *,
    corpus: str | None = None,
    limit: int | None = None,
    jobs: int = 2,
    naive: bool = True,
    say: Say | None = None,
) -> pl.DataFrame:
    """Time feature extraction side by side, in one process, on the same decoded audio.

    sercap's default set (descriptors, SQL functionals, end to end), a naive loop calling
    each librosa feature function, and openSMILE ComParE 2016 / eGeMAPS v02 when installed;
    one thread each, then the default set in a pool of ``jobs`` processes. Nothing is stored.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse holding the corpus (read-only is enough).
    corpus : str, optional
        Corpus name (default: the only one).
    limit : int, optional
        Time the first ``limit`` utterances only.
    jobs : int
        Worker processes for the pooled default set.
    naive : bool
        Include the naive librosa loop (the slowest).
    say : callable, optional
        Receives progress lines (what is decoded, skipped, timed).

    Returns
    -------
    polars.DataFrame
        One row per extractor, with ``x real time`` per core and a ``reference`` column.

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect("warehouse", read_only=True)  # doctest: +SKIP
    >>> sercap.bench_extract(wh, limit=50, naive=False)  # doctest: +SKIP
    """
    _check_counts(limit=limit, jobs=jobs)
    from sercap.features.speed import bench_extraction, load_signals
    from sercap.store.catalog import utterance_audio

    say = say or _quiet
    corpus = resolve_corpus(wh, corpus)
    rows = [row[:4] for row in utterance_audio(wh, corpus, limit)]  # id, path, start, end
    say(f"decoding {len(rows)} utterances of {corpus} at 16 kHz (not timed)…")
    signals, problems = load_signals(rows, 16000)
    for problem in problems[:5]:
        say(f"skipped {problem}")
    if not signals:
        raise NotFoundError(f"no readable audio in corpus {corpus!r}")
    audio_min = sum(y.size for y in signals) / 16000 / 60
    say(f"timing on {len(signals)} utterances, {audio_min:.1f} min of audio")
    return bench_extraction(signals, jobs=jobs, naive=naive, say=lambda s: say(f"  {s}…"))


@_takes_warehouse
def bench_extract_commands(
    wh: Warehouse,
    *,
    corpus: str | None = None,
    limit: int | None = None,
    jobs: int = 2,
    opensmile: bool = True,
    work_dir: PathLike | None = None,
    repeat: int = 3,
    say: Say | None = None,
) -> pl.DataFrame:
    """Time extraction as a user meets it: whole commands, each a new process.

    ``sercap extract --jobs 1`` and ``--jobs N`` on fresh copies of a warehouse where the
    corpus is ingested (imports, decoding, descriptors, SQL functionals, Parquet writes and
    registration all inside the clock), and openSMILE eGeMAPS v02 functionals as a plain
    one-process Python loop over the same files (decoding included; nothing stored), in the
    same run. The corpus is re-ingested from where ``wh`` read it; ``wh`` is not changed.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse where the corpus is ingested (read-only is enough).
    corpus : str, optional
        Corpus name (default: the only one).
    limit : int, optional
        The first ``limit`` utterances by id only (``extract --limit``).
    jobs : int
        Worker processes of the pooled ``extract`` row.
    opensmile : bool
        Time openSMILE beside it (skipped when the package is not installed).
    work_dir : path, optional
        Keep the warehouses here (default: a temporary folder, removed).
    repeat : int
        Rounds, each running every command once (interleaved, so that a machine whose speed
        drifts moves every row alike); each row is the median of its runs.
    say : callable, optional
        Receives a line per step.

    Returns
    -------
    polars.DataFrame
        ``command``, ``seconds`` (median run), ``runs_s`` (every run), ``audio_s``,
        ``x_real_time`` and ``vs_opensmile`` (how many times faster than openSMILE's
        process; null without it).

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect("warehouse", read_only=True)  # doctest: +SKIP
    >>> sercap.bench_extract_commands(wh, jobs=2)  # doctest: +SKIP
    """
    _check_counts(limit=limit, jobs=jobs, repeat=repeat)
    from sercap.features.command_speed import commands_table, time_commands
    from sercap.store.catalog import corpus_source, utterance_audio

    corpus = resolve_corpus(wh, corpus)
    kind, root = corpus_source(wh, corpus)
    if not utterance_audio(wh, corpus, limit):
        raise NotFoundError(f"no utterances in corpus {corpus!r}")
    timings = time_commands(  # (both sides' files: those the timed extract stores)
        kind, root, corpus, jobs=jobs, limit=limit,
        opensmile_sets=("eGeMAPSv02",) if opensmile else (),
        work_dir=work_dir, repeat=repeat, say=say,
    )  # fmt: skip
    return commands_table(timings)


@_takes_warehouse
def bench_sql(
    wh: Warehouse,
    *,
    feature_set: str = "default",
    copies: int = 1,
    threads: int = 2,
    say: Say | None = None,
) -> pl.DataFrame:
    """Time per-utterance aggregates of the stored frames: DuckDB vs polars vs pandas.

    Each engine runs in a fresh process on the same Parquet files (reading included) and
    reports its peak memory.

    Parameters
    ----------
    wh : Warehouse
        An open warehouse with extracted frames (read-only is enough).
    feature_set : str
        Whose stored frames to aggregate.
    copies : int
        Aggregate this many renamed copies of the frames (a bigger table, same data).
    threads : int
        Threads per engine.
    say : callable, optional
        Receives progress lines.

    Returns
    -------
    polars.DataFrame
        One row per engine: its time (``seconds``) and peak memory (``peak_mb``).

    Examples
    --------
    >>> import sercap
    >>> wh = sercap.connect("warehouse", read_only=True)  # doctest: +SKIP
    >>> sercap.bench_sql(wh, copies=4, threads=2)  # doctest: +SKIP
    """
    _check_counts(copies=copies, threads=threads)
    import tempfile

    import polars as pl

    from sercap.features.aggregate_speed import bench_aggregation, replicate_frames

    say = say or _quiet
    fs = get_feature_set(feature_set, kind="lld")
    files = wh.part_paths("frames", fs.hash)
    if not files:
        from sercap.features.featureset import store_step

        raise NotExtractedError(
            f"no frames of feature set {feature_set!r}; run {store_step(feature_set, 'lld')} first"
        )
    with tempfile.TemporaryDirectory(prefix="sercap-bench-sql-") as tmp:
        if copies > 1:
            say(f"writing {copies} copies of the frames…")
            files = replicate_frames(files, copies, Path(tmp))
        shape = pl.scan_parquet([str(f) for f in files]).select(pl.len()).collect().item()
        say(f"{shape:,} frames in {len(files)} Parquet file(s)")
        return bench_aggregation(files, threads=threads, hop_s=fs.hop_s)


@dataclass(frozen=True)
class ScaleResult:
    """What :func:`bench_scale` measured: the side-by-side table, its Markdown, and the
    projected nested tuning of an IEMOCAP-sized corpus (a projection, labelled as such)."""

    table: pl.DataFrame
    projection: pl.DataFrame
    markdown: str


def bench_scale(
    kind: str,
    directory: PathLike,
    *,
    workers: int = 2,
    workloads: Sequence[str] = ("extract", "bench", "tune"),
    work_dir: PathLike | None = None,
    seed: int = 0,
    repeat: int = 1,
    say: Say | None = None,
) -> ScaleResult:
    """Time extract, bench svm + lgbm and a small nested tuning three ways, side by side.

    The corpus is ingested once into a template warehouse; every mode (one process, the
    in-process pool of ``workers`` processes, a LocalCluster of ``workers`` Dask workers)
    gets its own copy and runs each workload as a whole new process, start-up included
    (:mod:`sercap.scale`). The measured per-fit costs of the one-process bench and the
    cluster's overhead per task then project the wall time of an IEMOCAP-sized nested
    tuning of those models on 1, 8 and 64 workers.

    Parameters
    ----------
    kind, directory
        The corpus, as for :func:`ingest`.
    workers : int
        N: the pool's and the LocalCluster's size.
    workloads : sequence of str
        Some of ``extract``, ``bench``, ``tune`` (``bench``/``tune`` need ``extract``).
    work_dir : path-like, optional
        Where the template and the copies go (default: a temporary folder, removed after).
    seed : int
        Seed of the models and studies.
    repeat : int
        Rounds, each timing every mode once on a fresh copy (interleaved, so that a
        machine whose speed drifts moves every mode alike); each cell is the median.
    say : callable, optional
        Receives a line per finished measurement.

    Returns
    -------
    ScaleResult

    Examples
    --------
    >>> import tempfile, sercap
    >>> corpus = sercap.synth(tempfile.mkdtemp(), sessions=1, per_speaker=2)
    >>> result = sercap.bench_scale("iemocap", corpus.root, workloads=["extract"])  # doctest: +SKIP
    >>> result.table.select("mode", "seconds", "speed_up")  # doctest: +SKIP
    """
    _check_counts(workers=workers, repeat=repeat)
    _check_seed(seed)
    import shutil
    import tempfile

    from sercap import scale

    if workers < 1:
        raise BadParameterError(f"workers must be at least 1, not {workers}")
    workloads = _listed(workloads)
    unknown = [w for w in workloads if w not in scale.WORKLOADS]
    if unknown:
        raise BadParameterError(
            f"unknown workload {unknown[0]!r}", hint=f"choose from {', '.join(scale.WORKLOADS)}"
        )
    if "extract" not in workloads:
        raise BadParameterError(
            "bench scale needs the extract workload (the others use its features)"
        )
    if "tune" in workloads or any(m.startswith("local:") for m in scale.modes(workers)):
        _cluster(f"local:{workers}")  # a one-line error when Dask is missing
    say = say or _quiet
    owned = work_dir is None
    base = Path(tempfile.mkdtemp(prefix="sercap-scale-")) if owned else Path(work_dir)
    try:
        template = base / "template"
        if template.exists():
            scale.refuse_foreign(template)  # a folder of the user's is never deleted
            shutil.rmtree(template)
        wh = connect(template)
        try:
            summary = ingest(wh, kind, directory, progress=False)
        finally:
            wh.close()
        say(f"template: {summary.stored} utterances of {kind} ingested; timing each mode…")
        load_before = os.getloadavg()[0]
        measured = scale.measure_scale(template, base, workers=workers, repeat=repeat,
                                       workloads=list(workloads), seed=seed, say=say)  # fmt: skip
        load = (load_before + os.getloadavg()[0]) / 2
        table = scale.scale_table(measured, load=load)
        projection = _scale_projection(base, table, workers, workloads)
        markdown = scale.table_markdown(table)
        return ScaleResult(table=table, projection=projection, markdown=markdown)
    finally:
        if owned:
            shutil.rmtree(base, ignore_errors=True)


def _scale_projection(
    base: Path, table: pl.DataFrame, workers: int, workloads: Sequence[str]
) -> pl.DataFrame:
    """Project IEMOCAP-sized nested tuning from the one-process copy's stored runs."""
    import polars as pl

    from sercap import scale

    if "bench" not in workloads:
        return pl.DataFrame()
    wh = connect(base / scale.mode_folder("1 process"), read_only=True)
    try:
        costs = scale.fit_costs(wh)
    finally:
        wh.close()
    bench = table.filter((pl.col("workload") == "bench") & (pl.col("mode") == f"local:{workers}"))
    overhead = max(0.0, float(bench["overhead_per_task_s"][0])) if bench.height else 0.0
    return scale.project_nested(costs, overhead_per_task_s=overhead)


@_takes_warehouse
def bench_cross(
    wh: Warehouse,
    corpora: Sequence[str] | None = None,
    *,
    model: str = "svm",
    feature_set: str | None = None,
    speaker_norm: bool | str = False,
    params: Mapping[str, Any] | None = None,
    out_dir: PathLike | None = None,
    seed: int = 0,
    jobs: int = 1,
    device: str | None = None,
    progress: bool | None = None,
    say: Say | None = None,
    cluster: Any = None,
) -> pl.DataFrame:
    """Cross-corpus matrix: train on each corpus, test on each other, under shared labels.

    The label map keeps the emotions of the ``shared_emotions`` table (neutral, anger,
    happiness, sadness, fear, disgust, surprise, boredom) that every chosen corpus has under
    its own default label map. Each off-diagonal cell fits ``model`` on the whole row corpus
    and scores it on the whole column corpus; the diagonal is the column corpus' own
    speaker-independent protocol. Every cell is a stored run with its predictions (label map
    ``shared``; ``runs.train_corpus`` and ``runs.cross_matrix`` set; view
    ``cross_corpus_runs``). Writes cross.md, cross.csv and the heatmap cross-ua.png into
    ``out_dir`` (default ``WAREHOUSE/reports/cross-<corpora>``).

    Parameters
    ----------
    wh : Warehouse
        An open, writable warehouse holding at least two corpora, extracted with one
        feature set.
    corpora : sequence of str, optional
        Corpus names (default: every corpus of the warehouse).
    model : str
        A registered audio model (default ``svm``).
    feature_set : str, optional
        Feature (or, for image models, image) set every corpus was extracted with.
    speaker_norm : bool or "both"
        Standardise every speaker of every corpus with that speaker's own statistics
        (over all its extracted utterances, no labels); ``"both"`` computes both matrices.
    params : mapping, optional
        Model parameters (default: the model's defaults).
    out_dir : path, optional
        Report folder.
    seed, jobs, device, progress
        As for :func:`train`.
    say : callable, optional
        Receives a line naming the matrix id and each file written.
    cluster : str or dask.distributed.Client, optional
        Fit every cell's folds on a Dask cluster (``local:N``, ``tcp://HOST:PORT`` or a
        client of yours; default ``$SERCAP_CLUSTER``), all cells in one batch; the same runs
        as in process.

    Returns
    -------
    polars.DataFrame
        The UA matrix: ``speaker_norm``, ``train`` (the train corpus) and one column per
        test corpus; one row per (setting, train corpus).

    Raises
    ------
    SercapError
        An unknown corpus, fewer than two corpora, fewer than two shared classes, or a
        corpus not extracted with the feature set (each one line).

    Examples
    --------
    Two corpora: a synthetic one, and a second synthetic one given as a manifest (its
    utterance ids renamed, since every synthetic corpus uses the same ones).

    >>> import tempfile, polars as pl, sercap
    >>> wh = sercap.connect(":memory:")
    >>> a = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6)
    >>> _ = sercap.ingest(wh, "iemocap", a.root, name="a")
    >>> b = sercap.synth(tempfile.mkdtemp(), sessions=2, per_speaker=6, seed=1)
    >>> wavs = sorted(b.root.rglob("*.wav"))
    >>> pl.DataFrame({
    ...     "path": [str(w) for w in wavs], "utt_id": ["b_" + w.stem for w in wavs],
    ...     "label": [b.labels[w.stem] for w in wavs], "speaker": [w.stem[:6] for w in wavs],
    ... }).write_csv(b.root / "manifest.csv")
    >>> _ = sercap.ingest(wh, "manifest", b.root / "manifest.csv", name="b")
    >>> _ = sercap.extract(wh)
    >>> matrix = sercap.bench_cross(wh, ["a", "b"], model="svm", speaker_norm="both")
    >>> matrix.columns
    ['speaker_norm', 'train', 'a', 'b']
    >>> matrix.select("speaker_norm", "train").rows()
    [(False, 'a'), (False, 'b'), (True, 'a'), (True, 'b')]
    >>> wh.close()
    """
    _check_counts(jobs=jobs)
    _output_dir(wh, out_dir, "")  # a bad --out is refused before any fit
    _check_seed(seed)
    _require_writable(wh, "the cross-corpus runs are stored")
    from sercap.cross import caption, run_cross, write_cross_report

    say = say or _quiet
    if speaker_norm not in (False, True, "both"):
        raise BadParameterError(f"speaker_norm={speaker_norm!r}", hint="use False, True or 'both'")
    settings = (False, True) if speaker_norm == "both" else (bool(speaker_norm),)
    result = run_cross(
        wh,
        None if corpora is None else _listed(corpora),
        model=model,
        feature_set=feature_set,
        speaker_norm=settings,
        params=_check_params(params),
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(progress),
        cluster=_cluster(cluster),
    )
    out = _output_dir(wh, out_dir, "cross-" + "-".join(result.corpora))
    written = write_cross_report(result, out)
    say(caption(result))
    say(f"matrix {result.matrix_id}: {result.cells.height} runs stored")
    for role, path in written.items():
        say(f"{role}: {path}")
    return result.matrix
