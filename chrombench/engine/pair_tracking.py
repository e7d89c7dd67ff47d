"""The MLflow side of one (model, task): its parent run, a child run per seed, and what the parent
shows once every seed is done (best parameters, summary metrics, tuning history, the best seed's
model and attention maps). Trial runs are logged by ``tuning``, under the same parent.

Tracking never decides a result: the records and the Optuna study are the truth, and the parent
run is finished last, so a run killed on the way is finished properly by the next one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import results
from . import tuning
from .evaluation import SeedOutcome, TaskHandle
from .plan import ModelSpec
from .tracking import SEED, AttentionMaps, Tracker, attention_by_class

log = logging.getLogger("chrombench.engine")


class PairTracking:
    def __init__(self, tracker: Tracker, spec: ModelSpec, handle: TaskHandle, suite: str | None,
                 genes: dict | None):
        self.tracker, self.spec, self.handle, self.suite, self.genes = tracker, spec, handle, suite, genes
        self.parent: str | None = None

    def search_tags(self) -> dict:
        """What one searches runs by in the MLflow UI; children carry them too."""
        d = self.handle.dataset
        return {"chrombench.model": self.spec.name, "chrombench.task": self.handle.task,
                "chrombench.suite": self.suite or "", "chrombench.dataset.name": d.name,
                "chrombench.dataset.version": d.version}

    def parent_tags(self) -> dict:
        d = self.handle.dataset
        return {**self.search_tags(), "chrombench.model.family": getattr(self.spec.cls, "family", "") or "custom",
                "chrombench.dataset.content_hash": d.content_hash, "chrombench.simulated": d.simulated,
                "chrombench.code_version": results.code_version(),
                "chrombench.protocol_version": results.PROTOCOL_VERSION, "chrombench.hardware": results.hardware(),
                "chrombench.genes": self.genes or "full"}

    def start_parent(self, study_name: str, reuse: bool) -> str:
        """The parent run (the caller holds the study lock, so that workers share one)."""
        self.parent = self.tracker.parent_run(study_name, f"{self.spec.name} · {self.handle.task}",
                                              self.parent_tags(), reuse=reuse)
        return self.parent

    def abandon_parent(self, exc: BaseException) -> None:
        """Leave the parent run marked, not RUNNING forever."""
        if self.parent is None:
            return
        try:
            self.tracker.end(self.parent, "FAILED" if isinstance(exc, Exception) else "KILLED")
        except Exception:
            pass

    # -- seeds -------------------------------------------------------------------------------------
    def seed_run(self, seed: int, worker: str, params_digest: str) -> str:
        return self.tracker.child_run(self.parent, f"seed-{seed}", SEED, tags={
            **self.search_tags(), "chrombench.seed": str(seed), "chrombench.worker": worker,
            "chrombench.best_params_digest": params_digest})

    def log_seed(self, run_id: str, out: SeedOutcome, record: dict) -> None:
        tr = self.tracker
        tr.log_params(run_id, out.params)
        tr.log_history(run_id, out.history)
        tr.set_tags(run_id, {"chrombench.stopped_by": out.training["stopped_by"],
                             "chrombench.converged": str(out.training["converged"]).lower()})
        tr.log_metrics(run_id, {f"{split}_{m}": v for split, ms in out.metrics.items() for m, v in ms.items()}
                       | {"fit_time_s": out.fit_time_s, "n_parameters": record["model"]["n_parameters"]}
                       | {k: out.training[k] for k in ("epochs_run", "best_epoch") if k in out.training},
                       step=len(out.history))  # after the per-epoch values, so it reads as final

    def end_seed(self, run_id: str, seed: int, predictions: Path) -> None:
        self.tracker.log_file(run_id, predictions, "predictions")
        self.tracker.end(run_id)
        self.tracker.delete_earlier_attempts(self.parent, f"seed-{seed}", keep=run_id)  # a killed try, say

    def fail_seed(self, run_id: str, exc: BaseException) -> None:
        self.tracker.end(run_id, "FAILED" if isinstance(exc, Exception) else "KILLED")

    # -- the parent, once every seed is done ----------------------------------------------------------
    def finish_parent(self, study, trials: list, report: dict, best_params: dict, records: list[dict],
                      summary: dict, model_dir, attention: dict) -> None:
        """``trials``: the study's trials when tuning ended; ``model_dir(seed)``: where a seed's model
        was saved; ``attention``: seed -> ``AttentionMaps`` (None: the model has none; an exception:
        they could not be computed) for the seeds fitted by this process."""
        tr, parent = self.tracker, self.parent
        # tags, not params: a resumed run with a larger budget may find another winner, and MLflow
        # refuses to change a logged param
        tr.set_tags(parent, {f"best.{k}": v for k, v in best_params.items()}
                    | {"chrombench.best_trial": str(report["best_trial"])})
        tr.log_metrics(parent, {"best_valid_auroc": report["best_valid_auroc"], "tuning_trials": report["n_trials"],
                                "tuning_pruned": report["n_pruned"], "tuning_elapsed_s": report["elapsed_s"]}
                       | {f"{k}_mean": v["mean"] for k, v in summary["metrics"].items()}
                       | {f"{k}_std": v["std"] for k, v in summary["metrics"].items()})
        tr.log_tuning_history(parent, tuning.trial_table(trials))
        best = max(records, key=lambda r: r["metrics"]["valid"]["auroc"])  # chosen on valid, never on test
        tr.set_tags(parent, {"chrombench.best_seed": str(best["seed"])})
        mdir = model_dir(best["seed"])
        if (mdir / "config.json").exists():
            tr.log_dir(parent, mdir, "best-model")
            try:
                maps = attention[best["seed"]] if best["seed"] in attention else self._attention_from_disk(mdir)
                if isinstance(maps, Exception):
                    raise maps
                if maps is not None:
                    tr.log_attention(parent, maps)
            except Exception as exc:  # attention maps are a bonus; never fail a finished evaluation
                log.warning("no attention maps for %s on %s: %s", self.spec.name, self.handle.task, exc)
        # the study as it stands now is the truth for the trial runs (a killed try leaves one RUNNING)
        tr.reconcile_trials(parent, tuning.trial_table(study.get_trials(deepcopy=False), finished_only=False))
        tr.kill_orphans(parent, "seed")  # every seed is done now: a RUNNING seed run is from a killed process
        tr.end(parent)

    def _attention_from_disk(self, mdir: Path) -> AttentionMaps | None:
        """The best seed was fitted by another worker or an earlier run: its saved model and the test
        split are all there is (every fit is done, so the test split may be loaded)."""
        from ..models.io import load_model

        test, _ = self.handle.load_test()
        return attention_by_class(load_model(mdir, trust_code=True), test.X, test.y)  # code this run imported
