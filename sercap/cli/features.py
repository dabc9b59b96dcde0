"""Features: `extract`, `features list|show`, `images [show]`."""

from __future__ import annotations

from pathlib import Path

import click

import sercap
from sercap.cli.group import extraction_jobs, main, open_warehouse, say, with_options
from sercap.errors import SercapError


def _run_extraction(ctx: click.Context, feature_set: str, kind: str | None, **kwargs) -> None:
    verb = sercap.images if kind == "image" else sercap.extract
    summary = verb(open_warehouse(ctx), feature_set, progress=None, say=say, **kwargs)
    click.echo("\n".join(summary.lines()))
    if summary.failed and not summary.done and not summary.skipped:  # a script's `&&` went on
        raise SercapError(
            f"no utterance of {summary.feature_set!r} could be extracted: each of the "
            f"{summary.failed} failed (the problems above)"
        )


_extract_options = [
    click.option("--corpus", help="Only this corpus.  [default: every ingested corpus]"),
    click.option(
        "--jobs",
        type=click.IntRange(1),
        default=extraction_jobs(),
        show_default=True,
        help="Worker processes (one thread each).",
    ),
    click.option(
        "--chunk-size",
        type=click.IntRange(1),
        help="Utterances per Parquet part (a crash loses at most the chunks in flight).  "
        "[default: at least 4 chunks per worker, at most 128]",
    ),
    click.option("--retry-errors", is_flag=True, help="Try again utterances that failed before."),
    click.option("--limit", type=click.IntRange(1), help="At most N utterances (for a try-out)."),
    click.option(
        "--cluster",
        # ($SERCAP_CLUSTER is read by the API, whose error says where a bad value came from)
        help="Run chunks on Dask: local:N (N worker processes here) or tcp://HOST:8786 (a "
        "running scheduler; workers must see the audio and warehouse at the same paths). "
        "Replaces --jobs.  [env var: SERCAP_CLUSTER]",
    ),
]


@main.command("extract")
@click.option(
    "--feature-set",
    default="default",
    show_default=True,
    help="A feature set from `sercap features list` (default, basic, tracked, voice_acf, pyin, "
    "chroma, compare2016, egemaps02).",  # a test checks that this names every built-in set
)
@with_options(_extract_options)
@click.pass_context
def extract_command(ctx: click.Context, feature_set: str, **kwargs) -> None:
    """Compute per-frame descriptors and their functionals for every utterance not yet stored.

    \b
    Frames land in the `frames` view (one row per 10 ms frame), functionals in the
    `utterance_features` view (one row per utterance), as Parquet parts under
    WAREHOUSE/frames/ and WAREHOUSE/features/, keyed by the feature set's hash.
    Incremental: a second run does nothing; an interrupted run resumes where it stopped.
    Unusable audio (unreadable, empty, silent, too short) is recorded and skipped:
      sercap sql "SELECT utt_id, error FROM extractions WHERE status = 'error'"
    """
    if sercap.get_feature_set(feature_set).kind == "image":
        raise SercapError(f"{feature_set!r} is an image set; use `sercap images --image-set`")
    _run_extraction(ctx, feature_set, None, **kwargs)


@main.group("features")
def features_group() -> None:
    """Feature-set definitions: what each computes, its hash, what is stored."""


@features_group.command("list")
@click.pass_context
def features_list_command(ctx: click.Context) -> None:
    """Every built-in feature and image set, with its hash and how many utterances are stored."""
    from sercap.format import format_table

    wh = open_warehouse(ctx, read_only=True, missing="memory")
    click.echo(format_table(sercap.feature_sets(wh), limit=None))


@features_group.command("show")
@click.argument("name")
@click.pass_context
def features_show_command(ctx: click.Context, name: str) -> None:
    """Parameters, library versions, hash, columns and storage of feature set NAME.

    \b
    Examples:
      sercap features show default
    """
    click.echo(
        sercap.describe_feature_set(open_warehouse(ctx, read_only=True, missing="memory"), name)
    )


@main.group("images", invoke_without_command=True)
@click.option(
    "--image-set",
    default="mel",
    show_default=True,
    help="An image set from `sercap features list`.",
)
@with_options(_extract_options)
@click.pass_context
def images_group(ctx: click.Context, image_set: str, **kwargs) -> None:
    """Store one log-mel spectrogram per utterance as an 8-bit grayscale PNG.

    \b
    One column per 10 ms hop (width proportional to duration, no stretching), lowest mel
    band at the bottom, dB clipped to a fixed range so that a grey level means the same
    loudness in every image. Rows land in the `images` view (utt_id, height, width, png).
    Incremental and resumable like extract.  `sercap images show UTT` draws one.
    """
    if ctx.invoked_subcommand is None:
        _run_extraction(ctx, image_set, "image", **kwargs)


@images_group.command("show")
@click.argument("utt_id", metavar="UTT")
@click.option("--image-set", default="mel", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG to write.  [default: UTT.png]",
)
@click.option("--raw", is_flag=True, help="Write the stored PNG bytes as they are.")
@click.pass_context
def images_show_command(
    ctx: click.Context, utt_id: str, image_set: str, out: Path | None, raw: bool
) -> None:
    """Write utterance UTT's spectrogram as a PNG with time and frequency axes.

    \b
    Examples:
      sercap images show 03a01Fa --out 03a01Fa.png
    """
    from sercap.format import refuse_inside

    wh = open_warehouse(ctx, read_only=True, missing="memory")
    out = out or Path(f"{utt_id}.png")
    refuse_inside(out, wh.root)  # --out PART --raw wrote over a registered part
    if not raw and out.suffix.lower() != ".png":  # matplotlib's own error was a traceback
        raise SercapError(f"{out}: a spectrogram is written as .png; name a .png file")
    image = sercap.image(wh, utt_id, image_set)
    if raw:
        out.write_bytes(image.png)
    else:
        sercap.plot_image(image, out)
    click.echo(f"{out} ({image.height} mel bands x {image.width} frames)")
