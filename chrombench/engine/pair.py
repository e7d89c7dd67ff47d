"""One (model, task) of a run: tune, refit and test each seed, seal a record per seed and a summary.

Shared work goes through the Optuna storage database: the study (trials) and the claims table
(seeds, see ``coordination``). A finished seed is first committed there (record + predictions),
then written into the local output folder, so a worker that dies in between loses nothing and
every worker ends with every record. What is in memory is passed on, never written and read back:
a seed's record goes from its fit to the summary, and the attention maps the parent run shows are
taken from the fitted model while it and the test split are still in memory.
"""

from __future__ import annotations

import json
import time

from .. import results
from ..errors import ChrombenchError
from . import evaluation, interpret, outdir, resume, tuning
from .coordination import Coordinator, Heartbeat, redact
from .pair_tracking import PairTracking
from .plan import ModelSpec, Plan, RunConfig, pair_budget
from .tracking import Tracker, attention_by_class


class PairRun:
    def __init__(self, cfg: RunConfig, p: Plan, spec: ModelSpec, handle: evaluation.TaskHandle, storage,
                 coord: Coordinator, tracker: Tracker, bar):
        self.cfg, self.p, self.spec, self.handle = cfg, p, spec, handle
        self.storage, self.coord, self.bar = storage, coord, bar
        self.track = PairTracking(tracker, spec, handle, p.suite, p.genes)
        self.ds, self.task = handle.dataset.name, handle.task
        self.budget = pair_budget(p, cfg, spec)
        self.study_name = ":".join(["chrombench", results.PROTOCOL_VERSION, self.ds, handle.dataset.content_hash[:12],
                                    self.task, spec.name])
        self.device = cfg.device
        self.valid_auroc: dict[int, float] = {}  # seeds fitted by this process
        self.attention: dict = {}  # seed -> AttentionMaps, None (no attention) or the exception computing them

    def run(self) -> dict:
        try:
            return self._run()
        except BaseException as exc:
            self.track.abandon_parent(exc)
            raise

    def _run(self) -> dict:
        if self.cfg.overwrite_strategy == "always":
            with self.coord.study_lock(self.study_name):
                tuning.delete_study(self.storage, self.study_name)
                self.coord.reset(self.study_name)
            resume.clear_pair(self.p.output_dir, self.ds, self.spec.name, self.task)
        with self.coord.study_lock(self.study_name):
            self.track.start_parent(self.study_name, reuse=self.cfg.overwrite_strategy != "always")
        study = tuning.open_study(self.storage, self.study_name)
        self.seed_list = self.p.seeds_for(self.task)
        fixed = evaluation.fixed_params(self.spec.cls, self.seed_list[0], self.device)
        tuning.tune(study, self.storage, self.spec.cls, self.handle.view, self.budget, fixed, coord=self.coord,
                    tracker=self.track.tracker, parent_run=self.track.parent, poll_interval=self.cfg.poll_interval,
                    child_tags=self.track.search_tags(),
                    on_progress=lambda done, n: self.bar.phase(f"tuning: {done}/{n if n else '?'} trials"))
        trials = study.get_trials(deepcopy=False)  # tuning is over (budget met, none running): read once
        self.report = tuning.tuning_report(trials, self.budget)
        self.best = tuning.best_params(trials, self.spec.cls, self.budget, self.study_name)
        # seeds belong to the winner they were refit with: a larger budget's new winner means new seeds
        self.seed_key = resume.params_digest(self.report["best_params"])
        records = self.seeds()
        summary = results.seal({**results.summarize(records, self.report), "model": self._model_block(records),
                                "provenance": {"study": self.study_name, "storage": redact(self.p.storage)}})
        self._check(summary)
        self.track.finish_parent(study, trials, self.report, self.best, records, summary, self.model_dir,
                                 self.attention)
        # last: a summary on disk means the whole (model, task) is done, MLflow included, so a process
        # killed while finishing the parent run is finished properly by the next run
        results.atomic_write_json(results.summary_path(self.p.output_dir, self.ds, self.spec.name, self.task), summary)
        return summary

    # -- seeds -------------------------------------------------------------------------------------
    def seeds(self) -> list[dict]:
        """Every seed's record: kept from an earlier run, copied from another worker, or computed here."""
        done: dict[int, dict] = {}
        pending = list(self.seed_list)
        while pending:
            rows = self.coord.rows(self.study_name)
            waiting = []
            for seed in pending:
                self.bar.phase(f"refit + test: seed {seed} ({len(self.seed_list)} seeds)")
                row = rows.get(self.seed_item(seed))
                kept = None
                if row is None and self.cfg.overwrite_strategy != "always":  # from a run without this storage
                    kept = resume.current_record(results.seed_path(self.p.output_dir, self.ds, self.spec.name,
                                                                   self.task, seed),
                                                 self.handle, self.report["best_params"])
                if kept is not None:
                    done[seed] = kept
                elif row is not None and row["status"] == "done":
                    done[seed] = self._materialize(seed, json.loads(row["payload"]))
                elif self.coord.claim(self.study_name, self.seed_item(seed)):
                    done[seed] = self._compute_seed(seed)
                else:
                    waiting.append(seed)  # another live worker computes it
            pending = waiting
            if pending:
                time.sleep(self.cfg.poll_interval)
        return [done[s] for s in self.seed_list]

    def seed_item(self, seed: int) -> str:
        return f"seed-{seed}@{self.seed_key}"

    def _compute_seed(self, seed: int) -> dict:
        item = self.seed_item(seed)
        run_id = self.track.seed_run(seed, self.coord.worker, self.seed_key)
        try:
            with Heartbeat(lambda: self.coord.beat(self.study_name, item), self.coord.heartbeat_interval):
                out = evaluation.evaluate_seed(self.spec.cls, self.best, self.handle, seed, self.device)
                record = results.seal({
                    "kind": "seed", "model": evaluation.model_summary(self.spec.name, self.spec.target, self.spec.cls, out.model),
                    "task": {"name": self.task, "suite": self.p.suite, "genes": self.p.genes},
                    "dataset": self.handle.dataset.as_dict(), "seed": int(seed), "metrics": out.metrics,
                    "oracle_auroc": self.handle.oracle_auroc, "training": out.training, "compute": out.compute,
                    "fit_time_s": float(out.fit_time_s), "tuning": self.report,
                    "provenance": {"study": self.study_name, "worker": self.coord.worker, "mlflow_run_id": run_id},
                    **self._interpretation(seed, out)})
                self._check(record)
                csv = results.predictions_text(out.predictions["gene_id"], out.predictions["probability"],
                                               out.predictions["label"])
                self._save_model(seed, out.model)
                self._keep_attention(seed, out)
                self.track.log_seed(run_id, out, record)
                self.coord.complete(self.study_name, item, {"record": record, "predictions": csv})
        except BaseException as exc:
            self.coord.release(self.study_name, item)  # another worker or the next run redoes it
            self.track.fail_seed(run_id, exc)
            raise
        self._materialize(seed, {"record": record, "predictions": csv})
        self.track.end_seed(run_id, seed, results.predictions_path(self.p.output_dir, self.ds, self.spec.name,
                                                                   self.task, seed))
        return record

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
        extra = {"interpretation_by_mechanism": scored[2]} if scored[2] else {}
        return {"interpretation": scored[0], "interpretation_genes": scored[1], **extra}

    def _keep_attention(self, seed: int, out: evaluation.SeedOutcome) -> None:
        """The parent run shows the attention of the seed best on valid. A seed fitted here can be that
        one only if no seed fitted here before beat it; its maps are taken now, while its model and
        the test split are in memory (the test split is never held while another seed fits)."""
        valid = out.metrics["valid"]["auroc"]
        beaten = any(v > valid for v in self.valid_auroc.values())
        self.valid_auroc[seed] = valid
        if beaten:
            return
        try:
            self.attention[seed] = attention_by_class(out.model, out.test.X, out.test.y)
        except Exception as exc:  # reported with the parent run, if this seed turns out best
            self.attention[seed] = exc

    def _materialize(self, seed: int, payload: dict) -> dict:
        """Write a finished seed (ours or another worker's) into the local output folder, atomically."""
        results.atomic_write_text(results.predictions_path(self.p.output_dir, self.ds, self.spec.name, self.task, seed),
                                  payload["predictions"])
        results.atomic_write_json(results.seed_path(self.p.output_dir, self.ds, self.spec.name, self.task, seed),
                                  payload["record"])
        return payload["record"]

    def _save_model(self, seed: int, model) -> None:
        # persistence is part of the protocol (checked when the model is resolved), so a failure here is a bug to show
        model.save(self.model_dir(seed))

    def model_dir(self, seed: int):
        return outdir.model_dir(self.p.output_dir, self.ds, self.spec.name, self.task, seed)

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
