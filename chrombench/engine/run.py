"""``run_evaluations``: the whole job for a list of models on a list of tasks.

For each task (in order) and each model: tune (``tuning.tune``, shared and resumable), refit the
winner once per seed and test once per seed (``evaluation.evaluate_seed``), write one sealed record
per seed and a summary per (model, task), track everything in MLflow. The rooms:

- ``plan``: the request (``RunConfig``) checked and resolved before any work (``Plan``);
- ``outdir``: who may work in the output folder, and which worker holds which (model, task);
- ``resume``: what is kept from the results already there (``--overwrite-strategy``);
- ``pair``: one (model, task), its seeds and summary; ``pair_tracking``: its MLflow runs;
- this module: the stores, the order of the pairs, and waiting for pairs held by other workers.
"""

from __future__ import annotations

import logging

from ..data.load import load_task
from . import evaluation, outdir, resume, tuning
from .coordination import Coordinator, schema_lock
from .pair import PairRun
from .plan import ModelSpec, Plan, RunConfig, plan
from .progress import Progress
from .tracking import Tracker, artifact_root, ensure_store

__all__ = ["RunConfig", "plan", "run_evaluations", "task_handle"]
log = logging.getLogger("chrombench.engine")


def run_evaluations(cfg: RunConfig, progress: bool = True, failures: dict | None = None) -> list[dict]:
    """Evaluate every model on every task; returns the sealed summary records (task-major order).

    ``failures``: when given, a (model, task) that fails is recorded there ("model · task" -> why) and
    the run goes on with the others; otherwise the first failure is raised. Ctrl-C always stops.
    """
    p = plan(cfg)
    with outdir.claim(p.output_dir, outdir.settings(cfg)):  # a second run with other settings is refused
        return _run_planned(cfg, p, progress, failures)


def open_stores(url: str, cfg: RunConfig):
    """The Optuna storage and the coordinator over one connection pool (the storage's own)."""
    storage = tuning.open_storage(url, cfg.heartbeat_interval, cfg.grace_period)
    return storage, Coordinator(url, cfg.heartbeat_interval, cfg.grace_period, engine=storage.engine)


def task_handle(ds: str, task: str, genes: dict | None) -> evaluation.TaskHandle:
    """Load the task once for its tuning view and identity; its test split is reloaded only when a
    seed's fit is done (so it is not in memory while models fit)."""
    full = load_task(task, ds, genes=genes)
    return evaluation.TaskHandle.of(full, lambda: load_task(task, ds, genes=genes))


def _run_planned(cfg: RunConfig, p: Plan, progress: bool, failures: dict | None) -> list[dict]:
    for ref, why in p.skipped_models.items():
        log.warning("skipping model %s: %s", ref, why)
    tuning.quiet_optuna()
    with schema_lock(p.storage):  # workers started together would race to create the tables
        outdir.create_local_storage(p.storage, lambda url: open_stores(url, cfg)[1].dispose())
        storage, coord = open_stores(p.storage, cfg)
    ensure_store(p.tracking_uri)  # the same race in a new local MLflow store
    trackers: dict[str, Tracker] = {}
    bar = Progress(len(p.tasks) * len(p.models), enabled=progress)
    results_by_pair: dict[tuple[str, str], dict] = {}
    handles: dict[str, evaluation.TaskHandle] = {}

    def one_pair(ds: str, task: str, spec: ModelSpec) -> None:
        bar.describe(f"{spec.name} · {task}")
        if task not in handles:
            handles.clear()  # one task's arrays at a time
            handles[task] = task_handle(ds, task, p.genes)
        handle = handles[task]
        outdir.clean_leftovers(p.output_dir, ds, spec.name, task)  # we hold the pair: no one else writes there
        keep, done = resume.existing_results(p, cfg, spec, handle)
        if keep:
            if done is not None:
                results_by_pair[(task, spec.name)] = done
            return
        exp = f"chrombench/{p.suite or 'tasks'}/{ds}"
        if exp not in trackers:
            trackers[exp] = Tracker(p.tracking_uri, exp, None if cfg.tracking_uri else artifact_root(p.output_dir))
        try:
            summary = PairRun(cfg, p, spec, handle, storage, coord, trackers[exp], bar).run()
        except Exception as exc:
            if failures is None:
                raise
            failures[f"{spec.name} · {task}"] = f"{type(exc).__name__}: {exc}"
            log.error("%s on %s failed, going on with the rest: %s: %s", spec.name, task, type(exc).__name__, exc)
            summary = None
        if summary is not None:
            results_by_pair[(task, spec.name)] = summary

    # Workers on this machine (same output folder) split whole (model, task) pairs: a pair held by
    # another worker is left for later, then waited for. Each pair's tuning stays one sequence, so the
    # results do not depend on the number of local workers.
    deferred = []
    try:
        for ds, task, spec in p.pair_order(cfg.order):
            with outdir.pair_lock(p.output_dir, ds, task, spec.name, wait=False) as mine:
                if mine:
                    one_pair(ds, task, spec)
                    bar.advance()
                else:
                    deferred.append((ds, task, spec))
        for ds, task, spec in deferred:
            bar.describe(f"{spec.name} · {task}")
            bar.phase("waiting for another worker")
            with outdir.pair_lock(p.output_dir, ds, task, spec.name, wait=True):
                one_pair(ds, task, spec)  # done by the other worker (kept), or redone if it died
            bar.advance()
    finally:
        bar.close()
        coord.dispose()
    order = [(task, spec.name) for _, task in p.tasks for spec in p.models]
    return [results_by_pair[k] for k in order if k in results_by_pair]
