"""`demo`: everything end to end on a synthetic (or real) corpus."""

from __future__ import annotations

from pathlib import Path

import click

import sercap
from sercap.cli.group import bars, jobs_option, main, say, seed_option


@main.command("demo")
@click.option(
    "--dir",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Where the corpus, warehouse and report go.",
)
@click.option(
    "--corpus-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run on a real corpus instead of the synthetic one (e.g. ../shared/data/emodb).",
)
@click.option(
    "--kind",
    type=click.Choice(["iemocap", "emodb", "ravdess", "cremad", "tess"]),
    help="Kind of --corpus-dir (default: guessed from its layout).",
)
@click.option("--models", help="Comma-separated models (default: all).")
@click.option(
    "--sessions",
    type=click.IntRange(2, 9),
    help="Synthetic sessions (two speakers each).  [default: 5]",
)
@click.option(
    "--per-speaker",
    type=click.IntRange(1),
    help="Synthetic utterances per speaker.  [default: 36]",
)
@click.option("--full", is_flag=True, help="Default training settings instead of quick ones.")
@click.option(
    "--resume",
    is_flag=True,
    help="Take each model's stored run of the same settings instead of fitting it again "
    "(after an interrupted demo; the corpus and features are reused anyway).",
)
@seed_option
@jobs_option
def demo_command(
    out_dir, corpus_dir, kind, models, sessions, per_speaker, full, resume, seed, jobs
) -> None:
    """Run everything end to end: synth → ingest → extract → images → bench of every
    model → ensembles → report, then print the comparison table.

    Takes 3 to 5 minutes on 2 cores with the synthetic corpus (9 on a slower machine),
    with short settings unless --full: a few epochs for the torch models, 200 trees instead
    of 500 for rf and trees.
    The warehouse it builds is DIR/warehouse: explore it afterwards with
    `sercap -w DIR/warehouse sql ...`.
    """
    from sercap.format import format_table, protocol_caption

    result = sercap.run_demo(
        out_dir,
        corpus_dir,
        kind=kind,
        models=models.split(",") if models else None,
        sessions=sessions,
        per_speaker=per_speaker,
        quick=not full,
        jobs=jobs,
        seed=seed,
        say=say,
        progress=bars(),
        resume=resume,
    )
    first = ["modality"] if "modality" in result.table.columns else []
    shown = result.table.select(*first, "name", "ua", "wa", "macro_f1", "fit_s", "run_id")
    click.echo(format_table(shown, limit=None))
    click.echo(protocol_caption(result.table, result.corpus))
    click.echo(f"\nreport:    {result.report}")
    click.echo(f"warehouse: {result.warehouse}  (e.g. sercap -w {result.warehouse} runs)")
