"""What the simulator's 56 tasks look like: oracle AUROC and a simple model's AUROC per task.

For every task of ``simremc`` (full size), prints the simulator's oracle AUROC (the AUROC of its
latent signal on the test split: the ceiling), the test AUROC of logistic regression at its
defaults (a simple model), and the published DeepChrome AUROC on the real data that the task's
difficulty was set from; then the ranges and the Spearman correlation of each with the published
AUROCs (does the simulator keep the real order of difficulty?). Generating all 56 tasks takes a
few minutes the first time (they are cached).

Usage: python benchmarks/simulator_overview.py [--tasks E003,E116] [--seed 0] [--data simremc@1.2] [--quick]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    from scipy.stats import spearmanr

    from chrombench.baselines.classical import LogisticRegressionModel
    from chrombench.data.load import load_task
    from chrombench.evaluate import auroc
    from chrombench.tasks import all_specs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=None, help="comma-separated EIDs (default: all 56)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--data", default="simremc", help="simulator version: simremc (1.1) or simremc@1.2")
    parser.add_argument("--quick", action="store_true", help="the quick suite's gene subsample (2000 test genes)")
    args = parser.parse_args(argv)
    specs = all_specs()
    eids = args.tasks.split(",") if args.tasks else sorted(specs)
    rows = []
    for eid in eids:
        data = load_task(eid, args.data, seed=args.seed, quick=args.quick)
        model = LogisticRegressionModel().fit(data.train, data.valid)
        simple = auroc(np.asarray(data.test.y), model.predict_proba(data.test.X)[:, 1])
        published = specs[eid].reported_deepchrome_auroc
        rows.append((eid, data.truth.oracle_auroc, simple, published))
        print(f"{eid}  oracle {data.truth.oracle_auroc:.3f}  logistic regression {simple:.3f}  "
              f"published DeepChrome (real data) {published:.2f}", flush=True)
    oracle, simple, published = (np.array([r[k] for r in rows]) for k in (1, 2, 3))
    print(f"\n{len(rows)} tasks, {data.dataset.name} {data.dataset.version} (simulated)")
    print(f"oracle AUROC:               {oracle.min():.3f} - {oracle.max():.3f} (median {np.median(oracle):.3f})")
    print(f"logistic regression AUROC:  {simple.min():.3f} - {simple.max():.3f} (median {np.median(simple):.3f})")
    print(f"published DeepChrome AUROC: {published.min():.2f} - {published.max():.2f} (median {np.median(published):.2f})")
    print(f"logistic regression - published: mean {np.mean(simple - published):+.3f}, "
          f"max |diff| {np.max(np.abs(simple - published)):.3f}")
    if len(rows) > 2:
        print(f"Spearman vs published: oracle {spearmanr(oracle, published)[0]:.2f}, "
              f"logistic regression {spearmanr(simple, published)[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
