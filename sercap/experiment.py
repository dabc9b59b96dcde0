"""One experiment = a model + a dataset + the corpus' protocol → a stored, scored run.

``train`` and ``bench`` (and ``tune`` for its final check) go through :func:`run_model` so
that every figure sercap prints is produced, stored and described the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sercap.data import Dataset, load_dataset
from sercap.errors import SercapError
from sercap.evaluate import CVResult, cross_validate, store_run
from sercap.store import Warehouse, runs


@dataclass(frozen=True)
class DataRequest:
    """What a model needs read from the warehouse (a key: equal requests share a dataset)."""

    input_kind: str
    corpus: str | None
    label_map: str | None
    feature_set: str | None
    columns: str | None
    speaker_norm: bool


def data_request(
    model: str,
    *,
    corpus: str | None = None,
    label_map: str | None = None,
    feature_set: str | None = None,
    image_set: str | None = None,
    columns: str | None = None,
    speaker_norm: bool = False,
) -> DataRequest:
    """The dataset ``model`` trains on; ``columns`` defaults to the model's own pattern."""
    from sercap.models.registry import get_model

    cls = get_model(model)
    kind = cls.input_kind
    return DataRequest(
        input_kind=kind,
        corpus=corpus,
        label_map=label_map,
        feature_set=image_set if kind == "image" else feature_set,
        columns=None if kind == "image" else (columns or cls.default_columns),
        speaker_norm=speaker_norm and kind == "tabular",
    )


def load_for(wh: Warehouse, request: DataRequest) -> Dataset:
    """Read the dataset a :class:`DataRequest` describes."""
    return load_dataset(
        wh,
        request.input_kind,
        corpus=request.corpus,
        label_map=request.label_map,
        feature_set=request.feature_set,
        columns=request.columns,
        speaker_norm=request.speaker_norm,
    )


def tuned_params(wh: Warehouse, model: str, data: Dataset) -> tuple[dict, str]:
    """Best stored parameters for (model, corpus, label map, feature set) and their source."""
    found = runs.latest_tuned_params(wh, model, data.corpus, data.label_map, data.feature_set_hash)
    if found is None:
        raise SercapError(
            f"no tuned parameters for {model} on {data.corpus}/{data.label_map}; run "
            f"`sercap tune {model} --corpus {data.corpus} --labels {data.label_map}` first"
        )
    params, study, trial = found
    return params, f"{study}#{trial}"


@dataclass
class RunOutcome:
    run_id: str
    result: CVResult
    params: dict
    tuned_from: str | None


def run_model(
    wh: Warehouse,
    model: str,
    data: Dataset,
    *,
    params: dict | None = None,
    tuned: bool = False,
    seed: int = 0,
    n_jobs: int = 1,
    device: str | None = None,
    progress: bool = True,
) -> RunOutcome:
    """Cross-validate ``model`` on ``data`` under its protocol and store the run."""
    tuned_from = None
    merged = dict(params or {})
    if tuned:
        best, tuned_from = tuned_params(wh, model, data)
        merged = {**best, **merged}
    result = cross_validate(
        data, model, merged, seed=seed, n_jobs=n_jobs, device=device, progress=progress
    )
    run_id = store_run(wh, data, model, result, params=merged, seed=seed, tuned_from=tuned_from)
    return RunOutcome(run_id=run_id, result=result, params=merged, tuned_from=tuned_from)
