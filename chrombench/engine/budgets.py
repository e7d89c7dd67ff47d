"""Default tuning budgets, chosen so that a bare ``chrombench run`` (quick suite, 10 models, 3 tasks,
3 seeds) finishes in about five minutes on 2 CPU cores, and a full-size task gets a real search.

``--trials`` / ``--timeout`` replace these for every model. Overrides are fixed ``__init__`` kwargs
applied to trials and refits alike (a smaller epoch cap for the quick suite); an override is used
only when the model accepts that keyword, so third-party models are never broken by it.
"""

from __future__ import annotations

from .protocol import accepted_params
from .tuning import Budget

# name -> (trials, timeout in trial-seconds, overrides), for the quick suite / full-size tasks.
QUICK = {
    "attentivechrome": (3, 25.0, {"max_epochs": 6}),
    "attentivechrome-no-alpha": (3, 25.0, {"max_epochs": 6}),
    "attentivechrome-no-beta": (3, 25.0, {"max_epochs": 6}),
    "attentivechrome-unidirectional": (3, 25.0, {"max_epochs": 6}),
    "lstm": (3, 25.0, {"max_epochs": 6}),
    "deepchrome": (4, 20.0, {"max_epochs": 8}),
    "svm": (8, 15.0, {}),
    "random-forest": (4, 15.0, {"n_estimators": 150}),  # 800 genes: more trees buy nothing but time
    "xgboost": (6, 15.0, {"n_estimators": 300}),  # deep trees x 2000 rounds took 20 s for one trial
    "logistic-regression": (8, 10.0, {}),
}
FULL = {
    "attentivechrome": (12, 900.0, {}),
    "attentivechrome-no-alpha": (12, 900.0, {}),
    "attentivechrome-no-beta": (12, 900.0, {}),
    "attentivechrome-unidirectional": (12, 900.0, {}),
    "lstm": (12, 900.0, {}),
    "deepchrome": (16, 600.0, {}),
    "svm": (16, 600.0, {}),
    "random-forest": (12, 600.0, {}),
    "xgboost": (20, 600.0, {}),
    "logistic-regression": (20, 120.0, {}),
}
OTHER_QUICK = (5, 60.0, {})  # third-party models (e.g. `chrombench submit`)
OTHER_FULL = (20, 1800.0, {})


def default_budget(name: str, model_cls: type, quick: bool, trials: int | None = None,
                   timeout: float | None = None) -> Budget:
    """The budget for one model: explicit ``trials``/``timeout`` win over the table."""
    table, other = (QUICK, OTHER_QUICK) if quick else (FULL, OTHER_FULL)
    d_trials, d_timeout, overrides = table.get(name, other)
    accepted = accepted_params(model_cls)
    overrides = {k: v for k, v in overrides.items() if k in accepted}
    if trials is None and timeout is None:
        return Budget(d_trials, d_timeout, overrides)
    return Budget(trials, timeout, overrides)
