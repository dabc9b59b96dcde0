"""sercap command line: every command parses its options, calls one function, prints.

Run ``python cli.py --help`` (or the installed ``sercap --help``). The warehouse is chosen
with ``--warehouse PATH`` or ``$SERCAP_WAREHOUSE`` (default ``./warehouse``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Keep numba's compiled librosa kernels between runs even where site-packages is read-only
# (a user-set NUMBA_CACHE_DIR wins); extract compiles them once, under a lock, before workers.
from sercap.numba_cache import use_cache_dir  # noqa: E402

use_cache_dir()

import click  # noqa: E402

from sercap.errors import SercapError  # noqa: E402


class _Group(click.Group):
    """Turns user errors into one line on stderr (no traceback) and Ctrl-C into a note.

    Ctrl-C is recorded by a SIGINT handler: DuckDB turns it into ``RuntimeError('Query
    interrupted')`` (or, inside a transaction, a later "transaction is aborted" error), so
    whatever an interrupted command raises ends as the same one line and exit status 130.
    Every write is one transaction, rolled back when the connection closes, so what was
    committed before stays and nothing half-done does.
    """

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        import atexit
        import signal
        import threading

        import duckdb

        interrupted = False

        def on_sigint(signum: int, frame: object) -> None:
            nonlocal interrupted
            interrupted = True
            raise KeyboardInterrupt

        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
        if main_thread:  # a Ctrl-C while the interpreter shuts down would kill it silently
            atexit.unregister(_ignore_sigint)
            atexit.register(_ignore_sigint)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BaseException as exc:
            if isinstance(exc, SystemExit) and not interrupted:
                raise
            if interrupted or _is_interrupt(exc):
                click.echo(
                    "\ninterrupted: everything already stored is kept; rerun to resume", err=True
                )
                sys.exit(130)
            if isinstance(exc, SercapError):
                click.echo(f"error: {exc}", err=True)
                sys.exit(1)
            if isinstance(exc, duckdb.Error):
                click.echo(f"error: {str(exc).splitlines()[0]}", err=True)
                sys.exit(1)
            if isinstance(exc, OSError):  # an output folder that does not exist, a full disk…
                where = f"{exc.filename}: " if exc.filename else ""
                click.echo(f"error: {where}{exc.strerror or exc}", err=True)
                sys.exit(1)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _is_interrupt(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it was raised from, or during) is Ctrl-C."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()
        ):
            return True
        if type(exc).__name__ == "InterruptException":
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _bars() -> bool:
    """Progress bars only on a terminal: in a log file they are lines of escape codes."""
    return sys.stderr.isatty()


def _open(ctx: click.Context, *, read_only: bool = False, damaged: str | None = None):
    """Open the warehouse chosen on the command line (closed when the command ends).

    Registered parts found missing or damaged at open (``damaged``): ``"warn"`` prints one
    line on stderr and goes on, ``"refuse"`` stops with that line, ``"ignore"`` is for
    `check`. The default warns when read-only (nothing is changed, the views simply leave
    those parts out) and refuses otherwise: a command that writes would store results
    computed without those utterances, or believe they are stored.
    """
    from sercap.warehouse import connect

    wh = connect(ctx.obj["warehouse"], read_only=read_only)
    ctx.call_on_close(wh.close)
    policy = damaged or ("warn" if read_only else "refuse")
    if wh.damaged and policy != "ignore":
        from sercap.check import damage_line

        line = damage_line(wh)
        if policy == "refuse":
            raise SercapError(f"{line} first")
        click.echo(f"warning: {line}", err=True)
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
    (csv, json and --out give the last one's result).

    \b
      sercap sql "SELECT label, count(*) FROM emodb7 GROUP BY ALL"
      sercap sql "SELECT * FROM utterance_features LIMIT 3" --out sample.parquet
    """
    import duckdb

    from sercap.report import print_frame, write_frame
    from sercap.sqlguard import classify, fence_settings, refuse_writes

    statements = classify(query)  # DuckDB's parser; nothing runs before the check
    if not statements:
        raise SercapError("the query holds no SQL statement")
    if not write:
        refuse_writes(statements)
    wh = _open(ctx, read_only=not write, damaged="warn")
    if not write:  # second fence: no file but the registered parts, configuration locked
        parts = [wh.root / rel for (rel,) in wh.con.execute("SELECT path FROM parts").fetchall()]
        files = sorted({str(f) for p in parts for f in (os.path.abspath(p), os.path.realpath(p))})
        for setting in fence_settings(files):
            wh.execute(setting)
    n = len(statements)
    for i, statement in enumerate(statements, 1):
        try:
            frame = wh.query(statement.text)
        except duckdb.PermissionException as exc:
            raise SercapError(
                f"{str(exc).splitlines()[0]}; without --write `sql` reads only the "
                "warehouse's own tables and parts"
            ) from exc
        if n > 1 and out is None and fmt == "table":
            click.echo(f"-- statement {i} of {n}: {' '.join(statement.text.rstrip(';').split())}")
            print_frame(frame, fmt=fmt, limit=limit)
            if i < n:
                click.echo()
    last = "" if n <= 1 else f" (the result of the last of {n} statements)"
    if out is not None:
        write_frame(frame, out)
        click.echo(f"wrote {frame.height} rows{last} to {out}")
    elif n <= 1 or fmt != "table":
        if last:
            click.echo(f"showing{last}", err=True)
        print_frame(frame, fmt=fmt, limit=limit)


@main.command("info")
@click.pass_context
def info_command(ctx: click.Context) -> None:
    """Show what the warehouse holds: corpora, labels, speakers, feature sets, runs."""
    from sercap.report import warehouse_summary

    click.echo(warehouse_summary(_open(ctx, read_only=True)))


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
    extractions row must point at a registered part that holds it, and no utterance may
    be stored twice in a feature set. Prints one line per problem and exits 1 if any.
      sercap check
      sercap check --repair && sercap extract && sercap images
    """
    from sercap.check import check
    from sercap.check import repair as repair_parts

    wh = _open(ctx, read_only=not repair, damaged="ignore")
    problems = check(wh)
    for problem in problems:
        click.echo(problem.line())
    n_parts = wh.scalar("SELECT count(*) FROM parts")
    if not problems:
        click.echo(f"no problems: {n_parts} part(s) verified")
        return
    if not repair:
        click.echo(f"{len(problems)} problem(s); `sercap check --repair` fixes them", err=True)
        sys.exit(1)
    click.echo("\n".join(repair_parts(wh, problems).lines()))
    left = check(wh)
    for problem in left:
        click.echo(f"still: {problem.line()}")
    if left:
        sys.exit(1)


# ---- train, runs
def _parse_params(text: str | None) -> dict:
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


_corpus_option = click.option("--corpus", help="Corpus name (default: the only one).")
_labels_option = click.option(
    "--labels", "label_map", help="Label map, e.g. iemocap4, emodb7 (default: the corpus')."
)
_feature_set_option = click.option(
    "--feature-set", help="Feature set for tabular/sequence models.  [default: default]"
)
_image_set_option = click.option("--image-set", help="Image set for CNN models.  [default: mel]")
_columns_option = click.option(
    "--columns", help="Regular expression choosing feature columns, e.g. '^mfcc_'."
)
_speaker_norm_option = click.option(
    "--speaker-norm",
    is_flag=True,
    help="Standardise features per speaker (unlabelled statistics of each speaker).",
)
_seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
_jobs_option = click.option(
    "--jobs", type=int, default=2, show_default=True, help="Threads for a model's fitting."
)
_device_option = click.option(
    "--device", help="Torch device (default: cuda when available, else cpu)."
)


@main.command("train")
@click.argument("model")
@_corpus_option
@_labels_option
@_feature_set_option
@_image_set_option
@_columns_option
@click.option("--params", help="Model parameters as JSON, e.g. '{\"C\": 10}'.")
@click.option(
    "--tuned",
    is_flag=True,
    help="Score each outer fold with its own nested study's parameters (`sercap tune`), "
    "beside the default parameters with a 95% CI of the difference.",
)
@_speaker_norm_option
@_seed_option
@_jobs_option
@_device_option
@click.pass_context
def train_command(
    ctx: click.Context,
    model: str,
    corpus,
    label_map,
    feature_set,
    image_set,
    columns,
    params,
    tuned,
    speaker_norm,
    seed,
    jobs,
    device,
) -> None:
    """Cross-validate MODEL speaker-independently and store the run.

    MODEL is one of: svm, rf, xgb, lgbm, trees, dnn, lstm, cnn, resnet18, resnet34.
    Prints UA (mean per-class recall), WA (accuracy) and macro-F1 on the pooled out-of-fold
    predictions, their per-fold mean ± std, and the confusion matrix.
    """
    from sercap.evaluate import get_run
    from sercap.experiment import compare_tuned, data_request, load_for, run_model
    from sercap.report import format_run, format_tuning_comparison

    wh = _open(ctx)
    request = data_request(
        model,
        corpus=corpus,
        label_map=label_map,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        speaker_norm=speaker_norm,
    )
    data = load_for(wh, request)
    click.echo(
        f"{model}: {len(data)} utterances of {data.corpus} ({data.label_map}), "
        f"{len(set(data.folds))} folds ({data.protocol})",
        err=True,
    )
    kwargs = dict(
        params=_parse_params(params), seed=seed, n_jobs=jobs, device=device, progress=_bars()
    )
    if tuned:
        comparison = compare_tuned(wh, model, data, **kwargs)
        click.echo(format_run(get_run(wh, comparison.tuned.run_id)))
        click.echo("")
        click.echo(format_tuning_comparison([comparison]))
        return
    outcome = run_model(wh, model, data, **kwargs)
    click.echo(format_run(get_run(wh, outcome.run_id)))


@main.group("runs", invoke_without_command=True)
@_corpus_option
@click.option("--model", help="Only runs of this model.")
@click.option("--limit", type=click.IntRange(1), default=30, show_default=True)
@click.pass_context
def runs_group(ctx: click.Context, corpus, model, limit) -> None:
    """List stored runs, newest first (`runs show ID` for one)."""
    if ctx.invoked_subcommand is not None:
        return
    from sercap.report import format_table, runs_table

    frame = runs_table(_open(ctx, read_only=True), corpus=corpus, model=model)
    if frame.height:
        click.echo(format_table(frame, limit=limit))
    elif corpus or model:
        click.echo("no runs match; `sercap runs` lists them all")
    else:
        click.echo("no runs yet; try `sercap train svm`")


@runs_group.command("show")
@click.argument("run_id")
@click.pass_context
def runs_show(ctx: click.Context, run_id: str) -> None:
    """Show one run (a unique prefix of its id is enough)."""
    from sercap.evaluate import get_run
    from sercap.report import format_run

    click.echo(format_run(get_run(_open(ctx, read_only=True), run_id)))


# ---- tune
@main.command("tune")
@click.argument("model")
@_corpus_option
@_labels_option
@_feature_set_option
@_image_set_option
@_columns_option
@_speaker_norm_option
@click.option(
    "--trials",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="Trials to add to each study (every outer fold's and the final one).",
)
@click.option(
    "--timeout", type=float, help="Per study: stop starting trials after this many seconds."
)
@click.option(
    "--storage",
    help="Optuna storage URL (postgresql://…, sqlite:///…) or a "
    "*.journal file.  [default: a journal in the warehouse]",
)
@click.option(
    "--study",
    "study",
    help="Base name of the studies (BASE/fold=F, BASE/final).  "
    "[default: MODEL-CORPUS-LABELS-FEATURESET]",
)
@click.option(
    "--pruner",
    type=click.Choice(["median", "hyperband", "none"]),
    default="median",
    show_default=True,
    help="Stops bad trials after their first inner folds.",
)
@click.option(
    "--inner-folds",
    type=click.IntRange(2),
    default=3,
    show_default=True,
    help="Speaker-grouped inner folds of each study's objective.",
)
@click.option(
    "--fold",
    "only_folds",
    multiple=True,
    help="Tune only this outer fold's study (repeatable; to share the work between "
    "processes).  [default: every fold, then the final study]",
)
@click.option(
    "--final/--no-final",
    default=True,
    show_default=True,
    help="Also tune the final study over all speakers (the parameters `predict` uses).",
)
@click.option("--params", help="Parameters held fixed while tuning, as JSON ('{\"epochs\": 5}').")
@click.option(
    "--show",
    is_flag=True,
    help="Show every fold's study and the final study (best trial, importances, history) "
    "and plot the final one, without tuning.",
)
@_seed_option
@_jobs_option
@_device_option
@click.pass_context
def tune_command(
    ctx: click.Context,
    model,
    corpus,
    label_map,
    feature_set,
    image_set,
    columns,
    speaker_norm,
    trials,
    timeout,
    storage,
    study,
    pruner,
    inner_folds,
    only_folds,
    final,
    params,
    show,
    seed,
    jobs,
    device,
) -> None:
    """Nested tuning of MODEL with Optuna: one study per outer fold, then a final one.

    The study of outer fold f (`BASE/fold=f`) scores trials by a speaker-grouped inner
    cross-validation over fold f's training speakers only; `train MODEL --tuned` fits fold f
    with that study's chosen parameters (its best trial, unless the default settings, trial
    0, are within 0.01 inner UA of it) and scores fold f's test speakers. The final study
    (`BASE/final`, all speakers) gives the parameters `predict` uses; it is never scored.
    --trials is per study. Running it again resumes the studies; several processes (or
    machines, with --storage postgresql://…) can tune them together.
    """
    from sercap.experiment import data_request, load_for
    from sercap.report import format_nested
    from sercap.tuning import (
        nested_studies,
        open_storage,
        plot_study,
        run_nested,
        store_nested,
        summarise,
    )
    from sercap.tuning import study_name as default_study_name

    wh = _open(ctx, read_only=show)
    request = data_request(
        model,
        corpus=corpus,
        label_map=label_map,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        speaker_norm=speaker_norm,
    )
    data = load_for(wh, request)
    name = study or default_study_name(model, data)
    root = wh.root
    backend = open_storage(storage, root, name)
    if show:
        nested = nested_studies(backend, name)
        click.echo(format_nested(nested))
        if nested.final is not None:
            png = plot_study(summarise(nested.final), root / "reports" / f"tune-{name}.png")
            click.echo(f"\nplot of the final study: {png}")
        return
    wh.close()  # let other processes use the warehouse while trials run
    label = storage or backend_label(root, name)
    n_folds = len(set(data.folds)) if not only_folds else len(set(only_folds))
    click.echo(
        f"study {name}: {len(data)} utterances, {n_folds} outer-fold studies"
        f"{' + final' if final else ''} × {trials} trials, {inner_folds} inner folds each, "
        f"storage {label}",
        err=True,
    )
    result = run_nested(
        model,
        data,
        backend,
        name,
        n_trials=trials,
        timeout=timeout,
        pruner=pruner,
        inner_folds=inner_folds,
        fixed=_parse_params(params),
        final=final,
        only_folds=list(only_folds) or None,
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(),
    )
    wh = _open(ctx)
    store_nested(wh, result, model, data, label)
    click.echo(format_nested(result))
    click.echo(
        f"\nper-fold parameters stored; `sercap train {model} --tuned` scores each outer fold "
        "with its own study's parameters and compares with the defaults"
    )


def backend_label(root: Path, name: str) -> str:
    return str(root / "studies" / f"{name}.journal")


# ---- ensemble
@main.command("ensemble")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--weights", help="Comma-separated weight per run, e.g. 2,1,1 (default: equal).")
@click.pass_context
def ensemble_command(ctx: click.Context, run_ids: tuple[str, ...], weights: str | None) -> None:
    """Average the out-of-fold probabilities of stored RUN_IDS and store that as a run.

    The runs must share corpus, label map and protocol. Nothing is retrained: each member's
    predictions were made without the test speaker. But if you chose the members (or
    weights) by their scores, that choice was made on the test folds: the ensemble's UA is
    then optimistic.
    """
    from sercap.ensemble import ensemble_runs
    from sercap.evaluate import get_run
    from sercap.report import format_run

    parsed = None
    if weights:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError as exc:
            raise SercapError(f"--weights {weights!r}: give numbers separated by commas") from exc
    wh = _open(ctx)
    run_id, _ = ensemble_runs(wh, list(run_ids), parsed)
    click.echo(format_run(get_run(wh, run_id)))
    click.echo(
        "\nnote: members and weights chosen by their scores are selected on the test folds; "
        "this UA is then optimistic (bench --ensemble uses fixed members only)"
    )


# ---- report
@main.command("report")
@_corpus_option
@_labels_option
@_feature_set_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for report.md and its PNGs.  [default: WAREHOUSE/reports/CORPUS]",
)
@click.pass_context
def report_command(ctx: click.Context, corpus, label_map, feature_set, out_dir) -> None:
    """Write a Markdown report with pictures: model comparison, confusion matrices,
    per-class recall, the functionals that separate the emotions, the corpus at a glance."""
    from sercap.data import resolve_corpus
    from sercap.report import write_report

    wh = _open(ctx)
    corpus = resolve_corpus(wh, corpus)
    out_dir = out_dir or wh.root / "reports" / corpus
    path = write_report(wh, out_dir, corpus=corpus, label_map=label_map, feature_set=feature_set)
    click.echo(f"report: {path}")


# ---- ingest & corpus
_INGEST_KINDS = ("iemocap", "emodb", "ravdess", "cremad", "tess", "manifest")


@main.command("ingest")
@click.argument("kind", metavar=f"{{{'|'.join(_INGEST_KINDS)}}}")
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
      manifest  a .csv/.parquet with path,label,speaker [utt_id,gender,session,start,end]
                (DIR is the file; relative paths are relative to it)

    One transaction: all or nothing. Running it again changes nothing; a bigger copy adds
    only what is new. Problems (missing wavs, malformed lines, a second row naming the same
    audio) are listed and kept in the ingest_problems table. Utterances whose audio changed
    (SHA-256 of the file) lose their stored features; the next extract recomputes them.
    """
    from sercap.corpora.ingest import ingest

    if kind not in _INGEST_KINDS:  # checked here for one line, not click's usage block
        raise SercapError(
            f"unknown corpus kind {kind!r}; choose one of: {', '.join(_INGEST_KINDS)}"
        )
    summary = ingest(_open(ctx), kind, directory, name=name, progress=None, rehash=rehash)
    click.echo(_format_ingest_summary(summary))


def _format_ingest_summary(summary) -> str:
    """Counts, utterances per label and per speaker, and the first problems."""
    from sercap.report import format_table

    lines = [
        f"corpus {summary.corpus} ({summary.kind}) from {summary.root}",
        f"read {summary.read}: added {summary.added}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}; {summary.stored} stored, {summary.in_label_map} in "
        f"label map {summary.label_map}; protocol {summary.protocol}",
        *filter(None, [summary.audio_line()]),
        "",
        "utterances per label",
        format_table(summary.per_label, limit=None),
        "",
        "utterances per speaker",
        format_table(summary.per_speaker, limit=None, float_digits=1),
    ]
    if summary.problems:
        shown = summary.problems[:5]
        lines += ["", f"{len(summary.problems)} problem(s):"] + [f"  {p}" for p in shown]
        more = len(summary.problems) - len(shown)
        query = f"SELECT * FROM ingest_problems WHERE corpus = '{summary.corpus}'"
        lead = f"  … {more} more; " if more else "  "
        lines.append(f'{lead}all of them: sercap sql "{query}"')
    return "\n".join(lines)


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
@click.option("--seed", type=int, default=0, show_default=True)
def synth_command(directory: Path, sessions: int, per_speaker: int, seed: int) -> None:
    """Write a synthetic demo corpus in the IEMOCAP layout to DIR.

    Emotion is carried by prosody (pitch level and range, loudness, rate, voice quality) and
    speaker identity by pitch and timbre, with overlap so models land well below 100%.
    The same seed writes the same bytes. Then: sercap ingest iemocap DIR
    """
    from sercap.corpora.synthetic import generate

    result = generate(directory, sessions, per_speaker, seed, progress=None)
    counts = ", ".join(f"{label} {n}" for label, n in result.per_label.most_common())
    click.echo(
        f"wrote {len(result.labels)} utterances ({result.seconds / 60:.1f} min) in "
        f"{result.dialogs} dialogs to {directory}: {counts}\n"
        f"next: sercap ingest iemocap {directory}"
    )


# ---- extract, features, images
def _extraction_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _run_extraction(ctx: click.Context, feature_set: str, kind: str | None, **kwargs) -> None:
    from sercap.features.extract import extract

    summary = extract(_open(ctx), feature_set, kind=kind, progress=None, **kwargs)
    click.echo("\n".join(summary.lines()))


_extract_options = [
    click.option("--corpus", help="Only this corpus.  [default: every ingested corpus]"),
    click.option(
        "--jobs",
        type=click.IntRange(1),
        default=_extraction_jobs(),
        show_default=True,
        help="Worker processes (one thread each).",
    ),
    # 64 = sercap.features.extract.CHUNK_SIZE (a test checks); literal, so --help stays fast.
    click.option(
        "--chunk-size",
        type=click.IntRange(1),
        default=64,
        show_default=True,
        help="Utterances per Parquet part (a crash loses at most the chunks in flight).",
    ),
    click.option("--retry-errors", is_flag=True, help="Try again utterances that failed before."),
    click.option("--limit", type=click.IntRange(1), help="At most N utterances (for a try-out)."),
    click.option(
        "--cluster",
        envvar="SERCAP_CLUSTER",
        help="Run chunks on Dask: local:N (N worker processes here) or tcp://HOST:8786 (a "
        "running scheduler; workers must see the audio and warehouse at the same paths). "
        "Replaces --jobs.  [env: SERCAP_CLUSTER]",
    ),
]


def _with_options(options):
    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@main.command("extract")
@click.option(
    "--feature-set",
    default="default",
    show_default=True,
    help="A feature set from `sercap features list` (default, pyin, chroma, compare2016, "
    "egemaps02).",
)
@_with_options(_extract_options)
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
    from sercap.features.featureset import get_feature_set

    if get_feature_set(feature_set).kind == "image":
        raise SercapError(f"{feature_set!r} is an image set; use `sercap images --image-set`")
    _run_extraction(ctx, feature_set, None, **kwargs)


@main.group("features")
def features_group() -> None:
    """Feature-set definitions: what each computes, its hash, what is stored."""


@features_group.command("list")
@click.pass_context
def features_list_command(ctx: click.Context) -> None:
    """Every built-in feature and image set, with its hash and how many utterances are stored."""
    from sercap.features.featureset import feature_set_table
    from sercap.report import format_table

    click.echo(format_table(feature_set_table(_open(ctx, read_only=_exists(ctx))), limit=None))


@features_group.command("show")
@click.argument("name")
@click.pass_context
def features_show_command(ctx: click.Context, name: str) -> None:
    """Parameters, library versions, hash, columns and storage of feature set NAME."""
    from sercap.features.featureset import describe_feature_set

    click.echo(describe_feature_set(_open(ctx, read_only=_exists(ctx)), name))


def _exists(ctx: click.Context) -> bool:
    """Whether the warehouse already exists (then read-only commands do not lock it)."""
    from sercap.warehouse import DB_FILENAME

    return (Path(ctx.obj["warehouse"]) / DB_FILENAME).exists()


@main.group("images", invoke_without_command=True)
@click.option(
    "--image-set",
    default="mel",
    show_default=True,
    help="An image set from `sercap features list`.",
)
@_with_options(_extract_options)
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
    """Write utterance UTT's spectrogram as a PNG with time and frequency axes."""
    from sercap.features.images import plot_image, stored_image

    image = stored_image(_open(ctx, read_only=_exists(ctx)), utt_id, image_set)
    out = out or Path(f"{utt_id}.png")
    if raw:
        out.write_bytes(image.png)
    else:
        plot_image(image, out)
    click.echo(f"{out} ({image.height} mel bands x {image.width} frames)")


# ---- predict
@main.command("predict")
@click.argument("wavs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--run", "run_id", help="Run whose model predicts (an ensemble run works too).")
@click.option("--model", help="Use the best stored run of this model instead of --run.")
@_corpus_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@_jobs_option
@click.pass_context
def predict_command(ctx: click.Context, wavs, run_id, model, corpus, fmt, jobs) -> None:
    """Predict the emotion of each audio file in WAVS (any sample rate or channel count).

    The first prediction with a run trains its final model on all of the run's data (same
    parameters and seed) and stores it in the warehouse; later ones load it. A file that
    cannot be read gets a one-line reason and the others still get predictions; the exit
    status is 1 only when no file could be predicted.
    """
    from sercap.api import predict
    from sercap.report import print_frame

    if bool(run_id) == bool(model):
        raise SercapError("give exactly one of --run RUN_ID or --model NAME")
    table = predict(
        _open(ctx), list(wavs), run=run_id, model=model, corpus=corpus, jobs=jobs, progress=_bars()
    )
    if fmt == "table":
        click.echo(f"run {table['run_id'][0]}", err=True)
    print_frame(table.drop("run_id"), fmt=fmt, limit=None)
    failed = table.filter(table["error"].is_not_null())
    for path, error in zip(failed["path"], failed["error"], strict=True):
        click.echo(f"warning: {path}: {error}", err=True)
    if failed.height == table.height:
        raise SercapError("no file could be predicted (see the warnings above)")


# ---- bench (`bench [MODEL…]` runs `bench models`; `bench extract` times feature extraction)
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
@_corpus_option
@_labels_option
@_feature_set_option
@_image_set_option
@_speaker_norm_option
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
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder.  [default: WAREHOUSE/reports/bench-CORPUS]",
)
@_seed_option
@_jobs_option
@_device_option
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
    out_dir,
    seed,
    jobs,
    device,
) -> None:
    """Cross-validate MODELS (default: svm rf xgb lgbm trees) and compare them in one table.

    Writes bench.md, bench.csv, a comparison chart, a per-class recall chart and a confusion
    matrix per model into the report folder.
    """
    from sercap.compare import plan_bench, protocol_caption, run_bench
    from sercap.data import resolve_corpus
    from sercap.report import format_table

    wh = _open(ctx)
    corpus = resolve_corpus(wh, corpus)
    specs = plan_bench(models, all_models=all_models, opensmile=opensmile)
    out_dir = out_dir or wh.root / "reports" / f"bench-{corpus}"
    table, written, comparisons = run_bench(
        wh,
        specs,
        out_dir,
        corpus=corpus,
        label_map=label_map,
        feature_set=feature_set,
        image_set=image_set,
        speaker_norm=speaker_norm,
        tuned=tuned,
        ensemble=ensemble,
        quick=quick,
        seed=seed,
        n_jobs=jobs,
        device=device,
        progress=_bars(),
    )
    shown = table.select(
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
    click.echo(protocol_caption(table, corpus))
    if comparisons:
        from sercap.report import format_tuning_comparison

        click.echo("")
        click.echo(format_tuning_comparison(comparisons))
    click.echo(f"\nreport: {written['markdown']}")


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
    from sercap.data import resolve_corpus
    from sercap.features.speed import bench_extraction, load_signals
    from sercap.report import format_table, write_frame

    wh = _open(ctx, read_only=_exists(ctx))
    corpus = resolve_corpus(wh, corpus)
    rows = wh.con.execute(
        "SELECT utt_id, path, start_s, end_s FROM utterances WHERE corpus = ? ORDER BY utt_id"
        + (f" LIMIT {int(limit)}" if limit else ""),
        [corpus],
    ).fetchall()
    click.echo(f"decoding {len(rows)} utterances of {corpus} at 16 kHz (not timed)…", err=True)
    signals, problems = load_signals(rows, 16000)
    for problem in problems[:5]:
        click.echo(f"skipped {problem}", err=True)
    if not signals:
        raise SercapError(f"no readable audio in corpus {corpus!r}")
    audio_min = sum(y.size for y in signals) / 16000 / 60
    click.echo(f"timing on {len(signals)} utterances, {audio_min:.1f} min of audio", err=True)
    table = bench_extraction(
        signals, jobs=jobs, naive=not no_naive, say=lambda s: click.echo(f"  {s}…", err=True)
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
    import tempfile

    from sercap.features.aggregate_speed import bench_aggregation, replicate_frames
    from sercap.features.featureset import get_feature_set
    from sercap.report import format_table, write_frame

    wh = _open(ctx, read_only=_exists(ctx))
    fs = get_feature_set(feature_set, kind="lld")
    files = wh.part_paths("frames", fs.hash)
    if not files:
        raise SercapError(f"no frames of feature set {feature_set!r}; run `sercap extract` first")
    with tempfile.TemporaryDirectory(prefix="sercap-bench-sql-") as tmp:
        if copies > 1:
            click.echo(f"writing {copies} copies of the frames…", err=True)
            files = replicate_frames(files, copies, Path(tmp))
        import polars as pl

        shape = pl.scan_parquet([str(f) for f in files]).select(pl.len()).collect().item()
        click.echo(f"{shape:,} frames in {len(files)} Parquet file(s)", err=True)
        table = bench_aggregation(files, threads=threads, hop_s=fs.hop_s)
    click.echo(format_table(table, limit=None, float_digits=2))
    if out:
        write_frame(table, out)
        click.echo(f"written: {out}")


# ---- demo
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
    default=5,
    show_default=True,
    help="Synthetic sessions (two speakers each).",
)
@click.option(
    "--per-speaker",
    type=int,
    default=36,
    show_default=True,
    help="Synthetic utterances per speaker.",
)
@click.option("--full", is_flag=True, help="Default training settings instead of quick ones.")
@_seed_option
@_jobs_option
def demo_command(
    out_dir, corpus_dir, kind, models, sessions, per_speaker, full, seed, jobs
) -> None:
    """Run everything end to end: synth → ingest → extract → images → bench of every
    model → ensembles → report, then print the comparison table.

    Takes a few minutes on 2 cores with the synthetic corpus. The warehouse it builds is
    DIR/warehouse: explore it afterwards with `sercap -w DIR/warehouse sql ...`.
    """
    from sercap.compare import protocol_caption
    from sercap.demo import run_demo
    from sercap.report import format_table

    result = run_demo(
        out_dir,
        corpus_dir,
        kind,
        models=models.split(",") if models else None,
        sessions=sessions,
        per_speaker=per_speaker,
        quick=not full,
        jobs=jobs,
        seed=seed,
        say=lambda text: click.echo(text, err=True),
        progress=_bars(),
    )
    shown = result.table.select("name", "ua", "wa", "macro_f1", "fit_s", "run_id")
    click.echo(format_table(shown, limit=None))
    click.echo(protocol_caption(result.table, result.corpus))
    click.echo(f"\nreport:    {result.report}")
    click.echo(f"warehouse: {result.warehouse}  (e.g. sercap -w {result.warehouse} runs)")


if __name__ == "__main__":
    main()
