"""The evaluation protocol: tune on train/valid, refit per seed, test once. Fixed and versioned.

Every record carries ``results.PROTOCOL_VERSION``; changing what happens here means bumping it.

1. Tuning sees a ``TuningView``: the task's train and valid splits and nothing else. Its ``test``
   attribute raises ``ProtocolViolation``, and while tuning runs the engine seals the task in the
   data store (``store.TEST_SEAL``), so a model that reloads the task from disk during ``fit`` fails
   too. Test labels are therefore unreachable from the tuning path by construction, not by care.
2. A trial fits ``model_cls(**search_space(trial))`` on train (valid for early stopping) and scores
   valid AUROC. Iterative models report each epoch through ``on_epoch``; the trial reports the
   epoch's valid AUROC to Optuna and raises ``TrialPruned`` when the pruner says so.
3. The best parameters are refitted once per seed and evaluated on the test split exactly once per
   seed (test AUROC is the primary metric; AUPRC, accuracy, and the valid metrics are kept too).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..data import store
from ..data.arrays import DatasetRef, Split, TaskData
from ..errors import ChrombenchError, ProtocolViolation
from ..evaluate import Evaluator, auroc
from ..models.contract import _jsonable

__all__ = ["ProtocolViolation", "TuningView", "sealed_test", "fixed_params", "TrialOutcome", "trial_params", "run_trial", "EpochLog",
           "SeedOutcome", "evaluate_seed", "model_summary"]

SEED_PARAMS = ("seed", "random_state")  # the first one a model accepts receives the run's seed
DEVICE_PARAM = "device"


@dataclass(frozen=True)
class TuningView:
    """What the tuning path may see of a task: train and valid. There is no way back to test."""

    task: str
    dataset: DatasetRef
    train: Split
    valid: Split

    @classmethod
    def of(cls, data: TaskData) -> "TuningView":
        return cls(task=data.task, dataset=data.dataset, train=data.train, valid=data.valid)

    @property
    def test(self):
        raise ProtocolViolation(f"the test split of {self.dataset.name}/{self.task} is withheld during tuning; "
                                "tuning may use only train (fit) and valid (early stopping, model selection)")

    def split(self, name: str) -> Split:
        return getattr(self, name) if name != "test" else self.test


@contextlib.contextmanager
def sealed_test(dataset: str, task: str):
    """While active, ``store.load_task`` refuses to return ``dataset/task`` (its test labels)."""
    token = store.TEST_SEAL.set((dataset, task))
    try:
        yield
    finally:
        store.TEST_SEAL.reset(token)


def accepted_params(model_cls: type) -> set[str]:
    """The ``__init__`` keyword names, i.e. what ``get_params()`` will report."""
    sig = inspect.signature(model_cls.__init__)
    return {p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def fixed_params(model_cls: type, seed: int, device: str | None) -> dict[str, Any]:
    """Seed and device for the models that take them; models without such params get nothing."""
    names = accepted_params(model_cls)
    out: dict[str, Any] = {}
    for p in SEED_PARAMS:
        if p in names:
            out[p] = int(seed)
            break
    if device is not None and DEVICE_PARAM in names:
        out[DEVICE_PARAM] = device
    return out


def _valid_auroc(model, split: Split) -> float:
    proba = np.asarray(model.predict_proba(split.X), dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (len(split), 2):
        raise ChrombenchError(f"{type(model).__name__}.predict_proba returned shape {proba.shape}; "
                              f"the contract is [n_genes, 2] = (P(off), P(on))")
    return auroc(split.y, proba[:, 1])


class EpochLog:
    """The ``on_epoch`` callback: keeps the per-epoch metrics and forwards them to hooks."""

    def __init__(self, hooks: list[Callable[[int, dict], None]] | None = None):
        self.history: list[tuple[int, dict[str, float]]] = []
        self.hooks = hooks or []

    def __call__(self, epoch: int, metrics: dict) -> None:
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.number))}
        self.history.append((int(epoch), clean))
        for hook in self.hooks:
            hook(int(epoch), clean)  # may raise optuna.TrialPruned: that is how pruning stops fit


def pruning_hook(trial) -> Callable[[int, dict], None]:
    """Report epoch valid AUROC to Optuna; raise TrialPruned when the pruner says so."""
    import optuna

    def hook(epoch: int, metrics: dict) -> None:
        if "valid_auroc" not in metrics:
            return
        trial.report(metrics["valid_auroc"], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: valid AUROC {metrics['valid_auroc']:.4f} below the median")

    return hook


@dataclass
class TrialOutcome:
    value: float | None  # valid AUROC; None when pruned
    params: dict
    history: list = field(default_factory=list)
    fit_time_s: float = 0.0


def trial_params(trial, model_cls: type, fixed: dict, overrides: dict | None = None) -> dict:
    """``__init__`` kwargs of a trial: the model's search space, then budget overrides, then seed/device."""
    return {**model_cls.search_space(trial), **(overrides or {}), **fixed}


def run_trial(trial, model_cls: type, view: TuningView, params: dict, log: EpochLog | None = None) -> TrialOutcome:
    """Fit one trial's parameters on the tuning view and score valid AUROC.

    Raises ``optuna.TrialPruned`` (from ``on_epoch``) when the pruner stops the trial.
    """
    if not isinstance(view, TuningView):  # the tuning path never receives a TaskData
        raise ProtocolViolation(f"run_trial needs a TuningView, got {type(view).__name__}")
    log = log if log is not None else EpochLog()
    log.hooks.insert(0, pruning_hook(trial))
    model = model_cls(**params)
    t0 = time.perf_counter()
    with sealed_test(view.dataset.name, view.task):
        model.fit(view.train, view.valid, on_epoch=log)
        value = _valid_auroc(model, view.valid)
    return TrialOutcome(value=value, params=params, history=log.history, fit_time_s=time.perf_counter() - t0)


@dataclass
class SeedOutcome:
    metrics: dict  # {"test": {...}, "valid": {...}}
    model: Any
    params: dict
    fit_time_s: float
    predictions: dict  # gene_id, probability, label of the test genes
    history: list


def evaluate_seed(model_cls: type, best_params: dict, data: TaskData, seed: int, device: str | None,
                  epoch_hooks: list | None = None) -> SeedOutcome:
    """Refit the tuned parameters with ``seed`` on train (valid for early stopping), test once."""
    params = {**best_params, **fixed_params(model_cls, seed, device)}
    model = model_cls(**params)
    log = EpochLog(list(epoch_hooks or []))
    t0 = time.perf_counter()
    with sealed_test(data.dataset.name, data.task):  # fitting is still blind to test, also per seed
        model.fit(data.train, data.valid, on_epoch=log)
    fit_time = time.perf_counter() - t0
    evaluator = Evaluator()
    valid_p = np.asarray(model.predict_proba(data.valid.X), dtype=np.float64)[:, 1]
    test_p = np.asarray(model.predict_proba(data.test.X), dtype=np.float64)[:, 1]  # the one test prediction
    metrics = {"test": evaluator.eval(data.test.y, test_p), "valid": evaluator.eval(data.valid.y, valid_p)}
    preds = {"gene_id": np.asarray(data.test.gene_ids).astype(str), "probability": test_p,
             "label": np.asarray(data.test.y, dtype=np.int8)}
    return SeedOutcome(metrics=metrics, model=model, params=params, fit_time_s=fit_time, predictions=preds,
                       history=log.history)


def model_summary(name: str, target: str | None, model_cls: type, model) -> dict:
    """The ``model`` block of a record: name, target, family, params, parameter count."""
    out = {"name": name, "family": getattr(model_cls, "family", "") or "custom",
           "params": _jsonable(model.get_params(deep=False)), "n_parameters": int(model.n_parameters())}
    if target:
        out["target"] = target
    return out
