"""Which planted mechanisms a model's predictions carry: a measure on its outputs, not on its attributions.

The simulator (simremc 1.2 on) makes each test label from a latent that is exactly a weighted sum of
independent terms: ``s = c_v * v + sum_k c_k * m_k`` (``data.simulate12.label_latents``), ``v`` being the
chromatin activity a window-mean reading sees and each ``m_k`` a planted mechanism. Because the terms are
drawn independently, regressing a model's score (the logit of its predicted probability) on them gives
each term's effect on the model's output, the way a randomised experiment would: no attribution method,
no counterfactual render. The coefficient ``b_k`` is how strongly the predictions move with mechanism k.

A model's uptake of mechanism k compares that weight with the simulator's own, relative to the activity:

    uptake_k = (b_k / c_k) / (b_v / c_v)

1.0: the model weighs the mechanism as much, against the simple activity, as the labels do (the latent
itself scores 1.0 on every term); 0: its predictions ignore it; below 0: they read it backwards.
Dividing by the activity's ratio makes it free of the score's scale and of noise that blurs every term
alike, so two models of different AUROC compare on what they read, not on how well. The price: a model
that reads the activity itself poorly (a small ``b_v``) shows every mechanism inflated.

This complements ``scoring.score_by_mechanism`` (where a model's attributions fall). A map can overlap a
mechanism's cells without the model decoding it (H3K36me3's gene-body cells, which every model reads for
the activity); the uptake asks whether the output follows the mechanism's own latent.
"""

from __future__ import annotations

import math

import numpy as np

ACTIVITY = "v"
_EPS = 1e-6  # probabilities of exactly 0 or 1 (trees) get a finite logit


def logit(probability) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def mechanism_uptake(score, latents: dict, coefficients: dict) -> dict[str, float]:
    """mechanism -> uptake (see the module), from one model's ``score`` on the test genes (any monotone
    scale works roughly; pass the logit) and the simulator's ``latents``/``coefficients`` for the same
    genes in the same order. NaN for a mechanism the labels give no weight, and for every mechanism
    when the score does not follow the activity at all (b_v <= 0): the ratio then says nothing."""
    score = np.asarray(score, dtype=np.float64)
    names = list(latents)
    if ACTIVITY not in latents:
        raise ValueError(f"latents must include the activity term {ACTIVITY!r}; got {names}")
    X = np.column_stack([np.asarray(latents[k], dtype=np.float64) for k in names])
    if X.shape[0] != score.shape[0]:
        raise ValueError(f"{score.shape[0]} scores for {X.shape[0]} genes' latents")
    if X.shape[0] <= X.shape[1] + 1:
        raise ValueError(f"{X.shape[0]} genes are too few to separate {X.shape[1]} terms")
    X = X - X.mean(axis=0)
    b, *_ = np.linalg.lstsq(X, score - score.mean(), rcond=None)
    coef = dict(zip(names, b))
    scale = coef[ACTIVITY] / coefficients[ACTIVITY]
    if not np.isfinite(scale) or scale <= 0:
        return {k: math.nan for k in names if k != ACTIVITY}
    # a term with no weight in the labels (a task whose ceiling rests on the activity alone) has no ratio
    return {k: float(coef[k] / coefficients[k] / scale) if coefficients[k] > 0 else math.nan
            for k in names if k != ACTIVITY}


def uptake_of_predictions(gene_ids, probability, truth: dict) -> dict[str, float]:
    """``mechanism_uptake`` for predictions given by gene ID (any subset or order of the test genes)
    against ``truth`` = ``label_latents(...)``'s dict. Raises ``ValueError`` naming a gene it lacks."""
    where = {g: i for i, g in enumerate(truth["gene_ids"])}
    try:
        idx = np.array([where[str(g)] for g in gene_ids], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"gene {exc.args[0]!r} is not a test gene of the simulated task") from None
    return mechanism_uptake(logit(probability), {k: v[idx] for k, v in truth["latents"].items()},
                            truth["coefficients"])
