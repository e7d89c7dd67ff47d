"""The evaluator: metrics with a strict, documented input contract (in the spirit of OGB's).

Input contract for ``Evaluator.eval``:
- ``y_true``: 1-D array-like of 0/1 integers (bool accepted), length n >= 2, both classes present;
- ``y_score``: 1-D array-like of finite floats, same length, higher = more likely expressed
  (a probability in [0, 1] for ``accuracy``, which thresholds at 0.5).
Anything else raises ``ValueError`` naming the problem. Depends on numpy only, so third parties
can copy this file to score predictions exactly as the leaderboard does.
"""

from __future__ import annotations

import numpy as np

METRICS = ("auroc", "auprc", "accuracy")


def _check(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 1 or y_score.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-D, got shapes {y_true.shape} and {y_score.shape}")
    if len(y_true) != len(y_score):
        raise ValueError(f"y_true has {len(y_true)} entries but y_score has {len(y_score)}")
    if y_true.dtype == bool:
        y_true = y_true.astype(np.int8)
    if not np.isin(y_true, (0, 1)).all():
        bad = y_true[~np.isin(y_true, (0, 1))][0]
        raise ValueError(f"y_true must hold only 0 and 1, found {bad!r}")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score holds NaN or infinite values")
    n_pos = int(y_true.sum())
    if n_pos == 0 or n_pos == len(y_true):
        raise ValueError("y_true holds a single class; AUROC and AUPRC are undefined")
    return y_true.astype(np.int8), y_score


def auroc(y_true, y_score) -> float:
    """Area under the ROC curve via the rank statistic (ties get average ranks)."""
    y, s = _check(y_true, y_score)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties so that the result equals the trapezoidal ROC area
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auprc(y_true, y_score) -> float:
    """Average precision (step-wise area under the precision-recall curve, as scikit-learn)."""
    y, s = _check(y_true, y_score)
    order = np.argsort(-s, kind="mergesort")
    y_sorted, s_sorted = y[order], s[order]
    # one point per distinct threshold
    distinct = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s_sorted) - 1]
    tp = np.cumsum(y_sorted)[distinct]
    fp = (distinct + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    recall_prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - recall_prev) * precision))


def accuracy(y_true, y_score) -> float:
    y, s = _check(y_true, y_score)
    return float(np.mean((s >= 0.5).astype(np.int8) == y))


class Evaluator:
    """``Evaluator().eval(y_true, y_score)`` -> {"auroc", "auprc", "accuracy"}."""

    def __init__(self, metrics=METRICS):
        unknown = set(metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; known: {list(METRICS)}")
        self.metrics = tuple(metrics)

    def eval(self, y_true, y_score) -> dict[str, float]:
        fns = {"auroc": auroc, "auprc": auprc, "accuracy": accuracy}
        return {m: fns[m](y_true, y_score) for m in self.metrics}
