"""Models: `train`, `runs [show]`, `tune`, `ensemble`, `report`, `predict`."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

import sercap
from sercap.cli.group import (
    OutFolder,
    bars,
    cluster_option,
    columns_option,
    corpus_option,
    device_option,
    feature_set_option,
    image_set_option,
    jobs_option,
    labels_option,
    main,
    open_warehouse,
    parse_params,
    say,
    seed_option,
    speaker_norm_option,
    target_option,
)
from sercap.errors import BadParameterError, SercapError


@main.command("train")
@click.argument("model")
@corpus_option
@labels_option
@feature_set_option
@image_set_option
@columns_option
@click.option("--params", help="Model parameters as JSON, e.g. '{\"C\": 10}'.")
@click.option(
    "--tuned",
    is_flag=True,
    help="Score each outer fold with its own nested study's parameters (`sercap tune`), "
    "beside the default parameters with a 95% CI of the difference.",
)
@click.option(
    "--study",
    help="With --tuned: the nested tuning to use, by its base name (`tune --study`, or "
    "the name `tune` printed).  [default: the newest for this model and data]",
)
@speaker_norm_option
@target_option
@seed_option
@jobs_option
@device_option
@cluster_option
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
    study,
    speaker_norm,
    target,
    seed,
    jobs,
    device,
    cluster,
) -> None:
    """Cross-validate MODEL speaker-independently and store the run.

    MODEL is one of: svm, rf, xgb, lgbm, trees, dnn, lstm, cnn, resnet18, resnet34 (audio);
    text-lr, text-svm, text-cnn (transcripts); fusion, early-fusion (audio and transcripts).
    Prints UA (mean per-class recall), WA (accuracy) and macro-F1 on the pooled out-of-fold
    predictions, their per-fold mean ± std, and the confusion matrix. With --target, the
    model's regressor of that rating on every utterance that has one (or those --labels
    keeps): CCC, Pearson r and MAE of the pooled out-of-fold predictions.

    \b
    Examples:
      sercap train svm
      sercap train lgbm --speaker-norm --columns '^(mfcc|logmel)_'
      sercap train cnn --params '{"epochs": 10}' --device cuda
      sercap train xgb --tuned
    """
    if study and not tuned:
        raise BadParameterError("--study names the nested tuning of --tuned; add --tuned")
    sercap.check_model(model)  # a typo is one line, before any wait for another's lock
    run = sercap.train(
        open_warehouse(ctx),
        model,
        corpus=corpus,
        labels=label_map,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        params=parse_params(params),
        tuned=study or tuned,
        speaker_norm=speaker_norm,
        target=target,
        seed=seed,
        jobs=jobs,
        device=device,
        cluster=cluster,
        progress=bars(),
        say=say,
    )
    click.echo(str(run))


@main.group("runs", invoke_without_command=True)
@click.option("--corpus", help="Only runs on this corpus (default: every corpus').")
@click.option("--model", help="Only runs of this model.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Show at most this many runs (the newest).",
)
@click.pass_context
def runs_group(ctx: click.Context, corpus, model, limit) -> None:
    """List stored runs, newest first (`runs show ID` for one)."""
    if ctx.invoked_subcommand is not None:
        return
    from sercap.format import format_table

    frame = sercap.runs(open_warehouse(ctx, read_only=True), corpus=corpus, model=model)
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
    """Show one run (a unique prefix of its id is enough), with its UA per gender and per
    speaker and the worst-group gaps (from its stored predictions)."""
    from sercap.format import format_fairness

    wh = open_warehouse(ctx, read_only=True)
    run = sercap.get_run(wh, run_id)
    click.echo(str(run))
    if run.predictions.height and not getattr(run, "target", None):  # classification runs
        table = sercap.fairness(wh, run.run_id)
        summary = sercap.fairness(wh, run.run_id, summary=True)
        click.echo("\n" + format_fairness(summary, table))


@main.command("tune")
@click.argument("model")
@corpus_option
@labels_option
@feature_set_option
@image_set_option
@columns_option
@speaker_norm_option
@click.option(
    "--trials",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="Trials to add to each study (every outer fold's and the final one).",
)
@click.option(
    "--top-up",
    is_flag=True,
    help="Make --trials the total: each study ends with that many finished trials, "
    "counting earlier runs and other processes (finish an interrupted tuning with equal "
    "budgets, or share one budget between machines).",
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
    "[default: MODEL-CORPUS-LABELS-FEATURESET-HASH8, e.g. svm-emodb-emodb7-default-637c3796, "
    "with -colsXXXXXX for --columns and -spknorm for --speaker-norm]",
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
    help="Inner folds of each study's objective (speaker-grouped; session-grouped where "
    "the folds keep sessions whole, IEMOCAP's or a manifest's of dyadic sessions, when the "
    "training part holds three sessions or more).",
)
@click.option(
    "--fold",
    "only_folds",
    multiple=True,
    help="Tune only this outer fold's study (repeatable; to share the work between "
    "processes; the final study then only with --final).  [default: every fold, then the "
    "final study]",
)
@click.option(
    "--final/--no-final",
    default=None,
    help="Also tune the final study over all speakers (the parameters `predict` uses).  "
    "[default: --final, or --no-final with --fold]",
)
@click.option("--params", help="Parameters held fixed while tuning, as JSON ('{\"epochs\": 5}').")
@click.option(
    "--show",
    is_flag=True,
    help="Show every fold's study and the final study (best trial, importances, history) "
    "and plot the final one, without tuning.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --show: where the final study's plot goes (a .png).  "
    "[default: WAREHOUSE/reports/tune-NAME.png]",
)
@target_option
@seed_option
@jobs_option
@device_option
@cluster_option
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
    top_up,
    timeout,
    storage,
    study,
    pruner,
    inner_folds,
    only_folds,
    final,
    params,
    show,
    out,
    target,
    seed,
    jobs,
    device,
    cluster,
) -> None:
    """Nested tuning of MODEL with Optuna: one study per outer fold, then a final one.

    The study of outer fold f (`BASE/fold=f`) scores trials by a speaker-grouped inner
    cross-validation over fold f's training speakers only (session-grouped where the folds
    keep sessions whole, from three training sessions); `train MODEL --tuned` fits fold f
    with that study's chosen parameters and scores fold f's test speakers. The chosen
    parameters are the best trial's; for svm, lgbm, text-lr and text-svm, whose trial 0 is
    the default settings, the defaults are kept unless the best trial beats them by 0.01
    inner UA or more. The final study (`BASE/final`, all speakers) gives the parameters
    `predict` uses; it is never scored. --trials is per study and adds trials; with --top-up
    it is each study's total, so the same command resumed after Ctrl-C finishes the budget.
    Running it again resumes the studies; several processes (or machines, with --storage
    postgresql://…) can tune them together (with --top-up they share the budget; on the
    default journal each tuner also runs the default trial, on PostgreSQL one does). With
    --target the studies tune the model's regressor of that rating on inner CCC.

    \b
    Examples:
      sercap tune svm --trials 10
      sercap tune svm --fold 03 --storage postgresql+psycopg://user@host/optuna
      sercap tune xgb --show --out xgb-study.png
    """
    request = dict(
        corpus=corpus,
        labels=label_map,
        feature_set=feature_set,
        image_set=image_set,
        columns=columns,
        speaker_norm=speaker_norm,
        storage=storage,
        study=study,
        target=target,
    )
    if show:  # it tunes nothing: the options of a tuning were dropped without a word
        from click.core import ParameterSource

        # said, not refused: --show is often added to the command that tuned the studies
        tuning = ["trials", "top_up", "timeout", "pruner", "inner_folds", "only_folds",
                  "final", "params", "seed", "jobs", "device", "cluster"]  # fmt: skip
        given = [
            next(p for p in ctx.command.params if p.name == name).opts[0]
            for name in tuning
            if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
        ]
        if given:
            say(
                f"note: --show shows the stored studies and tunes nothing: {', '.join(given)} "
                "not used (the studies shown are those of the other options, or --study)"
            )
    if out is not None and not show:
        raise BadParameterError("--out names the plot of --show; tuning writes no file")
    wh = open_warehouse(ctx, read_only=show)
    if show:
        found = sercap.load_study(wh, model, **request)
        click.echo(str(found))
        if found.final is None:
            if out is not None:  # asked for a file: exit 0 without one read as written
                raise SercapError(
                    f"no final study to plot, so {out} was not written: tune it with "
                    f"`sercap tune {model} --final`"
                )
            return
        try:
            click.echo(f"\nplot of the final study: {found.plot(out)}")
        except OSError as exc:  # the summary asked for is shown: a plot left out is a note
            reason = f"{exc.strerror or exc}: {exc.filename}"
            if out is not None:  # (a warehouse on a read-only disk failed the command)
                raise SercapError(f"cannot write the plot to {out} ({reason})") from exc
            say(
                f"note: the plot of the final study was not written ({reason}); give --out FILE.png"
            )
        return
    result = sercap.tune(
        wh,
        model,
        trials=trials,
        top_up=top_up,
        timeout=timeout,
        pruner=pruner,
        inner_folds=inner_folds,
        final=final,
        folds=list(only_folds) or None,
        params=parse_params(params),
        seed=seed,
        jobs=jobs,
        device=device,
        cluster=cluster,
        progress=bars(),
        say=say,
        **request,
    )
    click.echo(str(result))
    # the command that scores these studies: the options that chose the data, too (without
    # --labels it scored another tuning of the same model, or none)
    given = [("--corpus", corpus), ("--labels", label_map), ("--feature-set", feature_set),
             ("--image-set", image_set), ("--columns", columns), ("--target", target),
             ("--params", params)]  # fmt: skip
    # (--params: what the tuning held fixed, so that the default run holds it too and the
    # comparison is like for like)
    options = "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in given if value)
    options += " --speaker-norm" if speaker_norm else ""
    command = f"sercap train {model}{options} --tuned --study {shlex.quote(result.name)}"
    click.echo(
        f"\nper-fold parameters stored; `{command}` scores each outer fold with its own "
        "study's parameters and compares with the defaults"
    )


@main.command("ensemble")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--weights", help="Comma-separated weight per run, e.g. 2,1,1 (default: equal).")
@click.pass_context
def ensemble_command(ctx: click.Context, run_ids: tuple[str, ...], weights: str | None) -> None:
    """Average the out-of-fold probabilities of stored RUN_IDS and store that as a run.

    The runs must share corpus, label map and protocol. Nothing is retrained: each member's
    predictions were made without the test speaker. But if you chose the members (or
    weights) by their scores, that choice was made on the test folds: the ensemble's UA is
    then optimistic. The run records that its members were chosen by hand, and `report`
    lists it without ranking it or making it the best (`bench --ensemble` stores the fixed
    ensembles it declares before scoring).

    \b
    Examples:
      sercap ensemble RUN_A RUN_B RUN_C
      sercap ensemble RUN_A RUN_B --weights 2,1
    """
    parsed = None
    if weights:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError as exc:
            raise SercapError(f"--weights {weights!r}: give numbers separated by commas") from exc
    click.echo(str(sercap.ensemble_runs(open_warehouse(ctx), list(run_ids), weights=parsed)))
    click.echo(
        "\nnote: members and weights chosen by their scores are selected on the test folds; "
        "this UA is then optimistic (bench --ensemble uses fixed members only)"
    )


@main.command("report")
@corpus_option
@labels_option
@feature_set_option
@click.option(
    "--out",
    "out_dir",
    type=OutFolder(),
    help="Folder for report.md and its PNGs.  [default: WAREHOUSE/reports/CORPUS]",
)
@click.option(
    "--importance/--no-importance",
    default=True,
    show_default=True,
    help="Permutation-importance charts of the newest tabular run (refits its model once "
    "per outer fold; everything else comes from stored predictions).",
)
@click.pass_context
def report_command(ctx: click.Context, corpus, label_map, feature_set, out_dir, importance) -> None:
    """Write a Markdown report with pictures: model comparison (which runs are within noise
    of the best), confusion matrices, per-class recall, UA per gender and per speaker, UA
    against coverage, feature importance, audio vs text runs (UA per modality, where they
    disagree), the functionals that separate the emotions, the corpus at a glance.

    \b
    Examples:
      sercap report --out reports/emodb
      sercap report --corpus emodb --no-importance
    """
    wh = open_warehouse(ctx, read_only=True)  # stores nothing: no byte of the catalog changes
    runs = sercap.runs(wh, corpus=sercap.resolve_corpus(wh, corpus))  # a bad name: one line
    classifying = runs.height and (
        "target" not in runs.columns or runs["target"].is_null().any()
    )  # fmt: skip
    if importance and classifying:  # the one slow part: say so before it starts
        click.echo(
            "permutation importance refits the newest tabular run once per outer fold "
            "(minutes on a big corpus; --no-importance skips it)",
            err=True,
        )
    path = sercap.write_report(
        wh, out_dir, corpus=corpus, labels=label_map, feature_set=feature_set,
        importance=importance,
    )  # fmt: skip
    click.echo(f"report: {path}")


@main.command("predict")
# readable=False: an unreadable file is a row with its reason, not the end of every file's
@click.argument("wavs", nargs=-1, required=True, type=click.Path(path_type=Path, readable=False))
@click.option("--run", "run_id", help="Run whose model predicts (an ensemble run works too).")
@click.option(
    "--model",
    help="Use the newest stored run of this model instead of --run (runs are chosen by "
    "time, never by score).",
)
@corpus_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option(
    "--abstain",
    type=click.FloatRange(0.0, 1.0),
    help="Answer '?' for files whose confidence (top probability) is below this.",
)
@click.option(
    "--coverage",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Or abstain below the confidence that kept this share of the run's stored "
    "out-of-fold predictions (e.g. 0.8).",
)
@click.option("--text", "text", help="The transcript of the one file in WAVS (for text models).")
@click.option(
    "--texts",
    "texts_csv",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A UTF-8 CSV with columns path,text: the transcript of each file (for text models).",
)
@jobs_option
@click.pass_context
def predict_command(
    ctx: click.Context, wavs, run_id, model, corpus, fmt, abstain, coverage, text, texts_csv, jobs
) -> None:
    """Predict the emotion of each audio file in WAVS (any sample rate or channel count).

    The first prediction with a run trains its final model on all of the run's data (same
    parameters and seed) and stores it in the warehouse; later ones load it, with the
    warehouse open read-only (nothing in it changes). A file that
    cannot be read gets a one-line reason and the others still get predictions; the exit
    status is 1 only when no file could be predicted. A file recorded below the features'
    16 kHz, or shorter than every training utterance, is predicted with a note: the model
    never saw audio like it. The confidence column is the top
    probability; with --abstain or --coverage, less confident files get '?' (null in
    json/csv).

    A run of a model that reads transcripts (text-lr, text-svm, text-cnn, fusion,
    early-fusion) reads the words from --text or
    --texts; a file without them is predicted by the newest audio-only run of the corpus,
    and a note names it. An audio run ignores transcripts (with a note).

    A regression run (`train MODEL --target valence`), named with --run, predicts each
    file's rating instead: one column named after the rating.

    \b
    Examples:
      sercap predict clip.wav other.flac --model svm
      sercap predict *.wav --run RUN_ID --coverage 0.8 --format csv
      sercap predict clip.wav --model text-lr --text "I can't believe it"
    """
    from sercap.format import mark_abstained, print_frame

    if bool(run_id) == bool(model):
        raise SercapError("give exactly one of --run RUN_ID or --model NAME")
    if text is not None and texts_csv is not None:
        raise SercapError("give --text (one file) or --texts FILE.csv, not both")
    if text is not None and len(wavs) != 1:
        raise SercapError(
            f"--text is the transcript of one file, and {len(wavs)} are given; "
            "use --texts FILE.csv (columns path,text)"
        )
    given = {wavs[0]: text} if text is not None else texts_csv
    # Read-only when every final model it needs is stored: predicting changes no byte
    # then, and works beside a notebook that holds the warehouse open read-only. Anything
    # a read-only open refuses (an older schema to migrate, a writer's lock) goes the
    # writable way, as before.
    try:
        wh = open_warehouse(ctx, read_only=True)
    except SercapError:
        wh = None
    if wh is None or (
        not wh.on_read_only_disk  # there the model is fitted in memory, and stored nowhere
        and sercap.models_to_fit(
            wh, list(wavs), run=run_id, model=model, corpus=corpus, texts=given
        )
    ):
        if wh is not None:
            wh.close()
        wh = open_warehouse(ctx)
    table = sercap.predict(
        wh,
        list(wavs),
        run=run_id,
        model=model,
        corpus=corpus,
        jobs=jobs,
        progress=bars(),
        abstain=abstain,
        coverage=coverage,
        texts=given,
        say=say,
    )
    failed = table.filter(table["error"].is_not_null())
    if failed.height == table.height:  # nothing predicted: no table of errors
        if failed.height == 1:
            raise SercapError(f"{failed['path'][0]}: {failed['error'][0]}; nothing predicted")
        for path, error in zip(failed["path"], failed["error"], strict=True):
            click.echo(f"warning: {path}: {error}", err=True)
        raise SercapError(f"none of the {failed.height} files could be predicted")
    used = list(dict.fromkeys(table["run_id"]))
    if fmt == "table":
        click.echo(f"run{'s' if len(used) > 1 else ''} {', '.join(used)}", err=True)
    # several runs (a text run and its audio fallback): each row says which one predicted it
    shown = table if len(used) > 1 else table.drop("run_id")
    if fmt == "table":
        shown = mark_abstained(shown)
    print_frame(shown, fmt=fmt, limit=None)
    for path, error in zip(failed["path"], failed["error"], strict=True):
        click.echo(f"warning: {path}: {error}", err=True)
