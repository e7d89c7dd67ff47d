"""PatternChrome: mark patterns found by a seeded particle swarm on train, XGBoost on their match
counts, early-stopped on valid; its interpretation names the pattern's mark and place."""

from __future__ import annotations

import numpy as np
import pytest

from chrombench.baselines import pso
from chrombench.baselines.patternchrome import MarkSignal, PatternChrome, count_auroc
from chrombench.data.arrays import Split
from chrombench.errors import ChrombenchError
from chrombench.evaluate import auroc
from chrombench.models.io import load_model

SHAPE = np.array([0, 1, 3, 6, 8, 6, 3, 1, 0])  # a peak, 900 bp wide


def planted(n: int, seed: int) -> Split:
    """ON genes carry a peak of H3K4me3 somewhere in bins 40-60; OFF genes the same reads, spread flat."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson(0.5, (n, 100, 5)).astype(np.int32)
    for g in range(n):
        at = 40 + rng.integers(0, 12)
        X[g, at:at + len(SHAPE), 3] += rng.poisson(SHAPE * 2) if y[g] else rng.poisson(SHAPE.mean() * 2, len(SHAPE))
    return Split(np.array([f"g{seed}-{i}" for i in range(n)]), X, y)


def brute_force_matches(counts, points, width, start, stop, threshold):
    s, t = np.log1p(counts.astype(float)), np.interp(np.arange(width), np.linspace(0, width - 1, len(points)), points)
    out = np.zeros(len(s), int)
    for g in range(len(s)):
        for p in range(start, stop):
            seg = s[g, p:p + width]
            if seg.std() > 1e-9 and t.std() > 1e-9 and np.corrcoef(seg, t)[0, 1] > threshold:
                out[g] += 1
    return out


def test_a_match_is_a_window_whose_pearson_correlation_with_the_pattern_passes_the_threshold():
    rng = np.random.default_rng(1)
    counts = rng.poisson(2.0, (30, 25))
    counts[:4] = 0  # no reads: a flat window matches nothing
    signal = MarkSignal(counts)
    for k, width, start, stop, threshold in ((2, 2, 0, 24, 0.3), (4, 9, 3, 10, 0.3), (3, 25, 0, 1, -0.2),
                                             (5, 7, 10, 19, 0.6), (4, 4, 0, 22, 0.0)):
        points = rng.random(k)
        assert np.array_equal(signal.matches(points, width, start, stop, threshold),
                              brute_force_matches(counts, points, width, start, stop, threshold))
    assert not signal.matches(np.full(4, 0.5), 8, 0, 18, 0.3).any()  # a flat pattern correlates with nothing


def test_count_auroc_is_the_rank_auroc():
    rng = np.random.default_rng(0)
    counts, y = rng.integers(0, 9, 500), rng.integers(0, 2, 500)
    assert count_auroc(counts, y) == pytest.approx(auroc(y, counts.astype(float)), abs=1e-12)


def test_the_swarm_is_seed_deterministic_and_finds_a_maximum():
    def bowl(p):
        return -float(((p - np.array([0.3, -1.2])) ** 2).sum())

    runs = [pso.maximize(bowl, [-2, -2], [2, 2], 15, 40, np.random.default_rng(7)) for _ in range(2)]
    assert np.array_equal(runs[0].best, runs[1].best) and runs[0].trace == runs[1].trace
    np.testing.assert_allclose(runs[0].best, [0.3, -1.2], atol=1e-2)
    assert runs[0].evaluations == 15 * 41 and all(a <= b for a, b in zip(runs[0].trace, runs[0].trace[1:]))
    other = pso.maximize(bowl, [-2, -2], [2, 2], 15, 40, np.random.default_rng(8))
    assert not np.array_equal(other.best, runs[0].best)


def test_a_pso_budget_of_zero_or_below_is_a_clear_error():
    train = planted(60, 0)
    for value in (0, -3):
        with pytest.raises(ChrombenchError, match=f"pso_iterations = {value} .* out of range: it must lie in \\[1, inf\\)"):
            PatternChrome(pso_iterations=value).fit(train, train)
    with pytest.raises(ChrombenchError, match="particles = 0"):
        PatternChrome(particles=0).fit(train, train)
    with pytest.raises(ChrombenchError, match="at least 1 particle and 1 iteration"):
        pso.maximize(lambda p: 0.0, [0], [1], 4, 0, np.random.default_rng(0))


def test_too_few_bins_for_the_control_points_are_refused_naming_what_it_takes():
    X = np.ones((10, 3, 5), np.int32)
    with pytest.raises(ChrombenchError, match="at least 4 bins .* this task has 3 bins"):
        PatternChrome().fit(Split(np.array([f"g{i}" for i in range(10)]), X, np.arange(10) % 2), None)


def test_finds_the_planted_pattern_and_says_where(tmp_path):
    train, valid, test = planted(500, 1), planted(300, 2), planted(300, 3)
    model = PatternChrome(pso_iterations=8, particles=10, seed=3).fit(train, valid)
    p = model.predict_proba(test.X)
    assert auroc(test.y, p[:, 1]) > 0.85
    top = model.patterns()[0]
    assert top["mark"] == "H3K4me3" and top["gain_share"] > 0.5 and top["train_auroc"] > 0.8
    assert top["first_bin"] <= 56 and top["last_bin"] >= 44  # it covers the planted peak's bins
    grid = model.feature_importance_map()
    assert grid.shape == (5, 100) and abs(grid.sum() - 1) < 1e-9 and grid[3].sum() > 0.5
    report = model.training_report()
    assert report["stopped_by"] in ("patience", "cap") and report["patterns"] == 10 and report["pso_iterations"] == 8
    assert np.array_equal(PatternChrome(pso_iterations=8, particles=10, seed=3).fit(train, valid).predict_proba(test.X), p)
    model.save(tmp_path / "m")
    assert np.array_equal(load_model(tmp_path / "m").predict_proba(test.X), p)


def test_explain_writes_its_patterns_and_importance(tmp_path):
    from click.testing import CliRunner

    from chrombench.cli import main
    from chrombench.data.csvformat import write_split

    train, valid, test = planted(300, 1), planted(150, 2), planted(60, 3)
    PatternChrome(pso_iterations=4, particles=8).fit(train, valid).save(tmp_path / "m")
    write_split(tmp_path / "genes.csv", test)
    res = CliRunner().invoke(main, ["explain", str(tmp_path / "m"), str(tmp_path / "genes.csv"), "-o",
                                    str(tmp_path / "x")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    import pandas as pd

    patterns = pd.read_csv(tmp_path / "x" / "patterns.csv")
    assert len(patterns) == 10 and patterns.iloc[0]["mark"] == "H3K4me3"
    assert (tmp_path / "x" / "importance_marks.csv").is_file()
