"""The LSTM recipe study: one full-size fit per (task, recipe), printing how each ended and its AUROC.

The LSTM baseline's recipe (forget-gate bias 1, lr 1e-3, two plateau cuts) was chosen with this, on
simulated tasks where the 1.1 table's LSTM had stalled (E071, E013, E055, E003). Recipes are given as
JSON hyperparameters over the LSTM's defaults; the stall rescue is off unless a recipe turns it on, so
each recipe is measured as it is.

    python benchmarks/lstm_recipe.py --tasks E071,E013 \\
        --recipe 'shipped={"lr": 0.002, "forget_bias": 0, "lr_drops": 0}' \\
        --recipe 'new={}'
"""

from __future__ import annotations

import argparse
import json
import time

from chrombench.data import load
from chrombench.evaluate import auroc
from chrombench.models.registry import get_model_class


def fit_once(model: str, task: str, seed: int, params: dict) -> dict:
    rescues = params.pop("stall_rescues", 0)
    m = get_model_class(model)(seed=seed, **params)
    m.stall_rescues = rescues
    data = load.load_task(task)
    start = time.process_time()
    m.fit(data.train, data.valid)
    report = m.training_report()
    return {"task": task, "stopped_by": report["stopped_by"], "best_epoch": report.get("best_epoch"),
            "epochs": report.get("epochs_run"), "valid": max(e["valid_auroc"] for e in m.history_["epochs"]),
            "test": auroc(data.test.y, m.predict_proba(data.test.X)[:, 1]), "cpu_s": time.process_time() - start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lstm")
    ap.add_argument("--tasks", default="E071,E013,E055,E003")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipe", action="append", required=True, help="NAME=JSON hyperparameters (repeatable)")
    args = ap.parse_args()
    print(f"{'recipe':12s} {'task':5s} {'stopped by':10s} {'best':>4s} {'epochs':>6s} {'valid':>7s} {'test':>7s} {'cpu s':>6s}")
    for spec in args.recipe:
        name, _, params = spec.partition("=")
        for task in args.tasks.split(","):
            r = fit_once(args.model, task, args.seed, json.loads(params or "{}"))
            print(f"{name:12s} {r['task']:5s} {r['stopped_by']:10s} {r['best_epoch']:4d} {r['epochs']:6d} "
                  f"{r['valid']:7.4f} {r['test']:7.4f} {r['cpu_s']:6.0f}", flush=True)


if __name__ == "__main__":
    main()
