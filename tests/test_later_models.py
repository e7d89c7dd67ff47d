"""The field after 2017 in the zoo: each later model's architecture pinned against the original's
published sizes (where public), its model card honest about what was adapted, and its citation
listed by `chrombench models list`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.models.registry import make_model


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_chromoformer_matches_the_published_layer_sizes():
    from chrombench.baselines.chromoformer import ChromoformerNet

    net = ChromoformerNet(100, 5)
    assert net.tokens == [100, 20, 5]  # 100, 500 and 2000 bp tokens of the 10 kb window
    # The published embedding transformer for 5 marks (Linear(5->128, no bias), fused QKV without bias,
    # output projection, two LayerNorms, feed-forward 128->128->128) has 99,846 parameters, 6 of them
    # never used (a per-head gamma and a bias projection that only the regulation transformer reads).
    assert [n_params(e) for e in net.embed] == [99_846 - 6] * 3
    # A regulation layer: published 230,424 with Q and K (2 x 128 x 256) and 24 unused parameters; on a
    # promoter without partners Q and K have no effect and are left out.
    layer = net.regulate[0][0]
    assert n_params(layer) == 230_424 - 2 * 128 * 256 - 24
    assert len(net.regulate[0]) == 6
    assert n_params(net.head) == 384 * 128 + 128 + 128 + 1  # 384 -> 128 -> ReLU -> 1 logit (the original: 2)
    x = torch.zeros(3, 100, 5)
    assert net(x).shape == (3,)
    assert [e.tss for e in net.embed] == [50, 10, 2]  # the token that starts at the TSS, as the original's n // 2


def test_chromoformer_computes_only_the_tss_token_yet_equals_the_published_layer():
    """Training reads one token of each embedding transformer, so only that row is computed; the
    output and every gradient must equal the published all-tokens layer's (float64, so rounding cannot
    hide a real difference), and the attention map must be that layer's TSS row."""
    from chrombench.baselines.chromoformer import EmbeddingTransformer

    torch.manual_seed(0)
    for n_tokens in (100, 20, 5):
        layer = EmbeddingTransformer(5, n_tokens).double()
        x = torch.log1p(torch.poisson(torch.rand(7, n_tokens, 5, dtype=torch.float64) * 4)).requires_grad_()
        weights = [x, *layer.parameters()]
        fast, spec = layer(x), layer.forward_all_tokens(x)
        torch.testing.assert_close(fast, spec, rtol=1e-12, atol=1e-12)
        probe = torch.randn_like(spec)
        for g_fast, g_spec in zip(torch.autograd.grad((fast * probe).sum(), weights),
                                  torch.autograd.grad((spec * probe).sum(), weights)):
            torch.testing.assert_close(g_fast, g_spec, rtol=1e-10, atol=1e-12)
        h = layer.embed(x) + layer.pe
        q, k, _ = layer.qkv(h).chunk(3, dim=-1)
        q, k = (t.view(7, n_tokens, 2, 64).transpose(1, 2) for t in (q, k))
        reference = torch.softmax(q @ k.transpose(-1, -2) / 8.0, -1).mean(dim=1)[:, layer.tss]
        torch.testing.assert_close(layer(x, return_attention=True), reference, rtol=1e-12, atol=1e-12)


def test_chromoformer_tokens_are_mean_counts_then_log1p():
    from chrombench.baselines.chromoformer import ChromoformerNet

    x = torch.arange(100 * 5, dtype=torch.float32).reshape(1, 100, 5)
    coarse = ChromoformerNet(100, 5).resolutions(x)
    assert [c.shape for c in coarse] == [(1, 100, 5), (1, 20, 5), (1, 5, 5)]
    expected = torch.log1p(x[0, :5].mean(dim=0))  # the first 500 bp token: bins 0-4
    torch.testing.assert_close(coarse[1][0, 0], expected)


def test_transferchrome_reconstruction_shapes():
    from chrombench.baselines.transferchrome import TransferChromeNet

    net = TransferChromeNet(100, 5)
    logit, weights = net(torch.zeros(4, 100, 5))
    assert logit.shape == (4,) and weights.shape == (4, 25)  # two transitions: 100 -> 50 -> 25 positions
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
    assert net.position.shape == (1, 25, 56)  # (32 + 4 x 16) / 2 = 48, (48 + 64) / 2 = 56 channels


def test_models_list_shows_the_later_models_with_citations():
    out = CliRunner().invoke(main, ["models", "list"], catch_exceptions=False).output
    for name in ("hm-crnn", "chromoformer", "transferchrome", "shallowchrome"):
        assert name in out
    model = make_model("chromoformer")
    assert "Nat. Commun. 13:6678" in model.citation and "Front. Genet. 13:1081842" in make_model("transferchrome").citation


@pytest.mark.slow
def test_each_later_model_learns_a_planted_promoter_signal(single_thread_torch):
    """Well above chance on an easy task within a few epochs: the models train, not just run."""
    from chrombench.data.arrays import Split

    rng = np.random.default_rng(0)

    def split(n):
        y = rng.integers(0, 2, n).astype(np.int8)
        X = rng.poisson(1.0, size=(n, 100, 5)).astype(np.int32)
        X[:, 45:55, 3] += rng.poisson(4 * y[:, None] + 0.5, size=(n, 10))
        return Split(np.array([f"g{i}" for i in range(n)]), X, y)

    train, valid = split(256), split(128)
    for name, params in (("transferchrome", {"epochs": 8}), ("chromoformer", {"epochs": 8, "lr": 3e-4})):
        model = make_model(name, **params).fit(train, valid)
        best = max(e["valid_auroc"] for e in model.history_["epochs"])
        assert best > 0.9, (name, best)
        alpha, beta = model.attention(valid.X[:10])  # its attention, for `chrombench explain`
        assert alpha.shape == (10, 5, 100) and np.allclose(alpha.sum(axis=2), 1, atol=1e-5)
        assert np.allclose(beta, 0.2)
