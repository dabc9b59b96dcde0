"""CLI names → model classes."""

from __future__ import annotations

from pathlib import Path

from sercap.errors import BadParameterError
from sercap.models.base import SERModel, read_meta
from sercap.models.cnn import CNNModel, ResNet18Model, ResNet34Model
from sercap.models.dnn import DNNModel
from sercap.models.fusion import EarlyFusionModel, LateFusionModel
from sercap.models.lstm import LSTMModel
from sercap.models.tabular import (
    LGBMModel,
    RandomForestModel,
    SVMModel,
    TreesVoteModel,
    XGBModel,
)
from sercap.models.text import TextLRModel, TextSVMModel
from sercap.models.text_cnn import TextCNNModel

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
        TextLRModel,
        TextSVMModel,
        TextCNNModel,
        LateFusionModel,
        EarlyFusionModel,
    )
}
#: Models of transcripts alone (issue 17); registered in MODELS like every model.
TEXT_MODELS: dict[str, type[SERModel]] = {
    name: cls for name, cls in MODELS.items() if cls.input_kind == "text"
}
#: Models reading functionals and transcripts of the same utterances together.
FUSION_MODELS: dict[str, type[SERModel]] = {
    name: cls for name, cls in MODELS.items() if cls.input_kind == "multimodal"
}
#: Input kinds that need a corpus with transcripts.
NEEDS_TEXT = ("text", "multimodal")


def get_model(name: str) -> type[SERModel]:
    """The class registered under a CLI name; an unknown name lists the valid ones."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        known = ", ".join(MODELS)
        raise BadParameterError(f"unknown model {name!r}; choose one of: {known}") from None


def model_names(input_kind: str | None = None) -> list[str]:
    """Registered names, optionally only those taking "tabular", "sequence", "image", "text"
    or "multimodal" (functionals and transcripts) input."""
    kinds = {"tabular", "sequence", "image", "text", "multimodal"}
    if input_kind is not None and input_kind not in kinds:
        raise BadParameterError(
            f"unknown input kind {input_kind!r}; choose one of: {', '.join(sorted(kinds))}"
        )
    return [n for n, cls in MODELS.items() if input_kind is None or cls.input_kind == input_kind]


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
