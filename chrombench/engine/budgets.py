"""Default tuning budgets for tuned runs: explicit tasks (``-t``) and ``--trials N`` on a suite.

The shipped suites (quick, roadmap56) hold each model's defaults fixed and tune nothing (see
``tasks/suites.toml``). When a run tunes, each model's own declaration (``tuning`` on the class, see
``chrombench.models.contract``) gives the budget; ``--trials`` / ``--timeout`` replace its counts for
every model. Overrides are fixed ``__init__`` kwargs applied to trials and refits alike; an override
or held value is used only when the model accepts that keyword. No budget caps epochs below what a
fit needs to converge: every fit early-stops on valid AUROC, and a record says how it ended.
"""

from __future__ import annotations

import dataclasses

from ..models.contract import TuningBudget, init_params, tuning_budget


def default_budget(model_cls: type, quick: bool, trials: int | None = None, timeout: float | None = None) -> TuningBudget:
    """The budget for one model: its declaration, explicit ``trials``/``timeout`` winning over its counts,
    with only the overrides and held values its ``__init__`` takes."""
    declared = tuning_budget(model_cls, quick)
    accepted = init_params(model_cls)
    counts = {} if trials is None and timeout is None else {"trials": trials, "timeout_s": timeout}
    return dataclasses.replace(declared, **counts, overrides={k: v for k, v in declared.overrides.items() if k in accepted},
                               held={k: v for k, v in declared.held.items() if k in accepted})
