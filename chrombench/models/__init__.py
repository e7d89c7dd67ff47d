"""The model contract and the model registry (names -> lazy ``module:Class`` targets)."""

from .contract import ChromModel, EpochCallback
from .registry import MODELS, get_model_class, make_model

__all__ = ["ChromModel", "EpochCallback", "MODELS", "get_model_class", "make_model"]
