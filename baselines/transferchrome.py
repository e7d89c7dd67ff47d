"""TransferChrome (Chen, Xie & Wen, Front. Genet. 13:1081842, 2022): a densely connected CNN with
self-attention, and transfer learning across cell types.

What the paper says (its abstract and introduction; no code is public): DenseNet-style convolutions
extract features from the histone-mark bins, self-attention layers aggregate them globally, and
transfer learning carries a model from other cell types to a target one; mean AUROC 0.8479 over
the 56 REMC cell types (the "reported" row beside the measured ones).

Everything below the level of that sentence is **reconstructed, not read**: every layer size is a
guess of ours, marked [guess], chosen as the usual small DenseNet-1D for 100 positions:
- [guess] stem Conv1d(marks -> 32, kernel 3);
- [guess] two dense blocks of 4 layers (BatchNorm, ReLU, Conv1d kernel 3, growth 16, each layer
  seeing the concatenation of all earlier outputs), each followed by a transition (BatchNorm, ReLU,
  1x1 Conv1d halving the channels, average pooling by 2): 100 -> 50 -> 25 positions;
- [guess] one multi-head self-attention layer (4 heads) over the 25 positions with learned position
  embeddings, residual and LayerNorm;
- [guess] attention pooling over positions, then Linear -> ReLU -> dropout -> Linear to one logit;
- [guess] Adam lr 1e-3, batch 64, dropout 0.2, binary cross-entropy; trained to convergence under
  chrombench's protocol (early stopping on valid AUROC);
- transfer learning: ``chrombench transfer --mode fine-tune`` pretrains on every other cell type and
  fine-tunes all weights on the target ([guess]: which layers the authors froze is not stated).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from chrombench import N_BINS, N_MARKS
from chrombench.models.contract import check_counts
from chrombench.models.contract import TuningBudget

from .torch_trainer import TorchChromModel, shared_attention


class DenseBlock(nn.Module):
    def __init__(self, channels: int, layers: int, growth: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm1d(channels + k * growth), nn.ReLU(),
                          nn.Conv1d(channels + k * growth, growth, 3, padding=1), nn.Dropout(dropout))
            for k in range(layers))
        self.out_channels = channels + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


def transition(channels: int) -> nn.Module:
    return nn.Sequential(nn.BatchNorm1d(channels), nn.ReLU(), nn.Conv1d(channels, channels // 2, 1), nn.AvgPool1d(2))


class TransferChromeNet(nn.Module):
    """``forward(x [B, bins, marks]) -> (logit [B], position weights [B, positions])``."""

    def __init__(self, n_bins: int = N_BINS, n_marks: int = N_MARKS, stem: int = 32, blocks: int = 2,
                 layers: int = 4, growth: int = 16, heads: int = 4, head: int = 32, dropout: float = 0.2):
        super().__init__()
        parts: list[nn.Module] = [nn.Conv1d(n_marks, stem, 3, padding=1)]
        channels, positions = stem, n_bins
        for _ in range(blocks):
            block = DenseBlock(channels, layers, growth, dropout)
            channels = block.out_channels // 2
            positions //= 2
            parts += [block, transition(block.out_channels)]
        if positions < 1:
            from chrombench.errors import ChrombenchError

            raise ChrombenchError(f"transferchrome: {n_bins} bins are too few for {blocks} pooling steps")
        self.features = nn.Sequential(*parts)
        width = channels - channels % heads  # the attention width must split evenly across heads
        self.project = nn.Conv1d(channels, width, 1) if width != channels else None
        channels = width
        self.position = nn.Parameter(torch.zeros(1, positions, channels))
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm = nn.LayerNorm(channels)
        self.pool = nn.Linear(channels, 1)
        self.head = nn.Sequential(nn.Linear(channels, head), nn.ReLU(), nn.Dropout(dropout), nn.Linear(head, 1))

    def forward(self, x: torch.Tensor):
        h = self.features(x.transpose(1, 2))  # [B, C, P]
        if self.project is not None:
            h = self.project(h)
        h = h.transpose(1, 2) + self.position  # [B, P, C]
        a, _ = self.attention(h, h, h, need_weights=False)
        h = self.norm(h + a)
        weights = torch.softmax(self.pool(h).squeeze(-1), dim=1)  # [B, P]
        return self.head((weights.unsqueeze(-1) * h).sum(dim=1))[:, 0], weights


class TransferChrome(TorchChromModel):
    name: ClassVar[str] = "transferchrome"
    parameter_count: ClassVar[int | None] = 53_834
    family: ClassVar[str] = "convolutional"
    description: ClassVar[str] = ("TransferChrome (Chen et al. 2022), reconstructed: dense CNN + self-attention; "
                                  "transfer with `chrombench transfer --mode fine-tune`")
    citation: ClassVar[str] = ("Chen, Xie, Wen. Predicting gene expression from histone modifications with "
                               "self-attention based neural networks and transfer learning. Front. Genet. 13:1081842, "
                               "2022")
    param_ranges: ClassVar[dict[str, str]] = {**TorchChromModel.param_ranges,
                                              **{k: "[1, inf)" for k in ("blocks", "layers", "growth", "heads")}}
    tuning: ClassVar[dict] = {"quick": TuningBudget(2), "full": TuningBudget(6, 900.0)}
    explains: ClassVar[tuple[str, ...]] = ("attention", "gradients")

    def __init__(self, blocks: int = 2, layers: int = 4, growth: int = 16, heads: int = 4, dropout: float = 0.2,
                 lr: float = 1e-3, batch_size: int = 64, epochs: int = 100, patience: int = 5, clip_norm: float = 0.0,
                 weight_decay: float = 0.0, input_transform: str = "log1p", seed: int = 0, device: str = "auto"):
        self.blocks = blocks
        self.layers = layers
        self.growth = growth
        self.heads = heads
        self.dropout = dropout
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.clip_norm = clip_norm
        self.weight_decay = weight_decay
        self.input_transform = input_transform
        self.seed = seed
        self.device = device

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        return {"lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
                "dropout": trial.suggest_float("dropout", 0.0, 0.5),
                "growth": trial.suggest_categorical("growth", [8, 16, 32])}

    def _build_module(self) -> TransferChromeNet:
        n_bins, n_marks = self.input_shape()
        return TransferChromeNet(n_bins, n_marks, blocks=int(self.blocks), layers=int(self.layers),
                                 growth=int(self.growth), heads=int(self.heads), dropout=float(self.dropout))

    def _logits(self, module, x):
        return module(x)[0]

    def attention(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``(alpha [n, marks, bins], beta [n, marks])``: the attention pooling's weights over positions,
        each position's weight shared among the bins it pools (2^blocks of them), the same for every
        mark (the convolutions mix them); beta uniform."""
        X = check_counts(X, shape=self.input_shape())
        n_bins, n_marks = self.input_shape()
        parts = self.map_batches(X, lambda module, x: module(x)[1].float().cpu().numpy())
        w = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
        span = 2 ** int(self.blocks)
        spread = np.zeros((len(w), n_bins), np.float32)
        spread[:, :w.shape[1] * span] = np.repeat(w, span, axis=1) / span
        return shared_attention(spread, n_marks)
