"""Realism guard: do models trained on the simulator still rank *real* genes, and does 1.2 keep 1.1's
marginal statistics?

The only real data here is the 30-gene AttentiveChrome toy sample (``shared/data/attentivechrome-toy``:
10 + 10 + 10 genes of one unnamed REMC cell type, real read counts and labels). For each simulator
version and each chosen task this script

1. fits simple models (logistic regression and XGBoost at their defaults) on the simulated task's
   train/valid splits and scores all 30 real genes with them: AUROC on real genes, with a bootstrap
   interval over those genes, and the paired difference between versions on the same genes;
2. compares the simulated test split's per-mark statistics with the real sample's: the ON/OFF class
   means (ratio sim/real) and the share of zero bins.

What 30 genes can show: a model that learned something transferable ranks them well above 0.5, and
a simulator whose marginals drifted shows up in (2). What they cannot show: differences between
versions smaller than about 0.1 AUROC (the bootstrap interval's half-width at 30 genes), or anything
about the mechanisms 1.2 adds (30 genes carry too little signal to see an alternative promoter).

Usage: python benchmarks/realism_guard.py [--tasks E003,E116,E123] [--full] [--bootstrap 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

MARKS = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
VERSIONS = ("simremc", "simremc@1.2")


def _toy_dir() -> Path:
    shared = Path(os.environ.get("CHROMBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return shared / "attentivechrome-toy"


def _real_genes():
    from chrombench.data.csvformat import read_split

    splits = [read_split(_toy_dir() / f"{s}.csv") for s in ("train", "valid", "test")]
    X = np.concatenate([np.asarray(s.X, dtype=float) for s in splits])
    y = np.concatenate([np.asarray(s.y) for s in splits])
    return X, y


def _bootstrap(y, score, n, rng):
    from chrombench.evaluate import auroc

    vals = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            vals.append(auroc(y[idx], score[idx]))
    return np.percentile(vals, [2.5, 97.5])


def _marginals(X, y):
    """Per mark: ON-class mean, OFF-class mean, share of zero bins (X is [genes, bins, marks])."""
    on, off = X[y == 1].mean(axis=(0, 1)), X[y == 0].mean(axis=(0, 1))
    zeros = (X == 0).mean(axis=(0, 1))
    return on, off, zeros


def main(argv=None) -> int:
    from chrombench.baselines.classical import LogisticRegressionModel, XGBoostModel
    from chrombench.data.load import load_task
    from chrombench.evaluate import auroc

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="E003,E116,E123", help="comma-separated EIDs (the toy sample's "
                        "cell type is not named, so several tasks are tried)")
    parser.add_argument("--full", action="store_true", help="train on full-size tasks (default: the quick subsample)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples over the real genes")
    args = parser.parse_args(argv)
    Xr, yr = _real_genes()
    rng = np.random.default_rng(0)
    print(f"real sample: {len(yr)} genes ({int(yr.sum())} ON), {_toy_dir()}")
    models = {"logistic-regression": LogisticRegressionModel, "xgboost": XGBoostModel}
    scores: dict = {}
    print("\n(1) AUROC on the 30 real genes of models trained on the simulator")
    print(f"{'task':6} {'version':12} {'model':20} {'real AUROC':>10}  95% bootstrap")
    for eid in args.tasks.split(","):
        for version in VERSIONS:
            data = load_task(eid, version, seed=0, quick=not args.full)
            for name, cls in models.items():
                model = cls().fit(data.train, data.valid)
                s = model.predict_proba(Xr)[:, 1]
                scores[eid, version, name] = s
                lo, hi = _bootstrap(yr, s, args.bootstrap, rng)
                print(f"{eid:6} {version:12} {name:20} {auroc(yr, s):10.3f}  [{lo:.2f}, {hi:.2f}]", flush=True)
    print("\npaired difference 1.2 - 1.1 on the same real genes (mean over tasks):")
    for name in models:
        d = [auroc(yr, scores[e, VERSIONS[1], name]) - auroc(yr, scores[e, VERSIONS[0], name])
             for e in args.tasks.split(",")]
        print(f"  {name:20} {np.mean(d):+.3f}  (per task: {', '.join(f'{x:+.3f}' for x in d)})")

    print("\n(2) marginal statistics, simulated test split vs the real sample (first task)")
    eid = args.tasks.split(",")[0]
    r_on, r_off, r_zero = _marginals(Xr, yr)
    for version in VERSIONS:
        data = load_task(eid, version, seed=0, quick=not args.full)
        on, off, zero = _marginals(np.asarray(data.test.X, dtype=float), np.asarray(data.test.y))
        print(f"{eid} {version}:")
        for j, mark in enumerate(MARKS):
            print(f"  {mark:9} ON mean sim/real {on[j] / r_on[j]:5.2f}  OFF mean sim/real {off[j] / r_off[j]:5.2f}  "
                  f"zero bins sim {zero[j]:.2f} real {r_zero[j]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
