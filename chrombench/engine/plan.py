"""What a run is asked to do, checked before any work starts: ``RunConfig`` -> ``plan`` -> ``Plan``.

Everything that can be wrong (unknown models, tasks outside the suite, data that is not there, an
unreachable storage or tracking server, bad seeds or trials) is found here, so a run never fails
after hours of work on something it could have refused at once.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..data.layout import SIMREMC
from ..data.load import load_task, resolve_task
from ..errors import ChrombenchError, UnknownNameError
from ..models.contract import TuningBudget
from ..models.registry import MODELS, canonical, get_model_class, load_plugins, zoo_names
from ..registry import suggest
from .budgets import default_budget
from .coordination import normalise_url, probe_storage
from .tracking import local_uri, probe_tracking

STRATEGIES = ("only-missing", "always", "never")


@dataclass
class RunConfig:
    models: list[str] | None = None  # zoo names, module:Class / path.py:Class targets, or NAME=TARGET
    tasks: list[str] | None = None  # explicit tasks (full size unless ``genes``); None = the suite
    suite: str | None = None  # "quick" | "roadmap56"; quick when neither tasks nor suite is given
    dataset: str = SIMREMC
    trials: int | None = None
    timeout: float | None = None  # tuning budget in trial-seconds per (model, task)
    seeds: list[int] | None = None  # None: the suite's seed policy (explicit tasks: 0, 1, 2)
    storage: str | None = None  # Optuna RDB URL; default sqlite:///<output_dir>/optuna.db
    tracking_uri: str | None = None  # MLflow; default sqlite:///<output_dir>/mlflow.db
    output_dir: Path = Path("chrombench-out")
    overwrite_strategy: str = "only-missing"
    device: str = "auto"
    genes: dict | None = None  # per-split subsample sizes for explicit tasks (the suite's otherwise)
    heartbeat_interval: int = 10  # seconds between heartbeats of running trials/seeds
    grace_period: int = 60  # a worker silent for this long is presumed dead and its work is redone
    poll_interval: float = 2.0  # while waiting for work that another worker is doing
    order: str = "task"  # "model": each model's pairs before the next model's (see ``pair_order``)


@dataclass
class ModelSpec:
    name: str
    target: str | None
    cls: type


@dataclass
class Plan:
    models: list[ModelSpec]
    tasks: list[tuple[str, str]]  # (dataset, task)
    suite: str | None
    genes: dict | None
    storage: str
    tracking_uri: str
    output_dir: Path
    skipped_models: dict = field(default_factory=dict)
    seeds: list[int] | None = None  # explicit --seeds: every task
    suite_spec: object = None  # chrombench.tasks.Suite of ``suite``

    def seeds_for(self, task: str) -> list[int]:
        """The final fits' seeds on ``task``: --seeds when given, else the suite's policy."""
        if self.seeds:
            return list(self.seeds)
        if self.suite_spec is not None:
            return self.suite_spec.seeds_for(task)
        return [0, 1, 2]

    def pair_order(self, order: str = "task") -> list[tuple[str, str, ModelSpec]]:
        """The (dataset, task, model) pairs in the order a worker takes them.

        ``task``: every model on a task before the next task (a run's table fills row by row).
        ``model``: one model's tasks before the next model's, so that columns complete one after the other
        while the workers never wait between them: a worker with nothing left of one model starts the
        next while the other finishes. Within a model, the pairs with the most seeds (the development
        tasks) come first: the longest pairs last would leave one worker idle at the end for longest.
        """
        if order == "task":
            return [(ds, task, spec) for ds, task in self.tasks for spec in self.models]
        if order == "model":
            by_cost = sorted(self.tasks, key=lambda dt: -len(self.seeds_for(dt[1])))  # stable: the suite's order
            return [(ds, task, spec) for spec in self.models for ds, task in by_cost]
        raise ValueError(f"pair order {order!r}: use 'task' or 'model'")

    @property
    def fixed_hyperparameters(self) -> bool:
        return bool(self.suite_spec is not None and self.suite_spec.fixed)


def resolve_models(names: list[str] | None) -> tuple[list[ModelSpec], dict[str, str]]:
    explicit = bool(names)
    specs, skipped = [], {}
    load_plugins()  # installed distributions' models join the registry by name (never the default set)
    for entry in names or zoo_names():
        name, _, target = entry.partition("=") if "=" in entry and ":" in entry.split("=", 1)[1] else (entry, "", "")
        name = canonical(name) if not target else name
        ref = target or name
        if ref not in MODELS and ":" not in ref:
            raise UnknownNameError(suggest(ref, MODELS.names(), "model"))
        try:
            cls = get_model_class(ref)
        except UnknownNameError:
            if ref not in MODELS:  # a bad path, module or class name in a target
                raise
            exc = sys.exc_info()[1]
            if explicit:
                raise ChrombenchError(f"model {ref!r} cannot be loaded: {exc}") from exc
            skipped[ref] = str(exc)
            continue
        except Exception as exc:  # an optional dependency or an unfinished module of the zoo
            if explicit:
                raise ChrombenchError(f"model {ref!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
            skipped[ref] = f"{type(exc).__name__}: {exc}"
            continue
        if ref not in MODELS and not target:
            name = getattr(cls, "name", "") or cls.__name__
            if name in MODELS:  # a third-party class must not pass itself off as a zoo model
                name = f"{name}@{cls.__module__.rsplit('.', 1)[-1]}"
        name = re.sub(r"[^A-Za-z0-9_.@+-]", "_", name)  # it becomes a folder, a study and a run name
        specs.append(ModelSpec(name=name, target=None if ref in MODELS else ref, cls=cls))
    names_seen = [s.name for s in specs]
    if len(set(names_seen)) != len(names_seen):
        raise ChrombenchError(f"two models share a name in {names_seen}; name them with NAME=TARGET")
    return specs, skipped


def plan(cfg: RunConfig) -> Plan:
    if cfg.overwrite_strategy not in STRATEGIES:
        raise UnknownNameError(suggest(cfg.overwrite_strategy, list(STRATEGIES), "overwrite strategy"))
    if cfg.seeds is not None and (not cfg.seeds or any(int(s) < 0 for s in cfg.seeds)
                                  or len(set(cfg.seeds)) != len(cfg.seeds)):
        raise ChrombenchError(f"--seeds must be distinct non-negative integers, got {cfg.seeds}")
    if cfg.trials is not None and cfg.trials < 0:
        raise ChrombenchError("--trials must be 0 (no tuning: the models' defaults) or more")
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ChrombenchError("--device cuda, but torch sees no CUDA device (CPU build of torch, or no GPU)")
    from ..tasks import get_suite

    suite = cfg.suite if cfg.tasks else (cfg.suite or "quick")
    genes = cfg.genes
    s = None
    if suite:
        # -t with --suite: only those tasks, under the suite's protocol (how one cell of a table is redone)
        s = get_suite(suite)
        if cfg.genes and cfg.genes != s.genes:
            raise ChrombenchError(f"--genes cannot change suite {suite!r}'s genes ({s.genes or 'full size'}); leave "
                                  "--suite out to run explicit tasks at other sizes")
        refs, genes = list(cfg.tasks or s.tasks), s.genes
        outside = [t for t in refs if resolve_task(t, cfg.dataset)[1] not in s.tasks]
        if outside:
            raise ChrombenchError(f"task(s) {', '.join(outside)} are not part of suite {suite!r}")
    else:
        refs = list(cfg.tasks)
    tasks = list(dict.fromkeys(resolve_task(t, cfg.dataset) for t in refs))
    for ds, task in tasks:  # real data must be there (memory-mapped: cheap); the simulator makes its own
        if ds != SIMREMC:
            load_task(task, ds)  # raises with how to fetch or import it
    models, skipped = resolve_models(cfg.models or (list(s.models) if s is not None and s.models else None))
    if not models:
        raise ChrombenchError("no model could be loaded: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    out = Path(cfg.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    storage = normalise_url(cfg.storage) if cfg.storage else f"sqlite:///{(out / 'optuna.db').as_posix()}"
    probe_storage(storage)
    tracking_uri = cfg.tracking_uri or local_uri(out)
    if cfg.tracking_uri:
        probe_tracking(tracking_uri)
    return Plan(models=models, tasks=tasks, suite=suite, genes=genes, storage=storage, tracking_uri=tracking_uri,
                output_dir=out, skipped_models=skipped, seeds=list(cfg.seeds) if cfg.seeds else None, suite_spec=s)


def pair_budget(p: Plan, cfg: RunConfig, spec: ModelSpec) -> TuningBudget:
    """What tunes one (model, task): nothing on a suite that holds defaults fixed, unless --trials or
    --timeout ask for tuning; else the model's declared budget."""
    if p.fixed_hyperparameters and cfg.trials is None and cfg.timeout is None:
        return TuningBudget(0, None)  # the suite holds each model's defaults across its tasks
    return default_budget(spec.cls, quick=p.suite == "quick", trials=cfg.trials, timeout=cfg.timeout)
