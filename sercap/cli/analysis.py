"""Analysis of stored runs: `compare` (is A better than B, or within noise?)."""

from __future__ import annotations

import json

import click

import sercap
from sercap.cli.group import main, open_warehouse


@main.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--n-boot",
    type=click.IntRange(100),
    default=1000,
    show_default=True,
    help="Bootstrap resamples.",
)
@click.option(
    "--level",
    type=click.FloatRange(0.5, 0.999),
    default=0.95,
    show_default=True,
    help="Coverage of the intervals.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Seed of the resampling.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON object.")
@click.pass_context
def compare_command(ctx: click.Context, run_a, run_b, n_boot, level, seed, as_json) -> None:
    """Is run RUN_A better than RUN_B, or within noise? From stored predictions only.

    A paired bootstrap on the utterances both runs predicted gives a confidence interval
    of the UA and macro-F1 differences (A - B): the span of two intervals, one resampling
    speakers (each draw takes all of a speaker's utterances) and one resampling single
    utterances, both shown. McNemar's test counts the utterances only one of them gets
    right. Nothing is refitted. The last line is the verdict: "within noise" when the UA
    interval contains 0 (either of the two does), else which run is better.

    \b
    Examples:
      sercap compare svm-20261127-101500-3fa2 cnn-20261127-102200-9b1e
      sercap compare RUN_A RUN_B --n-boot 5000 --json
    """
    result = sercap.compare_runs(
        open_warehouse(ctx, read_only=True), run_a, run_b, n_boot=n_boot, level=level, seed=seed
    )
    click.echo(json.dumps(result.as_dict()) if as_json else str(result))
