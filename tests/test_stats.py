"""Leaderboard statistics on inputs small enough to check by hand (and against scipy directly)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from chrombench.evaluate import auroc
from chrombench.leaderboard import stats

# 3 models x 4 tasks. Ranks per task (1 = best):
#   t1: A1 B2 C3   t2: B1 A2 C3   t3: A1 B2 C3   t4: C1 A2 B3
# average ranks: A 1.5, B 2.0, C 2.5
M = np.array([
    [0.80, 0.70, 0.90, 0.60],  # A
    [0.75, 0.72, 0.85, 0.55],  # B
    [0.70, 0.65, 0.80, 0.62],  # C
])


def test_average_ranks_by_hand():
    assert stats.average_ranks(M).tolist() == [1.5, 2.0, 2.5]


def test_ties_share_the_average_rank():
    m = np.array([[0.8, 0.7], [0.8, 0.6], [0.5, 0.9]])
    assert stats.ranks(m)[:, 0].tolist() == [1.5, 1.5, 3.0]


def test_friedman_by_hand_and_against_scipy():
    # chi2 = 12 N / (k (k+1)) * sum (R_j - (k+1)/2)^2 = 12*4/12 * (0.25 + 0 + 0.25) = 2; p = exp(-1) for 2 dof
    fr = stats.friedman(M)
    assert fr.statistic == pytest.approx(2.0)
    assert fr.pvalue == pytest.approx(math.exp(-1.0))
    ref = st.friedmanchisquare(*M)
    assert (fr.statistic, fr.pvalue) == pytest.approx((ref.statistic, ref.pvalue))


def test_friedman_tie_correction_matches_scipy():
    m = np.array([[0.8, 0.7, 0.6, 0.9, 0.7], [0.8, 0.6, 0.6, 0.7, 0.75], [0.5, 0.65, 0.6, 0.8, 0.7]])
    ref = st.friedmanchisquare(*m)
    fr = stats.friedman(m)
    assert (fr.statistic, fr.pvalue) == pytest.approx((ref.statistic, ref.pvalue))


def test_friedman_two_models_and_identical_models():
    fr = stats.friedman(np.array([[0.8, 0.9, 0.7], [0.7, 0.8, 0.6]]))  # scipy refuses k = 2
    assert fr.statistic == pytest.approx(3.0)  # 12*3/6 * (0.25 + 0.25); chi2 with 1 dof
    assert fr.pvalue == pytest.approx(st.chi2.sf(3.0, 1))
    same = stats.friedman(np.array([[0.8, 0.9], [0.8, 0.9], [0.8, 0.9]]))
    assert (same.statistic, same.pvalue) == (0.0, 1.0)


def test_nemenyi_critical_difference():
    # Demsar (2006), Table 5(a): q_0.05 = 2.343 for k = 3, 2.569 for k = 4, 3.164 for k = 10
    assert stats.nemenyi_q(3) == pytest.approx(2.343, abs=1e-3)
    assert stats.nemenyi_q(4) == pytest.approx(2.569, abs=1e-3)
    assert stats.nemenyi_q(10) == pytest.approx(3.164, abs=1e-3)
    # CD = q sqrt(k (k+1) / (6 N)) = 2.3437 * sqrt(12 / 24) for 3 models on 4 tasks
    assert stats.nemenyi_cd(3, 4) == pytest.approx(stats.nemenyi_q(3) * math.sqrt(0.5))
    assert stats.nemenyi_cd(3, 40) < stats.nemenyi_cd(3, 4)  # more tasks, finer distinctions


def test_cd_cliques_join_models_closer_than_cd():
    assert stats.cd_cliques([1.0, 1.5, 3.0, 3.2], cd=1.0) == [(0, 1), (2, 3)]
    assert stats.cd_cliques([1.0, 2.5, 4.0], cd=1.0) == []  # all pairwise different
    assert stats.cd_cliques([1.0, 1.8, 2.6], cd=1.0) == [(0, 1), (1, 2)]  # overlapping groups


def test_holm_on_known_pvalues():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    adj = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adj.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # capped at 1
    with_nan = stats.holm([math.nan, 0.02, 0.04])
    assert math.isnan(with_nan[0]) and with_nan[1:].tolist() == pytest.approx([0.04, 0.04])


def test_wilcoxon_exact_by_hand_and_vs_scipy():
    a = np.array([0.81, 0.72, 0.93, 0.64, 0.75, 0.86])
    b = a - np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])  # a better on all 6 tasks, distinct differences
    # exact two-sided p: only the all-positive and all-negative sign patterns are as extreme: 2 / 2^6
    assert stats.wilcoxon_paired(a, b) == pytest.approx(2 / 64)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.6, 0.9, 10), rng.uniform(0.6, 0.9, 10)
    assert stats.wilcoxon_paired(x, y) == pytest.approx(st.wilcoxon(x, y).pvalue)
    assert stats.wilcoxon_paired(a, a) == 1.0  # identical: nothing to test
    assert math.isnan(stats.wilcoxon_paired([0.8], [0.7]))  # one task: undefined


def test_wilcoxon_vs_top_is_holm_corrected():
    rng = np.random.default_rng(1)
    m = rng.uniform(0.6, 0.9, (4, 8))
    raw, adj = stats.wilcoxon_vs_top(m, top_row=2)
    assert math.isnan(raw[2]) and math.isnan(adj[2])
    others = [0, 1, 3]
    assert raw[others].tolist() == pytest.approx([st.wilcoxon(m[2], m[i]).pvalue for i in others])
    assert adj[others].tolist() == pytest.approx(stats.holm(raw[others]).tolist())


def test_wins_against_deepchrome_counts_strictly_better_tasks():
    # A vs B: better on t1, t3, t4 -> 3 of 4; a tie is not a win; NaN tasks are not counted
    assert stats.wins_against(M, reference_row=1)[0] == (3, 4)
    m = np.array([[0.8, 0.7, math.nan], [0.8, 0.6, 0.5]])
    assert stats.wins_against(m, reference_row=1) == [(1, 2), (0, 3)]


def test_describe_and_mean_std():
    d = stats.describe([0.7, 0.9, math.nan, 0.8, 0.6])
    assert d == {"n": 4, "mean": pytest.approx(0.75), "median": pytest.approx(0.75), "min": 0.6, "max": 0.9}
    assert stats.mean_std([0.8, 0.82, 0.84]) == pytest.approx((0.82, 0.02))  # sample std (ddof=1)
    mean, std = stats.mean_std([0.8])
    assert mean == 0.8 and math.isnan(std)  # one seed: no spread, not a spread of 0


def test_seed_ci_is_a_t_interval():
    lo, hi = stats.seed_ci([0.80, 0.82, 0.84])
    half = st.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)  # 4.303 * sd / sqrt(n)
    assert (lo, hi) == pytest.approx((0.82 - half, 0.82 + half))
    assert all(math.isnan(v) for v in stats.seed_ci([0.8]))


def test_bootstrap_ci_brackets_auroc_with_the_expected_width():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    score = y + rng.normal(0, 1.5, y.size)
    a = auroc(y, score)
    lo, hi = stats.bootstrap_auroc_ci(y, score, n_boot=2000, seed=1)
    assert lo < a < hi
    # Hanley & McNeil (1982) standard error of AUROC; the 95% interval is about +-1.96 SE
    n1, n0 = y.sum(), (1 - y).sum()
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.2)
    again = stats.bootstrap_auroc_ci(y, score, n_boot=300, seed=5)
    assert stats.bootstrap_auroc_ci(y, score, n_boot=300, seed=5) == again  # reproducible


def test_bootstrap_ci_edge_cases_and_several_seeds():
    y = np.array([0, 0, 0, 1, 1, 1])
    assert stats.bootstrap_auroc_ci(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], n_boot=200) == (1.0, 1.0)
    assert stats.bootstrap_auroc_ci(y, np.full(6, 0.5), n_boot=200) == (0.5, 0.5)  # ties count half
    assert all(math.isnan(v) for v in stats.bootstrap_auroc_ci(np.ones(5), np.arange(5.0)))
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    scores = y + rng.normal(0, 1.0, (3, y.size))  # three seeds' predictions of the same genes
    mean_auc = np.mean([auroc(y, s) for s in scores])
    lo, hi = stats.bootstrap_auroc_ci(y, scores, n_boot=1000)
    assert lo < mean_auc < hi
