"""Benchmarks: `bench [MODEL…]` (= `bench models`), `bench extract`, `bench sql`, `bench scale`."""

from __future__ import annotations

from pathlib import Path

import click

import sercap
from sercap.cli.group import (
    OutFolder,
    bars,
    cluster_option,
    corpus_option,
    device_option,
    feature_set_option,
    image_set_option,
    jobs_option,
    labels_option,
    main,
    open_warehouse,
    say,
    seed_option,
    speaker_norm_option,
    table_out_option,
    target_option,
)

#: --speaker-norm off/on/both as bench_cross takes it.
_SPEAKER_NORM: dict[str, bool | str] = {"off": False, "on": True, "both": "both"}


class _DefaultCommandGroup(click.Group):
    """A group that runs ``default_command`` when the first argument names no subcommand."""

    default_command = "models"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The group's help, then the default command's options: `bench --all --ensemble`
        is `bench models …`, and `bench --help` is where a user looks for them."""
        super().format_help(ctx, formatter)
        command = self.commands[self.default_command]
        sub = click.Context(command, info_name=self.default_command, parent=ctx)
        params = [p for p in command.get_params(sub) if p.name != "help"]  # the group's has it
        records = [r for p in params if (r := p.get_help_record(sub))]
        heading = f"Options of `bench {self.default_command}`, the default (`bench [MODEL…]`)"
        with formatter.section(heading):
            formatter.write_dl(records)


@main.group("bench", cls=_DefaultCommandGroup)
def bench_group() -> None:
    """Benchmarks: `bench [MODEL…]` compares models; `bench extract` times extraction."""


@bench_group.command("models")
@click.argument("models", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Every registered model.")
@corpus_option
@labels_option
@feature_set_option
@image_set_option
@speaker_norm_option
@click.option(
    "--tuned",
    is_flag=True,
    help="Also run each model with its nested-tuned parameters; print default vs tuned "
    "with a 95% CI of the difference.",
)
@click.option(
    "--ensemble",
    is_flag=True,
    help="Add fixed ensembles (declared before scoring): every model at default settings, "
    "resnet34+dnn+trees, and resnet34+dnn+trees+text-lr.",
)
@click.option(
    "--opensmile",
    is_flag=True,
    help="Add svm on openSMILE ComParE 2016 and lgbm on eGeMAPS (extracted if needed).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Small settings for the torch models, and 200 trees instead of 500 for rf "
    "and trees (the demo's speed).",
)
@target_option
@click.option(
    "--modalities",
    help="Comma-separated audio,text,fusion: bench MODELS of each (default svm; text-lr, "
    "text-svm, text-cnn; fusion, early-fusion) side by side, and print fusion minus the best "
    "single modality with a 95% CI. Text and fusion need transcripts.",
)
@click.option(
    "--out",
    "out_dir",
    type=OutFolder(),
    help="Report folder.  [default: WAREHOUSE/reports/bench-CORPUS]",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Take a model's stored run instead of fitting it again when one exists with the "
    "same data, parameters, seed, library versions and sercap code (what an interrupted "
    "bench stored). "
    "Not with --tuned, --cluster or --target.",
)
@seed_option
@jobs_option
@device_option
@cluster_option
@click.pass_context
def bench_models_command(
    ctx: click.Context,
    models,
    all_models,
    corpus,
    label_map,
    feature_set,
    image_set,
    speaker_norm,
    tuned,
    ensemble,
    opensmile,
    quick,
    modalities,
    target,
    out_dir,
    resume,
    seed,
    jobs,
    device,
    cluster,
) -> None:
    """Cross-validate MODELS (default: svm rf xgb lgbm trees) and compare them in one table.

    Writes bench.md, bench.csv, a comparison chart, a per-class recall chart and a confusion
    matrix per model into the report folder.

    \b
    Examples:
      sercap bench svm lgbm dnn --ensemble
      sercap bench --all --quick --out reports/quick
      sercap bench svm trees --speaker-norm --opensmile
      sercap bench --all --ensemble --resume      # after a Ctrl-C: fit only what is missing
    """
    from sercap.format import (
        format_ensemble_comparison,
        format_fusion_comparison,
        format_table,
        format_tuning_comparison,
        protocol_caption,
    )

    wh = open_warehouse(ctx)
    before = set(sercap.runs(wh)["run_id"]) if resume else set()
    result = sercap.bench(
        wh,
        models,
        all_models=all_models,
        corpus=corpus,
        labels=label_map,
        feature_set=feature_set,
        image_set=image_set,
        speaker_norm=speaker_norm,
        tuned=tuned,
        ensemble=ensemble,
        opensmile=opensmile,
        quick=quick,
        out_dir=out_dir,
        seed=seed,
        jobs=jobs,
        device=device,
        cluster=cluster,
        progress=bars(),
        modalities=modalities.split(",") if modalities else None,
        target=target,
        resume=resume,
        say=say,  # notes on the data; a line per model where no bar shows (a log file)
    )
    if reused := [r for r in result.table["run_id"] if r in before]:
        click.echo(
            f"note: {len(reused)} stored run(s) reused (--resume): {', '.join(reused)}", err=True
        )
    if target:  # regressors: CCC (primary), Pearson r, MAE
        from sercap.format import regression_caption

        shown = result.table.select(
            "name", "ccc", "pearson", "mae", "ccc_fold_mean", "ccc_fold_std", "fit_s",
            "speaker_norm", "run_id",
        )  # fmt: skip
        click.echo(format_table(shown, limit=None))
        click.echo(regression_caption(result.table, result.corpus))
        if result.comparisons:  # --tuned: default vs tuned CCC with its interval
            click.echo("")
            click.echo(format_tuning_comparison(result.comparisons))
        click.echo(f"\nreport: {result.report}")
        return
    import polars as pl

    from sercap.format import norm_label

    first = ["modality"] if "modality" in result.table.columns else []
    labels = [norm_label(r) for r in result.table.iter_rows(named=True)]
    shown = result.table.with_columns(
        spk_norm=pl.Series(labels, dtype=pl.String), fit_s=pl.col("fit_s").round(1)
    ).select(
        *first,
        "name",
        "ua",
        "wa",
        "macro_f1",
        "ua_fold_mean",
        "ua_fold_std",
        "fit_s",
        "spk_norm",
        "run_id",
    )
    click.echo(format_table(shown, limit=None))
    click.echo(protocol_caption(result.table, result.corpus))
    if result.ensembles is not None:
        click.echo("")
        click.echo(format_ensemble_comparison(result.ensembles))
    if result.fusion is not None:
        click.echo("")
        click.echo(format_fusion_comparison(result.fusion))
    if result.comparisons:
        click.echo("")
        click.echo(format_tuning_comparison(result.comparisons))
    click.echo(f"\nreport: {result.report}")


@bench_group.command("extract")
@click.option("--corpus", help="Corpus name (default: the only one).")
@click.option(
    "--limit",
    type=click.IntRange(1),
    help="Time the first N utterances only.  [default: all of them]",
)
@click.option(
    "--jobs",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Also time the default set in a pool of this many worker processes.",
)
@click.option("--no-naive", is_flag=True, help="Skip the naive librosa loop (the slowest).")
@click.option(
    "--view",
    type=click.Choice(["both", "computation", "command"]),
    default="both",
    show_default=True,
    help="computation: in one warm process on decoded audio; command: whole `sercap extract` "
    "processes beside an openSMILE process, as a user runs them.",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the command view's warehouses here.  [default: a temporary folder]",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Command view: rounds that each run every command once; rows show the median.",
)
@table_out_option(note="; the command view's gets a '-commands' suffix")
@click.pass_context
def bench_extract_command(
    ctx: click.Context,
    corpus: str | None,
    limit: int | None,
    jobs: int,
    no_naive: bool,
    view: str,
    work_dir: Path | None,
    repeat: int,
    out: Path | None,
) -> None:
    """Time feature extraction: the computation, and the whole command as a user runs it.

    \b
    Computation view, in one process on the same decoded audio: sercap's default set
    (descriptors, SQL functionals, end to end), a naive loop calling each librosa feature
    function on the waveform, and openSMILE ComParE 2016 and eGeMAPS v02 when the opensmile
    package is installed. One thread each (x real time per core), then the default set
    with --jobs worker processes. Nothing is stored.

    \b
    Command view: `sercap extract --jobs 1` and `--jobs N`, each a new process on a fresh
    copy of a warehouse where the corpus is ingested (imports, decoding, descriptors, SQL,
    Parquet writes, registration: everything), and a plain one-process openSMILE eGeMAPS
    loop over the same files (those the timed extract stored; decoding included, nothing
    stored), in the same run:
    --repeat rounds, each running every command once, and each row the median of its runs
    (so a machine whose speed drifts moves every row alike). The corpus is re-ingested
    from where it was read; this warehouse is not changed.
    """
    from sercap.format import check_output_file, format_table, write_frame

    wh = open_warehouse(ctx, read_only=True)
    if out:  # refused before minutes of timing, not after
        check_output_file(out, wh.root)
    if view in ("both", "computation"):
        table = sercap.bench_extract(
            wh, corpus=corpus, limit=limit, jobs=jobs, naive=not no_naive, say=say
        )
        click.echo("computation, one warm process, decoded audio:")
        click.echo(format_table(table.drop("reference"), limit=None, float_digits=2))
        reference = table["reference"][0] if table.height else None
        click.echo(
            f"vs_reference: speed relative to {reference}"
            if reference is not None  # (no naive loop and no openSMILE: nothing to compare)
            else "vs_reference: empty, no reference timed (openSMILE is not installed and "
            "--no-naive left out the librosa loop)"
        )
        if out:
            write_frame(table, out, wh.root)
            click.echo(f"written: {out}")
    if view in ("both", "command"):
        commands = sercap.bench_extract_commands(
            wh, corpus=corpus, limit=limit, jobs=jobs, work_dir=work_dir, repeat=repeat, say=say
        )
        click.echo(
            f"whole commands, each a new process (decode to registered rows), "
            f"median of {repeat} interleaved run{'s' if repeat > 1 else ''}:"
        )
        click.echo(format_table(commands, limit=None, float_digits=2))
        click.echo("vs_opensmile: how many times faster than the openSMILE process")
        if out:
            path = out.with_name(f"{out.stem}-commands{out.suffix}")
            write_frame(commands, path, wh.root)
            click.echo(f"written: {path}")


@bench_group.command("scale")
@click.argument("kind")
@click.argument("directory", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="N: the pool's size and the LocalCluster's workers.",
)
@click.option(
    "--workloads",
    default="extract,bench,tune",
    show_default=True,
    help="Comma-separated: extract, bench (svm + lgbm), tune (nested svm, small budget).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the template and per-mode warehouses here.  [default: a temporary folder]",
)
@table_out_option(".csv, .parquet or .md")
@seed_option
@click.option(
    "--repeat",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Rounds, each timing every mode once on a fresh copy (interleaved); each cell is "
    "the median of its runs.",
)
def bench_scale_command(
    kind: str, directory: Path, workers: int, workloads: str, work_dir, out, seed: int, repeat
) -> None:
    """Time extract, bench and tune with 1 process, the pool and a LocalCluster.

    \b
    KIND DIRECTORY name a corpus as for `ingest` (e.g. `emodb ../shared/data/emodb`). It is
    ingested once; each mode gets its own copy and runs each workload as a whole new
    process (start-up included), side by side: time, speed-up over one process and
    overhead per task. Then a PROJECTION (not a measurement) of an IEMOCAP-sized nested
    tuning of svm and lgbm on 1, 8 and 64 workers from the measured per-fit costs.
    Does not touch the warehouse given with -w.

    \b
    Examples:
      sercap bench scale emodb ../shared/data/emodb --workers 2
      sercap bench scale emodb ../shared/data/emodb --workloads extract --repeat 3
    """
    from sercap.format import check_output_file, format_table, write_frame

    chosen = [w.strip() for w in workloads.split(",") if w.strip()]
    if out:  # refused before minutes of timing, not after
        check_output_file(out, None, (".csv", ".parquet", ".md"))
    result = sercap.bench_scale(
        kind, directory, workers=workers, workloads=chosen, work_dir=work_dir, seed=seed,
        repeat=repeat, say=say,
    )  # fmt: skip
    click.echo(format_table(result.table.drop("load"), limit=None, float_digits=2))
    load = result.table["load"][0]
    click.echo(
        "each row is one whole process; overhead/task = (N*T_N - T_1) / tasks"
        + (f"; load average {load:.1f}" if load is not None else "")
    )
    if result.projection.height:
        click.echo("\nPROJECTED (not measured) nested tuning, IEMOCAP 4-class size, 30 trials x "
                   "3 inner folds per study, hours:")  # fmt: skip
        click.echo(format_table(result.projection.drop("projection"), limit=None, float_digits=2))
    if out:
        if out.suffix == ".md":
            out.write_text(result.markdown + "\n", encoding="utf-8")
        else:
            write_frame(result.table, out)
        click.echo(f"written: {out}")


@bench_group.command("sql")
@click.option(
    "--feature-set",
    default="default",
    show_default=True,
    help="Whose stored frames to aggregate.",
)
@click.option(
    "--copies",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Aggregate this many renamed copies of the frames (a bigger table, same data).",
)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@table_out_option()
@click.pass_context
def bench_sql_command(
    ctx: click.Context, feature_set: str, copies: int, threads: int, out: Path | None
) -> None:
    """Time per-utterance aggregates of the stored frames: DuckDB vs polars vs pandas.

    \b
    Each engine runs in a fresh process on the same Parquet files (reading included) and
    reports its peak memory: DuckDB mean/min/max/std with COLUMNS(), DuckDB with sercap's
    whole functionals template, polars group_by, pandas groupby (when installed).

    \b
    Examples:
      sercap bench sql --copies 17 --threads 2
      sercap bench sql --out reports/sql.csv
    """
    from sercap.format import check_output_file, format_table, write_frame

    wh = open_warehouse(ctx, read_only=True)
    if out:  # refused before the engines run, not after
        check_output_file(out, wh.root)
    table = sercap.bench_sql(wh, feature_set=feature_set, copies=copies, threads=threads, say=say)
    click.echo(format_table(table, limit=None, float_digits=2))
    if out:
        write_frame(table, out, wh.root)
        click.echo(f"written: {out}")


@bench_group.command("cross")
@click.option(
    "--corpora",
    help="Comma-separated corpus names, e.g. emodb,synthetic.  [default: every corpus]",
)
@click.option("--model", default="svm", show_default=True, help="Model of every cell.")
@click.option(
    "--feature-set",
    help="Feature set every corpus was extracted with (image set for CNN models).  "
    "[default: default]",
)
@click.option(
    "--speaker-norm",
    type=click.Choice(["off", "on", "both"]),
    default="off",
    flag_value="on",
    is_flag=False,
    show_default=True,
    help="Standardise each speaker with its own statistics (all its utterances, no labels); "
    "`--speaker-norm` alone means on, `--speaker-norm both` prints both matrices.",
)
@click.option(
    "--out",
    "out_dir",
    type=OutFolder(),
    help="Report folder.  [default: WAREHOUSE/reports/cross-CORPORA]",
)
@seed_option
@jobs_option
@device_option
@cluster_option
@click.pass_context
def bench_cross_command(
    ctx: click.Context,
    corpora: str | None,
    model: str,
    feature_set: str | None,
    speaker_norm: str,
    out_dir: Path | None,
    seed: int,
    jobs: int,
    device: str | None,
    cluster: str | None,
) -> None:
    """Cross-corpus UA matrix: train on each corpus, test on each other (shared labels).

    \b
    Labels: the emotions every chosen corpus has among neutral, anger, happiness,
    sadness, fear, disgust, surprise and boredom (each corpus through its default map).
    Off-diagonal: MODEL fitted on the whole row corpus, scored on the whole column corpus.
    Diagonal: the corpus' own speaker-independent protocol. Every cell is a stored run
    (`sercap sql "SELECT * FROM cross_corpus_runs"`). Writes cross.md, cross.csv and a
    heatmap cross-ua.png into the report folder.
    """
    from sercap.format import format_cross_matrix

    names = [c.strip() for c in corpora.split(",") if c.strip()] if corpora else None
    matrix = sercap.bench_cross(
        open_warehouse(ctx),
        names,
        model=model,
        feature_set=feature_set,
        speaker_norm=_SPEAKER_NORM[speaker_norm],
        out_dir=out_dir,
        seed=seed,
        jobs=jobs,
        device=device,
        progress=bars(),
        say=say,
        cluster=cluster,
    )
    click.echo(
        format_cross_matrix(
            matrix,
            "UA: rows train corpus, columns test corpus; "
            "* the corpus' own speaker-independent protocol",
        )
    )
