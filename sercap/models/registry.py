"""CLI names → model classes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path

from sercap._interrupt import import_whole
from sercap.errors import BadParameterError
from sercap.models.base import SERModel, read_meta

#: name → (module under sercap.models, class, input kind). The classes load on first use:
#: importing them all pulled torch and torchvision (1.3 s) and the gradient-boosting
#: libraries into `train svm` and `predict --model svm`. A test checks this table against
#: the classes' own ``name`` and ``input_kind``.
_TABLE: dict[str, tuple[str, str, str]] = {
    "svm": ("tabular", "SVMModel", "tabular"),
    "rf": ("tabular", "RandomForestModel", "tabular"),
    "xgb": ("tabular", "XGBModel", "tabular"),
    "lgbm": ("tabular", "LGBMModel", "tabular"),
    "trees": ("tabular", "TreesVoteModel", "tabular"),
    "dnn": ("dnn", "DNNModel", "tabular"),
    "lstm": ("lstm", "LSTMModel", "sequence"),
    "cnn": ("cnn", "CNNModel", "image"),
    "resnet18": ("cnn", "ResNet18Model", "image"),
    "resnet34": ("cnn", "ResNet34Model", "image"),
    "text-lr": ("text", "TextLRModel", "text"),
    "text-svm": ("text", "TextSVMModel", "text"),
    "text-cnn": ("text_cnn", "TextCNNModel", "text"),
    "fusion": ("fusion", "LateFusionModel", "multimodal"),
    "early-fusion": ("fusion", "EarlyFusionModel", "multimodal"),
}


class _Registry(MutableMapping[str, type[SERModel]]):
    """A name → class mapping whose built-in classes are imported when looked up. A class
    added to it (``MODELS["mine"] = MyModel``, as a test's spy model is) is kept as given."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = list(names)
        self._added: dict[str, type[SERModel]] = {}

    def __getitem__(self, name: str) -> type[SERModel]:
        if not isinstance(name, str) or name not in self._names:
            raise KeyError(name)
        if name in self._added:
            return self._added[name]
        module, cls, _kind = _TABLE[name]
        # (whole: a Ctrl-C inside torch's import would break every torch model after it)
        return getattr(import_whole(f"sercap.models.{module}"), cls)

    def __setitem__(self, name: str, cls: type[SERModel]) -> None:
        if name not in self._names:
            self._names.append(name)
        self._added[name] = cls

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        self._added.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __repr__(self) -> str:
        return f"<models {', '.join(self._names)}>"


MODELS: MutableMapping[str, type[SERModel]] = _Registry(_TABLE)
#: Models of transcripts alone (issue 17); registered in MODELS like every model.
TEXT_MODELS: Mapping[str, type[SERModel]] = _Registry(
    n for n, (_m, _c, kind) in _TABLE.items() if kind == "text"
)
#: Models reading functionals and transcripts of the same utterances together.
FUSION_MODELS: Mapping[str, type[SERModel]] = _Registry(
    n for n, (_m, _c, kind) in _TABLE.items() if kind == "multimodal"
)
#: Input kinds that need a corpus with transcripts.
NEEDS_TEXT = ("text", "multimodal")


def input_kind(name: str) -> str:
    """The input kind of a registered model, without importing a built-in one (an unknown
    name is :func:`get_model`'s error)."""
    if name not in _TABLE or name not in MODELS or name in MODELS._added:  # type: ignore[attr-defined]
        return get_model(name).input_kind
    return _TABLE[name][2]


_kind_of = input_kind  # (model_names' parameter shadows the name)


def get_model(name: str) -> type[SERModel]:
    """The class registered under a CLI name; an unknown name lists the valid ones."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        known = ", ".join(MODELS)
        raise BadParameterError(f"unknown model {name!r}; choose one of: {known}") from None


def may_run_torch(cls: type[SERModel]) -> bool:
    """Whether a model class's fits may run torch: it is a TorchModel (told by name, so
    that asking does not import torch into `train svm`), or it fuses audio and words (its
    members are chosen by parameters: dnn, text-cnn…)."""
    return cls.input_kind == "multimodal" or any(c.__name__ == "TorchModel" for c in cls.__mro__)


def model_names(input_kind: str | None = None) -> list[str]:
    """Registered names, optionally only those taking "tabular", "sequence", "image", "text"
    or "multimodal" (functionals and transcripts) input."""
    kinds = {"tabular", "sequence", "image", "text", "multimodal"}
    if input_kind is not None and input_kind not in kinds:
        raise BadParameterError(
            f"unknown input kind {input_kind!r}; choose one of: {', '.join(sorted(kinds))}"
        )
    return [n for n in MODELS if input_kind is None or _kind_of(n) == input_kind]


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
