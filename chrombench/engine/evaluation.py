"""The evaluation protocol: tune on train/valid, refit per seed, test once. Fixed and versioned.

Every record carries ``results.PROTOCOL_VERSION``; changing what happens here means bumping it.

1. The engine holds a task as a ``TaskHandle``: a ``TuningView`` (train and valid, copied into
   memory, so nothing in it leads back to the cache's files) and a way to load the test split. The
   test split is loaded only after a model's ``fit`` has returned, for the one test prediction of
   each seed, and dropped again: while any model fits, test labels are not in memory at all.
2. While tuning or fitting, the task is sealed (``data.seal``, process-wide, every thread):
   chrombench's store and simulator refuse to produce it, and ``TuningView.test`` raises
   ``ProtocolViolation``. So a model cannot reach test labels through anything chrombench gives
   it or offers. (Code that opens the cache's files by path or patches chrombench in memory is
   hostile, and no check inside one process can stop it; a submission's code is part of its bundle.)
3. A trial fits ``model_cls(**search_space(trial))`` on train (valid for early stopping) and scores
   valid AUROC. Iterative models report each epoch through ``on_epoch``; the trial reports the
   epoch's valid AUROC to Optuna and raises ``TrialPruned`` when the pruner says so.
4. The best parameters are refitted once per seed and evaluated on the test split exactly once per
   seed (test AUROC is the primary metric; AUPRC, accuracy, and the valid metrics are kept too).
   A budget of zero trials tunes nothing: the model's own defaults (plus the budget's fixed values)
   are refitted, the protocol of a suite that holds hyperparameters fixed across its tasks.
5. Every fit says how it ended (``training_report()``: epochs run, best epoch, ``stopped_by``);
   the record carries it, and a fit that stopped at its cap while still improving is unconverged.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..data import seal
from ..data.arrays import DatasetRef, GroundTruth, Split, TaskData
from ..errors import ChrombenchError, ProtocolViolation
from ..evaluate import Evaluator, auroc
from ..models.contract import _jsonable

__all__ = ["ProtocolViolation", "TuningView", "TaskHandle", "sealed_test", "fit_sealed", "predict_on", "fixed_params", "TrialOutcome", "trial_params", "run_trial", "EpochLog",
           "SeedOutcome", "evaluate_seed", "model_summary"]



@dataclass(frozen=True)
class TuningView:
    """What the tuning path may see of a task: train and valid. There is no way back to test."""

    task: str
    dataset: DatasetRef
    train: Split
    valid: Split

    @classmethod
    def of(cls, data: TaskData) -> "TuningView":
        """Train and valid of ``data`` as in-memory copies (a memory map would name the cache folder)."""
        return cls(task=data.task, dataset=data.dataset, train=_in_memory(data.train), valid=_in_memory(data.valid))

    @property
    def test(self):
        raise ProtocolViolation(f"the test split of {self.dataset.name}/{self.task} is withheld during tuning; "
                                "tuning may use only train (fit) and valid (early stopping, model selection)")

    def split(self, name: str) -> Split:
        return getattr(self, name) if name != "test" else self.test


def _in_memory(split: Split) -> Split:
    return Split(np.array(split.gene_ids), np.array(split.X), np.array(split.y), split.marks)


@dataclass(frozen=True)
class TaskHandle:
    """The engine's hold on a task: the tuning view in memory, the test split only when asked for.

    ``load`` returns the task afresh from the store (which refuses while the task is sealed).
    """

    view: TuningView
    oracle_auroc: float | None  # the simulator's ceiling on the test split (a number, no labels)
    load: Callable[[], TaskData] = field(repr=False)

    @classmethod
    def of(cls, data: TaskData, load: Callable[[], TaskData]) -> "TaskHandle":
        return cls(TuningView.of(data), data.truth.oracle_auroc if data.truth is not None else None, load)

    @property
    def task(self) -> str:
        return self.view.task

    @property
    def dataset(self) -> DatasetRef:
        return self.view.dataset

    def load_test(self) -> tuple[Split, GroundTruth | None]:
        """The test split and (simulated tasks) its ground truth; never while the task is sealed."""
        data = self.load()
        if data.dataset.content_hash != self.dataset.content_hash:
            raise ChrombenchError(f"{self.dataset.name}/{self.task} changed on disk during the run (content hash "
                                  f"{data.dataset.content_hash[:12]}, was {self.dataset.content_hash[:12]})")
        return data.test, data.truth


@contextlib.contextmanager
def sealed_test(dataset: str, task: str):
    """While active (in every thread), chrombench refuses to produce ``dataset/task`` (its test labels)."""
    with seal.sealed(dataset, task):
        yield


def fixed_params(model_cls: type, seed: int, device: str | None) -> dict[str, Any]:
    """Seed and device through the keywords the model declares (``models.contract``); nothing for a
    model that takes neither."""
    from ..models.contract import device_param, seed_param

    out: dict[str, Any] = {}
    name = seed_param(model_cls)
    if name:
        out[name] = int(seed)
    name = device_param(model_cls)
    if device is not None and name:
        out[name] = device
    return out


def fit_sealed(model, view: "TuningView", on_epoch=None) -> None:
    """``model.fit`` on the view's train (valid for early stopping) with the task sealed; a model that
    calls ``sys.exit`` in its fit is refused by name instead of ending the run with no records."""
    with sealed_test(view.dataset.name, view.task):
        try:
            model.fit(view.train, view.valid, on_epoch=on_epoch)
        except SystemExit as exc:
            raise ChrombenchError(f"model {type(model).__name__} called sys.exit({exc.code!r}) in fit; a model "
                                  "must return from fit or raise an exception") from None
        except (MemoryError, RuntimeError) as exc:  # torch reports a failed allocation as a RuntimeError
            if isinstance(exc, RuntimeError) and "allocate" not in str(exc):
                raise
            params = _jsonable(model.get_params(deep=False)) if hasattr(model, "get_params") else {}
            raise ChrombenchError(f"model {type(model).__name__} ran out of memory in fit with parameters "
                                  f"{str(params)[:300]}: a parameter asks for more memory than this machine has") from None


def predict_on(model, split: Split) -> np.ndarray:
    """P(on) per gene of ``split``, after checking the contract: shape [n_genes, 2], finite values in [0, 1]."""
    name = type(model).__name__
    try:
        raw = model.predict_proba(split.X)
    except SystemExit as exc:
        raise ChrombenchError(f"model {name} called sys.exit({exc.code!r}) in predict_proba") from None
    try:
        proba = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ChrombenchError(f"model {name}.predict_proba returned something that is not an array of numbers "
                              f"({type(raw).__name__}: {str(exc)[:100]})") from None
    if proba.shape != (len(split), 2):
        raise ChrombenchError(f"model {name}.predict_proba returned shape {proba.shape} for {len(split)} genes; "
                              f"the contract is [n_genes, 2] = (P(off), P(on))")
    bad = ~np.isfinite(proba) | (proba < 0) | (proba > 1)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ChrombenchError(f"model {name}.predict_proba returned {proba[row].tolist()} for gene "
                              f"{split.gene_ids[row]} (row {row}); probabilities must be finite and in [0, 1]")
    return proba[:, 1]


def _valid_auroc(model, split: Split) -> float:
    return auroc(split.y, predict_on(model, split))


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
        fit_sealed(model, view, on_epoch=log)
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
    training: dict  # how the fit ended: contract.fit_report
    test: Split = field(repr=False)  # for what comes after the test prediction (interpretation scores)
    truth: GroundTruth | None = field(default=None, repr=False)
    compute: dict = field(default_factory=dict)  # what the fit computed on: models.compute


def evaluate_seed(model_cls: type, best_params: dict, handle: TaskHandle, seed: int, device: str | None,
                  epoch_hooks: list | None = None) -> SeedOutcome:
    """Refit the tuned parameters with ``seed`` on train (valid for early stopping), test once."""
    if not isinstance(handle, TaskHandle):  # a TaskData would put test labels in reach of fit
        raise ProtocolViolation(f"evaluate_seed needs a TaskHandle, got {type(handle).__name__}")
    view = handle.view
    params = {**best_params, **fixed_params(model_cls, seed, device)}
    model = model_cls(**params)
    log = EpochLog(list(epoch_hooks or []))
    t0 = time.perf_counter()
    fit_sealed(model, view, on_epoch=log)  # fitting is still blind to test, also per seed
    fit_time = time.perf_counter() - t0
    test, truth = handle.load_test()  # only now, after fit has returned
    evaluator = Evaluator()
    valid_p = predict_on(model, view.valid)
    test_p = predict_on(model, test)  # the one test prediction
    metrics = {"test": evaluator.eval(test.y, test_p), "valid": evaluator.eval(view.valid.y, valid_p)}
    preds = {"gene_id": np.asarray(test.gene_ids).astype(str), "probability": test_p,
             "label": np.asarray(test.y, dtype=np.int8)}
    return SeedOutcome(metrics=metrics, model=model, params=params, fit_time_s=fit_time, predictions=preds,
                       history=log.history, training=training_report(model), test=test, truth=truth,
                       compute=compute_report(model))


def training_report(model) -> dict:
    """How ``model``'s last fit ended, as the record's ``training`` block (``unknown`` for a model
    without ``training_report``; a malformed report is an error of that model, named)."""
    from ..models.contract import STOP_REASONS, fit_report

    report = getattr(model, "training_report", None)
    if report is None:
        return fit_report("unknown", iterative=False)
    out = report()
    if not isinstance(out, dict) or out.get("stopped_by") not in STOP_REASONS:
        raise ChrombenchError(f"{type(model).__name__}.training_report() returned {str(out)[:200]}; the contract is "
                              f"a dict with stopped_by in {STOP_REASONS} (use chrombench.models.contract.fit_report)")
    return _jsonable(out)


def compute_report(model) -> dict:
    """What ``model``'s last fit computed on, as the record's ``compute`` block (``path: unknown`` for a
    model without ``compute_report``; a malformed one is an error of that model, named)."""
    from ..models.compute import PATHS, unreported

    report = getattr(model, "compute_report", None)
    if report is None:
        return unreported()
    out = report()
    if not isinstance(out, dict) or out.get("path") not in PATHS:
        raise ChrombenchError(f"{type(model).__name__}.compute_report() returned {str(out)[:200]}; the contract is "
                              f"a dict with path in {PATHS} (use chrombench.models.compute.compute_report)")
    return _jsonable(out)


def model_summary(name: str, target: str | None, model_cls: type, model) -> dict:
    """The ``model`` block of a record: name, target, family, params, parameter count."""
    out = {"name": name, "family": getattr(model_cls, "family", "") or "custom",
           "params": _jsonable(model.get_params(deep=False)), "n_parameters": int(model.n_parameters())}
    if target:
        out["target"] = target
    return out
