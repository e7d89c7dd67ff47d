"""Plots of interpretations: where people would rather look than read. matplotlib, Agg backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import MARKS, N_BINS

BIN_KB = (np.arange(N_BINS) - 49.5) * 0.1  # bin centres in kb relative to the TSS


def bin_axis(n_bins: int) -> tuple[np.ndarray, str]:
    """Bin centres relative to the TSS (the window's middle) and the axis label: kb for the archive's
    100 bins of 100 bp; bins for another layout (its bin width is the dataset's, not the model's)."""
    if n_bins == N_BINS:
        return BIN_KB, "kb from TSS"
    return np.arange(n_bins) - (n_bins - 1) / 2, "bins from TSS"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def profiles_by_class(scores: np.ndarray, predicted_on: np.ndarray, path: Path, title: str,
                      ylabel: str = "mean score", marks=MARKS) -> Path:
    """One panel per mark: the mean per-bin score for genes predicted ON and OFF."""
    plt = _plt()
    x, xlabel = bin_axis(scores.shape[2])
    fig, axes = plt.subplots(1, len(marks), figsize=(3.4 * len(marks), 3.2), sharey=True, squeeze=False)
    axes = axes[0]
    for j, (ax, mark) in enumerate(zip(axes, marks)):
        for mask, label, colour in ((predicted_on, "ON", "#c0392b"), (~predicted_on, "OFF", "#2c3e50")):
            if mask.any():
                ax.plot(x, scores[mask, j].mean(axis=0), color=colour, label=f"{label} (n={mask.sum()})")
        ax.axvline(0, color="grey", lw=0.6, ls=":")
        ax.set_title(mark)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(frameon=False, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def mark_scores_by_class(mark_scores: np.ndarray, predicted_on: np.ndarray, path: Path, title: str,
                         marks=MARKS) -> Path:
    """Mean per-mark score (e.g. beta) for genes predicted ON and OFF, side by side."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.5, 1.3 * len(marks)), 3.4))
    x = np.arange(len(marks))
    for off, (mask, label, colour) in enumerate(((predicted_on, "ON", "#c0392b"), (~predicted_on, "OFF", "#2c3e50"))):
        if mask.any():
            ax.bar(x + (off - 0.5) * 0.38, mark_scores[mask].mean(axis=0), 0.38, label=label, color=colour)
    ax.set_xticks(x, marks)
    ax.set_ylabel("mean score")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def gene_heatmaps(scores: np.ndarray, gene_ids, probs: np.ndarray, path: Path, title: str, n: int = 6,
                  marks=MARKS) -> Path:
    """Per-gene (mark x bin) heatmaps for the n most confidently ON/OFF genes."""
    plt = _plt()
    x, xlabel = bin_axis(scores.shape[2])
    half = (x[1] - x[0]) / 2 if len(x) > 1 else 0.5
    order = np.argsort(probs)
    pick = list(order[::-1][: n // 2]) + list(order[: n - n // 2])
    fig, axes = plt.subplots(len(pick), 1, figsize=(10, 1.25 * len(pick) + 0.6), squeeze=False)
    for ax, i in zip(axes[:, 0], pick):
        im = ax.imshow(scores[i], aspect="auto", cmap="magma", extent=(x[0] - half, x[-1] + half, len(marks) - .5, -.5))
        ax.set_yticks(range(len(marks)), marks, fontsize=7)
        ax.set_title(f"gene {gene_ids[i]}  P(ON)={probs[i]:.2f}", fontsize=8, loc="left")
        fig.colorbar(im, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel(xlabel)
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


def latent_by_group(pcs: np.ndarray, groups: np.ndarray, labels: np.ndarray, share, path: Path, title: str) -> Path:
    """Two panels of the same principal components: coloured by cell type, and by label."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), sharex=True, sharey=True)
    cmap = plt.get_cmap("tab10" if len(set(groups)) <= 10 else "tab20")
    for k, g in enumerate(sorted(set(groups))):
        sel = groups == g
        left.scatter(pcs[sel, 0], pcs[sel, 1], s=5, alpha=0.5, color=cmap(k % cmap.N), label=f"{g} ({sel.sum()})")
    for value, name, colour in ((1, "ON (expressed)", "#c0392b"), (0, "OFF", "#2c7fb8")):
        sel = labels == value
        if sel.any():
            right.scatter(pcs[sel, 0], pcs[sel, 1], s=5, alpha=0.5, color=colour, label=f"{name} ({sel.sum()})")
    left.set_title("by cell type", fontsize=9)
    right.set_title("by label", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel(f"PC1 ({share[0]:.0%} of variance)")
        ax.legend(fontsize=7, markerscale=2)
    left.set_ylabel(f"PC2 ({share[1]:.0%} of variance)" if len(share) > 1 else "PC2")
    fig.suptitle(title, fontsize=10)
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
