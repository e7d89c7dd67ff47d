"""The model declarations, kept importable here for model files written against this module (the
zoo's, and third parties'); they live in ``chrombench.models.contract``, the one protocol module."""

from .contract import (DEFAULT_TUNING, EXPLAINS, SEED_NAMES, TuningBudget, device_param,  # noqa: F401
                       init_params, seed_param, tuning_budget)
