"""Interpretation methods and their scores against a known answer."""

import numpy as np
import pytest

from chrombench.data.arrays import GroundTruth, Split
from chrombench.explain.scoring import (activity_correlation, cell_auroc, mark_rank_correlation, precision_at_k,
                                        random_baseline, score_interpretation)

K4ME3 = 3


def planted_task(n=600, seed=0):
    """Label 1 genes carry extra H3K4me3 at bins 45-55: the truth is exactly those cells."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson(2.0, (n, 100, 5)).astype(np.int32)
    X[:, 45:56, K4ME3] += rng.poisson(6.0 * y[:, None], (n, 11))
    imp = np.zeros((n, 5, 100), np.float32)
    imp[:, K4ME3, 45:56] = 1 / 11
    ids = np.array([f"g{i:05d}" for i in range(n)])
    return Split(ids, X, y), GroundTruth(oracle_auroc=1.0, importance=imp, latent=y.astype(np.float32))


def test_perfect_and_random_scores():
    _, truth = planted_task(50)
    t = truth.importance
    perfect = score_interpretation(t, t)
    assert perfect["cell_auroc"] == 1.0 and perfect["precision_at_n_true"] == 1.0
    rnd = random_baseline(t)
    assert abs(rnd["cell_auroc"] - 0.5) < 0.05 and rnd["precision_at_n_true"] < 0.1
    # an interpretation that blames the wrong mark scores below random on cells
    wrong = np.roll(t, 1, axis=1)
    assert score_interpretation(wrong, t)["cell_auroc"] < 0.5
    assert np.nanmean(mark_rank_correlation(wrong, t)) < np.nanmean(mark_rank_correlation(t, t))


def test_hand_checkable_gene():
    truth = np.zeros((1, 5, 100))
    truth[0, 0, :2] = 0.5  # two important cells
    scores = np.zeros((1, 5, 100))
    scores[0, 0, 0] = 3  # one important cell ranked first,
    scores[0, 4, 7] = 2  # then an unimportant one
    scores[0, 0, 1] = 1  # then the other important one; 496 ties at 0 below
    assert precision_at_k(scores, truth)[0] == 0.5
    # positive ranks 500 and 498 out of 500, 498 negatives: (998 - 3) / (2 * 498)
    assert cell_auroc(scores, truth)[0] == pytest.approx((998 - 3) / (2 * 498))


def test_activity_correlation():
    rng = np.random.default_rng(1)
    act = rng.random((20, 100))
    on = np.arange(20) < 10
    res = activity_correlation(act * 2 + 1, act, on)
    assert res["pearson_mean"] == pytest.approx(1.0) and res["n_genes"] == 10
    assert abs(activity_correlation(rng.random((20, 100)), act, on)["pearson_mean"]) < 0.3


def test_importance_of_a_linear_model_finds_the_planted_cells(tmp_path):
    from chrombench.explain.report import explain_split
    from chrombench.models import make_model

    split, truth = planted_task()
    model = make_model("logistic-regression").fit(split, split)
    summary = explain_split(model, split, tmp_path, ["importance"], truth=truth, heatmaps=2)
    scores = summary["methods"]["importance"]["scores"]
    assert scores["cell_auroc"] > 0.9 > summary["random_baseline"]["cell_auroc"] + 0.3
    for name in ("importance_cells.parquet", "importance_marks.csv", "importance_profiles.png", "scores.csv"):
        assert (tmp_path / name).stat().st_size > 0
    import pandas as pd

    cells = pd.read_parquet(tmp_path / "importance_cells.parquet")
    assert list(cells.columns) == ["gene_id", "mark", "bin", "score"] and len(cells) == len(split) * 500
    assert cells.gene_id.iloc[0] == "g00000"
