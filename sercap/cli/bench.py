"""Benchmarks: `bench [MODEL…]` (= `bench models`), `bench extract`, `bench sql`."""

from __future__ import annotations

from pathlib import Path

import click

import sercap
from sercap.cli.group import (
    bars,
    cluster_option,
    corpus_option,
    device_option,
    exists,
    feature_set_option,
    image_set_option,
    jobs_option,
    labels_option,
    main,
    open_warehouse,
    say,
    seed_option,
    speaker_norm_option,
    target_option,
)


class _DefaultCommandGroup(click.Group):
    """A group that runs ``default_command`` when the first argument names no subcommand."""

    default_command = "models"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


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
    "and resnet34+dnn+trees.",
)
@click.option(
    "--opensmile",
    is_flag=True,
    help="Add svm on openSMILE ComParE 2016 and lgbm on eGeMAPS (extracted if needed).",
)
@click.option("--quick", is_flag=True, help="Small settings for the torch models (demo speed).")
@target_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder.  [default: WAREHOUSE/reports/bench-CORPUS]",
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
    target,
    out_dir,
    seed,
    jobs,
    device,
    cluster,
) -> None:
    """Cross-validate MODELS (default: svm rf xgb lgbm trees) and compare them in one table.

    Writes bench.md, bench.csv, a comparison chart, a per-class recall chart and a confusion
    matrix per model into the report folder.
    """
    from sercap.format import format_table, format_tuning_comparison, protocol_caption

    result = sercap.bench(
        open_warehouse(ctx),
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
        target=target,
    )
    if target:  # regressors: CCC (primary), Pearson r, MAE
        from sercap.format import regression_caption

        shown = result.table.select(
            "name", "ccc", "pearson", "mae", "ccc_fold_mean", "ccc_fold_std", "fit_s",
            "speaker_norm", "run_id",
        )  # fmt: skip
        click.echo(format_table(shown, limit=None))
        click.echo(regression_caption(result.table, result.corpus))
        click.echo(f"\nreport: {result.report}")
        return
    shown = result.table.select(
        "name",
        "ua",
        "wa",
        "macro_f1",
        "ua_fold_mean",
        "ua_fold_std",
        "fit_s",
        "speaker_norm",
        "run_id",
    )
    click.echo(format_table(shown, limit=None))
    click.echo(protocol_caption(result.table, result.corpus))
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
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the table (.csv or .parquet).",
)
@click.pass_context
def bench_extract_command(
    ctx: click.Context, corpus: str | None, limit: int | None, jobs: int, no_naive: bool, out
) -> None:
    """Time feature extraction side by side, in one process, on the same decoded audio.

    \b
    Compared: sercap's default set (descriptors, SQL functionals, end to end), a naive
    loop calling each librosa feature function on the waveform, and openSMILE ComParE 2016
    and eGeMAPS v02 when the opensmile package is installed. One thread each (x real time
    per core), then the default set with --jobs worker processes. Nothing is stored.
    """
    from sercap.format import format_table, write_frame

    wh = open_warehouse(ctx, read_only=exists(ctx))
    table = sercap.bench_extract(
        wh, corpus=corpus, limit=limit, jobs=jobs, naive=not no_naive, say=say
    )
    click.echo(format_table(table.drop("reference"), limit=None, float_digits=2))
    click.echo(f"vs_reference: speed relative to {table['reference'][0]}")
    if out:
        write_frame(table, out)
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
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the table (.csv or .parquet).",
)
@click.pass_context
def bench_sql_command(
    ctx: click.Context, feature_set: str, copies: int, threads: int, out: Path | None
) -> None:
    """Time per-utterance aggregates of the stored frames: DuckDB vs polars vs pandas.

    \b
    Each engine runs in a fresh process on the same Parquet files (reading included) and
    reports its peak memory: DuckDB mean/min/max/std with COLUMNS(), DuckDB with sercap's
    whole functionals template, polars group_by, pandas groupby (when installed).
    """
    from sercap.format import format_table, write_frame

    wh = open_warehouse(ctx, read_only=exists(ctx))
    table = sercap.bench_sql(wh, feature_set=feature_set, copies=copies, threads=threads, say=say)
    click.echo(format_table(table, limit=None, float_digits=2))
    if out:
        write_frame(table, out)
        click.echo(f"written: {out}")
