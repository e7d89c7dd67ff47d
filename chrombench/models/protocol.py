"""The model protocol: what a model declares, and what the engine hands it. Read this and
``examples/promoter_model.py`` to add a model.

A model is a class following ``contract.ChromModel`` (scikit-learn's estimator contract:
hyperparameters as ``__init__`` keywords, ``fit(train, valid, on_epoch)``, ``predict_proba(X)``,
``search_space(trial)``, ``save``/``load_model``). It *declares*, as class attributes (all optional
but ``name``):

=================  ===========================================================================
``name``           the registry name (``chrombench run -m NAME``)
``family``         e.g. recurrent, convolutional, classical (grouping on the leaderboard)
``description``    one line for ``chrombench models list``
``citation``       the paper it reproduces, if any
``param_ranges``   ``{param: "[lo, hi)"}``: checked before any fit and when a saved model loads
``seed_param``     the ``__init__`` keyword that receives the run's seed (``None``: no seed)
``device_param``   the keyword that receives ``--device`` (``None``: CPU only)
``iterative``      trains in epochs/rounds: ``training_report()`` then says how it stopped
``explains``       what ``chrombench explain`` can ask of it: ``attention`` (``attention(X)``),
                   ``gradients`` (``prepare_inputs``/``logits_from_inputs``), ``importance``
                   (``feature_importance_map()``), ``latent`` (``latent(X) -> [n, d]``: exported
                   and drawn as a PCA scatter)
``tuning``         ``{"quick": TuningBudget, "full": TuningBudget}``: default Optuna budgets when a
                   run tunes (``-t`` tasks or ``--trials``); models without one get ``DEFAULT_TUNING``
``fixed_input``    ``(bins, marks)`` the model is tied to; ``None`` (the default): any shape, read
                   from the training data at fit by ``_record_input`` and saved with the model
``fine_tunes``     ``fine_tune(train, valid)`` goes on training the fitted weights on new data
                   (``chrombench transfer --mode fine-tune``)
=================  ===========================================================================

What the engine passes: the seed and device through the declared keywords; ``on_epoch(epoch,
metrics)`` after each epoch (it may raise ``optuna.TrialPruned`` to prune a trial, or
``contract.StopTraining`` to end a fit, the best epoch kept); train and valid splits only, never
test. What it reads back: ``predict_proba``, ``n_parameters()``, ``training_report()``, ``save``.
A class that declares nothing is still accepted: its seed and device keywords are then found by
name (``seed``/``random_state``, ``device``), so a plain scikit-learn-style class runs unchanged.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

EXPLAINS = ("attention", "gradients", "importance", "latent")
SEED_NAMES = ("seed", "random_state")  # looked for only when a class declares no seed_param


@dataclass(frozen=True)
class TuningBudget:
    """An Optuna budget: finished trials, trial-seconds (None: no limit), fixed ``__init__`` keywords
    for every trial and refit, and search-space values held fixed (recorded as such)."""

    trials: int | None
    timeout_s: float | None = None
    overrides: dict = field(default_factory=dict)
    held: dict = field(default_factory=dict)


DEFAULT_TUNING = {"quick": TuningBudget(5, 120.0), "full": TuningBudget(20, 1800.0)}  # unknown speed: a cap


def init_params(cls: type) -> set[str]:
    sig = inspect.signature(cls.__init__)
    return {p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def seed_param(cls: type) -> str | None:
    """The keyword that receives the seed: declared, else the first of ``SEED_NAMES`` it accepts."""
    if hasattr(cls, "seed_param"):
        return cls.seed_param
    names = init_params(cls)
    return next((p for p in SEED_NAMES if p in names), None)


def device_param(cls: type) -> str | None:
    if hasattr(cls, "device_param"):
        return cls.device_param
    return "device" if "device" in init_params(cls) else None


def tuning_budget(cls: type, quick: bool) -> TuningBudget:
    declared = getattr(cls, "tuning", None) or {}
    return declared.get("quick" if quick else "full") or DEFAULT_TUNING["quick" if quick else "full"]

