"""Pure models on numpy arrays: one interface (``SERModel``) and a registry of CLI names."""

from sercap.models.base import SERModel
from sercap.models.registry import MODELS, get_model, load_model, model_names

__all__ = ["MODELS", "SERModel", "get_model", "load_model", "model_names"]
