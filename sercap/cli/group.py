"""The main click group of sercap's command line: error and Ctrl-C handling, the options
and helpers the command modules share. :mod:`sercap.cli` registers the commands on it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sercap

# Keep numba's compiled librosa kernels between runs even where site-packages is read-only
# (a user-set NUMBA_CACHE_DIR wins); extract compiles them once, under a lock, before workers.
sercap.use_numba_cache()

import click  # noqa: E402

from sercap._interrupt import is_interrupt  # noqa: E402
from sercap.errors import SercapError  # noqa: E402


class _Group(click.Group):
    """Turns user errors into one line on stderr (no traceback) and Ctrl-C into a note.

    Ctrl-C is recorded by a SIGINT handler: DuckDB turns it into ``RuntimeError('Query
    interrupted')`` (or, inside a transaction, a later "transaction is aborted" error), so
    whatever an interrupted command raises ends as the same one line and exit status 130.
    Every write is one transaction, rolled back when the connection closes, so what was
    committed before stays and nothing half-done does.
    """

    def main(self, *args, **kwargs):  # type: ignore[override]
        """Parsing, too, ends a Ctrl-C in one line (click would print ``Aborted!``)."""
        from sercap._interrupt import install, skip_exit_collections

        skip_exit_collections()  # the command line's process ends after its one command
        previous = install()
        try:
            return super().main(*args, **kwargs)
        finally:
            if previous is not None:
                import signal

                signal.signal(signal.SIGINT, previous)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        import atexit
        import signal
        import threading

        import duckdb

        interrupted = False
        status = 130
        # (the words after the program name: click consumes them while it invokes)
        tokens = [*getattr(ctx, "_protected_args", []), *ctx.args]

        def on_sigint(signum: int, frame: object) -> None:
            nonlocal interrupted, status
            interrupted, status = True, 128 + signum
            raise KeyboardInterrupt

        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
        # `timeout`, `docker stop`, a closed terminal: stopped like Ctrl-C (workers terminated,
        # one line), not killed with worker processes left writing parts nobody registers
        stops = (signal.SIGTERM, signal.SIGHUP) if main_thread else ()
        previous_stops = {s: signal.signal(s, on_sigint) for s in stops}
        previous_hook = sys.unraisablehook

        def redeliver(unraisable: object) -> None:
            # Python cannot raise out of a weakref callback or ``__del__`` (an import's
            # module-lock callback is one): the KeyboardInterrupt would be printed as
            # "Exception ignored" and the command would go on. Send the signal again a moment
            # later, when this hook and the callback have returned and raising works.
            if interrupted and getattr(unraisable, "exc_type", None) is KeyboardInterrupt:
                again = threading.Timer(
                    0.05, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)
                )
                again.daemon = True
                again.start()
            else:
                previous_hook(unraisable)  # type: ignore[arg-type]

        if main_thread:
            sys.unraisablehook = redeliver
            # a Ctrl-C while the interpreter shuts down would kill it silently
            atexit.unregister(_ignore_sigint)
            atexit.register(_ignore_sigint)

        def stop() -> None:
            kept = "everything already stored is kept"
            said = {  # plain `tune` again adds --trials to every study, finished or not
                "tune": f"{kept}; rerun with --top-up to finish the same budget",
                # runs are kept (`sercap runs`), but a bench fits its models again
                "bench": f"{kept}; rerun with --resume to fit only the models not stored yet",
                "demo": f"{kept}; rerun with --resume to fit only the models not stored yet",
                # (it removes what it had written; nothing of its refits is kept)
                "report": "the report is not written; run it again (--no-importance skips "
                "the per-fold refits of the importance charts, its slow part)",
                # (corpus synth) removes what it had written
                "corpus": "the corpus is unfinished (what it wrote is removed, or its folder "
                "marked incomplete); run the same command again",
            }.get(_interrupted_verb(ctx, tokens), f"{kept}; rerun to resume")
            click.echo(f"\ninterrupted: {said}", err=True)
            sys.exit(status)

        try:
            result = super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BaseException as exc:
            if isinstance(exc, SystemExit) and not interrupted:
                raise
            if interrupted or is_interrupt(exc):
                stop()
            if isinstance(exc, SercapError):
                click.echo(f"error: {exc}", err=True)
                sys.exit(1)
            if isinstance(exc, duckdb.Error):
                from sercap.errors import damaged_part_error

                root = (ctx.obj or {}).get("warehouse") or "warehouse"
                damaged = damaged_part_error(exc, Path(root))
                click.echo(f"error: {damaged or str(exc).splitlines()[0]}", err=True)
                sys.exit(1)
            if isinstance(exc, BrokenPipeError):  # `sercap … | head`: the reader has enough
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit
                sys.exit(128 + 13)  # as a process killed by SIGPIPE (git, cat) ends
            if isinstance(exc, OSError):  # an output folder that does not exist, a full disk…
                where = f"{exc.filename}: " if exc.filename else ""
                click.echo(f"error: {where}{exc.strerror or exc}", err=True)
                sys.exit(1)
            if type(exc).__name__ == "PanicException":  # polars' Rust panic: a BaseException
                click.echo(  # (sql "SELECT TIMESTAMP 'infinity'": out of its datetime range)
                    f"error: polars cannot hold a value of this result ({str(exc)[:120]}); "
                    "an infinite or out-of-range date or timestamp? cast that column to text "
                    "in the query: CAST(col AS VARCHAR)",
                    err=True,
                )
                sys.exit(1)
            if isinstance(exc, MemoryError | OverflowError):  # --n-boot 10000000, --limit 1e20
                what = "out of memory" if isinstance(exc, MemoryError) else "a number too large"
                click.echo(
                    f"error: {what} ({type(exc).__name__}: {str(exc)[:120]}); ask for less "
                    "(a smaller --limit, --jobs, --n-boot or --copies)",
                    err=True,
                )
                sys.exit(1)
            raise
        else:  # (outside the handlers above: stop's SystemExit is not caught again)
            if interrupted:  # a Ctrl-C that some library caught, and the command went on
                stop()
            return result
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            for stop, handler in previous_stops.items():
                signal.signal(stop, handler)
            if main_thread:
                sys.unraisablehook = previous_hook


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def bars() -> bool:
    """Progress bars only on a terminal: in a log file they are lines of escape codes."""
    return sys.stderr.isatty()


def say(text: str) -> None:
    """Progress lines go to stderr (stdout holds the result)."""
    click.echo(text, err=True)


def open_warehouse(
    ctx: click.Context,
    *,
    read_only: bool = False,
    damaged: str | None = None,
    missing: str = "refuse",
):
    """Open the warehouse chosen on the command line (closed when the command ends).

    Registered parts found missing or damaged at open (``damaged``): ``"warn"`` prints one
    line on stderr and goes on, ``"refuse"`` stops with that line, ``"ignore"`` is for
    `check`. The default warns when read-only (nothing is changed, the views simply leave
    those parts out) and refuses otherwise: a command that writes would store results
    computed without those utterances, or believe they are stored.

    Where no warehouse exists yet (``missing``): ``"refuse"`` stops with one line saying how
    to create one (a mistyped ``-w`` must not leave a new warehouse behind), ``"memory"``
    opens an empty in-memory one (commands that only show built-in things), ``"create"``
    creates it (`ingest`, which removes it again if it fails: :func:`discard_if_new`).
    """
    path = ctx.obj["warehouse"]
    if not sercap.warehouse_exists(path) and missing != "create":
        if missing == "memory":
            wh = sercap.connect(":memory:")
            ctx.call_on_close(wh.close)
            return wh
        import contextlib

        with contextlib.suppress(sercap.NotFoundError):  # parts left without their catalog
            sercap.connect(path, read_only=True).close()  # are said as such, not "none"
        if sercap.warehouse_exists(Path(path) / "warehouse"):  # `-w demo` for the demo's
            raise SercapError(  # folder: its warehouse is inside
                f"no warehouse at {path}, but there is one in {Path(path) / 'warehouse'}: "
                f"use -w {Path(path) / 'warehouse'}"
            )
        raise SercapError(  # reading and writing commands alike, in the same words
            f"no warehouse at {path}: create one with `sercap ingest KIND DIR` "
            "(or `sercap demo`), or name an existing one with -w"
        )
    wh = sercap.connect(path, read_only=read_only, absolute=False)
    ctx.call_on_close(wh.close)
    policy = damaged or ("warn" if read_only else "refuse")
    line = None if policy == "ignore" else sercap.damage(wh)
    if line:
        if policy == "refuse":
            raise SercapError(f"{line} first")
        click.echo(f"warning: {line}", err=True)
    return wh


class discard_if_new:  # noqa: N801 - used as a context manager, like contextlib's
    """Remove what a failed command created when it created the warehouse itself.

    ``with discard_if_new(ctx): ...`` around a command that may create the warehouse: on an
    exception, if there was no warehouse before, the files and folders that appeared in
    its folder are removed (the folder too, if the command made it), so a failed `ingest`
    into a mistyped path leaves nothing behind. An existing warehouse is never touched.
    """

    def __init__(self, ctx: click.Context) -> None:
        self.path = Path(ctx.obj["warehouse"])
        self.ctx = ctx

    def __enter__(self) -> None:
        from sercap._newfiles import NewFiles

        self.new = not sercap.warehouse_exists(self.path)
        self.files = NewFiles(self.path)

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None or not self.new:
            return False
        self.ctx.close()  # closes the warehouse (call_on_close) before its files go
        self.files.remove()
        return False


def exists(ctx: click.Context) -> bool:
    """Whether the warehouse already exists (then read-only commands do not lock it)."""
    return sercap.warehouse_exists(ctx.obj["warehouse"])


def parse_params(text: str | None) -> dict:
    """``--params`` JSON as a dict (one line naming the problem otherwise)."""
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SercapError(f"--params is not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise SercapError("--params must be a JSON object, e.g. '{\"C\": 10}'")
    return value


def with_options(options):
    """Apply a list of click options (first = first in --help)."""

    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _interrupted_verb(ctx: click.Context, tokens: list[str]) -> str:
    """The command an interrupt ended, as the interrupt line knows it: ``bench`` only for
    `bench [MODELS…]` (`bench extract`, `bench sql`, `bench cross`, `bench scale` have no
    --resume to rerun with), otherwise the top-level command. ``tokens``: the words after
    the program name and its own options."""
    verb = ctx.invoked_subcommand or ""
    if verb != "bench":
        return verb
    # `bench`'s own subcommands, but the model comparison (`bench models`, `bench [MODELS…]`)
    others = set(getattr(ctx.command.commands.get("bench"), "commands", {})) - {"models"}
    after = tokens[tokens.index("bench") + 1 :] if "bench" in tokens else []
    return "bench:other" if after[:1] and after[0] in others else verb


# ---- options shared by several commands
corpus_option = click.option("--corpus", help="Corpus name (default: the only one).")
labels_option = click.option(
    "--labels", "label_map", help="Label map, e.g. iemocap4, emodb7 (default: the corpus')."
)
feature_set_option = click.option(
    "--feature-set", help="Feature set for tabular/sequence models.  [default: default]"
)
image_set_option = click.option("--image-set", help="Image set for CNN models.  [default: mel]")
columns_option = click.option(
    "--columns", help="Regular expression choosing feature columns, e.g. '^mfcc_'."
)
speaker_norm_option = click.option(
    "--speaker-norm",
    is_flag=True,
    help="Standardise the inputs per speaker with unlabelled statistics of all of that "
    "speaker's utterances: each functional (tabular models), each frame descriptor (lstm) or "
    "each mel band (cnn, resnet18, resnet34).",
)
target_option = click.option(
    "--target",
    type=click.Choice(["valence", "activation", "dominance"]),
    help="Predict this dimensional rating with the model family's regressor (svm, rf, xgb, "
    "lgbm, trees, dnn, lstm, cnn, resnet18, resnet34), scored by CCC, Pearson r and MAE, "
    "instead of the emotion class.",
)


class OutFolder(click.Path):
    """A folder to write into; an empty value (``--out ""``, which ``Path`` reads as the
    current folder) is a usage error, not two dozen files in the working directory."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, str) and not value.strip():
            self.fail("an empty folder name; name a folder, e.g. report/", param, ctx)
        return super().convert(value, param, ctx)


def table_out_option(formats: str = ".csv or .parquet", note: str = ""):
    """``--out FILE``: also write a command's table (``sercap.format.write_frame``)."""
    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"Also write the table ({formats}){note}.",
    )


seed_option = click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Random seed.",
)
jobs_option = click.option(
    "--jobs",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Threads for a model's fitting.",
)
device_option = click.option(
    "--device", help="Torch device (default: cuda when available, else cpu)."
)
cluster_option = click.option(
    "--cluster",
    # ($SERCAP_CLUSTER is read by the API, whose error says where a bad value came from)
    help="Dask cluster: local:N or tcp://HOST:PORT  [env var: SERCAP_CLUSTER]",
)


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
@click.version_option(package_name="sercap", prog_name="sercap")
@click.pass_context
def main(ctx: click.Context, warehouse: Path) -> None:
    """sercap: speech emotion recognition on a feature warehouse.

    \b
    A typical session (`sercap demo` runs all of it on a synthetic corpus):
      sercap corpus synth demo/corpus          # or use a real corpus directory
      sercap ingest iemocap demo/corpus        # utterances + labels tables
      sercap extract                           # descriptors + functionals -> Parquet
      sercap images                            # log-mel spectrogram PNGs
      sercap sql "SELECT * FROM utterance_features LIMIT 3"
      sercap train svm                         # speaker-independent cross-validation
      sercap tune xgb                          # Optuna; then train/bench --tuned
      sercap bench --all --ensemble            # compare models in one table
      sercap report --out report/              # Markdown report with pictures
      sercap predict clip.wav --model svm      # emotion of new audio
    """
    ctx.ensure_object(dict)
    ctx.obj["warehouse"] = warehouse


def extraction_jobs() -> int:
    """Default worker processes for extract/images: the CPUs, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))
