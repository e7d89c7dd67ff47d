"""The estimator contract every model in the zoo (and every submitted model) follows.

It is scikit-learn's, adapted to chromatin tasks:

- hyperparameters are ``__init__`` keyword arguments stored verbatim as attributes, so
  ``get_params()`` / ``set_params()`` / ``sklearn.base.clone`` work (inherited from BaseEstimator);
- ``fit(train, valid=None, on_epoch=None)`` takes ``chrombench.data.Split`` objects (``X`` is
  ``[n, 100 bins, 5 marks]`` raw integer counts, ``y`` 0/1). ``valid`` is for early stopping and
  pruning only. ``on_epoch(epoch, metrics)`` is called by iterative models after each epoch with
  at least ``{"valid_auroc": ...}``; it may raise (e.g. ``optuna.TrialPruned``) to stop training;
- ``predict_proba(X)`` takes raw counts ``[n, 100, 5]`` and returns ``[n, 2]`` (P(off), P(on));
- ``search_space(trial)`` (classmethod) declares the Optuna search space next to the model;
- ``save(dir)`` / ``chrombench.models.io.load_model(dir)`` round-trip without unpickling code:
  a JSON config plus tensors/arrays;
- ``training_report()`` says how the last fit ended (see ``STOP_REASONS``): every result record
  carries it, and a fit that hit its cap while still improving is *unconverged* and is never ranked
  as a result. An ``on_epoch`` callback may raise ``StopTraining`` to end a fit early (the engine's
  time limit); the model keeps its best epoch and reports ``stopped_by`` = the exception's reason.

Models never see the test split: the engine hands them train and valid only.

This is the one module of the model protocol. A model *declares*, as class attributes (all optional
but ``name``), what the engine, ``models list`` and ``explain`` read; ``check_declarations`` checks
them when a model is resolved by name or target (``models.registry``), and an error names the model
and the attribute:

==================  ==========================================================================
``name``           the registry name (``chrombench run -m NAME``)
``family``         e.g. recurrent, convolutional, classical (grouping on the leaderboard)
``description``    one line for ``chrombench models list``
``citation``       the paper it reproduces, if any
``parameter_count`` learned parameters with the defaults on the archive's shape (``None``: the data
                   decides); read from the file by ``models list`` (``models.catalog``)
``param_ranges``   ``{param: "[lo, hi)"}``: checked before any fit and when a saved model loads
``seed_param``     the ``__init__`` keyword that receives the run's seed (``None``: no seed)
``device_param``   the keyword that receives ``--device`` (``None``: CPU only)
``iterative``      trains in epochs/rounds: ``training_report()`` then says how it stopped
``explains``       what ``chrombench explain`` can ask of it: ``attention`` (``attention(X)``),
                   ``gradients`` (``prepare_inputs``/``logits_from_inputs``), ``importance``
                   (``feature_importance_map()``), ``latent`` (``latent(X) -> [n, d]``: exported
                   and drawn as a PCA scatter)
``has_attention``  ``False`` where an inherited ``attention(X)`` does not apply (an ablation)
``tuning``         ``{"quick": TuningBudget, "full": TuningBudget}``: default Optuna budgets when a
                   run tunes (``-t`` tasks or ``--trials``); models without one get ``DEFAULT_TUNING``
``fixed_input``    ``(bins, marks)`` the model is tied to; ``None`` (the default): any shape, read
                   from the training data at fit by ``_record_input`` and saved with the model
``fine_tunes``     ``fine_tune(train, valid)`` goes on training the fitted weights on new data
                   (``chrombench transfer --mode fine-tune``)
==================  ==========================================================================

What the engine passes: the seed and device through the declared keywords; ``on_epoch(epoch,
metrics)`` after each epoch (it may raise ``optuna.TrialPruned`` to prune a trial, or
``contract.StopTraining`` to end a fit, the best epoch kept); train and valid splits only, never
test. What it reads back: ``predict_proba``, ``n_parameters()``, ``training_report()``, ``save``.
Every model subclasses ``ChromModel`` (a class that does not is refused by name when it is resolved,
not after its first fit). One that declares nothing is still accepted: its seed and device keywords
are then found by name (``seed``/``random_state``, ``device``).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from .. import MARKS, N_BINS, N_MARKS, __version__
from ..errors import DataFormatError
from ..results import is_stalled_fit

EpochCallback = Callable[[int, dict], None]

# How a fit ended (``training_report()["stopped_by"]``):
#   patience   early stopping: valid AUROC did not improve for ``patience`` epochs (converged)
#   cap        the epoch/round/iteration cap was reached first: still improving, so *unconverged*
#   time       the engine's time limit ended it (unconverged, like the cap)
#   pruned     the tuner stopped a trial (trials only, never a result)
#   diverged   the loss became non-finite
#   stalled    early stopping ended a fit whose best epoch came before results.STALL_EPOCHS with a
#              validation AUROC below a linear model's: it never learned (unconverged; a better training
#              recipe, not more patience, is the cure; see results.is_stalled_fit)
#   tolerance  a solver met its own convergence criterion (lbfgs, libsvm)
#   complete   nothing iterative to converge (a random forest builds all its trees)
#   unknown    the model does not say (a third-party model without ``training_report``)
STOP_REASONS = ("patience", "cap", "time", "pruned", "diverged", "stalled", "tolerance", "complete", "unknown")
CONVERGED_STOPS = ("patience", "tolerance", "complete")


class StopTraining(Exception):
    """Raised by an ``on_epoch`` callback to end training now; the model keeps its best epoch."""

    def __init__(self, reason: str = "time", message: str = ""):
        if reason not in STOP_REASONS:
            raise ValueError(f"unknown stop reason {reason!r}; one of {', '.join(STOP_REASONS)}")
        super().__init__(message or reason)
        self.reason = reason


def fit_report(stopped_by: str, *, iterative: bool, epochs_run: int | None = None, best_epoch: int | None = None,
               cap: int | None = None, **extra) -> dict:
    """The ``training`` block of a result record. ``converged`` follows from ``stopped_by`` alone, so a
    record cannot claim convergence that its own stop reason contradicts."""
    if stopped_by not in STOP_REASONS:
        raise ValueError(f"unknown stop reason {stopped_by!r}; one of {', '.join(STOP_REASONS)}")
    if stopped_by == "patience" and best_epoch is not None and \
            is_stalled_fit("patience", int(best_epoch), extra.get("best_valid_auroc"), extra.get("valid_floor")):
        stopped_by = "stalled"
    out = {"iterative": bool(iterative), "stopped_by": stopped_by,
           "converged": None if stopped_by == "unknown" else stopped_by in CONVERGED_STOPS}
    for key, value in (("epochs_run", epochs_run), ("best_epoch", best_epoch), ("cap", cap)):
        if value is not None:
            out[key] = int(value)
    return {**out, **extra}

MODEL_FORMAT = 1  # bump when the on-disk layout of saved models changes

# -- declarations -----------------------------------------------------------------------------------

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



# what each declared explanation needs the model to have
_EXPLAIN_METHODS = {"attention": ("attention",), "gradients": ("prepare_inputs", "logits_from_inputs"),
                    "importance": ("feature_importance_map",), "latent": ("latent",)}
_TEXT = ("name", "family", "description", "citation")

# what every model defines, and what each is for (the error for a class that lacks one says it)
REQUIRED = {"fit": "train on (train, valid), calling on_epoch after each epoch",
            "predict_proba": "raw counts [n, bins, marks] -> [n, 2] probabilities",
            "_save_state": "write the learned state into a folder and return extra config entries (save())",
            "_load_state": "read that state back (chrombench.models.io.load_model)"}


def missing_methods(cls: type) -> list[str]:
    """The required methods a ``ChromModel`` subclass leaves abstract (``REQUIRED`` says what each does)."""
    return [m for m in REQUIRED if m in getattr(cls, "__abstractmethods__", ())]


# what the engine calls on a model (ChromModel defines all but fit and predict_proba)
_ENGINE_CALLS = ("fit", "predict_proba", "save", "n_parameters", "training_report", "get_params")


def _not_a_model(who: str, found: Any) -> str:
    """Why ``found`` (what a model name or target resolved to) is refused: it is no ``ChromModel`` subclass,
    so the engine would fail on it only after a fit, at the first method that class never got."""
    if not isinstance(found, type):
        return f"{who} is {type(found).__name__} {found!r}, not a chrombench model class: name a subclass of ChromModel"
    lacks = [f"{m}()" for m in _ENGINE_CALLS if not callable(getattr(found, m, None))]
    return (f"{who} does not subclass chrombench.models.contract.ChromModel, which every model must"
            + (f" (it lacks {', '.join(lacks)}, which the engine calls)" if lacks else "")
            + f": write `class {found.__name__}(ChromModel)` and define "
            + ", ".join(f"{m}() ({why})" for m, why in REQUIRED.items()))


def explains_of(cls: type) -> tuple[str, ...]:
    """What ``chrombench explain`` may ask of ``cls``: its declared ``explains`` (checked when it is
    resolved), else, for a class that declares nothing, what its methods offer; ``has_attention``
    False leaves attention out."""
    declared = getattr(cls, "explains", None)
    if declared is not None:
        return tuple(declared)
    return tuple(kind for kind, methods in _EXPLAIN_METHODS.items()
                 if all(callable(getattr(cls, m, None)) for m in methods)
                 and (kind != "attention" or getattr(cls, "has_attention", True)))


def check_declarations(cls: type, label: str | None = None) -> None:
    """Raise ``ModelDeclarationError`` naming the model (``label``, else the class) and what is wrong: it
    is no ``ChromModel`` subclass, leaves a required method abstract, or declares an attribute of the
    wrong kind or one that promises what the class cannot do. Undeclared attributes pass."""
    from ..errors import ModelDeclarationError

    if not (isinstance(cls, type) and issubclass(cls, ChromModel)):
        where = f"{cls.__module__}:{cls.__qualname__}" if isinstance(cls, type) else None
        raise ModelDeclarationError(_not_a_model(f"model {label or where}" + (f" ({where})" if label and where else ""),
                                                 cls))
    who = f"model {label or cls.__qualname__} ({cls.__module__}:{cls.__qualname__})"

    def bad(attr: str, why: str) -> ModelDeclarationError:
        return ModelDeclarationError(f"{who}: {attr} {why}")

    missing = missing_methods(cls)
    if missing:
        why = "; ".join(f"{m}: {REQUIRED[m]}" for m in missing)
        raise ModelDeclarationError(f"{who}: defines no {' or '.join(m + '()' for m in missing)}, which every model "
                                    f"must ({why})")
    accepted = init_params(cls)
    for attr in _TEXT:
        if not isinstance(getattr(cls, attr, ""), str):
            raise bad(attr, f"must be a string, not {getattr(cls, attr)!r}")
    for attr in ("iterative", "fine_tunes", "has_attention"):
        if not isinstance(getattr(cls, attr, False), bool):
            raise bad(attr, f"must be True or False, not {getattr(cls, attr)!r}")
    for attr in ("seed_param", "device_param"):
        value = getattr(cls, attr, None)
        if value is not None and value not in accepted:
            raise bad(attr, f"names {value!r}, which __init__ does not take (it takes {', '.join(sorted(accepted))})")
    count = getattr(cls, "parameter_count", None)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise bad("parameter_count", f"must be a count (an integer >= 0) or None, not {count!r}")
    ranges = getattr(cls, "param_ranges", None) or {}
    if not isinstance(ranges, dict):
        raise bad("param_ranges", f"must map parameter names to intervals, not {ranges!r}")
    for key, spec in ranges.items():  # a key __init__ does not take is allowed: inherited ranges apply where they can
        if not isinstance(spec, str) or not _INTERVAL.match(spec):
            raise bad("param_ranges", f"{key}: {spec!r} is not an interval such as '[0, 1)'")
    explains = getattr(cls, "explains", None)
    if explains is not None:
        if isinstance(explains, str) or not all(isinstance(e, str) for e in explains):
            raise bad("explains", f"must be a tuple of names, not {explains!r}")
        for kind in explains:
            if kind not in _EXPLAIN_METHODS:
                raise bad("explains", f"has {kind!r}; it can hold {', '.join(EXPLAINS)}")
            lacking = [m for m in _EXPLAIN_METHODS[kind] if not callable(getattr(cls, m, None))]
            if lacking:
                raise bad("explains", f"has {kind!r} but the class has no {' or '.join(lacking)}()")
        if "attention" in explains and not getattr(cls, "has_attention", True):
            raise bad("explains", "has 'attention' but has_attention is False; leave 'attention' out")
    tuning = getattr(cls, "tuning", None)
    if tuning is not None:
        if not isinstance(tuning, dict) or set(tuning) - {"quick", "full"}:
            raise bad("tuning", f"must map 'quick' and/or 'full' to TuningBudget, not {tuning!r}")
        for suite, budget in tuning.items():
            if not isinstance(budget, TuningBudget):
                raise bad("tuning", f"{suite!r} must be a TuningBudget, not {budget!r}")
    fixed = getattr(cls, "fixed_input", None)
    if fixed is not None and (not isinstance(fixed, (tuple, list)) or len(fixed) != 2
                              or not all(isinstance(v, int) and v > 0 for v in fixed)):
        raise bad("fixed_input", f"must be (bins, marks), two positive integers, or None; not {fixed!r}")


def check_counts(X: Any, where: str = "X", shape: tuple[int, int] | None = None) -> np.ndarray:
    """Validate raw counts ``[n_genes, bins, marks]``; with ``shape`` (a fitted model's (bins, marks)),
    also their size. Returns them as an ndarray."""
    X = np.asarray(X)
    if X.ndim != 3 or (shape is not None and tuple(X.shape[1:]) != tuple(shape)):
        want = (f"[n_genes, {shape[0]} bins, {shape[1]} marks], the shape it was fitted on" if shape else
                f"[n_genes, bins, marks] (the archive's: [n, {N_BINS}, {N_MARKS}] in the order {', '.join(MARKS)})")
        raise DataFormatError(f"{where} has shape {X.shape}; this model takes raw counts of shape {want}")
    if X.dtype.kind not in "biuf":
        raise DataFormatError(f"{where} has dtype {X.dtype}; models take numeric read counts")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        gene = int(np.flatnonzero(~np.isfinite(X).all(axis=(1, 2)))[0])
        raise DataFormatError(f"{where}: gene {gene} has a NaN or infinite count")
    if X.dtype.kind in "if" and X.size and X.min() < 0:
        gene = int(np.flatnonzero((X < 0).any(axis=(1, 2)))[0])
        raise DataFormatError(f"{where}: gene {gene} has a negative count; models take raw read counts")
    return X


_INTERVAL = re.compile(r"^([\[(])\s*([-+0-9.e]+|-inf)\s*,\s*([-+0-9.e]+|inf)\s*([\])])\Z")


def _in_interval(value: float, spec: str) -> bool:
    m = _INTERVAL.match(spec)
    if not m:
        raise ValueError(f"bad interval {spec!r}")
    lo_open, lo, hi, hi_open = m.group(1) == "(", float(m.group(2)), float(m.group(3)), m.group(4) == ")"
    return (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)


def validate_params(cls: type, params: dict, where: str = "") -> None:
    """Check hyperparameters against ``cls``'s ``__init__`` defaults (type) and ``param_ranges`` (value):
    a clear error naming the parameter and the value instead of a crash deep inside a fit."""
    import inspect
    import math

    from ..errors import ChrombenchError
    from ..safepath import quote

    at = f" ({where})" if where else ""
    if not isinstance(params, dict):
        raise ChrombenchError(f"parameters{at} must be a mapping of name to value, not {quote(params)}")
    sig = inspect.signature(cls.__init__)
    defaults = {p.name: p.default for p in list(sig.parameters.values())[1:]
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    ranges: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        ranges.update(getattr(klass, "param_ranges", None) or {})
    for key, value in params.items():
        if key not in defaults:
            continue  # unknown names are the caller's to report (they differ: CLI flag, saved file)
        default = defaults[key]
        kind = None
        if isinstance(default, bool):
            kind = bool if not isinstance(value, bool) else None
        elif isinstance(default, int):
            kind = int if isinstance(value, bool) or not isinstance(value, (int, np.integer)) else None
        elif isinstance(default, float):
            numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            kind = float if not numeric or not math.isfinite(float(value)) else None
        elif isinstance(default, str) and not isinstance(value, str) and key not in ranges:
            kind = str
        if kind is not None:
            raise ChrombenchError(f"{cls.__name__} parameter {key} = {quote(value)}{at}: expected "
                                  f"{'a finite number' if kind is float else 'an integer' if kind is int else kind.__name__}")
        spec = ranges.get(key)
        if spec and isinstance(value, (int, float, np.number)) and not isinstance(value, bool) \
                and not _in_interval(float(value), spec):
            raise ChrombenchError(f"{cls.__name__} parameter {key} = {quote(value)}{at} is out of range: it must lie in {spec}")


class ChromModel(BaseEstimator, metaclass=ABCMeta):
    """The base of every model: ``fit``, ``predict_proba``, ``_save_state`` and ``_load_state`` are
    abstract (``REQUIRED`` says what each does); a class that leaves one out is refused by name when it
    is resolved (``check_declarations``), and cannot be instantiated."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # hyperparameter -> allowed interval, e.g. {"dropout": "[0, 1)"}: checked by validate_params
    param_ranges: ClassVar[dict[str, str]] = {}
    # learned parameters with the default hyperparameters on the archive's shape, None when the data
    # decides (trees, support vectors). Declared, not defaulted: `models list` reads it from the file
    # instead of building the model; a model without it is built to be counted.
    parameter_count: ClassVar[int | None]
    # the rest of the declarations (the table at the top says what each means)
    citation: ClassVar[str] = ""
    iterative: ClassVar[bool] = False
    explains: ClassVar[tuple[str, ...] | None] = None  # None: found by the methods it has (explains_of)
    tuning: ClassVar[dict | None] = None  # {"quick": TuningBudget, "full": TuningBudget}
    # (bins, marks) a model is tied to (published weights, a fixed architecture); None: any shape,
    # read from the training data at fit (a task from `chrombench data build` may have other sizes)
    fixed_input: ClassVar[tuple[int, int] | None] = None
    # True: ``fine_tune(train, valid)`` goes on training the fitted weights on new data (transfer
    # learning, `chrombench transfer --mode fine-tune`)
    fine_tunes: ClassVar[bool] = False

    # -- the contract -------------------------------------------------------------------------
    @abstractmethod
    def fit(self, train, valid=None, on_epoch: EpochCallback | None = None) -> "ChromModel":
        """Train on ``train``; ``valid`` only for early stopping; ``on_epoch(epoch, metrics)`` after each epoch."""

    @abstractmethod
    def predict_proba(self, X) -> np.ndarray:
        """Raw counts ``[n, bins, marks]`` -> ``[n, 2]`` (P(off), P(on))."""

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Suggest hyperparameters on an Optuna trial; returns kwargs for ``__init__``."""
        return {}

    def n_parameters(self) -> int:
        """Number of learned parameters (after fit for data-dependent models)."""
        return 0

    def training_report(self) -> dict:
        """How the last ``fit`` ended: ``fit_report(...)``. Models that do not know say ``unknown``."""
        return fit_report("unknown", iterative=False)

    def fine_tune(self, train, valid=None, on_epoch: EpochCallback | None = None) -> "ChromModel":
        """Go on training the fitted model on new data (models with ``fine_tunes``)."""
        from ..errors import ChrombenchError

        raise ChrombenchError(f"{self.registry_name()} cannot be fine-tuned: it does not go on training from fitted "
                              "weights (the neural models can)")

    # -- input shape ----------------------------------------------------------------------------
    def _record_input(self, train, where: str = "train.X") -> np.ndarray:
        """Check ``train.X`` and remember its (bins, marks) and mark names: fit calls this first, and
        every later input (valid, predict, a saved model's) must have the same shape."""
        X = check_counts(train.X, where)
        shape = (int(X.shape[1]), int(X.shape[2]))
        if self.fixed_input is not None and shape != tuple(self.fixed_input):
            raise DataFormatError(f"{self.registry_name()} is tied to {self.fixed_input[0]} bins x {self.fixed_input[1]} "
                                  f"marks and cannot take this task's {shape[0]} bins x {shape[1]} marks")
        self.input_shape_ = shape
        self.marks_ = tuple(getattr(train, "marks", MARKS))
        return X

    def input_shape(self) -> tuple[int, int]:
        """(bins, marks) of the data fitted on; the archive's (100, 5) before fit."""
        return getattr(self, "input_shape_", None) or tuple(self.fixed_input or (N_BINS, N_MARKS))

    def input_marks(self) -> tuple[str, ...]:
        return getattr(self, "marks_", None) or MARKS

    # -- conveniences -------------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int8)

    # -- persistence --------------------------------------------------------------------------
    @abstractmethod
    def _save_state(self, directory: Path) -> dict:
        """Write learned state into ``directory``; return extra JSON-able config entries."""

    @abstractmethod
    def _load_state(self, directory: Path, config: dict) -> None:
        """Read back what ``_save_state`` wrote (``config``: the saved config.json)."""

    def save(self, path: str | os.PathLike) -> Path:
        """Save atomically into directory ``path`` (config.json + state files)."""
        from ..atomic import staging_dir, swap_dir

        path = Path(path)
        tmp = staging_dir(path)
        try:
            extra = self._save_state(tmp)
            config = {
                "chrombench_model_format": MODEL_FORMAT,
                "chrombench_version": __version__,
                "model": self.registry_name(),
                "params": _jsonable(self.get_params(deep=False)),
                "input": {"bins": self.input_shape()[0], "marks": list(self.input_marks()), "counts": "raw"},
                **extra,
            }
            (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        except BaseException:  # a failed save leaves no staging folder behind, and the old model as it was
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise
        swap_dir(tmp, path)
        return path

    def registry_name(self) -> str:
        """The name ``load_model`` resolves: the zoo name or a ``module:Class`` target."""
        from .registry import MODELS, load_plugins

        load_plugins()
        if self.name and self.name in MODELS and _registered_class_is(MODELS, self.name, type(self)):
            return self.name
        module = sys.modules.get(type(self).__module__)
        source = getattr(module, "__chrombench_file__", None) or type(self).__module__  # file.py or module
        return f"{source}:{type(self).__qualname__}"


def _registered_class_is(registry, name: str, cls: type) -> bool:
    """``name`` in the registry resolves to ``cls`` (a class merely calling itself so is not that model)."""
    try:
        return registry.get(name) is cls
    except Exception:
        return False


def _jsonable(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.floating,)):
            v = float(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out
