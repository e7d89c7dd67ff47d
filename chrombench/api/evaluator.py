"""``Evaluator``, OGB-style: ``Evaluator("E003").eval({"y_true": ..., "y_pred": ...})``.

A thin front over ``chrombench.evaluate`` (the metrics the engine records and the leaderboard's
validator recomputes): this class only checks the input and says exactly what is wrong with it, then
hands numpy arrays to the same functions, so a score computed here equals the engine's to the bit
for the same predictions in the same order.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .. import evaluate
from ..errors import PredictionsError


class Evaluator:
    """Scores predictions for one task with the leaderboard's metrics (AUROC, AUPRC, accuracy).

    ``Evaluator(name).eval({"y_true": y, "y_pred": p})`` -> ``{"auroc": ..., "auprc": ..., "accuracy": ...}``.
    """

    expected_input_format = (
        "eval(input_dict): input_dict = {'y_true': labels, 'y_pred': probabilities}; both 1-D (or [n, 1]) "
        "numpy arrays, torch tensors or lists of the same length n >= 2, one entry per gene. y_true: 0/1 "
        "(bool and 0.0/1.0 accepted), both classes present. y_pred: the probability that the gene is "
        "expressed, a finite float in [0, 1] (accuracy thresholds it at 0.5; AUROC and AUPRC use its order).")
    expected_output_format = ("{'auroc': float, 'auprc': float, 'accuracy': float}: AUROC (ties get average ranks), "
                              "average precision (as scikit-learn), accuracy at 0.5. The leaderboard ranks by AUROC.")

    def __init__(self, name: str = "E003") -> None:
        """``name``: the task the predictions are for (an EID, an imported dataset's task, ``NAME/TASK``).
        Every task uses the same metrics; the name says which task a score belongs to."""
        if not isinstance(name, str) or not name:
            raise PredictionsError(f"Evaluator needs a task name such as 'E003', got {name!r}")
        self.name = name
        self.metrics = evaluate.METRICS

    def eval(self, input_dict: Mapping[str, Any]) -> dict[str, float]:
        """The metrics for ``input_dict`` (see ``expected_input_format``); a ``PredictionsError`` (a
        ``ValueError``) naming the problem for anything else."""
        if not isinstance(input_dict, Mapping):
            raise PredictionsError(f"eval takes a dict {{'y_true': ..., 'y_pred': ...}}, got {type(input_dict).__name__}")
        missing = [k for k in ("y_true", "y_pred") if k not in input_dict]
        if missing:
            raise PredictionsError(f"input_dict lacks {', '.join(repr(k) for k in missing)} (it has "
                                   f"{', '.join(map(repr, input_dict)) or 'no keys'}); {self.expected_input_format}")
        y_true, y_pred = check_input(input_dict["y_true"], input_dict["y_pred"])
        return evaluate.Evaluator(self.metrics).eval(y_true, y_pred)

    def __repr__(self) -> str:
        return f"Evaluator({self.name!r}, metrics={list(self.metrics)})"


def _numpy(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU or requiring grad
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise PredictionsError(f"{what} cannot be read as an array: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        hint = " (two columns: pass the probability of the expressed class, y_pred[:, 1])" \
            if what == "y_pred" and arr.ndim == 2 and arr.shape[1] == 2 else ""
        raise PredictionsError(f"{what} has shape {arr.shape}; expected [n] or [n, 1], one entry per gene{hint}")
    return arr


def check_input(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true as int8, y_pred as float64)`` after the checks of ``Evaluator.expected_input_format``."""
    t, p = _numpy(y_true, "y_true"), _numpy(y_pred, "y_pred")
    if len(t) != len(p):
        raise PredictionsError(f"y_true has {len(t)} entries but y_pred has {len(p)}: one of each per gene")
    if len(t) < 2:
        raise PredictionsError(f"{len(t)} predictions; AUROC needs at least two genes, one of each class")
    if t.dtype == bool:
        t = t.astype(np.int8)
    if not np.issubdtype(t.dtype, np.number):
        raise PredictionsError(f"y_true has dtype {t.dtype}; expected 0/1 labels")
    bad = np.flatnonzero(~np.isin(t, (0, 1)))
    if len(bad):
        raise PredictionsError(f"y_true[{bad[0]}] = {t[bad[0]]!r}: labels must be 0 or 1")
    if not np.issubdtype(p.dtype, np.number) or np.iscomplexobj(p):
        raise PredictionsError(f"y_pred has dtype {p.dtype}; expected probabilities (floats in [0, 1])")
    p = p.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(p))
    if len(bad):
        raise PredictionsError(f"y_pred[{bad[0]}] is {p[bad[0]]}: {len(bad)} of {len(p)} predictions are NaN or "
                               "infinite")
    bad = np.flatnonzero((p < 0) | (p > 1))
    if len(bad):
        raise PredictionsError(f"y_pred[{bad[0]}] = {p[bad[0]]!r} is not a probability in [0, 1] ({len(bad)} such "
                               "values; apply a sigmoid to logits)")
    n_pos = int(t.sum())
    if n_pos in (0, len(t)):
        raise PredictionsError(f"y_true holds a single class (all {int(t[0])}); AUROC and AUPRC need both classes")
    return t.astype(np.int8), p
