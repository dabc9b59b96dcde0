"""What a run listens to: audio, text (transcripts) or both, and where audio and text disagree.

A run's modality comes from its model's input kind (``sercap.models`` classes declare it):
the audio kinds (tabular functionals, per-frame sequences, spectrogram images) are "audio",
"text" is "text", and a kind that reads both (a fusion model) is "fused". An ensemble's is
its members' together: all audio, all text, or "fused" when it averages both.

The report's modality section is computed from stored out-of-fold predictions only: no model
is fitted again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sercap.errors import SercapError
from sercap.store import Warehouse
from sercap.store import runs as store_runs

AUDIO = "audio"
TEXT = "text"
FUSED = "fused"
MODALITIES = (AUDIO, TEXT, FUSED)
#: Input kinds of models that read the audio only.
AUDIO_KINDS = frozenset({"tabular", "sequence", "image"})


def input_modality(input_kind: str) -> str:
    """The modality of a model's input kind.

    Parameters
    ----------
    input_kind : str
        A model class' ``input_kind`` ("tabular", "sequence", "image", "text", "fusion"…).

    Returns
    -------
    str
        "audio", "text", or "fused" for any kind that is neither (it reads both).

    Examples
    --------
    >>> [input_modality(k) for k in ("tabular", "image", "text", "fusion")]
    ['audio', 'audio', 'text', 'fused']
    """
    if input_kind in AUDIO_KINDS:
        return AUDIO
    if input_kind == TEXT:
        return TEXT
    return FUSED


def combine(modalities: list[str]) -> str:
    """The modality of an average of runs: shared, or "fused" when they differ.

    Examples
    --------
    >>> combine(["audio", "audio"]), combine(["audio", "text"]), combine(["text"])
    ('audio', 'fused', 'text')
    """
    if not modalities:
        raise SercapError("no modality to combine")
    return modalities[0] if len(set(modalities)) == 1 else FUSED


def model_modality(model: str) -> str | None:
    """The modality of a registered model name; None for a name this sercap does not know."""
    from sercap.models.registry import input_kind

    try:
        kind = input_kind(model)
    except SercapError:
        return None
    return input_modality(kind)


def run_modality(wh: Warehouse, run: dict) -> str | None:
    """The modality of a stored run (a ``runs`` record); None when a model is unknown."""
    if run.get("members"):  # an ensemble (or any run made of member runs)
        found = [run_modality(wh, store_runs.get_run(wh, m)) for m in run["members"]]
        return None if None in found else combine(found)
    return model_modality(run["model"])


def needs_text(modality: str | None) -> bool:
    """Whether a run of this modality reads transcripts."""
    return modality in (TEXT, FUSED)


# ----------------------------------------------------------------------------- report
@dataclass
class Disagreement:
    """Audio vs text on the utterances both runs predicted (from stored predictions)."""

    audio_run: str
    text_run: str
    n_common: int
    n_disagree: int
    audio_ua: float | None  # on the utterances where they disagree
    text_ua: float | None
    audio_right: int  # of the disagreements: only audio right, only text right, neither
    text_right: int
    neither: int
    fused_run: str | None = None
    fused_ua: float | None = None

    @property
    def share(self) -> float:
        """Share of the common utterances where the two predictions differ."""
        return self.n_disagree / self.n_common if self.n_common else float("nan")


def subset_ua(labels: list[str], predicted: list[str]) -> float | None:
    """UA (mean recall over the classes present in ``labels``); None for no utterance.

    Examples
    --------
    >>> subset_ua(["ang", "ang", "sad"], ["ang", "sad", "sad"])
    0.75
    """
    if not labels:
        return None
    truth = np.asarray(labels)
    guess = np.asarray(predicted)
    recalls = [float(np.mean(guess[truth == c] == c)) for c in np.unique(truth)]
    return float(np.mean(recalls))


def disagreement(
    audio: pl.DataFrame,
    text: pl.DataFrame,
    fused: pl.DataFrame | None = None,
    *,
    audio_run: str = "",
    text_run: str = "",
    fused_run: str | None = None,
) -> Disagreement:
    """Where an audio run's and a text run's out-of-fold predictions differ.

    Parameters
    ----------
    audio, text : polars.DataFrame
        Stored predictions (``utt_id``, ``label``, ``predicted``) of the two runs.
    fused : polars.DataFrame, optional
        A fused run's predictions: its UA on the same disagreements.
    audio_run, text_run, fused_run : str
        Their run ids (carried into the result).

    Returns
    -------
    Disagreement

    Examples
    --------
    >>> import polars as pl
    >>> a = pl.DataFrame({"utt_id": ["u1", "u2", "u3"], "label": ["ang", "sad", "sad"],
    ...                   "predicted": ["ang", "ang", "sad"]})
    >>> t = a.with_columns(predicted=pl.Series(["sad", "sad", "sad"]))
    >>> d = disagreement(a, t)
    >>> d.n_common, d.n_disagree, d.audio_ua, d.text_ua
    (3, 2, 0.5, 0.5)
    """
    pair = audio.select("utt_id", "label", pl.col("predicted").alias("audio")).join(
        text.select("utt_id", pl.col("predicted").alias("text")), on="utt_id", how="inner"
    )
    differ = pair.filter(pl.col("audio") != pl.col("text")).sort("utt_id")
    labels = differ["label"].to_list()
    audio_hit = differ["audio"] == differ["label"]
    text_hit = differ["text"] == differ["label"]
    fused_ua = None
    if fused is not None:
        both = differ.join(
            fused.select("utt_id", pl.col("predicted").alias("fused")), on="utt_id", how="inner"
        )
        fused_ua = subset_ua(both["label"].to_list(), both["fused"].to_list())
    return Disagreement(
        audio_run=audio_run,
        text_run=text_run,
        n_common=pair.height,
        n_disagree=differ.height,
        audio_ua=subset_ua(labels, differ["audio"].to_list()),
        text_ua=subset_ua(labels, differ["text"].to_list()),
        audio_right=int((audio_hit & ~text_hit).sum()),
        text_right=int((text_hit & ~audio_hit).sum()),
        neither=int((~audio_hit & ~text_hit).sum()),
        fused_run=fused_run if fused is not None else None,
        fused_ua=fused_ua,
    )


@dataclass
class ModalityRuns:
    """The newest run of each configuration on a corpus, with its modality (newest first)."""

    rows: pl.DataFrame  # run_id, model, kind, modality, ua, started_at

    def newest(self, modality: str) -> str | None:
        """The newest run of a modality (by time, never by UA)."""
        mine = self.rows.filter(pl.col("modality") == modality)
        return mine["run_id"][0] if mine.height else None


def modality_runs(wh: Warehouse, corpus: str, label_map: str) -> ModalityRuns:
    """The newest run of each configuration of ``corpus``/``label_map`` with its modality;
    runs of models this sercap does not know are left out, and so are ensembles whose
    members no fixed rule named (:func:`sercap.ensemble.members_chosen_by`: chosen by hand,
    perhaps after reading the members' test scores), which would stand as "the fused run"."""
    from sercap.ensemble import FIXED_RULE, members_chosen_by

    rows = []
    for run_id in store_runs.newest_per_configuration(wh, corpus, label_map):
        run = store_runs.get_run(wh, run_id)
        if members_chosen_by(run) not in (None, FIXED_RULE):
            continue
        modality = run_modality(wh, run)
        if modality is not None:
            rows.append(
                {
                    "run_id": run["run_id"],
                    "model": run["model"],
                    "kind": run["kind"],
                    "modality": modality,
                    "ua": float(run["ua"]),
                    "started_at": run["started_at"],
                }
            )
    schema = {
        "run_id": pl.String,
        "model": pl.String,
        "kind": pl.String,
        "modality": pl.String,
        "ua": pl.Float64,
        "started_at": pl.Datetime,
    }
    frame = pl.DataFrame(rows, schema=schema)
    return ModalityRuns(frame.sort(["started_at", "run_id"], descending=True))


def modality_section(wh: Warehouse, corpus: str, label_map: str) -> list[str]:
    """The report's Markdown lines on audio vs text runs (one line when there is no text run).

    UA of the newest run of each configuration, by modality; then, for the newest audio run
    and the newest text run, the share of their common utterances where they disagree and
    each one's UA there (with the newest fused run's, if any). Reads stored predictions only.
    """
    found = modality_runs(wh, corpus, label_map)
    if found.newest(TEXT) is None:
        return [
            f"No modality section: {corpus} ({label_map}) has no text run "
            "(`sercap train text-lr` on a corpus with transcripts).",
            "",
        ]
    predicted = {r: store_runs.predictions(wh, r) for r in found.rows["run_id"]}
    common = set.intersection(*(set(p["utt_id"]) for p in predicted.values()))
    lines = [
        "## Audio, text and fused",
        "",
        "UA of the newest run of each configuration, by what it reads (a run's modality is "
        "its model's input kind; an ensemble of audio and text runs is fused). Text runs "
        "leave out utterances without words, so the runs predicted different utterances: "
        f"compare them on the {len(common)} all of them predicted (the last column).",
        "",
        "| modality | run | model | UA | utterances | UA on the common ones |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for modality in MODALITIES:
        mine = found.rows.filter(pl.col("modality") == modality).sort("ua", descending=True)
        for r in mine.iter_rows(named=True):
            own = predicted[r["run_id"]]
            lines.append(
                f"| {modality} | {r['run_id']} | {r['model']} | {r['ua']:.3f} | {own.height} "
                f"| {_ua_on(own, common)} |"
            )
    lines.append("")
    audio_id, text_id, fused_id = (found.newest(m) for m in MODALITIES)
    if audio_id is None:
        return [*lines, "No audio run to compare the text runs with.", ""]
    result = disagreement(
        store_runs.predictions(wh, audio_id),
        store_runs.predictions(wh, text_id),
        store_runs.predictions(wh, fused_id) if fused_id else None,
        audio_run=audio_id,
        text_run=text_id,
        fused_run=fused_id,
    )
    return [*lines, *disagreement_markdown(result), ""]


def _ua_on(predictions: pl.DataFrame, utt_ids: set[str]) -> str:
    """:func:`subset_ua` of stored predictions on some utterances, as the table shows it
    ("n/a": none)."""
    rows = predictions.filter(pl.col("utt_id").is_in(sorted(utt_ids)))
    ua = subset_ua(rows["label"].to_list(), rows["predicted"].to_list())
    return "n/a" if ua is None else f"{ua:.3f}"


def disagreement_markdown(result: Disagreement) -> list[str]:
    """Markdown lines describing a :class:`Disagreement`."""

    def name(run_id: str) -> str:
        return f"`{run_id}`"

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    if result.n_common == 0:
        return [
            f"The newest audio run ({name(result.audio_run)}) and text run "
            f"({name(result.text_run)}) share no predicted utterance."
        ]
    lines = [
        "### Where audio and text disagree",
        "",
        f"The newest audio run ({name(result.audio_run)}) and the newest text run "
        f"({name(result.text_run)}) predict different classes for {result.n_disagree} of "
        f"their {result.n_common} common utterances ({result.share:.1%}), from their stored "
        "out-of-fold predictions.",
    ]
    if result.n_disagree == 0:
        return lines
    lines += [
        "",
        "| on the disagreements | UA | right alone |",
        "| --- | --- | --- |",
        f"| audio ({name(result.audio_run)}) | {pct(result.audio_ua)} | {result.audio_right} |",
        f"| text ({name(result.text_run)}) | {pct(result.text_ua)} | {result.text_right} |",
    ]
    if result.fused_run is not None:
        lines.append(f"| fused ({name(result.fused_run)}) | {pct(result.fused_ua)} | |")
    lines += ["", f"Neither is right on {result.neither} of them."]
    return lines
