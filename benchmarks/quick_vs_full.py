"""Does the quick suite order the models as the full roadmap56 table does?

Reads the shipped bundles (quick: leaderboards/zoo; full: leaderboards/roadmap56-simremc/zoo), takes
each model's mean test AUROC over its tasks (the order each page ranks by), and prints Kendall's tau
between the two orders over the models both have, and every pair the quick page reverses.

    python benchmarks/quick_vs_full.py [--quick DIR] [--full DIR]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from chrombench import results

ROOT = Path(__file__).resolve().parents[1]


def mean_auroc(root: Path) -> dict[str, float]:
    per_model: dict[str, list[float]] = {}
    for rec in results.read_records(root, kind="summary"):
        per_model.setdefault(rec["model"]["name"], []).append(float(rec["metrics"]["test_auroc"]["mean"]))
    return {m: float(np.mean(v)) for m, v in per_model.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", type=Path, default=ROOT / "leaderboards/zoo")
    ap.add_argument("--full", type=Path, default=ROOT / "leaderboards/roadmap56-simremc/zoo")
    args = ap.parse_args()
    quick, full = mean_auroc(args.quick), mean_auroc(args.full)
    shared = sorted(set(quick) & set(full), key=lambda m: -full[m])
    if len(shared) < 3:
        raise SystemExit(f"only {len(shared)} models in both; nothing to compare")
    tau = kendalltau([full[m] for m in shared], [quick[m] for m in shared]).statistic
    quick_rank = {m: i + 1 for i, m in enumerate(sorted(shared, key=lambda m: -quick[m]))}
    print(f"{'model':34s} {'full':>7s} {'rank':>4s} {'quick':>7s} {'rank':>4s}")
    for i, m in enumerate(shared, 1):
        print(f"{m:34s} {full[m]:7.4f} {i:4d} {quick[m]:7.4f} {quick_rank[m]:4d}")
    reversed_pairs = [(a, b) for a, b in itertools.combinations(shared, 2)
                      if (full[a] - full[b]) * (quick[a] - quick[b]) < 0]
    n_pairs = len(shared) * (len(shared) - 1) // 2
    print(f"\nKendall tau (quick vs full, {len(shared)} models): {tau:.3f}; "
          f"{len(reversed_pairs)} of {n_pairs} pairs reversed")
    for a, b in reversed_pairs:
        print(f"  full: {a} > {b}; quick: {b} > {a}")


if __name__ == "__main__":
    main()
