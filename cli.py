"""sercap command line: every command parses its options, calls one function, prints.

Run ``python cli.py --help`` (or the installed ``sercap --help``). The warehouse is chosen
with ``--warehouse PATH`` or ``$SERCAP_WAREHOUSE`` (default ``./warehouse``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Keep numba's compiled librosa kernels between runs even where site-packages is read-only.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "sercap" / "numba"))

import click  # noqa: E402

from sercap.errors import SercapError  # noqa: E402


class _Group(click.Group):
    """Turns user errors into one line on stderr (no traceback) and Ctrl-C into a note."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        import duckdb

        try:
            return super().invoke(ctx)
        except SercapError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except duckdb.Error as exc:
            click.echo(f"error: {str(exc).splitlines()[0]}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo(
                "\ninterrupted: everything already stored is kept; rerun to resume", err=True
            )
            sys.exit(130)


def _open(ctx: click.Context, *, read_only: bool = False):
    """Open the warehouse chosen on the command line (closed when the command ends)."""
    from sercap.warehouse import connect

    wh = connect(ctx.obj["warehouse"], read_only=read_only)
    ctx.call_on_close(wh.close)
    return wh


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--warehouse",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SERCAP_WAREHOUSE",
    default=Path("warehouse"),
    show_default=True,
    help="Warehouse directory (also $SERCAP_WAREHOUSE).",
)
@click.version_option(package_name="sercap")
@click.pass_context
def main(ctx: click.Context, warehouse: Path) -> None:
    """sercap: speech emotion recognition on a feature warehouse.

    \b
    A typical session:
      sercap corpus synth demo/corpus          # or use a real corpus directory
      sercap ingest iemocap demo/corpus
      sercap extract                           # per-frame descriptors -> Parquet
      sercap sql "SELECT * FROM utterance_features LIMIT 3"
      sercap train svm                         # speaker-independent cross-validation
      sercap bench                             # compare models in one table
    """
    ctx.ensure_object(dict)
    ctx.obj["warehouse"] = warehouse


# --------------------------------------------------------------------------- sql & info
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
@click.option("--limit", type=int, default=50, show_default=True, help="Rows shown as a table.")
@click.pass_context
def sql_command(ctx: click.Context, query: str, fmt: str, out: Path | None, limit: int) -> None:
    """Run an SQL QUERY on the warehouse and print the result.

    Every table and view is there: utterances, labels, folds, label maps (iemocap4, emodb7…),
    frames, utterance_features, images, runs, predictions.

    \b
      sercap sql "SELECT label, count(*) FROM emodb7 GROUP BY ALL"
      sercap sql "SELECT * FROM utterance_features LIMIT 3" --out sample.parquet
    """
    from sercap.report import print_frame, write_frame

    wh = _open(ctx)
    frame = wh.query(query)
    if out is not None:
        write_frame(frame, out)
        click.echo(f"wrote {frame.height} rows to {out}")
    else:
        print_frame(frame, fmt=fmt, limit=limit)


@main.command("info")
@click.pass_context
def info_command(ctx: click.Context) -> None:
    """Show what the warehouse holds: corpora, labels, speakers, feature sets, runs."""
    from sercap.report import warehouse_summary

    click.echo(warehouse_summary(_open(ctx)))


if __name__ == "__main__":
    main()
