"""Statistics behind the leaderboard: pure functions over numbers, no I/O, no records.

The central object is a ``models x tasks`` matrix of test AUROC (the mean over seeds), with NaN
where a model has no result for a task. Rank-based tests (Friedman, Nemenyi, Wilcoxon) need
complete blocks, so they are computed on the tasks every compared model has (``complete_tasks``).

Conventions follow Demsar (JMLR 2006), "Statistical comparisons of classifiers over multiple data
sets": rank 1 is the best model on a task, ties share the average rank, the Friedman statistic is
compared with chi-square (k-1 dof), and two models differ significantly when their average ranks
differ by at least the Nemenyi critical difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st


# -- per-model and per-task summaries ------------------------------------------------------------------

def describe(values) -> dict:
    """Mean, median, min, max and count of the finite values (a model's AUROC over tasks)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "mean": math.nan, "median": math.nan, "min": math.nan, "max": math.nan}
    return {"n": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)),
            "min": float(v.min()), "max": float(v.max())}


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) over seeds; std is NaN for a single seed (one value has no
    spread to report, and 0 would read as 'perfectly reproducible')."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def wins_against(matrix: np.ndarray, reference_row: int) -> list[tuple[int, int]]:
    """For each model: (tasks where its AUROC > the reference's, tasks both have).

    The AttentiveChrome paper's "cells better than DeepChrome" count: strict ">" so a tie is no win.
    """
    m = np.asarray(matrix, dtype=float)
    ref = m[reference_row]
    out = []
    for row in m:
        both = np.isfinite(row) & np.isfinite(ref)
        out.append((int(np.sum(row[both] > ref[both])), int(both.sum())))
    return out


# -- multiple testing ---------------------------------------------------------------------------------

def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, made monotone, capped at 1). NaN stays NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# -- paired comparison against the top model ----------------------------------------------------------

def wilcoxon_paired(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p-value of a vs b over tasks (paired); NaN if undefined.

    Undefined means fewer than two tasks, or every difference zero (the models are identical on
    these tasks, so there is nothing to test: reported as p = 1).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2:
        return math.nan
    if np.all(a - b == 0):
        return 1.0
    return float(_st.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)


def wilcoxon_vs_top(matrix: np.ndarray, top_row: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw and Holm-adjusted Wilcoxon p-values of every model against the top one (NaN for itself).

    ``matrix`` must be complete (no NaN); the family for Holm is the k-1 comparisons.
    """
    m = np.asarray(matrix, dtype=float)
    raw = np.array([math.nan if i == top_row else wilcoxon_paired(m[top_row], m[i]) for i in range(len(m))])
    return raw, holm(raw)


# -- ranks, Friedman, Nemenyi ---------------------------------------------------------------------------

def ranks(matrix: np.ndarray) -> np.ndarray:
    """Per-task ranks (models x tasks): 1 = highest AUROC, ties get the average rank."""
    m = np.asarray(matrix, dtype=float)
    return np.apply_along_axis(lambda col: _st.rankdata(-col), 0, m)


def average_ranks(matrix: np.ndarray) -> np.ndarray:
    return ranks(matrix).mean(axis=1)


@dataclass(frozen=True)
class Friedman:
    statistic: float  # chi-square, tie-corrected
    pvalue: float
    k: int  # models
    n: int  # tasks
    average_ranks: np.ndarray


def friedman(matrix: np.ndarray) -> Friedman:
    """Friedman's test over tasks (blocks) for k >= 2 models.

    chi2 = 12 N / (k (k+1)) * sum_j (R_j - (k+1)/2)^2, divided by the tie correction
    1 - sum(t^3 - t) / (N k (k^2 - 1)), the same statistic scipy's ``friedmanchisquare`` returns
    (which refuses k = 2; the formula does not).
    """
    m = np.asarray(matrix, dtype=float)
    k, n = m.shape
    r = ranks(m)
    avg = r.mean(axis=1)
    if k < 2 or n < 1:
        return Friedman(math.nan, math.nan, k, n, avg)
    chi2 = 12.0 * n / (k * (k + 1)) * float(np.sum((avg - (k + 1) / 2.0) ** 2))
    ties = 0.0
    for col in r.T:
        _, counts = np.unique(col, return_counts=True)
        ties += float(np.sum(counts ** 3 - counts))
    correction = 1.0 - ties / (n * k * (k * k - 1))
    if correction <= 0:  # every task a complete tie: no evidence of any difference
        return Friedman(0.0, 1.0, k, n, avg)
    chi2 /= correction
    return Friedman(chi2, float(_st.chi2.sf(chi2, k - 1)), k, n, avg)


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_alpha of the Nemenyi test: the studentized range quantile (infinite dof) / sqrt(2)."""
    return float(_st.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Critical difference of average ranks: CD = q_alpha * sqrt(k (k+1) / (6 N))."""
    if k < 2 or n < 1:
        return math.nan
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def cd_cliques(avg_ranks, cd: float) -> list[tuple[int, int]]:
    """Maximal runs of models (in rank order) whose average ranks lie within CD of each other.

    Returns (first, last) positions into the sorted order; these are the bars a critical-difference
    diagram draws. Runs of a single model are left out.
    """
    r = np.sort(np.asarray(avg_ranks, dtype=float))
    spans = []
    for i in range(len(r)):
        j = i
        while j + 1 < len(r) and r[j + 1] - r[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in spans):
            spans.append((i, j))
    return spans


# -- confidence intervals --------------------------------------------------------------------------------

def bootstrap_auroc_ci(y, score, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                       chunk: int = 250) -> tuple[float, float]:
    """Percentile bootstrap CI of AUROC, resampling test genes with replacement.

    ``score`` is ``[n_genes]`` or ``[n_seeds, n_genes]``; with several seeds each resample of genes
    is scored for every seed and the seed-mean AUROC is bootstrapped, which is the number the
    leaderboard reports. Resampling is stratified by label so every resample has both classes.

    A resample is a vector of multiplicities (multinomial counts), so no per-resample sort is needed:
    with negatives sorted once, AUROC = sum over positives of multiplicity x (weighted count of
    negatives below it + half the tied ones) / (n_pos n_neg).
    """
    y = np.asarray(y).astype(bool)
    s = np.atleast_2d(np.asarray(score, dtype=float))
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0 or n_boot < 1:
        return math.nan, math.nan
    per_seed = []  # (order of negatives, index of the first neg >= pos, index of the first neg > pos)
    for row in s:
        pos, neg = row[y], row[~y]
        order = np.argsort(neg, kind="stable")
        sorted_neg = neg[order]
        per_seed.append((order, np.searchsorted(sorted_neg, pos, "left"), np.searchsorted(sorted_neg, pos, "right")))
    rng = np.random.default_rng(seed)
    aucs = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        w_pos, w_neg = _multiplicities(rng, n_pos, b), _multiplicities(rng, n_neg, b)
        total = np.zeros(b)
        for order, left, right in per_seed:
            below = np.zeros((b, n_neg + 1))
            np.cumsum(w_neg[:, order], axis=1, out=below[:, 1:])
            wins = (below[:, left] + below[:, right]) / 2.0  # ties count half
            total += np.sum(w_pos * wins, axis=1) / (n_pos * n_neg)
        aucs[start:start + b] = total / len(per_seed)
    lo, hi = np.quantile(aucs, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _multiplicities(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """``b`` resamples of ``n`` items with replacement, as counts per item ([b, n]).

    A bincount of uniform draws: the same distribution as a multinomial, several times faster.
    """
    draws = rng.integers(0, n, (b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=b * n).reshape(b, n)


def seed_ci(values, alpha: float = 0.05) -> tuple[float, float]:
    """Student-t CI of the mean over seeds; NaN with fewer than two seeds."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return math.nan, math.nan
    half = float(_st.t.ppf(1.0 - alpha / 2.0, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean() - half), float(v.mean() + half)
