"""Fixed-length feature vectors for the classical baselines, and the way back to the count grid.

A gene is a ``[100 bins, 5 marks]`` matrix of raw read counts. Counts are heavy-tailed (H3K4me3
reaches several hundred while most bins hold 0-3), so every feature is built from ``log1p``
counts. Three feature sets (the ``features`` hyperparameter of every classical model):

``"windows"``  (50 features)
    log1p counts averaged over 10 windows of 10 bins (1 kb) per mark. Coarse, smooth and
    cheap: the right input for kernel methods, whose cost grows with the feature count.
``"flat"``     (500 features)
    every log1p count, one feature per (mark, bin): full 100 bp resolution.
``"both"``     (150 features)
    the 50 window features plus the per-bin log1p counts of the 20 central bins (bins 40-59,
    i.e. +/-1 kb around the TSS, where promoter marks such as H3K4me3 carry most signal).

Features are ordered mark-major: all features of H3K27me3 first, then H3K36me3, ... (the order
of ``chrombench.MARKS``); within a mark, by position. ``feature_cells(kind)`` gives, for every
feature index, the ``(mark_index, bin_start, bin_stop)`` cells it summarises (0-based bins,
stop exclusive), and ``importance_to_grid`` spreads per-feature importances back onto the
``[5 marks, 100 bins]`` grid that the simulator's ground-truth importance maps use.
"""

from __future__ import annotations

import numpy as np

from chrombench import N_BINS, N_MARKS
from chrombench.errors import UnknownNameError
from chrombench.registry import suggest

FEATURE_KINDS = ("windows", "flat", "both")
WINDOW = 10  # bins per window: 10 x 100 bp = 1 kb (the last window is shorter where bins % 10 != 0)
CENTRAL = (40, 60)  # bins 40..59: +/-1 kb around the TSS, which sits between bins 49 and 50 (0-based)


def central(n_bins: int) -> tuple[int, int]:
    """The 20 bins around the TSS (the window's middle): CENTRAL for the archive's 100 bins."""
    c = n_bins // 2
    return max(0, c - 10), min(n_bins, c + 10)


def windows(n_bins: int) -> list[tuple[int, int]]:
    return [(b, min(b + WINDOW, n_bins)) for b in range(0, n_bins, WINDOW)]


def _check_kind(kind: str) -> None:
    if kind not in FEATURE_KINDS:
        raise UnknownNameError(suggest(str(kind), list(FEATURE_KINDS), "feature set"))


def n_features(kind: str, n_bins: int = N_BINS, n_marks: int = N_MARKS) -> int:
    return len(feature_cells(kind, n_bins, n_marks))


def feature_cells(kind: str, n_bins: int = N_BINS, n_marks: int = N_MARKS) -> list[tuple[int, int, int]]:
    """``(mark_index, bin_start, bin_stop)`` for every feature index of feature set ``kind``."""
    _check_kind(kind)
    cells: list[tuple[int, int, int]] = []
    if kind in ("windows", "both"):
        cells += [(m, b, e) for m in range(n_marks) for b, e in windows(n_bins)]
    if kind == "flat":
        cells += [(m, b, b + 1) for m in range(n_marks) for b in range(n_bins)]
    if kind == "both":
        cells += [(m, b, b + 1) for m in range(n_marks) for b in range(*central(n_bins))]
    return cells


def make_features(X: np.ndarray, kind: str) -> np.ndarray:
    """Raw counts ``[n, bins, marks]`` -> float32 features ``[n, n_features(kind, bins, marks)]``."""
    _check_kind(kind)
    # mark-major layout [n, marks, bins] so that reshapes below follow feature_cells' order
    logged = np.log1p(np.asarray(X, dtype=np.float32)).transpose(0, 2, 1)
    n, n_marks, n_bins = logged.shape
    parts = []
    if kind in ("windows", "both"):
        if n_bins % WINDOW == 0:
            parts.append(logged.reshape(n, n_marks, n_bins // WINDOW, WINDOW).mean(axis=3).reshape(n, -1))
        else:
            bounds = windows(n_bins)
            sums = np.add.reduceat(logged, [b for b, _ in bounds], axis=2)
            parts.append((sums / np.array([e - b for b, e in bounds], dtype=np.float32)).reshape(n, -1))
    if kind == "flat":
        parts.append(logged.reshape(n, -1))
    if kind == "both":
        lo, hi = central(n_bins)
        parts.append(logged[:, :, lo:hi].reshape(n, -1))
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def importance_to_grid(importance: np.ndarray, kind: str, n_bins: int = N_BINS, n_marks: int = N_MARKS) -> np.ndarray:
    """Per-feature importances -> ``[marks, bins]`` map that sums to 1.

    A window feature's importance is shared equally among its bins; where feature sets overlap
    (``"both"``: a central bin is in a window and is a feature of its own) the shares add up.
    Importances are taken in absolute value. An all-zero importance gives an all-zero map.
    """
    importance = np.abs(np.asarray(importance, dtype=np.float64)).ravel()
    cells = feature_cells(kind, n_bins, n_marks)
    if importance.shape != (len(cells),):
        raise ValueError(f"{len(importance)} importances for {len(cells)} {kind!r} features")
    grid = np.zeros((n_marks, n_bins), dtype=np.float64)
    for value, (mark, start, stop) in zip(importance, cells):
        grid[mark, start:stop] += value / (stop - start)
    total = grid.sum()
    return grid / total if total > 0 else grid
