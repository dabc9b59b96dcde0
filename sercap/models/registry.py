"""CLI names → model classes."""

from __future__ import annotations

from sercap.errors import BadParameterError
from sercap.models.base import SERModel
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


def get_model(name: str) -> type[SERModel]:
    """The class registered under a CLI name; an unknown name lists the valid ones."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise BadParameterError(
            f"unknown model {name!r}; choose one of: {', '.join(MODELS)}"
        ) from None


def model_names(input_kind: str | None = None) -> list[str]:
    """Registered names, optionally only those taking "tabular", "sequence" or "image" input."""
    kinds = {"tabular", "sequence", "image"}
    if input_kind is not None and input_kind not in kinds:
        raise BadParameterError(
            f"unknown input kind {input_kind!r}; choose one of: {', '.join(sorted(kinds))}"
        )
    return [n for n, cls in MODELS.items() if input_kind is None or cls.input_kind == input_kind]
