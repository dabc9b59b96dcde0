"""CLI names → model classes."""

from __future__ import annotations

from pathlib import Path

from sercap.errors import BadParameterError
from sercap.models.base import SERModel, read_meta
from sercap.models.cnn import CNNModel, ResNet18Model, ResNet34Model
from sercap.models.dnn import DNNModel
from sercap.models.lstm import LSTMModel
from sercap.models.tabular import (
    LGBMModel,
    RandomForestModel,
    SVMModel,
    TreesVoteModel,
    XGBModel,
)
from sercap.models.text import TextLRModel, TextSVMModel

MODELS: dict[str, type[SERModel]] = {
    cls.name: cls
    for cls in (
        SVMModel,
        RandomForestModel,
        XGBModel,
        LGBMModel,
        TreesVoteModel,
        DNNModel,
        LSTMModel,
        CNNModel,
        ResNet18Model,
        ResNet34Model,
    )
}
#: Models of transcripts (issue 17). Kept out of MODELS (which bench --all, demo and tune tests
#: walk) until sercap.data loads "text" datasets; get_model and model_names know them.
TEXT_MODELS: dict[str, type[SERModel]] = {cls.name: cls for cls in (TextLRModel, TextSVMModel)}


def get_model(name: str) -> type[SERModel]:
    """The class registered under a CLI name; an unknown name lists the valid ones."""
    try:
        return {**MODELS, **TEXT_MODELS}[name]
    except (KeyError, TypeError):
        known = ", ".join([*MODELS, *TEXT_MODELS])
        raise BadParameterError(f"unknown model {name!r}; choose one of: {known}") from None


def model_names(input_kind: str | None = None) -> list[str]:
    """Registered names, optionally only those taking "tabular", "sequence", "image" or "text"
    input."""
    kinds = {"tabular", "sequence", "image", "text"}
    if input_kind is not None and input_kind not in kinds:
        raise BadParameterError(
            f"unknown input kind {input_kind!r}; choose one of: {', '.join(sorted(kinds))}"
        )
    every = {**MODELS, **TEXT_MODELS}
    return [n for n, cls in every.items() if input_kind is None or cls.input_kind == input_kind]


def load_model(path: Path, *, n_jobs: int = 1, device: str | None = None) -> SERModel:
    """Read a model written by :meth:`SERModel.save`, of whichever registered class saved it.

    Parameters
    ----------
    path : Path
        The folder ``save`` wrote.
    n_jobs, device
        As for the model's constructor.
    """
    name = read_meta(Path(path))["name"]
    return get_model(name).load(Path(path), n_jobs=n_jobs, device=device)
