"""Extraction speed as a user meets it: whole commands, each a new process, side by side.

:mod:`sercap.features.speed` times the computation on audio that is already decoded, in a
warm process. A user runs a command: Python starts, imports, decodes every file, computes,
runs the SQL functionals, writes Parquet and registers the parts. This module times exactly
that, as new processes on the same files in the same run:

``sercap extract --jobs 1``   on a fresh copy of a warehouse where the corpus is ingested
                              (ingesting is not timed: it is a separate command);
``sercap extract --jobs N``   the same with N worker processes;
``openSMILE …, one process``  a plain Python loop a user would write: decode each file at
                              16 kHz with sercap's decoder, ``Smile.process_signal`` it,
                              keep the vector (nothing is stored, which favours openSMILE).

Before the clock starts every audio file is read once (so the OS cache is warm for every
row alike) and one untimed ``extract --limit 1`` fills numba's on-disk cache, as the first
run on a machine does once. Both sides take the same utterances: those the timed
``extract`` stored (a file it refuses, silent or too short, is dropped from openSMILE's list
and from the audio duration, and said), read from the timed warehouses themselves, not from
the caller's catalog. ``x real time`` is that audio's duration over the wall time.
"""

from __future__ import annotations

import functools
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sercap._lazy import pl  # (the timed openSMILE process imports this module: not polars)
from sercap.scale import fresh_copy, run_timed

#: openSMILE feature sets timed beside sercap (their ``opensmile.FeatureSet`` names).
OPENSMILE_SETS = ("eGeMAPSv02",)


@dataclass(frozen=True)
class CommandTiming:
    """One whole process, timed from start to exit."""

    name: str
    command: str
    seconds: float
    audio_s: float
    #: every timed run's seconds, in the order they ran (``seconds`` is their median)
    runs: tuple[float, ...] = ()

    @property
    def realtime(self) -> float:
        return self.audio_s / self.seconds if self.seconds > 0 else float("inf")


def _cli(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sercap", "-w", str(root), *args]


def opensmile_loop(list_file: str | Path, feature_set: str = "eGeMAPSv02") -> int:
    """What the timed openSMILE process runs: decode and ``process_signal`` every file.

    ``list_file`` is JSON: a list of ``[path, start_s, end_s]``. Returns how many files gave
    a feature vector.
    """
    import opensmile

    from sercap.audio import load_audio

    smile = opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )
    done = 0
    for path, start_s, end_s in json.loads(Path(list_file).read_text()):
        y = load_audio(path, 16000, start_s, end_s)
        smile.process_signal(y, 16000)
        done += 1
    return done


def time_commands(
    kind: str,
    corpus_dir: str | Path,
    corpus: str,
    *,
    jobs: int = 2,
    limit: int | None = None,
    opensmile_sets: Sequence[str] = OPENSMILE_SETS,
    work_dir: str | Path | None = None,
    repeat: int = 3,
    say: Callable[[str], None] | None = None,
) -> list[CommandTiming]:
    """Time ``sercap extract`` (1 and ``jobs`` processes) and openSMILE as whole processes.

    Parameters
    ----------
    kind, corpus_dir, corpus : str, path, str
        How to ingest the corpus (``sercap ingest KIND DIR --name CORPUS``) into the fresh
        warehouses.
    jobs : int
        Worker processes of the second ``extract`` row (skipped when 1).
    limit : int, optional
        ``extract --limit``: the first ``limit`` utterances by id.
    opensmile_sets : sequence of str
        openSMILE feature sets to time; empty, or the package missing, skips them.
    work_dir : path, optional
        Where the warehouses go (kept); default a temporary folder (removed).
    repeat : int
        Rounds: every command runs once per round (a fresh warehouse copy each time);
        each row reports the median of its runs.
    say : callable, optional
        Receives a line per step.

    Returns
    -------
    list of CommandTiming
        ``audio_s`` is the duration of the utterances ``extract`` stored, the same for every
        row; openSMILE decodes exactly those.
    """
    from sercap.errors import SercapError

    say = say or (lambda _line: None)
    own = work_dir is None
    base = Path(tempfile.mkdtemp(prefix="sercap-commands-") if own else work_dir)
    base.mkdir(parents=True, exist_ok=True)
    try:
        template = base / "template"
        if not (template / "sercap.duckdb").exists():
            say(f"ingesting {corpus_dir} into a fresh warehouse (not timed)")
            run_timed(
                _cli(template, "ingest", kind, str(corpus_dir), "--name", corpus),
                f"sercap ingest {kind}",
            )
        listed, _ = stored_audio(template, corpus, limit, stored_only=False)
        if not listed:
            raise SercapError(f"{corpus_dir}: the fresh warehouse has no utterance to time")
        for path, _s, _e in listed:  # the OS file cache: warm alike for every row
            Path(path).read_bytes()
        warm = fresh_copy(template, base / "warm-up")
        say("one untimed extract --limit 1 (fills numba's cache, as a machine's first run)")
        # (exit 1: its one utterance could not be extracted, which warms the caches alike)
        warm_up = _cli(warm, "extract", "--jobs", "1", "--limit", "1")
        run_timed(warm_up, "sercap extract (warm-up)", ok=(0, 1))
        lim = ["--limit", str(limit)] if limit else []
        # what the first timed extract stored: both sides' files
        done: dict[str, Any] = {"listed": len(listed)}

        def extract_argv(n: int) -> list[str]:  # each run on a fresh copy of the template
            root = fresh_copy(template, base / f"extract-jobs{n}")
            return _cli(root, "extract", "--jobs", str(n), *lim)

        def opensmile_argv(name: str) -> list[str]:  # after an extract: its files, no others
            list_file = base / "audio.json"
            list_file.write_text(json.dumps([list(a) for a in done["audio"]]))
            return [sys.executable, "-m", "sercap.features.command_speed", str(list_file), name]

        commands: list[tuple[str, Callable[[], list[str]]]] = [
            (f"sercap extract --jobs {n}", functools.partial(extract_argv, n))
            for n in sorted({1, int(jobs)})
        ]
        for name in list(opensmile_sets) if _opensmile_available() else []:
            commands.append(
                (f"openSMILE {name}, one process", functools.partial(opensmile_argv, name))
            )
        # Rounds, each running every command once: a machine that speeds up or slows down
        # during the run (shared cores) moves every row alike, and the median of each row
        # is compared with the others'.
        runs: dict[str, list[float]] = {label: [] for label, _make in commands}
        shown: dict[str, str] = {}
        for round_no in range(1, int(repeat) + 1):
            for label, make_argv in commands:
                argv = make_argv()
                say(f"round {round_no}/{repeat}: timing {label}")
                seconds, _out = run_timed(argv, label)
                runs[label].append(seconds)
                shown[label] = " ".join(argv[1:])
                if label.startswith("sercap extract"):
                    _same_as_before(done, stored_audio(Path(argv[4]), corpus, limit), say)
        audio_s = done["seconds"]
        return [
            CommandTiming(
                label, shown[label], statistics.median(runs[label]), audio_s, tuple(runs[label])
            )
            for label, _make in commands
        ]
    finally:
        if own:
            shutil.rmtree(base, ignore_errors=True)


def stored_audio(
    root: Path, corpus: str, limit: int | None, *, stored_only: bool = True
) -> tuple[list[tuple[str, float | None, float | None]], float]:
    """(path, start_s, end_s) of the first ``limit`` utterances of ``corpus`` in the
    warehouse at ``root`` (by id, as ``extract --limit`` takes them) and their seconds of
    audio; with ``stored_only`` only those whose extraction is stored (``ok``)."""
    from sercap.store import connect
    from sercap.store.catalog import ok_extractions, utterance_audio

    with connect(root, read_only=True) as wh:
        rows = utterance_audio(wh, corpus, limit)
        ok = {utt for utt, _set, _part in ok_extractions(wh)}
    kept = [r for r in rows if not stored_only or r[0] in ok]
    return [(p, s, e) for _u, p, s, e, _d in kept], float(sum(d or 0.0 for *_r, d in kept))


def _same_as_before(done: dict, found: tuple[list, float], say: Callable[[str], None]) -> None:
    """Record what the first timed extract stored; every later one must store the same."""
    from sercap.errors import SercapError

    audio, seconds = found
    if "audio" not in done:
        done["audio"], done["seconds"] = audio, seconds
        if not audio:
            raise SercapError("the timed extract stored no utterance; nothing to compare")
        if len(audio) < done["listed"]:
            say(
                f"{done['listed'] - len(audio)} of {done['listed']} utterances failed in "
                f"extract (see `sercap check`); both sides are timed on the {len(audio)} it "
                "stored"
            )
        return
    if audio != done["audio"]:
        raise SercapError(
            f"two timed extracts stored different utterances ({len(done['audio'])} and "
            f"{len(audio)}); the timings would not be of the same work"
        )


def _opensmile_available() -> bool:
    from sercap.features.opensmile import available

    return available()


def commands_table(rows: Sequence[CommandTiming]) -> pl.DataFrame:
    """One row per command: seconds (the median run), every run's seconds, x real time, and
    speed relative to openSMILE's first timed set (``vs_opensmile``: how many times faster,
    median against median; null without openSMILE)."""
    ref = next((r for r in rows if r.name.startswith("openSMILE")), None)
    return pl.DataFrame(
        {
            "command": [r.name for r in rows],
            "seconds": [round(r.seconds, 2) for r in rows],
            "runs_s": [" ".join(f"{x:.2f}" for x in r.runs) for r in rows],
            "audio_s": [round(r.audio_s, 1) for r in rows],
            "x_real_time": [round(r.realtime, 1) for r in rows],
            "vs_opensmile": [
                round(ref.seconds / r.seconds, 2) if ref is not None else None for r in rows
            ],
        },
        schema_overrides={"vs_opensmile": pl.Float64},
    )


if __name__ == "__main__":  # the timed openSMILE process: LIST_FILE [FEATURE_SET]
    print(opensmile_loop(sys.argv[1], *(sys.argv[2:3] or ["eGeMAPSv02"])))
