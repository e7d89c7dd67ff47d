"""Recompute only the stalled fits of shipped columns (roadmap56 or quick), keeping every other fit as shipped.

A column's converged fits do not change under the stall rescue (the trainer cuts the learning rate only
for a fit that has not learned yet), so re-running a whole column to mend a few stalled cells would
redo hours of identical work. This lays a column's bundled records out as a `chrombench run` output,
removes the stalled seeds (and their tasks' summaries), and lets `chrombench run` compute just those;
then bundle as usual (build.sh bundle with REBUNDLE=1 and MODELS=...).

    python leaderboards/roadmap56-simremc/rerun_stalled.py --out /scratch/rm56 transferchrome hm-crnn
    python leaderboards/roadmap56-simremc/rerun_stalled.py --suite quick --zoo leaderboards/zoo --out /scratch/q tc
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from chrombench import results

HERE = Path(__file__).resolve().parent


def lay_out(model: str, out: Path, zoo: Path = HERE / "zoo") -> list[tuple[str, int]]:
    """Copy the bundle's records under ``out/results``; return the stalled (task, seed) fits removed."""
    bundle = zoo / model / "records"
    stalled = []
    for rec in results.read_records(bundle, kind="seed"):
        src = Path(rec["_path"])
        task_dir = out / "results" / rec["dataset"]["name"] / model / rec["task"]["name"]
        task_dir.mkdir(parents=True, exist_ok=True)
        if results.is_stalled(rec):
            stalled.append((rec["task"]["name"], int(rec["seed"])))
            continue
        shutil.copy2(src, task_dir / src.name)
        for pred in src.parent.glob(f"seed-{rec['seed']}.predictions.csv*"):
            shutil.copy2(pred, task_dir / pred.name)
    for rec in results.read_records(bundle, kind="summary"):
        if not any(t == rec["task"]["name"] for t, _ in stalled):
            dst = out / "results" / rec["dataset"]["name"] / model / rec["task"]["name"] / "summary.json"
            shutil.copy2(rec["_path"], dst)
    return sorted(stalled)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--out", type=Path, required=True, help="a `chrombench run` output folder to work in")
    ap.add_argument("--dry-run", action="store_true", help="only list the stalled fits")
    ap.add_argument("--suite", default="roadmap56", help="the suite the bundles were run on")
    ap.add_argument("--zoo", type=Path, default=HERE / "zoo", help="the folder of the shipped bundles")
    args = ap.parse_args()
    for model in args.models:
        stalled = lay_out(model, args.out, args.zoo)
        print(f"{model}: {len(stalled)} stalled fits: {', '.join(f'{t}/seed-{s}' for t, s in stalled) or 'none'}",
              flush=True)
        if args.dry_run or not stalled:
            continue
        cmd = ["chrombench", "run", "-m", model, "--suite", args.suite, "--output-dir", str(args.out), "--no-progress"]
        for task in sorted({t for t, _ in stalled}):
            cmd += ["-t", task]
        subprocess.run(cmd, check=True, stdout=sys.stdout, stderr=sys.stderr)


if __name__ == "__main__":
    main()
