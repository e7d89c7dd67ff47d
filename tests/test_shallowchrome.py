"""ShallowChrome: 5 weights and a bias on the per-mark TSS-proximal maximum, window chosen on valid."""

from __future__ import annotations

import numpy as np
import pytest

from chrombench.baselines.shallowchrome import WINDOWS, ShallowChrome, tss_max
from chrombench.data.arrays import Split
from chrombench.errors import ChrombenchError
from chrombench.evaluate import auroc
from chrombench.models.io import load_model


def planted(n: int, seed: int, half: int = 10) -> Split:
    """ON genes carry an H3K4me3 peak within +/-``half`` bins of the TSS; OFF genes do not."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson(1.0, (n, 100, 5)).astype(np.int32)
    where = 50 + rng.integers(-half, half, n)
    X[np.arange(n), where, 3] += (y * rng.poisson(12, n)).astype(np.int32)
    return Split(np.array([f"g{i}" for i in range(n)]), X, y)


def test_the_feature_is_each_marks_maximum_near_the_tss():
    X = np.zeros((1, 100, 5), np.int32)
    X[0, 45, 0], X[0, 10, 1], X[0, 52, 4] = 7, 99, 3
    assert tss_max(X, 5).tolist() == [[7, 0, 0, 0, 3]]  # bins 45..54: the far H3K36me3 peak is outside
    assert tss_max(X, 50)[0, 1] == 99


def test_five_weights_a_bias_and_a_window_chosen_on_valid(tmp_path):
    train, valid, test = planted(600, 1), planted(300, 2), planted(300, 3)
    model = ShallowChrome().fit(train, valid)
    assert model.n_parameters() == 6 and model.coef_.shape == (5,)  # as the original: 5 weights + bias
    assert model.window_ in WINDOWS and model.window_ >= 10  # the peak lies within +/-1 kb
    w = model.weights()
    assert w["H3K4me3"] == max(w.values()) > 0  # its interpretation: the planted mark
    assert auroc(test.y, model.predict_proba(test.X)[:, 1]) > 0.9
    report = model.training_report()
    assert report["stopped_by"] == "tolerance" and report["converged"] and report["window_bins"] == model.window_
    grid = model.feature_importance_map()
    assert grid.shape == (5, 100) and abs(grid.sum() - 1) < 1e-9 and grid[3].sum() == grid.sum(axis=1).max()
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert np.array_equal(again.predict_proba(test.X), model.predict_proba(test.X))


def test_bad_windows_are_clear_errors():
    train = planted(100, 1)
    with pytest.raises(ChrombenchError, match="chooses its window on the valid split"):
        ShallowChrome().fit(train)
    with pytest.raises(ChrombenchError, match="window = 77 is out of range"):
        ShallowChrome(window=77).fit(train, train)
    assert ShallowChrome(window=20).fit(train).window_ == 20
