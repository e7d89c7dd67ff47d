"""``run_evaluations``: the whole job for a list of models on a list of tasks.

For each task (in order) and each model: tune (``tuning.tune``, shared and resumable), refit the
winner once per seed and test once per seed (``evaluation.evaluate_seed``), write one sealed record
per seed and a summary per (model, task), track everything in MLflow.

Resume and scale-out rest on two stores: the Optuna storage database (trials, plus the
``chrombench_claims`` table of seeds, see ``coordination``) and the result files, written
atomically. The database is the source of truth for shared work: a finished seed is first
committed there (record + predictions), then copied into the local output folder, so a worker
that dies in between loses nothing and every worker ends with every record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import results
from ..atomic import atomic_write_text
from ..data.layout import SIMREMC
from ..data.load import load_task, resolve_task
from ..errors import ChrombenchError, UnknownNameError
from ..models.registry import MODELS, canonical, get_model_class, load_plugins, zoo_names
from ..registry import suggest
from . import evaluation, interpret, outdir, tuning
from .budgets import default_budget
from .coordination import Coordinator, Heartbeat, normalise_url, probe_storage, redact, schema_lock
from .tracking import SEED, Tracker, artifact_root, ensure_store, local_uri, probe_tracking

STRATEGIES = ("only-missing", "always", "never")
log = logging.getLogger("chrombench.engine")


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

    @property
    def fixed_hyperparameters(self) -> bool:
        return bool(self.suite_spec is not None and self.suite_spec.fixed)


# -- validation: everything that can be wrong is found before any work starts ----------------------

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


# -- the job ----------------------------------------------------------------------------------------

def run_evaluations(cfg: RunConfig, progress: bool = True, failures: dict | None = None) -> list[dict]:
    """Evaluate every model on every task; returns the sealed summary records (task-major order).

    ``failures``: when given, a (model, task) that fails is recorded there ("model · task" -> why) and
    the run goes on with the others; otherwise the first failure is raised. Ctrl-C always stops.
    """
    p = plan(cfg)
    with outdir.claim(p.output_dir, outdir.settings(cfg)):  # a second run with other settings is refused
        return _run_planned(cfg, p, progress, failures)


def _make_tables(url: str, cfg: RunConfig) -> None:
    tuning.open_storage(url, cfg.heartbeat_interval, cfg.grace_period).engine.dispose()
    Coordinator(url, cfg.heartbeat_interval, cfg.grace_period).dispose()


def _run_planned(cfg: RunConfig, p: Plan, progress: bool, failures: dict | None) -> list[dict]:
    for ref, why in p.skipped_models.items():
        log.warning("skipping model %s: %s", ref, why)
    tuning.quiet_optuna()
    with schema_lock(p.storage):  # workers started together would race to create the tables
        outdir.create_local_storage(p.storage, lambda url: _make_tables(url, cfg))
        storage = tuning.open_storage(p.storage, cfg.heartbeat_interval, cfg.grace_period)
        coord = Coordinator(p.storage, cfg.heartbeat_interval, cfg.grace_period)
    ensure_store(p.tracking_uri)  # the same race in a new local MLflow store
    trackers: dict[str, Tracker] = {}
    bar = _Progress(len(p.tasks) * len(p.models), enabled=progress)
    results_by_pair: dict[tuple[str, str], dict] = {}
    handles: dict[str, evaluation.TaskHandle] = {}

    def one_pair(ds: str, task: str, spec: ModelSpec) -> None:
        bar.describe(f"{spec.name} · {task}")
        if task not in handles:
            handles.clear()  # one task's arrays at a time
            handles[task] = _task_handle(ds, task, p.genes)
        handle = handles[task]
        outdir.clean_leftovers(p.output_dir, ds, spec.name, task)  # we hold the pair: no one else writes there
        keep, done = _existing_results(p, cfg, spec, handle)
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
        for ds, task in p.tasks:
            for spec in p.models:
                with pair_lock(p.output_dir, ds, task, spec.name, wait=False) as mine:
                    if mine:
                        one_pair(ds, task, spec)
                        bar.advance()
                    else:
                        deferred.append((ds, task, spec))
        for ds, task, spec in deferred:
            bar.describe(f"{spec.name} · {task}")
            bar.phase("waiting for another worker")
            with pair_lock(p.output_dir, ds, task, spec.name, wait=True):
                one_pair(ds, task, spec)  # done by the other worker (kept), or redone if it died
            bar.advance()
    finally:
        bar.close()
        coord.dispose()
    order = [(task, spec.name) for _, task in p.tasks for spec in p.models]
    return [results_by_pair[k] for k in order if k in results_by_pair]


@contextlib.contextmanager
def pair_lock(out: Path, ds: str, task: str, model: str, wait: bool):
    """An exclusive ``flock`` on this (model, task) in the output folder; yields whether we hold it.

    The kernel drops it when its holder dies, so a killed worker never blocks the others."""
    path = Path(out) / "locks" / ds / f"{re.sub(r'[^A-Za-z0-9_.@+-]', '_', model)}__{task}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _task_handle(ds: str, task: str, genes: dict | None) -> evaluation.TaskHandle:
    """Load the task once for its tuning view and identity; its test split is reloaded only when a
    seed's fit is done (so it is not in memory while models fit)."""
    full = load_task(task, ds, genes=genes)
    return evaluation.TaskHandle.of(full, lambda: load_task(task, ds, genes=genes))


def is_current(path: Path, data, best_params: dict | None = None) -> bool:
    """A record file that this run would write too: same dataset content and protocol version (and,
    given ``best_params``, refit with those tuned parameters).

    Anything else (another simulator version, another gene subsample, an older protocol, a winner of
    a smaller tuning budget) counts as missing under only-missing, so a summary never mixes results
    from two datasets or two sets of hyperparameters.
    """
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return (rec.get("dataset", {}).get("content_hash") == data.dataset.content_hash
            and rec.get("protocol_version") == results.PROTOCOL_VERSION
            and (best_params is None or rec.get("tuning", {}).get("best_params") == best_params))


def params_digest(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _existing_results(p: Plan, cfg: RunConfig, spec: ModelSpec, data) -> tuple[bool, dict | None]:
    """(keep, summary): results to leave as they are: complete ones (only-missing), any at all (never)."""
    if cfg.overwrite_strategy == "always":
        return False, None
    ds, task = data.dataset.name, data.task
    spath = results.summary_path(p.output_dir, ds, spec.name, task)
    summary = _read_summary(spath)
    if cfg.overwrite_strategy == "never":
        rdir = spath.parent
        if summary is not None or (rdir.exists() and any(rdir.glob("seed-*.json"))):
            log.warning("--overwrite-strategy never: leaving the existing results of %s on %s untouched", spec.name, task)
            return True, summary
        return False, None
    seeds = p.seeds_for(task)
    seeds_there = all(is_current(results.seed_path(p.output_dir, ds, spec.name, task, s), data) for s in seeds)
    if summary is not None and seeds_there and is_current(spath, data) and sorted(summary["seeds"]) == sorted(seeds) \
            and _same_budget(summary.get("tuning", {}), _budget(p, cfg, spec)):
        return True, summary
    return False, None


def _read_summary(path: Path) -> dict | None:
    """A summary on disk, or None (absent, or unreadable: it is rebuilt from the seed records and the
    study, as a killed run's missing summary is)."""
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("%s is unreadable (%s); rebuilding it from the seed records", path, exc)
        return None
    if not isinstance(summary, dict) or results.problems(summary):
        log.warning("%s is not a valid summary record; rebuilding it from the seed records", path)
        return None
    return summary


def _budget(p: Plan, cfg: RunConfig, spec: ModelSpec):
    if p.fixed_hyperparameters and cfg.trials is None and cfg.timeout is None:
        return tuning.Budget(0, None)  # the suite holds each model's defaults across its tasks
    return default_budget(spec.cls, quick=p.suite == "quick", trials=cfg.trials, timeout=cfg.timeout)


def _same_budget(recorded: dict, budget) -> bool:
    """A summary tuned under another --trials/--timeout is not what this command asks for: a larger
    budget continues the study, and the seeds are refit with its winner."""
    if budget.trials is not None and recorded.get("budget_trials") != budget.trials:
        return False
    return recorded.get("budget_timeout_s") == budget.timeout_s


class PairRun:
    """One (model, task): tune, seeds, summary, tracking."""

    def __init__(self, cfg, p: Plan, spec: ModelSpec, handle: evaluation.TaskHandle, storage, coord: Coordinator,
                 tracker: Tracker, bar):
        self.cfg, self.p, self.spec, self.handle = cfg, p, spec, handle
        self.storage, self.coord, self.tracker, self.bar = storage, coord, tracker, bar
        self.ds, self.task = handle.dataset.name, handle.task
        self.budget = _budget(p, cfg, spec)
        self.study_name = ":".join(["chrombench", results.PROTOCOL_VERSION, self.ds, handle.dataset.content_hash[:12],
                                    self.task, spec.name])
        self.device = cfg.device

    def search_tags(self) -> dict:
        """What one searches runs by in the MLflow UI; children carry them too."""
        d = self.handle.dataset
        return {"chrombench.model": self.spec.name, "chrombench.task": self.task, "chrombench.suite": self.p.suite or "",
                "chrombench.dataset.name": d.name, "chrombench.dataset.version": d.version}

    def tags(self) -> dict:
        d = self.handle.dataset
        return {"chrombench.model": self.spec.name, "chrombench.model.family": getattr(self.spec.cls, "family", "") or "custom",
                "chrombench.task": self.task, "chrombench.suite": self.p.suite or "", "chrombench.dataset.name": d.name,
                "chrombench.dataset.version": d.version, "chrombench.dataset.content_hash": d.content_hash,
                "chrombench.simulated": d.simulated, "chrombench.code_version": results.code_version(),
                "chrombench.protocol_version": results.PROTOCOL_VERSION, "chrombench.hardware": results.hardware(),
                "chrombench.genes": self.p.genes or "full"}

    def run(self) -> dict:
        self.parent = None
        try:
            return self._run()
        except BaseException as exc:
            if self.parent is not None:  # leave the MLflow run marked, not RUNNING forever
                try:
                    self.tracker.end(self.parent, "FAILED" if isinstance(exc, Exception) else "KILLED")
                except Exception:
                    pass
            raise

    def _run(self) -> dict:
        if self.cfg.overwrite_strategy == "always":
            with self.coord.study_lock(self.study_name):
                tuning.delete_study(self.storage, self.study_name)
                self.coord.reset(self.study_name)
            # results of other seeds from before would otherwise sit beside the new ones
            rdir = results.summary_path(self.p.output_dir, self.ds, self.spec.name, self.task).parent
            for old in [*rdir.glob("seed-*.json"), *rdir.glob("seed-*.predictions.csv"), rdir / "summary.json"]:
                old.unlink(missing_ok=True)
            shutil.rmtree(self.model_dir(0).parent, ignore_errors=True)
        with self.coord.study_lock(self.study_name):
            self.parent = self.tracker.parent_run(self.study_name, f"{self.spec.name} · {self.task}", self.tags(),
                                                  reuse=self.cfg.overwrite_strategy != "always")
        study = tuning.open_study(self.storage, self.study_name)
        view = self.handle.view  # the tuning path gets this and nothing else
        self.seed_list = self.p.seeds_for(self.task)
        fixed = evaluation.fixed_params(self.spec.cls, self.seed_list[0], self.device)
        tuning.tune(study, self.storage, self.spec.cls, view, self.budget, fixed, coord=self.coord, tracker=self.tracker,
                    parent_run=self.parent, poll_interval=self.cfg.poll_interval, child_tags=self.search_tags(),
                    on_progress=lambda done, n: self.bar.phase(f"tuning: {done}/{n if n else '?'} trials"))
        self.report = tuning.tuning_report(study, self.budget)
        self.best = tuning.best_params(study, self.spec.cls, self.budget)
        # seeds belong to the winner they were refit with: a larger budget's new winner means new seeds
        self.seed_key = params_digest(self.report["best_params"])
        records = self.seeds()
        summary = results.seal({**results.summarize(records, self.report), "model": self._model_block(records),
                                "provenance": {"study": self.study_name, "storage": redact(self.p.storage)}})
        self._check(summary)
        self.finish_parent(study, records, summary)
        # last: a summary on disk means the whole (model, task) is done, MLflow included, so a process
        # killed while finishing the parent run is finished properly by the next run
        results.atomic_write_json(results.summary_path(self.p.output_dir, self.ds, self.spec.name, self.task), summary)
        return summary

    # -- seeds -------------------------------------------------------------------------------------
    def seeds(self) -> list[dict]:
        pending = list(self.seed_list)
        while pending:
            rows = self.coord.rows(self.study_name)
            waiting = []
            for seed in pending:
                self.bar.phase(f"refit + test: seed {seed} ({len(self.seed_list)} seeds)")
                path = results.seed_path(self.p.output_dir, self.ds, self.spec.name, self.task, seed)
                row = rows.get(self.seed_item(seed))
                if row is None and self.cfg.overwrite_strategy != "always" and \
                        is_current(path, self.handle, self.report["best_params"]):
                    continue  # from an earlier run without this storage: keep it
                if row is not None and row["status"] == "done":
                    self._materialize(seed, json.loads(row["payload"]))
                elif self.coord.claim(self.study_name, self.seed_item(seed)):
                    self._compute_seed(seed)
                else:
                    waiting.append(seed)  # another live worker computes it
            pending = waiting
            if pending:
                time.sleep(self.cfg.poll_interval)
        return [json.loads(results.seed_path(self.p.output_dir, self.ds, self.spec.name, self.task, s).read_text())
                for s in self.seed_list]

    def seed_item(self, seed: int) -> str:
        return f"seed-{seed}@{self.seed_key}"

    def _compute_seed(self, seed: int) -> None:
        item = self.seed_item(seed)
        run_id = self.tracker.child_run(self.parent, f"seed-{seed}", SEED, tags={
            **self.search_tags(), "chrombench.seed": str(seed), "chrombench.worker": self.coord.worker,
            "chrombench.best_params_digest": self.seed_key})
        try:
            with Heartbeat(lambda: self.coord.beat(self.study_name, item), self.coord.heartbeat_interval):
                out = evaluation.evaluate_seed(self.spec.cls, self.best, self.handle, seed, self.device)
                extra = self._interpretation(seed, out)
                record = results.seal({
                    "kind": "seed", "model": evaluation.model_summary(self.spec.name, self.spec.target, self.spec.cls, out.model),
                    "task": {"name": self.task, "suite": self.p.suite, "genes": self.p.genes},
                    "dataset": self.handle.dataset.as_dict(), "seed": int(seed), "metrics": out.metrics,
                    "oracle_auroc": self.handle.oracle_auroc, "training": out.training, "compute": out.compute,
                    "fit_time_s": float(out.fit_time_s), "tuning": self.report,
                    "provenance": {"study": self.study_name, "worker": self.coord.worker, "mlflow_run_id": run_id},
                    **extra})
                self._check(record)
                csv = _predictions_csv(out.predictions)
                self._save_model(seed, out.model)
                self.tracker.log_params(run_id, out.params)
                self.tracker.log_history(run_id, out.history)
                self.tracker.set_tags(run_id, {"chrombench.stopped_by": out.training["stopped_by"],
                                               "chrombench.converged": str(out.training["converged"]).lower()})
                self.tracker.log_metrics(run_id, {f"{split}_{m}": v for split, ms in out.metrics.items()
                                                  for m, v in ms.items()} | {"fit_time_s": out.fit_time_s,
                                                                             "n_parameters": record["model"]["n_parameters"]}
                                        | {k: out.training[k] for k in ("epochs_run", "best_epoch") if k in out.training},
                                        step=len(out.history))  # after the per-epoch values, so it reads as final
                self.coord.complete(self.study_name, item, {"record": record, "predictions": csv})
        except BaseException as exc:
            self.coord.release(self.study_name, item)  # another worker or the next run redoes it
            self.tracker.end(run_id, "FAILED" if isinstance(exc, Exception) else "KILLED")
            raise
        self._materialize(seed, {"record": record, "predictions": csv})
        pred = results.seed_path(self.p.output_dir, self.ds, self.spec.name, self.task, seed).with_name(
            f"seed-{seed}.predictions.csv")
        self.tracker.log_file(run_id, pred, "predictions")
        self.tracker.end(run_id)
        self.tracker.delete_earlier_attempts(self.parent, f"seed-{seed}", keep=run_id)  # a killed try, say

    def _interpretation(self, seed: int, out: evaluation.SeedOutcome) -> dict:
        """Seed 0 on simulated data: explain methods scored against the planted truth (after test)."""
        if seed != 0 or out.truth is None:
            return {}
        # the quick suite scores 100 test genes: integrated gradients on 300 cost a neural model as much
        # as its whole refit there
        genes = interpret.QUICK_GENES if self.p.suite == "quick" else interpret.MAX_GENES
        scored = interpret.interpretation_scores(out.model, out.test, out.truth, max_genes=genes)
        if scored is None:
            return {}
        return {"interpretation": scored[0], "interpretation_genes": scored[1]}

    def _materialize(self, seed: int, payload: dict) -> None:
        """Write a finished seed (ours or another worker's) into the local output folder, atomically."""
        path = results.seed_path(self.p.output_dir, self.ds, self.spec.name, self.task, seed)
        atomic_write_text(path.with_name(f"seed-{seed}.predictions.csv"), payload["predictions"])
        results.atomic_write_json(path, payload["record"])

    def _save_model(self, seed: int, model) -> None:
        try:
            model.save(self.model_dir(seed))
        except NotImplementedError:
            pass  # a third-party model without persistence still gets evaluated

    def model_dir(self, seed: int) -> Path:
        safe = self.spec.name.replace("/", "_").replace(":", "_")
        return self.p.output_dir / "models" / self.ds / safe / self.task / f"seed-{seed}"

    def _model_block(self, records: list[dict]) -> dict:
        first = records[0]["model"]
        return {k: v for k, v in first.items() if k != "params"} | {"params": self.best_params_json()}

    def best_params_json(self) -> dict:
        from ..models.contract import _jsonable

        return results._plain(_jsonable(self.best))

    def _check(self, record: dict) -> None:
        errs = results.problems(record)
        if errs:
            raise ChrombenchError(f"internal error: a {record['kind']} record for {self.spec.name} on {self.task} "
                                  f"violates the schema: {'; '.join(errs)}")

    # -- the parent MLflow run ----------------------------------------------------------------------
    def finish_parent(self, study, records: list[dict], summary: dict) -> None:
        tr = self.tracker
        # tags, not params: a resumed run with a larger budget may find another winner, and MLflow
        # refuses to change a logged param
        tr.set_tags(self.parent, {f"best.{k}": v for k, v in self.best.items()} | {"chrombench.best_trial":
                                                                                   str(self.report["best_trial"])})
        tr.log_metrics(self.parent, {"best_valid_auroc": self.report["best_valid_auroc"],
                                     "tuning_trials": self.report["n_trials"], "tuning_pruned": self.report["n_pruned"],
                                     "tuning_elapsed_s": self.report["elapsed_s"]}
                       | {f"{k}_mean": v["mean"] for k, v in summary["metrics"].items()}
                       | {f"{k}_std": v["std"] for k, v in summary["metrics"].items()})
        tr.log_tuning_history(self.parent, tuning.trial_table(study))
        best = max(records, key=lambda r: r["metrics"]["valid"]["auroc"])  # chosen on valid, never on test
        tr.set_tags(self.parent, {"chrombench.best_seed": str(best["seed"])})
        mdir = self.model_dir(best["seed"])
        if (mdir / "config.json").exists():
            tr.log_dir(self.parent, mdir, "best-model")
            try:
                from ..models.io import load_model

                test, _ = self.handle.load_test()  # every fit is done
                tr.log_attention(self.parent, load_model(mdir, trust_code=True), test.X,
                                 test.y)  # our own refit of code this run already imported
            except Exception as exc:  # attention maps are a bonus; never fail a finished evaluation
                log.warning("no attention maps for %s on %s: %s", self.spec.name, self.task, exc)
        tr.reconcile_trials(self.parent, tuning.trial_table(study, finished_only=False))
        tr.kill_orphans(self.parent, "seed")  # every seed is done now: a RUNNING seed run is from a killed process
        tr.end(self.parent)


def _predictions_csv(pred: dict) -> str:
    """A real CSV (gene IDs with commas or quotes are quoted). Probabilities as ``repr``: the shortest
    text that reads back as the same float, so the test AUROC recomputed from this file (the
    leaderboard's check) is exactly the record's; 8 digits made ties that moved it by 1e-5."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["gene_id", "probability", "label"])
    writer.writerows([str(g), repr(float(p)), int(y)] for g, p, y in zip(pred["gene_id"], pred["probability"],
                                                                          pred["label"]))
    return buf.getvalue()


class _Progress:
    """One tqdm bar over (model, task) pairs, with the current phase as postfix; when stderr is not a
    terminal (a log file, a batch job), one plain line per finished pair instead of ``\r`` fragments."""

    def __init__(self, total: int, enabled: bool):
        self.bar, self.lines = None, False
        self.total, self.done, self.label, self.start = total, 0, "", time.monotonic()
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="model·task", dynamic_ncols=True)
        elif enabled:
            self.lines = True

    def describe(self, text: str) -> None:
        self.label = text
        if self.bar is not None:
            self.bar.set_description(text)

    def phase(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines:
            elapsed = time.monotonic() - self.start
            print(f"[{self.done}/{self.total}] {self.label} done ({elapsed:.0f} s elapsed)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
