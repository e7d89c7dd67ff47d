"""Plugin models that misbehave (not collected: no test_ prefix), loaded by path: each breaks one
rule of the model contract, and chrombench must refuse it by name, in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_toy_models import TinyLogistic  # noqa: E402


class ExitsInFit(TinyLogistic):
    name = "exits-in-fit"

    def fit(self, train, valid=None, on_epoch=None):
        sys.exit(0)


class OutOfRange(TinyLogistic):
    name = "out-of-range"

    def predict_proba(self, X):
        p = super().predict_proba(X)
        return p * 3 - 1  # outside [0, 1]


class ThreeColumns(TinyLogistic):
    name = "three-columns"

    def predict_proba(self, X):
        p = super().predict_proba(X)
        return np.column_stack([p, p[:, :1]])


class NaNOutput(TinyLogistic):
    name = "nan-output"

    def fit(self, train, valid=None, on_epoch=None):
        return super().fit(train, valid, None)  # its own epoch scores would meet its NaN first

    def predict_proba(self, X):
        p = super().predict_proba(X)
        p[0] = np.nan
        return p


class Wide(TinyLogistic):
    """Allocates ``width`` floats in fit: a huge --param width asks for more memory than there is."""

    name = "wide"

    def __init__(self, lr: float = 0.5, l2: float = 1e-3, epochs: int = 2, seed: int = 0, width: int = 10):
        super().__init__(lr=lr, l2=l2, epochs=epochs, seed=seed)
        self.width = width

    def fit(self, train, valid=None, on_epoch=None):
        self.buffer_ = np.ones(int(self.width))
        return super().fit(train, valid, on_epoch)
