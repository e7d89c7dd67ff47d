"""Interpretation methods: every one returns cell scores ``[n, 5 marks, 100 bins]`` and mark scores ``[n, 5]``.

- ``attention``: AttentiveChrome's own alpha (bins, per mark) and beta (marks); the cell score is
  beta_j * alpha_jt, the weight the model puts on bin t of mark j.
- ``saliency``: |d logit / d input| (Simonyan et al.), on the model's own input scale.
- ``integrated-gradients``: |(x - x0) * mean gradient on the path x0 -> x| (Sundararajan et al.),
  baseline x0 = no reads, Riemann midpoint rule.
- ``importance``: a tree or linear model's global importances mapped back onto (mark, bin).

Which methods a model offers follows from what it declares in ``explains`` (checked, with the
methods each kind needs, when the model is resolved; ``chrombench.models.contract``):
``attention(X) -> (alpha, beta)`` for attention; ``prepare_inputs(X) -> torch.Tensor [n, 100, 5]``
and ``logits_from_inputs(t) -> torch.Tensor [n]`` for the gradient methods;
``feature_importance_map() -> [5, 100]`` for importance.
"""

from __future__ import annotations

import numpy as np

from ..errors import ChrombenchError

METHODS = ("attention", "saliency", "integrated-gradients", "importance")


def available_methods(model) -> list[str]:
    """The methods of ``model``'s declared explanations (``contract.explains_of``); importance only
    where the fitted model returns a map (``feature_importance_map()`` may say None)."""
    from ..models.contract import explains_of

    kinds = explains_of(type(model))
    out = ["attention"] if "attention" in kinds else []
    out += ["saliency", "integrated-gradients"] if "gradients" in kinds else []
    if "importance" in kinds and model.feature_importance_map() is not None:
        out.append("importance")
    return out


def explain(model, X: np.ndarray, method: str, *, batch_size: int = 512, steps: int = 16,
            progress: bool = False, diagnostics: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(cell scores [n, 5, 100], mark scores [n, 5]) of ``method`` for raw counts ``X`` [n, 100, 5].

    ``diagnostics``, when given, receives for integrated gradients ``completeness_gap`` [n]: per gene
    |sum of signed attributions - (f(x) - f(x0))| / |f(x) - f(x0)|, which is 0 for exact integration
    (Sundararajan et al.'s completeness axiom); more ``steps`` bring it down. For attention it
    receives ``alpha`` and ``beta``.
    """
    if method not in METHODS:
        from ..registry import suggest

        raise ChrombenchError(suggest(method, list(METHODS), "method"))
    if steps < 1:
        raise ChrombenchError(f"integrated gradients needs at least 1 step, got {steps}")
    avail = available_methods(model)
    if method not in avail:
        raise ChrombenchError(f"{type(model).__name__} does not support --method {method}; "
                              f"it supports: {', '.join(avail) or 'none'}")
    X = np.asarray(X)
    if method == "attention":
        alpha, beta = model.attention(X)
        alpha, beta = np.asarray(alpha, np.float32), np.asarray(beta, np.float32)
        if diagnostics is not None:
            diagnostics["alpha"], diagnostics["beta"] = alpha, beta  # the weights themselves, for the tables
        return alpha * beta[:, :, None], beta
    if method == "importance":
        imp = np.abs(np.asarray(model.feature_importance_map(), np.float32))
        cells = np.broadcast_to(imp, (len(X),) + imp.shape).copy()
        return cells, cells.sum(axis=2)
    if not len(X):
        return np.zeros((0, X.shape[2], X.shape[1]), np.float32), np.zeros((0, X.shape[2]), np.float32)
    cells, gaps = _gradient_scores_chunked(model, X, method, steps, batch_size, progress)
    if diagnostics is not None and gaps is not None:
        diagnostics["completeness_gap"] = gaps
    return cells, cells.sum(axis=2)


def _gradient_scores_chunked(model, X: np.ndarray, method: str, steps: int, batch_size: int, progress: bool):
    """Gene chunks through ``_gradient_scores``, torch single-threaded with chunks on Python threads
    (the trainer's policy: OpenMP threads stall these small operations on a shared CPU)."""
    import torch

    from ..parallel import map_chunks

    device = model.prepare_inputs(X[:1]).device
    # integrated gradients runs every path step of a chunk in one batch: keep that batch near batch_size
    chunk = max(1, batch_size // steps) if method == "integrated-gradients" else batch_size
    chunk = min(chunk, max(1, -(-len(X) // max(1, torch.get_num_threads()))))  # give every thread work
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(X), desc=method, unit="gene", leave=False)

    def run(start, stop):
        out = _gradient_scores(model, X[start:stop], method, steps)
        if bar is not None:
            bar.update(stop - start)
        return out

    try:
        parts = map_chunks(run, len(X), chunk, device)
    finally:
        if bar is not None:
            bar.close()
    cells = np.concatenate([c for c, _ in parts])
    gaps = np.concatenate([g for _, g in parts]) if method == "integrated-gradients" else None
    return cells, gaps


def _gradient_scores(model, X: np.ndarray, method: str, steps: int):
    """(|attributions| [n, marks, bins], completeness gap [n] or None) for one chunk of genes."""
    import torch

    x = model.prepare_inputs(X).detach()
    if method == "saliency":
        x = x.clone().requires_grad_(True)
        model.logits_from_inputs(x).sum().backward()
        return x.grad.abs().cpu().numpy().transpose(0, 2, 1).astype(np.float32), None
    n = len(x)
    baseline = model.prepare_inputs(np.zeros_like(X[:1])).detach().expand_as(x)
    fractions = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps  # midpoint rule
    points = (baseline.unsqueeze(0) + fractions.view(-1, 1, 1, 1) * (x - baseline).unsqueeze(0))
    points = points.reshape(steps * n, *x.shape[1:]).requires_grad_(True)
    model.logits_from_inputs(points).sum().backward()
    mean_grad = points.grad.reshape(steps, n, *x.shape[1:]).mean(0)
    signed = (x - baseline) * mean_grad
    with torch.no_grad():
        delta = model.logits_from_inputs(x) - model.logits_from_inputs(baseline)
        gap = (signed.sum(dim=(1, 2)) - delta).abs() / delta.abs().clamp_min(1e-6)
    return (signed.abs().detach().cpu().numpy().transpose(0, 2, 1).astype(np.float32),
            gap.cpu().numpy().astype(np.float32))
