"""The whole pipeline in one call: corpus → warehouse → features → every model → report.

What `sercap demo` runs. Each step is the same function the individual commands call, so
the demo is also a smoke test of the product, and rerunning it reuses what is stored
(ingest and extraction are incremental; only the benchmark runs again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from textwrap import indent

import polars as pl

from sercap.errors import BadParameterError, NotFoundError, SercapError, option

#: How a corpus directory's layout gives away its kind.
_LAYOUT_HINTS: tuple[tuple[str, str], ...] = (
    ("IEMOCAP_full_release", "iemocap"),
    ("Session1", "iemocap"),
    ("Actor_01", "ravdess"),
    ("AudioWAV", "cremad"),
)


def guess_kind(root: Path) -> str:
    """The corpus kind of a directory, from its layout (say it with ``kind`` when unsure)."""
    if not root.is_dir():
        raise NotFoundError(f"{root}: no such corpus directory")
    for name, kind in _LAYOUT_HINTS:
        if (root / name).is_dir():
            return kind
    wav = root / "wav" if (root / "wav").is_dir() else root
    if any(p.name[:2].isdigit() and len(p.stem) == 7 for p in wav.glob("*.wav")):
        return "emodb"
    if any(p.is_dir() and p.name.split("_")[0] in ("OAF", "YAF") for p in root.iterdir()):
        return "tess"
    raise SercapError(f"{root}: cannot tell the corpus kind from its layout; pass {option('kind')}")


#: The query the demo shows on ``utterance_features`` (voiced-only F0, since unvoiced
#: frames store NULL).
EMOTION_PROFILE_SQL = """
SELECT l.emotion, count(*) AS n,
       round(avg(f.f0_hz_mean), 1) AS f0_mean_hz,
       round(avg(f.f0_hz_iqr), 1) AS f0_iqr_hz,
       round(avg(f.rms_db_mean), 1) AS rms_mean_db,
       round(avg(f.voiced_seg_rate), 2) AS voiced_segments_per_s
FROM utterance_features f
JOIN labels l USING (utt_id)
JOIN utterances u USING (utt_id)
WHERE u.corpus = ?
GROUP BY l.emotion ORDER BY f0_mean_hz DESC"""


@dataclass
class DemoResult:
    table: pl.DataFrame
    report: Path
    warehouse: Path
    corpus: str
    #: Fused runs minus the best single modality (paired bootstrap CI), when both ran.
    fusion: pl.DataFrame | None = None
    #: Each fixed ensemble minus its best member (paired bootstrap CI).
    ensembles: pl.DataFrame | None = None


def run_demo(
    out_dir: Path,
    corpus_dir: Path | None = None,
    kind: str | None = None,
    *,
    models: list[str] | None = None,
    sessions: int | None = None,
    per_speaker: int | None = None,
    quick: bool = True,
    jobs: int = 2,
    seed: int = 0,
    say: Callable[[str], None] = print,
    progress: bool = True,
    resume: bool = False,
) -> DemoResult:
    """synth (unless ``corpus_dir``) → ingest → extract → images → bench → ensembles → report
    (``resume``: the bench takes stored runs of the same settings, see :func:`bench_runs`).

    ``kind`` is the kind of ``corpus_dir`` (default: guessed); ``sessions`` (default 5) and
    ``per_speaker`` (default 36) shape the synthetic corpus, so they need no ``corpus_dir``.
    """
    from sercap.compare import (
        available_models,
        ensembles_vs_best_member,
        fusion_vs_single,
        plan_bench,
        run_bench,
        with_modality,
    )
    from sercap.corpora.ingest import ingest
    from sercap.corpora.synthetic import generate
    from sercap.features.extract import extract
    from sercap.models.registry import MODELS, get_model
    from sercap.report import format_table, write_report
    from sercap.store import connect

    for name in models or []:  # a typo is one line before minutes of synth and extraction
        get_model(name)
    # (each was dropped without a word, and minutes of another demo than asked for followed)
    if corpus_dir is None and kind is not None:
        raise BadParameterError(
            f"{option('kind')} is the kind of {option('corpus_dir')}: give both, or neither "
            "for the synthetic corpus"
        )
    if corpus_dir is not None and (sessions is not None or per_speaker is not None):
        given = option("sessions") if sessions is not None else option("per_speaker")
        raise BadParameterError(
            f"{given} shapes the synthetic corpus, and {option('corpus_dir')} replaces it: "
            "give one or the other"
        )
    sessions = 5 if sessions is None else sessions
    per_speaker = 36 if per_speaker is None else per_speaker
    if corpus_dir is None and not 2 <= sessions <= 9:
        raise BadParameterError(
            f"sessions {sessions}: give 2 to 9 (each session is one outer fold, and "
            "cross-validation needs two)"
        )
    if corpus_dir is None and per_speaker < 1:
        raise BadParameterError(f"per_speaker {per_speaker}: give at least 1")
    from sercap._newfiles import NewFiles

    out_dir = Path(out_dir)
    # what a failed first step made goes (a folder, a corpus, a warehouse, also inside an
    # empty warehouse folder that was there before)
    made = [NewFiles(out_dir / "warehouse"), NewFiles(out_dir)]
    new = not (out_dir / "warehouse" / "sercap.duckdb").is_file()
    wh = None
    try:  # steps 1 and 2: a corpus it cannot read left an empty warehouse behind
        if corpus_dir is None:
            corpus_dir = out_dir / "corpus"
            say(f"1/6 synthetic corpus → {corpus_dir}")
            synth = generate(corpus_dir, sessions=sessions, per_speaker=per_speaker,
                             seed=seed, progress=progress)  # fmt: skip
            corpus_dir = synth.root
            kind = "iemocap"
        else:
            kind = kind or guess_kind(Path(corpus_dir))
            say(f"1/6 corpus {corpus_dir} ({kind})")
        wh = connect(out_dir / "warehouse")
        summary = ingest(wh, kind, corpus_dir, progress=progress)
    except BaseException:
        if wh is not None:
            wh.close()
        if new:
            for files in made:
                files.remove()
        raise
    try:
        say(f"2/6 ingested {summary.corpus}: {summary.read} utterances read, "
            f"{len(summary.problems)} problems")  # fmt: skip
        corpus = summary.corpus
        folds = wh.scalar("SELECT count(DISTINCT fold) FROM folds WHERE corpus = ?", [corpus])
        if folds < 2:  # said before minutes of extraction, not after
            raise SercapError(
                f"corpus {corpus!r} has a single fold under its protocol; speaker-independent "
                "evaluation needs at least two speakers or sessions"
            )
        for step, feature_set in (("3/6", "default"), ("4/6", "mel")):
            done = extract(wh, feature_set, corpus=corpus, jobs=jobs, progress=progress)
            again = f", {done.failed_before} failed before" if done.failed_before else ""
            say(f"{step} {feature_set}: {done.done} extracted, {done.skipped} already stored, "
                f"{done.failed} failed{again}")  # fmt: skip
        profile = format_table(wh.query(EMOTION_PROFILE_SQL, [corpus]), limit=None, float_digits=1)
        say("    utterance_features is plain SQL; per emotion, for example:\n"
            + indent(profile, "    "))  # fmt: skip
        # Every model the corpus can feed: audio, and text and fused ones where it has words.
        specs = plan_bench(models or available_models(wh, corpus, list(MODELS)))
        say(f"5/6 benchmarking {len(specs)} models (speaker-independent cross-validation)")
        table, _, _ = run_bench(
            wh, specs, out_dir / "report", corpus=corpus, ensemble=True, quick=quick,
            seed=seed, n_jobs=jobs, progress=progress, say=say,
            resume=resume,
        )  # fmt: skip
        ensembles = ensembles_vs_best_member(wh, table, seed=seed)
        if not ensembles.is_empty():
            from sercap.format import format_ensemble_comparison

            say("    the fixed ensembles against their best member:\n"
                + indent(format_ensemble_comparison(ensembles), "    "))  # fmt: skip
        fusion = fusion_vs_single(wh, table, seed=seed)
        if not fusion.is_empty():
            from sercap.format import format_fusion_comparison

            say("    audio, text and fused rows on the same utterances:\n"
                + indent(format_fusion_comparison(fusion), "    "))  # fmt: skip
        report = write_report(wh, out_dir / "report", corpus=corpus)
        say(f"6/6 report → {report}")
    finally:
        wh.close()
    return DemoResult(
        table=with_modality(table), report=report, warehouse=out_dir / "warehouse", corpus=corpus,
        fusion=None if fusion.is_empty() else fusion,
        ensembles=None if ensembles.is_empty() else ensembles,
    )  # fmt: skip
