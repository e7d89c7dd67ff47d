"""Interpretation: attention, saliency, integrated gradients and importances, scored against truth."""

from .methods import METHODS, available_methods, explain
from .scoring import random_baseline, score_interpretation

__all__ = ["METHODS", "available_methods", "explain", "random_baseline", "score_interpretation"]
