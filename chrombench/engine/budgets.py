"""Default tuning budgets for tuned runs: explicit tasks (``-t``) and ``--trials N`` on a suite.

The shipped suites (quick, roadmap56) hold each model's defaults fixed and tune nothing (see
``tasks/suites.toml``), so these apply only when tuning is asked for. ``--trials`` / ``--timeout``
replace the counts for every model. Overrides are fixed ``__init__`` kwargs applied to trials and
refits alike; an override is used only when the model accepts that keyword, so third-party models
are never broken by it. No budget caps epochs below what a fit needs to converge: every fit early-
stops on valid AUROC, and a record says how it ended.
"""

from __future__ import annotations

from .protocol import accepted_params
from .tuning import Budget

# name -> (trials, timeout in trial-seconds, overrides[, held search-space values]), quick / full size.
# The quick suite has no timeouts: a timeout makes the search depend on the machine's load, and the
# epoch/tree caps already bound its time; full-size budgets keep one as a safety net.
# A tuned quick-size run holds the published architecture (hidden 32 over bins, 16 over marks) and
# batch 128: a sampled hidden size of 64 made one fit 4-6x slower, so the run's length depended on the
# sampler's draws. It tunes lr, dropout and weight decay.
_ATTN_HELD = {"hidden_bins": 32, "hidden_marks": 16, "batch_size": 128}
_ATTN_QUICK = (2, None, {}, _ATTN_HELD)  # fits run to convergence (early stopping), never to a small cap
_ATTN_FULL = (8, 600.0, {})  # epochs/patience: the model's own defaults (early stopping on valid AUROC)
QUICK = {
    "attentivechrome": _ATTN_QUICK,
    "attentivechrome-no-alpha": _ATTN_QUICK,
    "attentivechrome-no-beta": _ATTN_QUICK,
    "attentivechrome-unidirectional": _ATTN_QUICK,
    "lstm": _ATTN_QUICK,
    "deepchrome": (4, None, {}),  # a CNN: ~0.1 s per epoch on 800 genes
    "svm": (8, None, {}),
    "random-forest": (4, None, {"n_estimators": 150}),  # 800 genes: more trees buy nothing but time
    "xgboost": (6, None, {"n_estimators": 100}),  # deep trees x 2000 rounds took 20 s for one trial
    "logistic-regression": (8, None, {}),
}
FULL = {
    "attentivechrome": _ATTN_FULL,
    "attentivechrome-no-alpha": _ATTN_FULL,
    "attentivechrome-no-beta": _ATTN_FULL,
    "attentivechrome-unidirectional": _ATTN_FULL,
    "lstm": _ATTN_FULL,
    "deepchrome": (12, 600.0, {}),
    "svm": (12, 600.0, {}),
    "random-forest": (10, 600.0, {}),
    "xgboost": (16, 600.0, {}),
    "logistic-regression": (16, 120.0, {}),
}
OTHER_QUICK = (5, 120.0, {})  # third-party models (e.g. `chrombench submit`): unknown speed, so a cap
OTHER_FULL = (20, 1800.0, {})


def default_budget(name: str, model_cls: type, quick: bool, trials: int | None = None,
                   timeout: float | None = None) -> Budget:
    """The budget for one model: explicit ``trials``/``timeout`` win over the table."""
    table, other = (QUICK, OTHER_QUICK) if quick else (FULL, OTHER_FULL)
    d_trials, d_timeout, overrides, *rest = table.get(name, other)
    accepted = accepted_params(model_cls)
    overrides = {k: v for k, v in overrides.items() if k in accepted}
    held = {k: v for k, v in (rest[0] if rest else {}).items() if k in accepted}
    if trials is None and timeout is None:
        return Budget(d_trials, d_timeout, overrides, held)
    return Budget(trials, timeout, overrides, held)
