"""PatternChrome's validation AUROC against its PSO budget, and what one fit costs: the evidence for
the default ``pso_iterations`` (the roadmap56 column is 62 fits, so one full-size fit should cost
about a minute of one core or less).

For each PSO iteration count, one fit (seed 0, every other setting at its default) on the task's
quick subsample (2000/1000/2000 genes) and at full size (6601 train genes); printed: the valid
AUROC, the fit's CPU seconds (this process's, i.e. one core's work: the booster runs with
``n_jobs=1`` and numpy single-threaded), its wall seconds, and the mean over the 10 swarms of the
best training separation (max(AUC, 1 - AUC) of the best pattern's match count alone). Simulated
data (``simremc``) unless ``--data`` says otherwise; the output says which.

Usage: python benchmarks/patternchrome_budget.py [--task E003] [--iterations 1,2,5,10,20] [--sizes quick,full]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, as the budget means
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    from chrombench.data.load import load_task
    from chrombench.evaluate import auroc
    from chrombench.models.registry import make_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="E003")
    parser.add_argument("--data", default="simremc")
    parser.add_argument("--iterations", default="1,2,5,10,20")
    parser.add_argument("--sizes", default="quick,full")
    parser.add_argument("--particles", type=int, default=None, help="default: the model's")
    args = parser.parse_args(argv)

    for size in args.sizes.split(","):
        data = load_task(args.task, dataset=args.data, quick=size == "quick")
        ref = data.dataset
        print(f"{ref.name} {ref.version}{' (SIMULATED)' if ref.simulated else ''} {args.task} {size}: "
              f"{len(data.train)} train / {len(data.valid)} valid genes", flush=True)
        print("| PSO iterations | evaluations | valid AUROC | fit CPU s | fit wall s | mean best train separation |")
        print("|---:|---:|---:|---:|---:|---:|")
        for iterations in (int(i) for i in args.iterations.split(",")):
            params = {"pso_iterations": iterations, "seed": 0}
            if args.particles:
                params["particles"] = args.particles
            model = make_model("patternchrome", **params)
            cpu, wall = time.process_time(), time.perf_counter()
            model.fit(data.train, data.valid)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            score = auroc(np.asarray(data.valid.y), model.predict_proba(data.valid.X)[:, 1])
            evaluations = len(model.patterns_) * int(model.particles) * (iterations + 1)
            separation = float(np.mean([p["train_auroc"] for p in model.patterns_]))
            print(f"| {iterations} | {evaluations} | {score:.4f} | {cpu:.1f} | {wall:.1f} | {separation:.4f} |",
                  flush=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
