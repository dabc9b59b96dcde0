"""The warehouse itself: `sql`, `info`, `check`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

import sercap
from sercap.cli.group import main, open_warehouse
from sercap.errors import RefusedError, SercapError


@main.command("sql")
@click.argument("query")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="How to print the result.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result to a file instead (.csv or .parquet, chosen by extension).",
)
@click.option(
    "--limit", type=click.IntRange(1), default=50, show_default=True, help="Rows shown as a table."
)
@click.option(
    "--write",
    is_flag=True,
    help="Allow statements that change the warehouse (DELETE, UPDATE, CREATE…).",
)
@click.pass_context
def sql_command(
    ctx: click.Context, query: str, fmt: str, out: Path | None, limit: int, write: bool
) -> None:
    """Run an SQL QUERY on the warehouse and print the result.

    Every table and view is there: utterances, labels, folds, label maps (iemocap4, emodb7…),
    frames, utterance_features, images, runs, predictions. Without --write only reading
    statements run (SELECT, WITH, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE, reading PRAGMAs; anything
    else is refused before any statement runs) and no file but the warehouse's Parquet parts
    can be read. Several statements separated by ';' run in order; a table is printed for each
    (csv, json and --out give the last one's result). With --write they run as one
    transaction: if one fails, none is applied (a query with its own BEGIN/COMMIT, or a
    CHECKPOINT, runs as written).

    \b
      sercap sql "SELECT label, count(*) FROM emodb7 GROUP BY ALL"
      sercap sql "SELECT * FROM utterance_features LIMIT 3" --out sample.parquet
    """
    from sercap.format import check_output_file, format_table, print_frames, write_frames

    if not query.strip():  # (said as the Python API's argument: "sql_statements: query=''")
        raise SercapError("QUERY is empty", hint='give SQL statements, e.g. sercap sql "SELECT 42"')
    statements = sercap.sql_statements(query, write=write)  # nothing runs before the check
    wh = open_warehouse(ctx, read_only=not write, damaged="warn")
    if out is not None:  # a path among the warehouse's files: refused before anything runs
        check_output_file(out, wh.root)
    if stale := sercap.stale_audio(wh):  # features of audio since changed (one stat a file)
        click.echo(f"warning: {stale}", err=True)
    n = len(statements)
    # a table shows --limit rows: each result is read in batches and the rest only counted;
    # csv, json and --out stream the last statement's result, a frame at a time
    preview = fmt == "table" and out is None
    # (statement, a frame or a stream of frames, rows counted or None)
    results: Iterator[tuple[str, Any, int | None]]
    if preview:
        results = (
            (p.statement, p.head, p.rows)
            for p in sercap.sql_preview(wh, statements, limit, write=write)
        )
    else:
        results = ((t, f, None) for t, f in sercap.sql_stream(wh, statements, write=write))
    for i in range(1, n + 1):
        try:
            text, frame, rows = next(results)
        except RefusedError as exc:
            raise SercapError(
                f"{exc.message}; without --write `sql` reads only the "
                "warehouse's own tables and parts"
            ) from exc
        if preview:
            if n > 1:
                click.echo(f"-- statement {i} of {n}: {' '.join(text.rstrip(';').split())}")
            click.echo(format_table(frame, limit=limit, rows=rows))
            if i < n:
                click.echo()
    if preview:
        return
    last = "" if n <= 1 else f" (the result of the last of {n} statements)"
    try:
        if out is not None:
            written = write_frames(frame, out, wh.root)
            click.echo(f"wrote {written} rows{last} to {out}")
        else:
            if last:
                click.echo(f"showing{last}", err=True)
            print_frames(frame, fmt)
    finally:  # (a result left half read holds the connection)
        if hasattr(frame, "close"):
            frame.close()


@main.command("info")
@click.pass_context
def info_command(ctx: click.Context) -> None:
    """Show what the warehouse holds: corpora, labels, speakers, feature sets, runs."""
    click.echo(sercap.info(open_warehouse(ctx, read_only=True)))


@main.command("check")
@click.option(
    "--repair",
    is_flag=True,
    help="Unregister broken parts and forget the utterances they held, so that the next "
    "`sercap extract` / `sercap images` recomputes exactly those.",
)
@click.pass_context
def check_command(ctx: click.Context, repair: bool) -> None:
    """Verify the warehouse's Parquet parts and catalog, like `git fsck`.

    \b
    Every registered part must exist, have the size and SHA-256 recorded when it was
    registered, read as Parquet and hold the rows recorded; every stored utterance's
    extractions row must point at a registered part that holds it, no utterance may be
    stored twice in a feature set, parts must belong to a set and to utterances the
    catalog still lists, and each stored utterance's audio file must still hold the bytes
    ingest hashed (a file that is gone is a note: the features stay, but the next ingest
    drops them). Prints one line per problem and exits 1 if any.
      sercap check
      sercap check --repair && sercap extract && sercap images
    """
    wh = open_warehouse(ctx, read_only=not repair, damaged="ignore")
    result = sercap.verify(wh)
    for note in result.notes():  # not damage: the views never read them
        click.echo(note, err=True)
    for problem in result.problems:
        click.echo(problem.line())
    if not result.problems:
        click.echo(f"no problems: {result.parts} part(s) verified")
        return
    n = len(result.problems)
    if any(p.what.startswith("catalog ") for p in result.problems):  # nothing to repair from
        click.echo(f"{n} problem(s); restore sercap.duckdb from a copy", err=True)
        sys.exit(1)
    fixable = sum(p.repairable for p in result.problems)
    if not repair or not fixable:
        if not fixable:  # e.g. changed audio: its line says what to run
            click.echo(f"{n} problem(s); --repair does not mend them: see each line", err=True)
        else:
            of = "them" if fixable == n else f"{fixable} of them (see the others' lines)"
            click.echo(f"{n} problem(s); `sercap check --repair` fixes {of}", err=True)
        sys.exit(1)
    click.echo("\n".join(sercap.repair(wh, result).lines()))
    left = sercap.verify(wh).problems
    for problem in left:
        click.echo(f"still: {problem.line()}")
    if left:
        sys.exit(1)
