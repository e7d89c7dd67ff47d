"""Stalled fits under the old and the new training recipe, per neural model.

A fit *stalled* when early stopping ended it with its best epoch before ``results.STALL_EPOCHS``: it
never learned (see chrombench/results.py). For each model this prints, over the (task, seed) fits both
sets of records have: the share of stalled fits and the mean test AUROC under each recipe, and the
mean AUROC of DeepChrome's fits on the same cells for scale.

    # old = the shipped roadmap56 records; new = a recomputation with today's code
    python benchmarks/stalled_fits.py --old leaderboards/roadmap56-simremc/zoo --new chrombench-out/roadmap56/results

With ``--fit MODEL --tasks E071,E013 --seeds 0`` it first computes the new fits itself (full size,
today's defaults, one process) into ``--new``, so a fixed sample can be measured without a whole column.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from chrombench import results

ROOT = Path(__file__).resolve().parents[1]


def seed_fits(root: Path) -> dict[tuple[str, str, int], dict]:
    """(model, task, seed) -> {stalled, auroc, best_epoch, epochs_run} from the seed records under ``root``."""
    out = {}
    for rec in results.read_records(root, kind="seed"):
        if rec.get("task", {}).get("genes"):  # quick-size records are another table
            continue
        t = rec.get("training", {})
        if not t.get("iterative") or "best_epoch" not in t:
            continue
        out[(rec["model"]["name"], rec["task"]["name"], int(rec["seed"]))] = {
            "stalled": results.is_stalled(rec), "auroc": float(rec["metrics"]["test"]["auroc"]),
            "best_epoch": int(t["best_epoch"]), "epochs_run": int(t.get("epochs_run", 0))}
    return out


def compute(model: str, tasks: list[str], seeds: str, out: Path) -> None:
    cmd = [sys.executable, "-m", "chrombench.cli", "run", "-m", model, "--suite", "roadmap56", "--seeds", seeds,
           "--output-dir", str(out.parent), "--no-progress"]
    for t in tasks:
        cmd += ["-t", t]
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", type=Path, default=ROOT / "leaderboards/roadmap56-simremc/zoo")
    ap.add_argument("--new", type=Path, required=True, help="records of the new recipe (a run's results/ folder)")
    ap.add_argument("--fit", help="compute these models' new fits first (comma-separated)")
    ap.add_argument("--tasks", default="E071,E013,E055,E003,E106", help="with --fit: the fixed sample of tasks")
    ap.add_argument("--seeds", default="0", help="with --fit: seeds")
    args = ap.parse_args()
    if args.fit:
        for model in args.fit.split(","):
            compute(model, args.tasks.split(","), args.seeds, args.new)
    old, new = seed_fits(args.old), seed_fits(args.new)
    models = sorted({m for m, _, _ in new})
    print(f"{'model':32s} {'fits':>5s} {'stalled old':>12s} {'stalled new':>12s} {'AUROC old':>10s} "
          f"{'AUROC new':>10s} {'deepchrome':>10s}")
    for m in models:
        cells = sorted(k for k in new if k[0] == m and k in old)
        if not cells:
            continue
        dc = [old[("deepchrome", t, s)]["auroc"] for _, t, s in cells if ("deepchrome", t, s) in old]
        so, sn = (np.mean([d[k]["stalled"] for k in cells]) for d in (old, new))
        ao, an = (np.mean([d[k]["auroc"] for k in cells]) for d in (old, new))
        print(f"{m:32s} {len(cells):5d} {so:11.0%} {sn:11.0%} {ao:10.4f} {an:10.4f} "
              f"{(np.mean(dc) if len(dc) == len(cells) else float('nan')):10.4f}")


if __name__ == "__main__":
    main()
