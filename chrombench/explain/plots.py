"""Plots of interpretations: where people would rather look than read. matplotlib, Agg backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import MARKS, N_BINS

BIN_KB = (np.arange(N_BINS) - 49.5) * 0.1  # bin centres in kb relative to the TSS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def profiles_by_class(scores: np.ndarray, predicted_on: np.ndarray, path: Path, title: str,
                      ylabel: str = "mean score") -> Path:
    """One panel per mark: the mean per-bin score for genes predicted ON and OFF."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(MARKS), figsize=(17, 3.2), sharey=True)
    for j, (ax, mark) in enumerate(zip(axes, MARKS)):
        for mask, label, colour in ((predicted_on, "ON", "#c0392b"), (~predicted_on, "OFF", "#2c3e50")):
            if mask.any():
                ax.plot(BIN_KB, scores[mask, j].mean(axis=0), color=colour, label=f"{label} (n={mask.sum()})")
        ax.axvline(0, color="grey", lw=0.6, ls=":")
        ax.set_title(mark)
        ax.set_xlabel("kb from TSS")
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(frameon=False, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def mark_scores_by_class(mark_scores: np.ndarray, predicted_on: np.ndarray, path: Path, title: str) -> Path:
    """Mean per-mark score (e.g. beta) for genes predicted ON and OFF, side by side."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    x = np.arange(len(MARKS))
    for off, (mask, label, colour) in enumerate(((predicted_on, "ON", "#c0392b"), (~predicted_on, "OFF", "#2c3e50"))):
        if mask.any():
            ax.bar(x + (off - 0.5) * 0.38, mark_scores[mask].mean(axis=0), 0.38, label=label, color=colour)
    ax.set_xticks(x, MARKS)
    ax.set_ylabel("mean score")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def gene_heatmaps(scores: np.ndarray, gene_ids, probs: np.ndarray, path: Path, title: str, n: int = 6) -> Path:
    """Per-gene (mark x bin) heatmaps for the n most confidently ON/OFF genes."""
    plt = _plt()
    order = np.argsort(probs)
    pick = list(order[::-1][: n // 2]) + list(order[: n - n // 2])
    fig, axes = plt.subplots(len(pick), 1, figsize=(10, 1.25 * len(pick) + 0.6), squeeze=False)
    for ax, i in zip(axes[:, 0], pick):
        im = ax.imshow(scores[i], aspect="auto", cmap="magma", extent=(BIN_KB[0] - .05, BIN_KB[-1] + .05, len(MARKS) - .5, -.5))
        ax.set_yticks(range(len(MARKS)), MARKS, fontsize=7)
        ax.set_title(f"gene {gene_ids[i]}  P(ON)={probs[i]:.2f}", fontsize=8, loc="left")
        fig.colorbar(im, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel("kb from TSS")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def method_comparison(table: dict[str, dict[str, float]], path: Path, title: str) -> Path:
    """Bars of each scoring measure for each method (random baseline included)."""
    plt = _plt()
    methods = list(table)
    measures = [m for m in next(iter(table.values())) if m in ("cell_auroc", "precision_at_n_true", "mark_spearman")]
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width = 0.8 / len(methods)
    for i, meth in enumerate(methods):
        ax.bar(np.arange(len(measures)) + i * width, [table[meth][m] for m in measures], width, label=meth)
    ax.set_xticks(np.arange(len(measures)) + 0.4 - width / 2, measures)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latent_scatter(pcs: np.ndarray, labels: np.ndarray, share, path: Path, title: str) -> Path:
    """Genes in the first two principal components of a latent space, ON and OFF (or unlabelled) apart."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    groups = [(1, "ON (expressed)", "#c0392b"), (0, "OFF", "#2c7fb8")]
    known = np.isin(labels, (0, 1))
    for value, name, colour in groups:
        sel = known & (labels == value)
        if sel.any():
            ax.scatter(pcs[sel, 0], pcs[sel, 1], s=6, alpha=0.5, color=colour, label=f"{name} ({sel.sum()})")
    if (~known).any():
        ax.scatter(pcs[~known, 0], pcs[~known, 1], s=6, alpha=0.5, color="#7f8c8d", label="unlabelled")
    ax.set_xlabel(f"PC1 ({share[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({share[1]:.0%} of variance)" if len(share) > 1 else "PC2")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
