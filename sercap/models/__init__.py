"""Pure models on numpy arrays: one interface (``SERModel``) and a registry of CLI names."""

from sercap._lazy import import_apart

import_apart("optuna")  # before the models' `import optuna`: see import_apart

from sercap.models.base import SERModel  # noqa: E402
from sercap.models.registry import MODELS, get_model, load_model, model_names  # noqa: E402

__all__ = ["MODELS", "SERModel", "get_model", "load_model", "model_names"]
