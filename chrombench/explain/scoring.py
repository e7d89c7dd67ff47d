"""Scoring interpretations against ground truth. Pure numpy: no models, no torch.

An interpretation is a score per (gene, mark, bin): an array ``[n_genes, 5, 100]`` where larger
means "matters more". On simulated tasks the truth is the simulator's planted importance map of
the same shape (each gene's map sums to one). A cell counts as truly important when it holds more
than its uniform share (1/500) of its gene's importance.
"""

from __future__ import annotations

import numpy as np

from .. import MARKS, N_BINS, N_MARKS

N_CELLS = N_MARKS * N_BINS


def _check(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if scores.shape != truth.shape or scores.shape[1:] != (N_MARKS, N_BINS):
        raise ValueError(f"scores {scores.shape} and truth {truth.shape} must both be [n, {N_MARKS}, {N_BINS}]")
    return scores.reshape(len(scores), N_CELLS), truth.reshape(len(truth), N_CELLS)


def _rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) within each row, ties averaged."""
    order = np.argsort(a, axis=1, kind="mergesort")
    ranks = np.empty_like(a, dtype=np.float64)
    rows = np.arange(len(a))[:, None]
    ranks[rows, order] = np.arange(1, a.shape[1] + 1)[None, :]
    # average ranks over exact ties, row by row only where ties exist (rare for float scores)
    for i in np.flatnonzero((np.diff(np.sort(a, axis=1), axis=1) == 0).any(axis=1)):
        _, inv, cnt = np.unique(a[i], return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=ranks[i])
        ranks[i] = (sums / cnt)[inv]
    return ranks


def cell_auroc(scores, truth) -> np.ndarray:
    """Per gene: AUROC of the scores for separating truly important cells from the rest."""
    s, t = _check(scores, truth)
    pos = t > 1.0 / N_CELLS
    n_pos = pos.sum(axis=1)
    ok = (n_pos > 0) & (n_pos < N_CELLS)
    ranks = _rank_rows(s)
    out = np.full(len(s), np.nan)
    rsum = (ranks * pos).sum(axis=1)
    out[ok] = (rsum[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2) / (n_pos[ok] * (N_CELLS - n_pos[ok]))
    return out


def precision_at_k(scores, truth, k: int | None = None) -> np.ndarray:
    """Per gene: share of the k top-scored cells that are truly important (k = #important by default)."""
    s, t = _check(scores, truth)
    pos = t > 1.0 / N_CELLS
    out = np.full(len(s), np.nan)
    top = np.argsort(-s, axis=1, kind="mergesort")
    for i in range(len(s)):
        kk = k or int(pos[i].sum())
        if kk:
            out[i] = pos[i, top[i, :kk]].mean()
    return out


def mark_rank_correlation(scores, truth) -> np.ndarray:
    """Per gene: Spearman correlation between per-mark score totals and per-mark true importance."""
    s, t = _check(scores, truth)
    sm = s.reshape(-1, N_MARKS, N_BINS).sum(axis=2)
    tm = t.reshape(-1, N_MARKS, N_BINS).sum(axis=2)
    rs, rt = _rank_rows(sm), _rank_rows(tm)
    rs -= rs.mean(axis=1, keepdims=True)
    rt -= rt.mean(axis=1, keepdims=True)
    den = np.sqrt((rs ** 2).sum(axis=1) * (rt ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rs * rt).sum(axis=1) / den, np.nan)


def top_mark_accuracy(scores, truth) -> np.ndarray:
    s, t = _check(scores, truth)
    sm = s.reshape(-1, N_MARKS, N_BINS).sum(axis=2)
    tm = t.reshape(-1, N_MARKS, N_BINS).sum(axis=2)
    return (sm.argmax(axis=1) == tm.argmax(axis=1)).astype(float)


def score_interpretation(scores, truth, k: int = 25) -> dict[str, float]:
    """Mean over genes of each measure; NaN genes (no signal planted, or scores that cannot rank marks, as
    attention shared by all marks) are left out, and a measure with no gene left is NaN."""
    def mean(values) -> float:
        values = np.asarray(values, dtype=float)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    return {
        "cell_auroc": mean(cell_auroc(scores, truth)),
        f"precision_at_{k}": mean(precision_at_k(scores, truth, k)),
        "precision_at_n_true": mean(precision_at_k(scores, truth)),
        "mark_spearman": mean(mark_rank_correlation(scores, truth)),
        "top_mark_accuracy": mean(top_mark_accuracy(scores, truth)),
    }


def score_by_mechanism(scores, mechanisms, names=None, k: int = 25) -> dict[str, dict[str, float]]:
    """``score_interpretation`` against each planted mechanism's map separately (simremc 1.2 on).

    ``mechanisms``: name -> [n, marks, bins] map; a gene whose map is all zero (the mechanism does not
    touch it) is left out of that mechanism's score. ``names`` picks some; an unknown one is an error
    that lists those there are."""
    names = list(mechanisms) if names is None else list(names)
    for name in names:
        if name not in list(mechanisms):
            from ..errors import UnknownNameError

            raise UnknownNameError(f"no planted mechanism {name!r}; there are: {', '.join(mechanisms)}")
    scores = np.asarray(scores, dtype=float)
    out = {}
    for name in names:
        truth = np.asarray(mechanisms[name], dtype=float)
        touched = truth.reshape(len(truth), -1).sum(axis=1) > 0
        out[name] = score_interpretation(scores[touched], truth[touched], k)
        out[name]["genes"] = int(touched.sum())
    return out


def random_baseline(truth, k: int = 25, seed: int = 0) -> dict[str, float]:
    """The same measures for random scores: the floor any method must beat."""
    rng = np.random.default_rng(seed)
    return score_interpretation(rng.random(np.shape(truth)), truth, k)


def activity_correlation(k4me3_scores: np.ndarray, activity: np.ndarray, predicted_on: np.ndarray) -> dict:
    """The paper's protocol on real data: Pearson r between the H3K4me3 bin scores and an activity
    track (e.g. H3K27ac) per gene, averaged over genes predicted ON."""
    a = np.asarray(k4me3_scores, float)[predicted_on]
    b = np.asarray(activity, float)[predicted_on]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a ** 2).sum(axis=1) * (b ** 2).sum(axis=1))
    r = np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1), np.nan)
    return {"pearson_mean": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
            "pearson_median": float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan"),
            "n_genes": int(np.isfinite(r).sum())}


__all__ = ["cell_auroc", "precision_at_k", "mark_rank_correlation", "top_mark_accuracy", "score_interpretation",
           "score_by_mechanism", "random_baseline", "activity_correlation", "MARKS"]
