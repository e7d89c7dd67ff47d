"""ShallowChrome (Frasca et al., BMC Bioinformatics 23:151, 2022): one number per mark and an
unpenalised logistic regression, 5 weights and a bias; the weights are its interpretation.

Faithful: one feature per mark, the strongest signal near the TSS; a logistic regression without a
penalty (lbfgs, up to 6000 iterations); the feature's definition chosen on the validation split.
Adapted to the archive's input (binned read counts, not MACS2 peaks): a mark's feature is the
maximum of its binned counts within +/-``window`` bins of the TSS (the original: the maximum peak
signal among the peaks within +/-5 kb), log1p-transformed and standardised so that lbfgs converges
on heavy-tailed counts; ``window="valid"`` picks the half-width among ``WINDOWS`` (+/-500 bp to
+/-5 kb) with the best validation AUROC, as the original chose its peak format on validation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from chrombench.errors import ChrombenchError, ModelFormatError
from chrombench.evaluate import auroc
from chrombench.models.contract import ChromModel, check_counts, fit_report
from chrombench.models.contract import TuningBudget

WINDOWS = (5, 10, 20, 50)  # half-widths in 100 bp bins: +/-0.5, 1, 2, 5 kb
STATE_FILE = "shallowchrome.json"


def tss_span(n_bins: int, half_width: int) -> tuple[int, int]:
    """Bins within +/-``half_width`` of the TSS, which sits at the window's middle (between bins 49 and
    50 of the archive's 100)."""
    tss = n_bins // 2
    return max(0, tss - half_width), min(n_bins, tss + half_width)


def tss_max(X: np.ndarray, half_width: int) -> np.ndarray:
    """``[n, marks]``: each mark's maximum binned count within +/-``half_width`` bins of the TSS."""
    lo, hi = tss_span(X.shape[1], half_width)
    return np.asarray(X[:, lo:hi, :], dtype=np.float64).max(axis=1)


class ShallowChrome(ChromModel):
    name: ClassVar[str] = "shallowchrome"
    parameter_count: ClassVar[int | None] = 6
    family: ClassVar[str] = "linear"
    description: ClassVar[str] = ("ShallowChrome (Frasca et al. 2022): per-mark TSS-proximal maximum, unpenalised "
                                  "logistic regression (5 weights + bias)")
    citation: ClassVar[str] = ("Frasca, Morlin, Bernasconi, Ceri, Masseroli. ShallowChrome: predicting gene "
                               "expression from chromatin accessibility with interpretable machine learning. "
                               "BMC Bioinformatics 23:151, 2022")
    seed_param: ClassVar[str] = "seed"
    device_param: ClassVar[None] = None
    iterative: ClassVar[bool] = True
    explains: ClassVar[tuple[str, ...]] = ("importance",)
    param_ranges: ClassVar[dict[str, str]] = {"max_iter": "[1, inf)", "window": "[1, 50]"}  # or "valid"
    tuning: ClassVar[dict] = {"quick": TuningBudget(2), "full": TuningBudget(4, 120.0)}

    def __init__(self, window: Any = "valid", transform: str = "log1p", max_iter: int = 6000, seed: int = 0):
        self.window = window
        self.transform = transform
        self.max_iter = max_iter
        self.seed = seed

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        return {"window": trial.suggest_categorical("window", ["valid", *WINDOWS])}

    # -- the contract ----------------------------------------------------------------------------------
    def fit(self, train, valid=None, on_epoch=None) -> "ShallowChrome":
        from chrombench.models.contract import validate_params

        validate_params(type(self), self.get_params(deep=False))
        if self.transform not in ("log1p", "raw"):
            raise ChrombenchError(f"ShallowChrome transform must be 'log1p' or 'raw', not {self.transform!r}")
        X, y = self._record_input(train), np.asarray(train.y, dtype=np.int8)
        tss_bin = max(1, X.shape[1] // 2)
        if self.window == "valid":
            if valid is None:
                raise ChrombenchError("ShallowChrome(window='valid') chooses its window on the valid split: pass one")
            candidates = tuple(w for w in WINDOWS if w <= tss_bin) or (tss_bin,)
        elif isinstance(self.window, int) and 1 <= self.window <= tss_bin:
            candidates = (int(self.window),)
        else:
            raise ChrombenchError(f"ShallowChrome window must be 'valid' or a half-width in bins 1..{tss_bin}, "
                                  f"not {self.window!r}")
        best = None
        for half in candidates:
            fitted = self._fit_window(X, y, half)
            score = (auroc(valid.y, self._score(check_counts(valid.X, "valid.X", self.input_shape()), half, fitted))
                     if valid is not None and len(candidates) > 1 else 0.0)
            if best is None or score > best[0]:
                best = (score, half, fitted)
        _, self.window_, (self.mean_, self.scale_, self.coef_, self.intercept_, self.n_iter_) = best
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = check_counts(X, shape=self.input_shape())
        if not hasattr(self, "coef_"):
            raise ChrombenchError("ShallowChrome is not fitted yet: call fit() or load a saved model")
        p = self._score(X, self.window_, (self.mean_, self.scale_, self.coef_, self.intercept_, self.n_iter_))
        return np.column_stack([1.0 - p, p])

    def n_parameters(self) -> int:
        return self.input_shape()[1] + 1

    def training_report(self) -> dict:
        stopped = "tolerance" if self.n_iter_ < int(self.max_iter) else "cap"
        return fit_report(stopped, iterative=True, epochs_run=int(self.n_iter_), cap=int(self.max_iter),
                          window_bins=int(self.window_))

    def feature_importance_map(self) -> np.ndarray:
        """|standardised weight| of each mark, spread over the bins its feature reads; sums to 1."""
        n_bins, n_marks = self.input_shape()
        grid = np.zeros((n_marks, n_bins))
        lo, hi = tss_span(n_bins, self.window_)
        grid[:, lo:hi] = np.abs(self.coef_)[:, None] / (hi - lo)
        total = grid.sum()
        return grid / total if total > 0 else grid

    def weights(self) -> dict[str, float]:
        """The interpretation: one standardised weight per mark."""
        return {m: float(w) for m, w in zip(self.input_marks(), self.coef_)}

    # -- helpers ------------------------------------------------------------------------------------------
    def _features(self, X: np.ndarray, half: int) -> np.ndarray:
        F = tss_max(X, half)
        return np.log1p(F) if self.transform == "log1p" else F

    def _fit_window(self, X, y, half: int):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        F = self._features(X, half)
        mean, scale = F.mean(axis=0), F.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported by training_report instead
            clf = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=int(self.max_iter)).fit((F - mean) / scale, y)
        # classes_ is sorted, so coef_ scores class 1 (ON)
        return mean, scale, clf.coef_.ravel(), float(clf.intercept_[0]), int(np.max(clf.n_iter_))

    def _score(self, X, half, fitted) -> np.ndarray:
        mean, scale, coef, intercept, _ = fitted
        z = ((self._features(X, half) - mean) / scale) @ coef + intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))

    # -- persistence: a JSON file of 20 numbers ----------------------------------------------------------
    def _save_state(self, directory: Path) -> dict:
        state = {"window": int(self.window_), "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
                 "coef": self.coef_.tolist(), "intercept": self.intercept_, "n_iter": self.n_iter_}
        (directory / STATE_FILE).write_text(json.dumps(state))
        return {"state": STATE_FILE}

    def _load_state(self, directory: Path, config: dict) -> None:
        from chrombench.models.io import state_file

        path = state_file(directory, config, "state", STATE_FILE)
        try:
            st = json.loads(path.read_text())
            self.window_, self.intercept_, self.n_iter_ = int(st["window"]), float(st["intercept"]), int(st["n_iter"])
            self.mean_, self.scale_, self.coef_ = (np.asarray(st[k], dtype=np.float64) for k in ("mean", "scale", "coef"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFormatError(f"{path}: not a ShallowChrome state ({type(exc).__name__}: {exc})") from exc
        n_marks = self.input_shape()[1]
        if any(a.shape != (n_marks,) for a in (self.mean_, self.scale_, self.coef_)):
            raise ModelFormatError(f"{path}: expected {n_marks} numbers per array (one per mark)")
