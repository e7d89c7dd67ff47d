"""Interpretation scores for a seed record: each explain method of the fitted model against the
simulator's planted importance map, on a fixed subsample of test genes.

Runs after the one test evaluation, on the fitted model, so it never touches the tuning path.
It is a bonus: any failure is logged and the record is written without it. Kept cheap (at most
``MAX_GENES`` genes, few integrated-gradients steps) so it adds seconds, not minutes, per run.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..data.arrays import GroundTruth, Split

MAX_GENES = 300
QUICK_GENES = 100  # the quick suite's (a demo and CI run: seconds, not minutes)
IG_STEPS = 8
SUBSAMPLE_SEED = 0  # fixed: every model is scored on the same genes of a task
log = logging.getLogger("chrombench.engine")


def stratified_subsample(y: np.ndarray, max_genes: int = MAX_GENES, seed: int = SUBSAMPLE_SEED) -> np.ndarray:
    """Sorted indices of at most ``max_genes`` genes keeping the ON/OFF proportions; deterministic."""
    y = np.asarray(y)
    if len(y) <= max_genes:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picked = []
    classes = np.unique(y)
    for i, c in enumerate(classes):
        idx = np.flatnonzero(y == c)
        # proportional share; the last class takes the remainder so the total is exactly max_genes
        n = max_genes - sum(map(len, picked)) if i == len(classes) - 1 else round(max_genes * len(idx) / len(y))
        picked.append(rng.choice(idx, size=min(n, len(idx)), replace=False))
    return np.sort(np.concatenate(picked))


def _finite(scores: dict) -> dict:
    # records are canonical JSON without NaN; a measure undefined on these genes is left out
    return {k: float(v) for k, v in scores.items() if np.isfinite(v)}


def interpretation_scores(model, test: Split, truth: GroundTruth, max_genes: int = MAX_GENES,
                          steps: int = IG_STEPS) -> tuple[dict, int, dict] | None:
    """({method: {measure: value}, "random": {...}}, n_genes, by_mechanism), or None when nothing could be
    scored. ``by_mechanism`` is {method: {mechanism: {"cell_auroc", "genes"}}} where the truth plants
    mechanisms with maps of their own (simremc 1.2 on), else empty: which planted mechanism each
    method's map reads, the page's "which model learns which mechanism" table."""
    from ..explain.methods import available_methods, explain
    from ..explain.scoring import random_baseline, score_by_mechanism, score_interpretation

    t0 = time.perf_counter()
    try:
        idx = stratified_subsample(test.y, max_genes)
        X = np.asarray(test.X)[idx]
        scored_truth = truth.subset(idx)  # the importance map and each mechanism's, on these genes
        true_map = np.asarray(scored_truth.importance, dtype=np.float64)
        mechanisms = scored_truth.mechanisms
        out, by_mechanism = {}, {}
        for method in available_methods(model):
            try:
                cells, _ = explain(model, X, method, steps=steps)
                out[method] = _finite(score_interpretation(cells, true_map))
                if mechanisms:
                    by_mechanism[method] = _mechanism_cells(score_by_mechanism(cells, mechanisms))
            except Exception as exc:
                log.warning("interpretation %s of %s failed, left out: %s", method, type(model).__name__, exc)
        if not out:
            return None
        out["random"] = _finite(random_baseline(true_map))
    except Exception as exc:
        log.warning("no interpretation scores for %s: %s", type(model).__name__, exc)
        return None
    log.info("interpretation scores for %s on %d genes in %.2f s", type(model).__name__, len(idx),
             time.perf_counter() - t0)
    return out, int(len(idx)), by_mechanism


def _mechanism_cells(scored: dict) -> dict:
    """Only the cell AUROC (and the genes it was measured on) per mechanism: the other measures rank a
    gene's top cells, which a mechanism touching a few bins of one mark does not fill."""
    return {name: {"cell_auroc": float(m["cell_auroc"]), "genes": int(m["genes"])}
            for name, m in scored.items() if m.get("genes") and np.isfinite(m.get("cell_auroc", np.nan))}
