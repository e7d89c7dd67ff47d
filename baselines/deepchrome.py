"""DeepChrome (Singh et al., Bioinformatics 2016): a small CNN over the 100 bins, marks as channels.

As published: one convolution of 50 filters of width 10 over the 100 bins (the 5 marks are the
input channels), ReLU, max-pooling of width 5, dropout 0.5, then fully connected layers of 625 and
125 units with ReLU, and the output. The original (Lua Torch) used a two-class softmax output;
here it is the equivalent single logit with a sigmoid, trained by the shared trainer
(``torch_trainer``) like every neural model in the zoo.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from chrombench import N_BINS, N_MARKS
from chrombench.errors import ChrombenchError
from chrombench.models.contract import TuningBudget

from .torch_trainer import TorchChromModel


class DeepChromeNet(nn.Module):
    """``forward(x [B, bins, marks]) -> logit [B]`` (the archive's 100 bins x 5 marks by default)."""

    def __init__(self, n_filters: int = 50, filter_width: int = 10, pool_width: int = 5,
                 fc1_units: int = 625, fc2_units: int = 125, dropout: float = 0.5,
                 n_bins: int = N_BINS, n_marks: int = N_MARKS):
        super().__init__()
        pooled = (n_bins - filter_width + 1) // pool_width
        if pooled < 1:
            raise ChrombenchError(f"deepchrome: filter_width {filter_width} and pool_width {pool_width} leave nothing "
                                  f"of this task's {n_bins} bins; pass smaller ones (--param filter_width=...)")
        self.conv = nn.Conv1d(n_marks, n_filters, filter_width)
        self.pool = nn.MaxPool1d(pool_width)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Sequential(
            nn.Linear(n_filters * pooled, fc1_units), nn.ReLU(),
            nn.Linear(fc1_units, fc2_units), nn.ReLU(),
            nn.Linear(fc2_units, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(torch.relu(self.conv(x.transpose(1, 2))))  # marks become channels: [B, 5, 100]
        return self.classifier(self.dropout(h).flatten(1))[:, 0]


class DeepChrome(TorchChromModel):
    name: ClassVar[str] = "deepchrome"
    parameter_count: ClassVar[int | None] = 644_051
    family: ClassVar[str] = "convolutional"
    description: ClassVar[str] = ("DeepChrome (Singh et al. 2016): convolution over bins (50 filters x 10 bins), "
                                  "max-pool 5, dropout, fully connected 625-125")
    param_ranges: ClassVar[dict[str, str]] = {k: "[1, inf)" for k in ("n_filters", "filter_width", "pool_width",
                                                                       "fc1_units", "fc2_units")}
    citation: ClassVar[str] = ("Singh, Lanchantin, Robins, Qi. DeepChrome: deep-learning for predicting gene expression "
                               "from histone modifications. Bioinformatics 32(17), 2016")
    tuning: ClassVar[dict] = {"quick": TuningBudget(4), "full": TuningBudget(12, 600.0)}  # ~0.1 s/epoch at 800 genes

    def __init__(self, n_filters: int = 50, filter_width: int = 10, pool_width: int = 5, fc1_units: int = 625,
                 fc2_units: int = 125, dropout: float = 0.5, lr: float = 1e-3, batch_size: int = 128,
                 epochs: int = 100, patience: int = 5, clip_norm: float = 1.0, weight_decay: float = 0.0,
                 input_transform: str = "log1p", seed: int = 0, device: str = "auto"):
        self.n_filters = n_filters
        self.filter_width = filter_width
        self.pool_width = pool_width
        self.fc1_units = fc1_units
        self.fc2_units = fc2_units
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
        # The published architecture stays fixed; the training settings are tuned.
        return {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.6),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
            "weight_decay": trial.suggest_categorical("weight_decay", [0.0, 1e-5, 1e-4]),
        }

    def _build_module(self) -> DeepChromeNet:
        return DeepChromeNet(int(self.n_filters), int(self.filter_width), int(self.pool_width),
                             int(self.fc1_units), int(self.fc2_units), float(self.dropout), *self.input_shape())
