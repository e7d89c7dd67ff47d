"""Interpretation methods: every one returns cell scores ``[n, 5 marks, 100 bins]`` and mark scores ``[n, 5]``.

- ``attention``: AttentiveChrome's own alpha (bins, per mark) and beta (marks); the cell score is
  beta_j * alpha_jt, the weight the model puts on bin t of mark j.
- ``saliency``: |d logit / d input| (Simonyan et al.), on the model's own input scale.
- ``integrated-gradients``: |(x - x0) * mean gradient on the path x0 -> x| (Sundararajan et al.),
  baseline x0 = no reads, Riemann midpoint rule.
- ``importance``: a tree or linear model's global importances mapped back onto (mark, bin).

What a model must offer (duck-typed, so third-party models can join):
``attention(X) -> (alpha, beta)`` for attention; ``prepare_inputs(X) -> torch.Tensor [n, 100, 5]``
and ``logits_from_inputs(t) -> torch.Tensor [n]`` for the gradient methods;
``feature_importance_map() -> [5, 100]`` for importance.
"""

from __future__ import annotations

import numpy as np

from ..errors import ChrombenchError

METHODS = ("attention", "saliency", "integrated-gradients", "importance")


def available_methods(model) -> list[str]:
    out = []
    if hasattr(model, "attention") and getattr(model, "has_attention", True):
        out.append("attention")
    if hasattr(model, "prepare_inputs") and hasattr(model, "logits_from_inputs"):
        out += ["saliency", "integrated-gradients"]
    if hasattr(model, "feature_importance_map"):
        try:
            if model.feature_importance_map() is not None:
                out.append("importance")
        except Exception:  # an unfitted or non-supporting model simply lacks the method
            pass
    return out


def explain(model, X: np.ndarray, method: str, *, batch_size: int = 512, steps: int = 16,
            progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(cell scores [n, 5, 100], mark scores [n, 5]) of ``method`` for raw counts ``X`` [n, 100, 5]."""
    if method not in METHODS:
        from ..registry import suggest

        raise ChrombenchError(suggest(method, list(METHODS), "method"))
    avail = available_methods(model)
    if method not in avail:
        raise ChrombenchError(f"{type(model).__name__} does not support --method {method}; "
                              f"it supports: {', '.join(avail) or 'none'}")
    X = np.asarray(X)
    if method == "attention":
        alpha, beta = model.attention(X)
        alpha, beta = np.asarray(alpha, np.float32), np.asarray(beta, np.float32)
        return alpha * beta[:, :, None], beta
    if method == "importance":
        imp = np.abs(np.asarray(model.feature_importance_map(), np.float32))
        cells = np.broadcast_to(imp, (len(X),) + imp.shape).copy()
        return cells, cells.sum(axis=2)
    starts = range(0, len(X), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=method, unit="batch", leave=False)
    cells = np.concatenate([_gradient_scores(model, X[i:i + batch_size], method, steps)
                            for i in starts]) if len(X) else np.zeros((0, 5, 100), np.float32)
    return cells, cells.sum(axis=2)


def _gradient_scores(model, X: np.ndarray, method: str, steps: int) -> np.ndarray:
    import torch

    x = model.prepare_inputs(X).detach()
    if method == "saliency":
        x = x.clone().requires_grad_(True)
        model.logits_from_inputs(x).sum().backward()
        attr = x.grad.abs()
    else:
        baseline = model.prepare_inputs(np.zeros_like(X)).detach()
        total = torch.zeros_like(x)
        for k in range(steps):
            point = (baseline + (k + 0.5) / steps * (x - baseline)).requires_grad_(True)
            model.logits_from_inputs(point).sum().backward()
            total += point.grad
        attr = ((x - baseline) * total / steps).abs()
    return attr.detach().cpu().numpy().transpose(0, 2, 1).astype(np.float32)  # -> [n, marks, bins]
