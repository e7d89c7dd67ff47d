"""DeepChrome 2.0's linear network: a per-mark reduction over the bins and Linear(marks, 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chrombench.baselines.deepchrome2 import LR_FLOOR, CosineSGD, DeepChrome2, DeepChrome2Net
from chrombench.data.arrays import Split
from chrombench.errors import ChrombenchError
from chrombench.evaluate import auroc
from chrombench.models.registry import make_model

# arXiv 2209.11923's abstract: "a 12-parameter linear network"; the repository's
# models/LinearBaseline.py (branch linear_model): nn.Linear(5, 2)
PAPER_PARAMETERS = 12


def planted(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson(1.0, (n, 100, 5)).astype(np.int32)
    X[:, 45:55, 3] += rng.poisson(6 * y[:, None] + 0.5, (n, 10)).astype(np.int32)
    return Split(np.array([f"g{seed}-{i}" for i in range(n)]), X, y)


def test_its_parameter_count_is_the_papers():
    assert make_model("deepchrome2").n_parameters() == PAPER_PARAMETERS
    assert sum(p.numel() for p in DeepChrome2Net(5).parameters()) == PAPER_PARAMETERS
    assert DeepChrome2Net(7).linear.weight.shape == (2, 7)  # other tasks: 2 x marks + 2


def test_learns_a_planted_mark_and_its_weights_say_which(single_thread_torch):
    train, valid, test = planted(400, 0), planted(200, 1), planted(200, 2)
    model = DeepChrome2(epochs=30).fit(train, valid)
    assert model.n_parameters() == PAPER_PARAMETERS
    assert auroc(test.y, model.predict_proba(test.X)[:, 1]) > 0.9
    w = model.weights()
    assert max(w, key=lambda m: abs(w[m])) == "H3K4me3" and w["H3K4me3"] > 0
    grid = model.feature_importance_map()
    assert grid.shape == (5, 100) and abs(grid.sum() - 1) < 1e-9 and grid[3].sum() == grid.sum(axis=1).max()


def test_a_genes_score_does_not_depend_on_its_batch(single_thread_torch):
    """The repository divided by the batch's maximum; the fitted training maximum replaces it."""
    train = planted(200, 0)
    model = DeepChrome2(epochs=3).fit(train, planted(100, 1))
    assert model.module_.scale.item() == pytest.approx(float(np.log1p(train.X.max())))
    whole = model.predict_proba(train.X[:50])
    halves = np.concatenate([model.predict_proba(train.X[:25]), model.predict_proba(train.X[25:50])])
    np.testing.assert_allclose(whole, halves, rtol=1e-6)


def test_the_learning_rate_anneals_to_the_floor_by_a_cosine():
    module = DeepChrome2Net(5)
    opt = CosineSGD(module, 0.01, 0.0, total_steps=10)
    rates = []
    for _ in range(10):
        module(torch.ones(2, 100, 5)).sum().backward()
        opt.step()
        opt.zero_grad()
        rates.append(opt.sgd.param_groups[0]["lr"])
    assert rates[4] == pytest.approx(LR_FLOOR + (0.01 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert rates[-1] == pytest.approx(LR_FLOOR) and all(a > b for a, b in zip(rates, rates[1:]))


def test_an_unknown_reduction_is_a_clear_error():
    with pytest.raises(ChrombenchError, match="reduction must be one of max, sum, median, min, not 'mean'"):
        DeepChrome2(reduction="mean").fit(planted(20, 0))
