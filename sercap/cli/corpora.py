"""Corpora: `ingest` and `corpus synth`."""

from __future__ import annotations

from pathlib import Path

import click

import sercap
from sercap.cli.group import discard_if_new, main, open_warehouse
from sercap.errors import SercapError


@main.command("ingest")
@click.argument("kind", metavar=f"{{{'|'.join(sercap.INGEST_KINDS)}}}")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--name", help="Corpus name in the warehouse.  [default: KIND]")
@click.option(
    "--rehash",
    is_flag=True,
    help="Hash every audio file again, even those whose size and times are unchanged.",
)
@click.pass_context
def ingest_command(
    ctx: click.Context, kind: str, directory: Path, name: str | None, rehash: bool
) -> None:
    """Read the corpus in DIR (of format KIND) into the warehouse.

    \b
    Layouts:
      iemocap   IEMOCAP_full_release/Session1..5/ (or some SessionN/):
                dialog/EmoEvaluation/<dialog>.txt, sentences/wav/<dialog>/<utt>.wav
      emodb     wav/03a01Fa.wav (speaker, text, emotion letter, version) + README
      ravdess   Actor_NN/03-01-EE-II-SS-RR-AA.wav (speech files only)
      cremad    AudioWAV/1001_DFA_ANG_XX.wav (+ VideoDemographics.csv for genders)
      tess      OAF_angry/OAF_back_angry.wav, YAF_pleasant_surprised/YAF_back_ps.wav
      manifest  a .csv/.parquet with path,label,speaker [utt_id,gender,session,start,end,
                text,valence,activation,dominance]
                (DIR is the file; relative paths are relative to it;
                NA, nan, None, null are missing values, not speakers or labels)

    One transaction: all or nothing. Running it again changes nothing; a bigger copy adds
    only what is new. Problems (missing wavs, malformed lines, a second row naming the same
    audio) are listed and kept in the ingest_problems table. Utterances whose audio changed
    (SHA-256 of the file) lose their stored features; the next extract recomputes them. So
    do stored utterances whose file is now missing or unusable (deleted, truncated); their
    rows and labels stay, and extract records the problem until the file is back.

    \b
    Examples:
      sercap ingest emodb ../shared/data/emodb
      sercap ingest iemocap /data/IEMOCAP_full_release
      sercap ingest manifest clips.csv --name mine
    """
    from sercap.format import format_ingest_summary

    kinds = sercap.INGEST_KINDS
    if kind not in kinds:  # checked here for one line, not click's usage block
        raise SercapError(f"unknown corpus kind {kind!r}; choose one of: {', '.join(kinds)}")
    with discard_if_new(ctx):  # a failed first ingest leaves no empty warehouse behind
        wh = open_warehouse(ctx, missing="create")
        summary = sercap.ingest(wh, kind, directory, name=name, rehash=rehash, progress=None)
    click.echo(format_ingest_summary(summary))


@main.group("corpus")
def corpus_group() -> None:
    """Corpora that sercap makes itself (the synthetic demo corpus)."""


@corpus_group.command("synth")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--sessions", type=click.IntRange(1, 9), default=5, show_default=True)
@click.option(
    "--per-speaker",
    type=click.IntRange(1),
    default=36,
    show_default=True,
    help="Utterances per speaker (two speakers per session).",
)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
def synth_command(directory: Path, sessions: int, per_speaker: int, seed: int) -> None:
    """Write a synthetic demo corpus in the IEMOCAP layout to DIR.

    Emotion is carried by prosody (pitch level and range, loudness, rate, voice quality) and
    speaker identity by pitch and timbre, with overlap so models land well below 100%.
    The same seed writes the same bytes. Then: sercap ingest iemocap DIR
    """
    result = sercap.synth(
        directory, sessions=sessions, per_speaker=per_speaker, seed=seed, progress=None
    )
    counts = ", ".join(f"{label} {n}" for label, n in result.per_label.most_common())
    click.echo(
        f"wrote {len(result.labels)} utterances ({result.seconds / 60:.1f} min) in "
        f"{result.dialogs} dialogs to {directory}: {counts}\n"
        f"next: sercap ingest iemocap {directory}"
    )
