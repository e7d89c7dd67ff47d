"""HM-CRNN: the published histone module's shapes and parameter count, adapted to 5 marks x 100 bins;
its latent space and position attention; focal loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chrombench.baselines.hmcrnn import HMCRNN, HMCRNNNet, focal_loss, positions_to_bins
from chrombench.data.arrays import Split


def histone_module_parameters(marks: int, filters=20, kernel_bins=7, hidden=40, attention=16) -> int:
    """Conv2d(1->20, (marks, 7)) + BatchNorm2d(20) + BiLSTM(20->40) + attention (80->16->1), by hand."""
    conv = filters * marks * kernel_bins + filters
    bn = 2 * filters
    lstm = 2 * (4 * hidden * (filters + hidden) + 2 * 4 * hidden)
    att = 2 * hidden * attention + attention + attention + 1
    return conv + bn + lstm + att


def test_shapes_and_parameters_follow_the_published_module():
    net = HMCRNNNet()
    logit, weights, context = net(torch.rand(4, 100, 5))
    assert logit.shape == (4,) and weights.shape == (4, 32) and context.shape == (4, 80)  # 94 positions -> 32
    assert torch.allclose(weights.sum(dim=1), torch.ones(4))
    module = sum(p.numel() for name, p in net.named_parameters() if not name.startswith("head."))
    assert module == histone_module_parameters(marks=5) == 21913
    assert histone_module_parameters(marks=7) == 22193  # the original's, with its 7-mark kernel
    assert HMCRNN().n_parameters() == 21913 + (80 * 32 + 32 + 32 + 1)  # + the 80 -> 32 -> 1 head


def test_focal_loss_is_summed_and_down_weights_easy_genes():
    loss = focal_loss(2.0)
    y = torch.tensor([1.0, 0.0])
    easy, hard = torch.tensor([6.0, -6.0]), torch.tensor([-1.0, 1.0])
    assert loss(easy, y) < 1e-4 < loss(hard, y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(hard, y, reduction="sum")
    assert loss(hard, y) < bce  # (1 - p)^gamma < 1 scales every term down
    assert torch.isclose(focal_loss(0.0)(hard, y), bce)


def test_positions_spread_over_the_bins_they_read():
    grid = positions_to_bins(32, 7)
    assert grid.shape == (32, 100) and np.allclose(grid.sum(axis=1), 1)
    assert grid[0, :8].all() and not grid[0, 8:].any()  # pool padding + conv outputs 0-1: bins 0-7
    assert grid[31, 99] > 0


def planted(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson(1.0, (n, 100, 5)).astype(np.int32)
    X[:, 45:55, 3] += (y[:, None] * rng.poisson(4, (n, 10))).astype(np.int32)
    return Split(np.array([f"g{i}" for i in range(n)]), X, y)


def test_it_learns_exposes_its_latent_space_and_points_at_the_planted_bins(tmp_path):
    from chrombench.evaluate import auroc
    from chrombench.models.io import load_model

    train, valid = planted(400, 1), planted(200, 2)
    model = HMCRNN(batch_size=32, epochs=30, patience=3, device="cpu").fit(train, valid)
    report = model.training_report()
    assert report["stopped_by"] in ("patience", "cap") and report["epochs_run"] >= 1
    assert auroc(valid.y, model.predict_proba(valid.X)[:, 1]) > 0.9
    assert model.latent(valid.X).shape == (200, 80)
    alpha, beta = model.attention(valid.X)
    assert alpha.shape == (200, 5, 100) and np.allclose(alpha.sum(axis=2), 1) and np.allclose(beta, 0.2)
    model.save(tmp_path / "m")
    assert np.allclose(load_model(tmp_path / "m").predict_proba(valid.X), model.predict_proba(valid.X))


def test_explain_exports_the_latent_space_and_scores_position_attention(tmp_path):
    from chrombench.data.arrays import GroundTruth
    from chrombench.explain.report import explain_split

    train, valid = planted(300, 1), planted(120, 2)
    model = HMCRNN(batch_size=32, epochs=5, patience=2, device="cpu").fit(train, valid)
    importance = np.zeros((120, 5, 100))
    importance[:, 3, 45:55] = 1.0  # the planted H3K4me3 bins
    truth = GroundTruth(0.99, importance, np.zeros(120))
    summary = explain_split(model, valid, tmp_path, ["attention"], truth=truth)
    assert summary["latent"]["dimensions"] == 80 and (tmp_path / "latent_pca.png").stat().st_size > 0
    header = (tmp_path / "latent.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["gene_id", "label", "z0"] and len(header) == 82
    assert "cell_auroc" in summary["methods"]["attention"]["scores"]


@pytest.mark.slow
def test_explain_draws_the_latent_space_over_several_cell_types(tmp_path):
    """`chrombench explain MODEL -t E003 --latent-task E112`: one PCA, coloured by cell type and label."""
    from click.testing import CliRunner

    from chrombench.cli import main

    train, valid = planted(300, 1), planted(120, 2)
    HMCRNN(batch_size=32, epochs=3, patience=2, device="cpu").fit(train, valid).save(tmp_path / "m")
    res = CliRunner().invoke(main, ["explain", str(tmp_path / "m"), "-t", "E003", "--quick", "--genes", "150",
                                    "--latent-task", "E112", "-m", "attention", "-o", str(tmp_path / "x")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = (tmp_path / "x" / "latent_cell_types.csv").read_text().splitlines()
    assert rows[0].split(",")[:4] == ["task", "gene_id", "label", "z0"]
    tasks = [r.split(",")[0] for r in rows[1:]]
    assert tasks.count("E003") == 150 and tasks.count("E112") == 150
    assert (tmp_path / "x" / "latent_cell_types.png").stat().st_size > 5000
    res = CliRunner().invoke(main, ["explain", str(tmp_path / "m"), "--latent-task", "E112", "-o", str(tmp_path / "y")])
    assert res.exit_code != 0
