"""The leaderboard's figures as inline SVG strings (matplotlib, Agg): the page needs no network.

Text stays text (``svg.fonttype = none``) so the figures are small and searchable, and the hash
salt is fixed so re-rendering the same results gives byte-identical pages.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np

from .collect import Section

ORACLE_LABEL = "oracle (ceiling)"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    plt = _plt()
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "chrombench"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: it is inlined in HTML
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)  # RDF boilerplate, no content


def _horizontal() -> dict:
    """matplotlib >= 3.10 spells horizontal boxes ``orientation=``; ``vert=`` is deprecated there."""
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


WIDE_HEATMAP_MAX_TASKS = 16  # beyond this, tasks go down the page so labels and values stay readable


def heatmap(section: Section) -> str:
    """Test AUROC per model and task, every cell labelled; for simulated data the oracle ceiling is
    an extra, uncoloured row (column when transposed): a reference, not a model on the scale."""
    plt = _plt()
    rows, labels = list(section.matrix), list(section.models)
    if section.simulated and any(v is not None for v in section.oracle.values()):
        rows.append([section.oracle[t] if section.oracle[t] is not None else math.nan for t in section.tasks])
        labels.append(ORACLE_LABEL)
    data = np.array(rows, dtype=float).reshape(len(labels), len(section.tasks))
    has_oracle = labels[-1] == ORACLE_LABEL
    colours = data.copy()
    if has_oracle:
        colours[-1] = math.nan
    finite = colours[np.isfinite(colours)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.5, 1.0)
    if vmax - vmin < 0.02:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    tall = len(section.tasks) > WIDE_HEATMAP_MAX_TASKS
    row_labels, col_labels = (section.tasks, labels) if tall else (labels, section.tasks)
    if tall:
        data, colours = data.T, colours.T
    n_rows, n_cols = data.shape
    size = (1.8 + 0.78 * n_cols, 1.4 + 0.24 * n_rows) if tall else (1.6 + 0.55 * n_cols, 0.9 + 0.36 * n_rows)
    fig, ax = plt.subplots(figsize=(max(4.0, size[0]), max(1.8, size[1])))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#e5e5e5")
    im = ax.imshow(np.ma.masked_invalid(colours), aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(n_cols), col_labels, rotation=40 if tall else (90 if n_cols > 8 else 0),
                  ha="right" if tall else "center", fontsize=8)
    ax.set_yticks(range(n_rows), row_labels, fontsize=8 if tall else 9)
    if tall:
        ax.xaxis.tick_top()
        plt.setp(ax.get_xticklabels(), ha="left")
    for i in range(n_rows):
        for j in range(n_cols):
            if np.isfinite(data[i, j]):
                coloured = np.isfinite(colours[i, j])
                dark = coloured and (colours[i, j] - vmin) / (vmax - vmin) < 0.6
                ax.text(j, i, f"{data[i, j]:.3f}", ha="center", va="center", fontsize=6.5,
                        color="white" if dark else "black", style="normal" if coloured else "italic")
    if has_oracle:
        (ax.axvline if tall else ax.axhline)((n_cols if tall else n_rows) - 1.5, color="white", lw=3)
    fig.colorbar(im, ax=ax, label="test AUROC", fraction=0.04 if not tall else 0.06, pad=0.02)
    ax.set_title(f"Test AUROC per task ({section.key})", fontsize=10, pad=40 if tall else 6)
    return _svg(fig)


def distributions(section: Section) -> str:
    """Per model: box plot of per-task test AUROC with every task as a dot (best model on top)."""
    plt = _plt()
    series = [(m, row[np.isfinite(row)]) for m, row in zip(section.models, section.matrix)]
    oracle = np.array([v for v in section.oracle.values() if v is not None], dtype=float)
    if section.simulated and oracle.size:
        series.append((ORACLE_LABEL, oracle))
    series = series[::-1]  # matplotlib draws the first box at the bottom
    fig, ax = plt.subplots(figsize=(7.0, max(1.8, 0.8 + 0.42 * len(series))))
    ax.boxplot([v for _, v in series], **_horizontal(), widths=0.55, showfliers=False,
               medianprops={"color": "#c0392b"}, boxprops={"color": "#34495e"})
    rng = np.random.default_rng(0)  # fixed jitter: identical pages for identical results
    for pos, (name, v) in enumerate(series, start=1):
        colour = "#7f8c8d" if name == ORACLE_LABEL else "#2c7fb8"
        ax.scatter(v, pos + rng.uniform(-0.15, 0.15, v.size), s=12, alpha=0.75, color=colour, zorder=3)
    ax.set_yticks(range(1, len(series) + 1), [n for n, _ in series], fontsize=9)
    ax.set_xlabel("test AUROC per task (mean over seeds)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Distribution over tasks ({section.key})", fontsize=10)
    return _svg(fig)


def cd_diagram(section: Section) -> str | None:
    """Critical-difference diagram (Demsar 2006): average ranks on an axis, with thick bars joining
    models whose ranks differ by less than the Nemenyi CD. None when it cannot be drawn."""
    from .stats import cd_cliques

    if section.friedman is None or not np.isfinite(section.cd):
        return None
    plt = _plt()
    names = sorted(section.avg_ranks, key=section.avg_ranks.get)
    ranks = np.array([section.avg_ranks[n] for n in names])
    k = len(names)
    half = (k + 1) // 2
    cliques = cd_cliques(ranks, section.cd)
    # layout in data units, top to bottom: CD bar, rank axis, clique bars, then one label row per model
    bar_y = [-0.3 - 0.22 * i for i in range(len(cliques))]
    first_label = (bar_y[-1] if bar_y else 0.0) - 0.45
    n_levels = max(half, k - half)
    bottom = first_label - 0.45 * (n_levels - 1) - 0.3
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.42 * (1.4 - bottom)))
    ax.set_xlim(0.3, k + 0.7)
    ax.set_ylim(bottom, 1.4)
    ax.hlines(0, 1, k, color="black", lw=1)
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.12, color="black", lw=1)
        ax.text(r, 0.18, str(r), ha="center", va="bottom", fontsize=8)
    for i, (name, r) in enumerate(zip(names, ranks)):
        left = i < half  # the better half labelled on the left, the rest on the right
        level = first_label - 0.45 * (i if left else k - 1 - i)
        x_text = 0.35 if left else k + 0.65
        ax.plot([r, r, x_text], [0, level, level], color="#34495e", lw=0.9)
        ax.text(x_text, level + 0.05, f"{name} ({r:.2f})", ha="left" if left else "right", va="bottom", fontsize=8)
    for y, (a, b) in zip(bar_y, cliques):
        ax.hlines(y, ranks[a] - 0.05, ranks[b] + 0.05, color="#c0392b", lw=3.5, zorder=3)
    ax.hlines(0.8, 1, 1 + section.cd, color="black", lw=1.5)
    ax.text(1 + section.cd / 2, 0.86, f"CD = {section.cd:.2f}", ha="center", va="bottom", fontsize=8)
    ax.axis("off")
    fr = section.friedman
    ax.set_title(f"Average rank over {fr.n} tasks (1 = best); Friedman p = {fr.pvalue:.3g}", fontsize=9)
    return _svg(fig)


def calibration_points(section: Section) -> dict[str, tuple[list[str], np.ndarray, np.ndarray, float]]:
    """Per series (the simulator's oracle; our measured DeepChrome): the tasks, the published DeepChrome
    AUROC on the real data (x), the simulated value (y) and their Spearman correlation."""
    from scipy.stats import spearmanr

    from .reported import per_task_rows

    published = {r.task: r.test_auroc for r in per_task_rows() if r.model == "deepchrome"}
    series = {}
    candidates = [(ORACLE_LABEL, {t: v for t, v in section.oracle.items() if v is not None})]
    if "deepchrome" in section.models:
        candidates.append(("deepchrome (measured here)", {t: c.mean for (m, t), c in section.cells.items()
                                                          if m == "deepchrome"}))
    for label, values in candidates:
        tasks = [t for t in section.tasks if t in published and t in values and np.isfinite(values[t])]
        if len(tasks) < 3:
            continue
        x = np.array([published[t] for t in tasks])
        y = np.array([values[t] for t in tasks])
        rho = float(spearmanr(x, y).statistic) if np.ptp(x) > 0 and np.ptp(y) > 0 else math.nan
        series[label] = (tasks, x, y, rho)
    return series


def calibration_scatter(section: Section) -> str | None:
    """How well the simulator keeps the real tasks' order of difficulty: per task, the published
    DeepChrome AUROC on the real data against the simulated oracle (and DeepChrome measured here),
    with the Spearman correlation of each. None for real data or too few tasks."""
    if not section.simulated:
        return None
    series = calibration_points(section)
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    styles = {ORACLE_LABEL: ("#7f8c8d", "s"), "deepchrome (measured here)": ("#2c7fb8", "o")}
    lo, hi = 1.0, 0.0
    for label, (tasks, x, y, rho) in series.items():
        colour, marker = styles.get(label, ("#34495e", "^"))
        ax.scatter(x, y, s=18, color=colour, marker=marker, alpha=0.8, label=f"{label}: Spearman ρ = {rho:.2f}")
        lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
    pad = 0.02
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#bbbbbb", lw=0.8, ls="--", zorder=0)
    ax.set_xlabel("published DeepChrome test AUROC on the real data (per task)")
    ax.set_ylabel("simulated (simremc) AUROC")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title(f"Simulator difficulty vs the real tasks ({len(next(iter(series.values()))[0])} tasks)", fontsize=10)
    return _svg(fig)
