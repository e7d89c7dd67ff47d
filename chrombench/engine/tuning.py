"""Tuning against a shared, resumable Optuna study with a global trial budget.

The study lives in RDB storage, so a killed run resumes where it stopped and several workers share
it. Budget rules (the same for one worker or many, first run or resumed):

- finished trials (COMPLETE + PRUNED) count against ``Budget.trials``; FAIL trials do not, so a
  trial lost to a crash is redone;
- ``Budget.timeout_s`` counts the summed duration of finished trials (trial-seconds, across
  workers and restarts); no trial starts once it is spent;
- "count, then create a trial" runs under the study lock, and RUNNING trials of live workers count
  as taken, so the study never exceeds the budget;
- RUNNING trials whose worker is gone become FAIL: at once when the worker ran on this host and its
  process no longer exists, otherwise when its Optuna heartbeat is older than the grace period.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import time
import warnings

import optuna
from optuna.trial import TrialState

from ..errors import ChrombenchError, ProtocolViolation
from ..models.contract import TuningBudget as Budget  # the one budget type: the one models declare
from . import evaluation
from .coordination import Coordinator, Heartbeat, engine_kwargs, owner_is_dead
from .tracking import TRIAL

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ACTIVE = (TrialState.RUNNING, TrialState.WAITING)
MAX_FAILED_TRIALS = 3  # per (model, task) and process: a model that keeps crashing is a bug to report
log = logging.getLogger("chrombench.engine")


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def open_storage(url: str, heartbeat_interval: int, grace_period: int) -> optuna.storages.RDBStorage:
    quiet_optuna()
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url), heartbeat_interval=int(heartbeat_interval),
                                      grace_period=int(grace_period))


def open_study(storage, name: str) -> optuna.Study:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    return optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                               pruner=pruner)


def delete_study(storage, name: str) -> None:
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass


def _duration(t) -> float:
    if t.datetime_start is None or t.datetime_complete is None:
        return 0.0
    return max(0.0, (t.datetime_complete - t.datetime_start).total_seconds())


def effective_trials(trials, budget: Budget) -> int | None:
    """A model with an empty search space needs one trial, however large the budget."""
    if any(t.state in FINISHED and not t.distributions for t in trials):
        return 1
    return budget.trials


def budget_state(trials, budget: Budget) -> tuple[bool, bool]:
    """(exhausted, may_start): exhausted = no more trials will ever start; may_start = we may start one."""
    finished = [t for t in trials if t.state in FINISHED]
    active = [t for t in trials if t.state in ACTIVE]
    n_max = effective_trials(trials, budget)
    spent = sum(_duration(t) for t in finished)
    out_of_time = budget.timeout_s is not None and spent >= budget.timeout_s
    full = n_max is not None and len(finished) >= n_max
    if full or out_of_time:
        return (not active), False
    return False, (n_max is None or len(finished) + len(active) < n_max)


def fail_dead_trials(study: optuna.Study, storage, grace_period: float, under_lock: bool = False) -> int:
    """FAIL the RUNNING trials whose worker is gone. Returns how many. ``under_lock``: the caller holds
    the study lock, so an ownerless RUNNING trial is certainly orphaned."""
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    optuna.storages.fail_stale_trials(study)  # heartbeat older than the grace period (any host)
    n = len(before - {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))})
    now = _dt.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("worker")
        # A trial is created and given its owner under the study lock, which the caller holds now: one
        # without an owner lost its worker inside that critical section (killed between ask and
        # set_user_attr). Failing it at once keeps slot numbering, and so the resumed run's draws, exact.
        orphan = owner is None and (under_lock or (t.datetime_start is not None
                                                    and (now - t.datetime_start).total_seconds() > grace_period))
        if owner_is_dead(owner) or orphan:
            try:
                storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)  # no public id accessor
                n += 1
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker got there first
    return n


def _sampler_for(study_name: str, n_trials_so_far: int, budget: Budget) -> optuna.samplers.BaseSampler:
    """A TPE sampler seeded by (study, trial slot): reproducible, and distinct across workers.

    The slot is the number of trials finished or running, not of all trials: a trial lost to a kill
    (FAIL) frees its slot, so its redo draws the same parameters from the same history, and a run
    killed any number of times tunes exactly as one that never stopped."""
    base = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:4], "big")
    startup = 10 if budget.trials is None else max(2, min(10, budget.trials // 3))
    tpe = optuna.samplers.TPESampler(seed=(base + 7919 * n_trials_so_far) % 2**32, n_startup_trials=startup)
    return optuna.samplers.PartialFixedSampler(budget.held, tpe) if budget.held else tpe


def tune(study: optuna.Study, storage, model_cls: type, view: evaluation.TuningView, budget: Budget, fixed: dict, *,
         coord: Coordinator, tracker=None, parent_run: str | None = None, poll_interval: float = 2.0,
         on_progress=None, child_tags: dict | None = None) -> None:
    """Run trials until the study's budget is met (by this worker or others) and none is running.

    ``on_progress(finished, budget)`` is called whenever the count is read (for a progress bar).
    """
    failures = 0
    name = study.study_name
    while True:
        trial = None
        with coord.study_lock(name):
            fail_dead_trials(study, storage, coord.grace_period, under_lock=True)
            trials = study.get_trials(deepcopy=False)
            exhausted, may_start = budget_state(trials, budget)
            if on_progress:
                on_progress(sum(t.state in FINISHED for t in trials), effective_trials(trials, budget))
            if exhausted:
                break
            _refuse_other_budgets(trials, budget, coord.worker, name)
            if may_start:
                slots = sum(t.state in FINISHED or t.state in ACTIVE for t in trials)
                study.sampler = _sampler_for(name, slots, budget)
                trial = study.ask()
                trial.set_user_attr("worker", coord.worker)
                trial.set_user_attr("budget", [budget.trials, budget.timeout_s])
                storage.record_heartbeat(trial._trial_id)
        if trial is None:  # the rest of the budget is running elsewhere: wait for it (or for it to die)
            time.sleep(poll_interval)
            continue
        error = _one_trial(study, storage, trial, model_cls, view, budget, fixed, coord, tracker, parent_run,
                           child_tags)
        failures += error is not None
        if failures >= MAX_FAILED_TRIALS:
            raise ChrombenchError(f"{failures} trials failed (a bug in the model?); the last one: {error}")


def _refuse_other_budgets(trials, budget: Budget, worker: str, study_name: str) -> None:
    """Workers sharing a study at the same time must share its budget: a worker with another --trials
    or --timeout would record one budget beside another's trials (a later run may enlarge it)."""
    mine = [budget.trials, budget.timeout_s]
    for t in trials:
        theirs = t.user_attrs.get("budget")
        if t.state in ACTIVE and theirs is not None and theirs != mine and t.user_attrs.get("worker") != worker:
            raise ChrombenchError(
                f"study {study_name}: worker {t.user_attrs.get('worker')} is tuning it with --trials {theirs[0]} "
                f"--timeout {theirs[1]}, this worker with --trials {mine[0]} --timeout {mine[1]}; start every worker "
                "with the same budget")


def _one_trial(study, storage, trial, model_cls, view, budget, fixed, coord, tracker, parent_run,
               child_tags: dict | None = None) -> str | None:
    """Run and tell one trial. Returns what went wrong if it failed (and was marked FAIL), else None."""
    trial_id = trial._trial_id
    run_id = None
    log_ = evaluation.EpochLog()
    params: dict = {}
    final: dict = {}
    if tracker is not None:
        run_id = tracker.child_run(parent_run, f"trial-{trial.number}", TRIAL,
                                   tags={**(child_tags or {}), "chrombench.trial": str(trial.number),
                                         "chrombench.worker": coord.worker})
    state, status = TrialState.FAIL, "FAILED"
    try:
        with Heartbeat(lambda: storage.record_heartbeat(trial_id), coord.heartbeat_interval):
            params = evaluation.trial_params(trial, model_cls, fixed, budget.overrides)
            outcome = evaluation.run_trial(trial, model_cls, view, params, log_)
        _tell(study, trial, TrialState.COMPLETE, outcome.value)
        state, status, final["value"] = TrialState.COMPLETE, "FINISHED", outcome.value
        return None
    except optuna.TrialPruned:
        _tell(study, trial, TrialState.PRUNED)
        state, status = TrialState.PRUNED, "FINISHED"
        return None
    except ProtocolViolation:
        _tell(study, trial, TrialState.FAIL)
        raise
    except Exception as exc:
        _tell(study, trial, TrialState.FAIL)
        log.error("trial %d of %s failed: %s: %s", trial.number, study.study_name, type(exc).__name__, exc)
        return f"{type(exc).__name__}: {exc}"
    except BaseException:  # Ctrl-C: leave a FAIL so that a rerun redoes this trial
        _tell(study, trial, TrialState.FAIL)
        status = "KILLED"
        raise
    finally:
        if tracker is not None and run_id is not None:
            try:
                tracker.log_params(run_id, params or trial.params)
                tracker.log_history(run_id, log_.history)
                value = final.get("value")
                if value is None and state == TrialState.PRUNED and log_.history:
                    value = log_.history[-1][1].get("valid_auroc")  # what Optuna records for a pruned trial
                if value is not None:  # after the epochs, so it is the value MLflow shows as latest
                    tracker.log_metrics(run_id, {"valid_auroc": value}, step=len(log_.history))
                tracker.set_tags(run_id, {"chrombench.state": state.name})
                tracker.end(run_id, status)
            except Exception as exc:  # tracking must never lose a finished trial
                log.warning("could not log trial %d to MLflow: %s", trial.number, exc)


def _tell(study, trial, state: TrialState, value: float | None = None) -> None:
    try:
        if state == TrialState.COMPLETE:
            study.tell(trial, value)
        else:
            study.tell(trial, state=state)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError) as exc:
        # another worker declared us dead (missed heartbeats) and failed this trial; it will be redone
        log.warning("could not record trial %d of %s: %s", trial.number, study.study_name, exc)


def tuning_report(trials: list, budget: Budget) -> dict:
    """The record's ``tuning`` block from a finished study's ``trials``: budget, what was spent, and the winner."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    return {
        "n_trials": len(complete), "n_pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "n_failed": sum(t.state == TrialState.FAIL for t in trials),
        "budget_trials": effective_trials(trials, budget), "budget_timeout_s": budget.timeout_s,
        "elapsed_s": float(sum(_duration(t) for t in trials if t.state in FINISHED)),
        "best_valid_auroc": float(best.value) if best else None,
        "best_trial": best.number if best else None,
        "best_params": dict(best.params) if best else {},
        **({"fixed_params": {**budget.held, **budget.overrides}} if budget.trials == 0 else {}),
        "sampler": "TPESampler" if budget.trials != 0 else "none (fixed hyperparameters)",
        "pruner": "MedianPruner(n_startup_trials=2, n_warmup_steps=1)" if budget.trials != 0 else "none",
    }


def best_params(trials: list, model_cls: type, budget: Budget, study_name: str) -> dict:
    """The winning trial's ``__init__`` kwargs, rebuilt exactly through the model's own search space.

    With a budget of zero trials nothing is tuned: the model's defaults, with the budget's held and
    fixed values, are what every task refits (a suite that holds hyperparameters fixed)."""
    if budget.trials == 0:
        return {**budget.held, **budget.overrides}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise ChrombenchError(f"no trial of {study_name} completed; nothing to refit")
    best = max(complete, key=lambda t: t.value)
    return {**model_cls.search_space(optuna.trial.FixedTrial(best.params, number=best.number)), **budget.overrides}


def trial_table(trials: list, finished_only: bool = True) -> list[dict]:
    return [{"number": t.number, "state": t.state.name, "value": t.value, "duration_s": _duration(t),
             "params": t.params} for t in trials if t.state in FINISHED or not finished_only]
