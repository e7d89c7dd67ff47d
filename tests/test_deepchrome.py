"""DeepChrome: the published architecture on the shared trainer."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from chrombench import MARKS, N_BINS, N_MARKS
from chrombench.baselines.deepchrome import DeepChrome
from chrombench.data.arrays import Split
from chrombench.evaluate import auroc
from chrombench.models.io import load_model
from chrombench.models.registry import get_model_class

from toydata import read_toy  # noqa: E402

FAST = {"epochs": 2, "batch_size": 8, "device": "cpu"}


@pytest.fixture(autouse=True, scope="module")
def one_thread(single_thread_torch):
    """Single-threaded torch: on a busy 2-core machine OpenMP threads mostly wait for each other."""


def planted(n: int, seed: int) -> Split:
    """Poisson background; expressed genes carry extra H3K4me3 at the TSS (bins 45-54)."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int8)
    X = rng.poisson([3.0, 1.7, 2.3, 20.0, 1.4], size=(n, N_BINS, N_MARKS)).astype(np.int32)
    X[y == 1, 45:55, MARKS.index("H3K4me3")] += rng.poisson(15.0, size=(int(y.sum()), 10)).astype(np.int32)
    return Split(np.array([f"{i:06d}" for i in range(n)]), X, y)


def test_registered_architecture_is_the_published_one():
    assert get_model_class("deepchrome") is DeepChrome
    net = DeepChrome()._build_module()
    conv = net.conv
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (N_MARKS, 50, (10,))
    assert net.pool.kernel_size == 5
    linears = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    pooled = (N_BINS - 10 + 1) // 5
    assert [(m.in_features, m.out_features) for m in linears] == [(50 * pooled, 625), (625, 125), (125, 1)]
    expected = (N_MARKS * 10 + 1) * 50 + (50 * pooled + 1) * 625 + (625 + 1) * 125 + 126
    assert DeepChrome().n_parameters() == expected


def test_fits_and_predicts_on_the_toy_sample():
    log = []
    model = DeepChrome(**FAST).fit(read_toy("train"), read_toy("valid"), on_epoch=lambda e, m: log.append(m))
    assert len(log) == 2 and {"valid_auroc", "train_loss", "epoch_time"} <= set(log[0])
    proba = model.predict_proba(read_toy("test").X)
    assert proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_learns_a_planted_promoter_signal():
    model = DeepChrome(epochs=8, batch_size=32, device="cpu", patience=8).fit(planted(300, 1), planted(100, 2))
    test = planted(200, 3)
    assert auroc(test.y, model.predict_proba(test.X)[:, 1]) > 0.9


def test_seeded_training_is_reproducible_and_save_load_is_exact(tmp_path):
    X = read_toy("test").X
    a = DeepChrome(**FAST, seed=5).fit(read_toy("train"), read_toy("valid"))
    b = DeepChrome(**FAST, seed=5).fit(read_toy("train"), read_toy("valid"))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    a.save(tmp_path / "dc")
    loaded = load_model(tmp_path / "dc")
    assert loaded.get_params() == a.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), a.predict_proba(X))


def test_dropout_acts_in_training_mode_only():
    x = torch.rand(8, N_BINS, N_MARKS)
    net = DeepChrome(dropout=0.5)._build_module()
    with torch.no_grad():
        net.train()
        assert not torch.equal(net(x), net(x))
        net.eval()
        assert torch.equal(net(x), net(x))


def test_gradient_hooks_for_interpretation():
    model = DeepChrome(**FAST).fit(read_toy("train"), read_toy("valid"))
    x = model.prepare_inputs(read_toy("test").X).requires_grad_(True)
    assert x.shape == (10, N_BINS, N_MARKS)
    np.testing.assert_allclose(x.detach().numpy(), np.log1p(read_toy("test").X), rtol=1e-6)
    model.logits_from_inputs(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_search_space_tunes_training_not_the_published_architecture():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(4):
        params = DeepChrome.search_space(study.ask())
        assert not {"n_filters", "filter_width", "pool_width", "fc1_units", "fc2_units", "epochs"} & set(params)
        model = DeepChrome(**params)
        assert 1e-4 <= model.lr <= 1e-2 and model.n_parameters() == DeepChrome().n_parameters()
