"""The model contract and the model registry (names -> lazy ``module:Class`` targets).

The names below are loaded on first use: the contract imports scikit-learn (seconds), which a
command that only lists or resolves names (``chrombench models list``) never needs.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"ChromModel": "contract", "EpochCallback": "contract", "MODELS": "registry",
            "get_model_class": "registry", "make_model": "registry"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
