"""Bundles of honest-looking records on real registry tasks (not collected: no test_ prefix): each
seed's predictions are a plain score of the task's own test genes with their own labels, so a bundle
passes every check that recomputes from the registry; tests then forge it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chrombench import results
from chrombench.evaluate import Evaluator
from chrombench.leaderboard.submit import model_card, write_bundle


class Honest:
    """The model class the model card describes."""

    family = "test"

    @classmethod
    def search_space(cls, trial):
        return {}


def honest_predictions(task, seed: int) -> tuple[list, list, list]:
    """Promoter H3K4me3 plus a little seed noise: a real model's kind of ranking, below the ceiling."""
    score = np.log1p(np.asarray(task.test.X)[:, 45:55, 3].sum(axis=1))
    score = score + np.random.default_rng(seed).normal(0, 0.3, len(score))
    prob = 1 / (1 + np.exp(-(score - score.mean())))
    return list(map(str, task.test.gene_ids)), [float(p) for p in prob], [int(y) for y in task.test.y]


def predictions_csv(ids, prob, label) -> str:
    return "gene_id,probability,label\n" + "".join(f"{g},{p!r},{y}\n" for g, p, y in zip(ids, prob, label))


def seed_record(task, seed: int, prob, label, name: str, suite: str | None, genes: dict | None) -> dict:
    return results.seal({
        "kind": "seed", "seed": seed, "fit_time_s": 1.0,
        "oracle_auroc": task.truth.oracle_auroc if task.truth is not None else None,
        "model": {"name": name, "target": name, "family": "test", "params": {}, "n_parameters": 1},
        "task": {"name": task.task, "suite": suite, "genes": genes}, "dataset": task.dataset.as_dict(),
        "training": {"iterative": False, "stopped_by": "complete", "converged": True},
        "tuning": {"n_trials": 0, "n_pruned": 0, "budget_trials": 0, "budget_timeout_s": None, "elapsed_s": 0.0,
                   "best_valid_auroc": None, "best_params": {}},
        "metrics": {"test": Evaluator().eval(np.array(label), np.array(prob)), "valid": {"auroc": 0.7}}})


def honest_bundle(root: Path, name: str, tasks: list, suite: str | None = None, genes: dict | None = None,
                  seeds: int = 3) -> Path:
    """``tasks``: loaded TaskData (the registry's own); written as a run would, then bundled."""
    run = Path(root).parent / f".run-{name}"
    for task in tasks:
        recs = []
        for seed in range(seeds):
            ids, prob, label = honest_predictions(task, seed)
            rec = seed_record(task, seed, prob, label, name, suite, genes)
            path = results.seed_path(run, task.dataset.name, name, task.task, seed)
            results.atomic_write_json(path, rec)
            path.with_name(f"seed-{seed}.predictions.csv").write_text(predictions_csv(ids, prob, label))
            recs.append(rec)
        results.atomic_write_json(results.summary_path(run, task.dataset.name, name, task.task),
                                  results.seal(results.summarize(recs)))
    recs = results.read_records(run / "results")
    card = model_card(Honest, name, name, recs, suite, wall_time_s=1.0, trials=0, timeout=None)
    return write_bundle(Path(root) / name, name, name, suite, recs, card, command="test")
