"""What a run keeps from the results already in its output folder (``--overwrite-strategy``).

- ``only-missing`` (the default): a (model, task) whose summary and every seed record are current
  (same dataset content, protocol version, seeds and tuning budget) is kept whole; otherwise the
  pair is run again, and a seed record refit with the same tuned parameters is kept on its own.
- ``never``: any result of the pair at all is left as it is.
- ``always``: the pair's study, claims, records, predictions and saved models are cleared first.

A record that does not match is treated as missing, never mixed in: a summary never combines
results from two datasets, two protocols or two sets of hyperparameters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from .. import results
from . import outdir
from .plan import ModelSpec, Plan, RunConfig, pair_budget

log = logging.getLogger("chrombench.engine")


def is_current(rec: dict, data, best_params: dict | None = None) -> bool:
    """Whether this run would write ``rec`` too: same dataset content and protocol version (and, given
    ``best_params``, refit with those tuned parameters).

    Anything else (another simulator version, another gene subsample, an older protocol, a winner of
    a smaller tuning budget) counts as missing under only-missing.
    """
    return (isinstance(rec, dict) and rec.get("dataset", {}).get("content_hash") == data.dataset.content_hash
            and rec.get("protocol_version") == results.PROTOCOL_VERSION
            and (best_params is None or rec.get("tuning", {}).get("best_params") == best_params))


def current_record(path: Path, data, best_params: dict | None = None) -> dict | None:
    """The record at ``path`` when it is current (``is_current``), else None."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return rec if is_current(rec, data, best_params) else None


def params_digest(params: dict) -> str:
    """The key that ties a seed's claim to the tuned parameters it is refit with."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def existing_results(p: Plan, cfg: RunConfig, spec: ModelSpec, data) -> tuple[bool, dict | None]:
    """(keep, summary): results to leave as they are: complete ones (only-missing), any at all (never)."""
    if cfg.overwrite_strategy == "always":
        return False, None
    ds, task = data.dataset.name, data.task
    spath = results.summary_path(p.output_dir, ds, spec.name, task)
    summary = read_summary(spath)
    if cfg.overwrite_strategy == "never":
        rdir = spath.parent
        if summary is not None or (rdir.exists() and any(rdir.glob("seed-*.json"))):
            log.warning("--overwrite-strategy never: leaving the existing results of %s on %s untouched", spec.name, task)
            return True, summary
        return False, None
    seeds = p.seeds_for(task)
    seeds_there = all(current_record(results.seed_path(p.output_dir, ds, spec.name, task, s), data) is not None
                      for s in seeds)
    if summary is not None and seeds_there and is_current(summary, data) and sorted(summary["seeds"]) == sorted(seeds) \
            and same_budget(summary.get("tuning", {}), pair_budget(p, cfg, spec)):
        return True, summary
    return False, None


def read_summary(path: Path) -> dict | None:
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


def same_budget(recorded: dict, budget) -> bool:
    """A summary tuned under another --trials/--timeout is not what this command asks for: a larger
    budget continues the study, and the seeds are refit with its winner."""
    if budget.trials is not None and recorded.get("budget_trials") != budget.trials:
        return False
    return recorded.get("budget_timeout_s") == budget.timeout_s


def clear_pair(out: Path, dataset: str, model: str, task: str) -> None:
    """``always``: the pair's records, predictions and saved models from before, which would otherwise
    sit beside the new ones (the caller clears its study and claims)."""
    rdir = results.record_dir(out, dataset, model, task)
    for old in [*rdir.glob("seed-*.json"), *rdir.glob(results.predictions_name("*")), rdir / "summary.json"]:
        old.unlink(missing_ok=True)
    shutil.rmtree(outdir.models_dir(out, dataset, model, task), ignore_errors=True)
