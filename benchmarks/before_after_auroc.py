"""Before/after the speed work: test AUROC of a fixed sample of shipped cells, refitted with today's code.

"Before" is a shipped cell of the roadmap56 table on simremc 1.1 (``leaderboards/roadmap56-simremc/zoo``)
made by the code that predates the speed issue: its record carries no ``compute`` block (the block was
kept from the speed work on), so records refitted later (the LSTM's stalled fits) are left out of the
draw. "After" is the same cell refitted now (``leaderboard.rebuild.rebuild_one``: the record's model,
parameters and seed, the protocol's fit and one test prediction) on today's kernels and compute path.

The sample is fixed: ``--per-model`` cells of every neural model (the zoo's torch-trained models),
drawn with ``--seed`` from that model's pre-speed seed records. Cells run round by round (the first
cell of every model, then the second, ...), cheapest model first, so a run stopped early still compares
every model. Each refit is appended to ``--log`` as it lands, and a rerun with the same log reuses them
(resumable). The table gives each cell's shipped and refitted AUROC and |Δ|, and per model the mean
signed Δ, the largest |Δ| and how many cells lie within the reproducibility tolerance
(``REBUILD_TOLERANCE``: the two runs' compute paths differ).

``benchmarks/before_after_auroc.jsonl`` holds the 100 refits of 2026-12-07 (native AVX-512 or torch, one
thread per fit): ``--report-only --log benchmarks/before_after_auroc.jsonl`` prints their table.

Usage: python benchmarks/before_after_auroc.py [--per-model 10] [--seed 2812] [--threads 1]
           [--models attentivechrome,...] [--log before_after.jsonl] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Cheapest first (machine seconds per full-size fit, benchmarks/roadmap56_cost.py): an early stop still
# compares every model on its first rounds.
NEURAL = ("deepchrome", "deepchrome2", "hm-crnn", "attentivechrome-unidirectional", "attentivechrome-no-alpha",
          "attentivechrome-no-beta", "transferchrome", "attentivechrome", "chromoformer", "lstm")


def draw(bundles: Path, models, per_model: int, seed: int) -> list[dict]:
    """The fixed sample, round-major: [{model, task, seed, record}], records without ``compute`` only."""
    from chrombench.leaderboard.rebuild import seed_records

    chosen = {}
    for m in models:
        pool = [(f, rec) for f, rec in seed_records(bundles / m) if not rec.get("compute")]
        if not pool:
            raise SystemExit(f"{bundles / m}: no pre-speed seed record (every one carries a compute block)")
        picked = random.Random(f"{seed}:{m}").sample(pool, min(per_model, len(pool)))
        chosen[m] = [{"model": m, "task": rec["task"]["name"], "seed": int(rec["seed"]), "record": str(f)}
                     for f, rec in sorted(picked, key=lambda p: str(p[0]))]
    return [chosen[m][i] for i in range(per_model) for m in models if i < len(chosen[m])]


def key(cell: dict) -> str:
    return f"{cell['model']}/{cell['task']}/seed-{cell['seed']}"


def refit(sample: list[dict], log: Path) -> None:
    from chrombench.leaderboard.rebuild import rebuild_one
    from chrombench.models.compute import describe

    done = {json.loads(line)["key"] for line in log.read_text().splitlines() if line.strip()} if log.exists() else set()
    todo = [c for c in sample if key(c) not in done]
    print(f"{len(sample) - len(todo)} of {len(sample)} cells already in {log}; refitting {len(todo)}", file=sys.stderr)
    for i, cell in enumerate(todo, 1):
        bundle = Path(cell["record"]).parents[2]
        rec = json.loads(Path(cell["record"]).read_text())
        manifest = json.loads((bundle / "bundle.json").read_text())
        start = time.perf_counter()
        got = rebuild_one(rec, manifest)
        row = {"key": key(cell), **cell, "before": float(rec["metrics"]["test"]["auroc"]), "after": got.auroc,
               "compute": got.compute, "seconds": round(time.perf_counter() - start, 1)}
        with log.open("a") as fh:  # one line per fit: a stopped run keeps every finished cell
            fh.write(json.dumps(row) + "\n")
        print(f"[{i}/{len(todo)}] {key(cell)}: before {row['before']:.4f}, after {got.auroc:.4f}, "
              f"|Δ| {abs(got.auroc - row['before']):.4f} ({row['seconds']:.0f} s; {describe(got.compute)})",
              file=sys.stderr, flush=True)


def how_it_ended(record: str) -> str:
    """The shipped fit's ending, flagged where its best valid AUROC stayed below the linear floor the
    trainer measured (a fit that learned less than a logistic regression on mark totals; the stall rule
    only judges fits whose best epoch is under 3, so such a fit still counts as converged)."""
    from chrombench.results import FLOOR_MARGIN

    t = json.loads(Path(record).read_text()).get("training") or {}
    text = f"{t.get('stopped_by', '?')}, best epoch {t.get('best_epoch', '?')}"
    floor, best = t.get("valid_floor"), t.get("best_valid_auroc")
    if isinstance(floor, float) and isinstance(best, float) and best < floor - FLOOR_MARGIN:
        text += f"; valid {best:.3f} below its linear floor {floor:.3f}"
    return text


def report(sample: list[dict], log: Path, models) -> None:
    from chrombench.leaderboard.rebuild import REBUILD_TOLERANCE
    from chrombench.models.compute import describe

    rows = {r["key"]: r for r in map(json.loads, filter(str.strip, log.read_text().splitlines()))} if log.exists() else {}
    print("| model | cell | before | after | Δ | before's fit |\n|---|---|---|---|---|---|")
    for m in models:
        for c in (c for c in sample if c["model"] == m and key(c) in rows):
            r = rows[key(c)]
            print(f"| {m} | {c['task']} s{c['seed']} | {r['before']:.4f} | {r['after']:.4f} | "
                  f"{r['after'] - r['before']:+.4f} | {how_it_ended(c['record'])} |")
    print(f"\n| model | cells | mean Δ (after - before) | mean abs Δ | max abs Δ | within {REBUILD_TOLERANCE} |"
          "\n|---|---|---|---|---|---|")
    everything = []
    for m in models:
        d = [rows[key(c)]["after"] - rows[key(c)]["before"] for c in sample if c["model"] == m and key(c) in rows]
        everything += d
        if d:
            print(f"| {m} | {len(d)} | {statistics.fmean(d):+.4f} | {statistics.fmean(map(abs, d)):.4f} | "
                  f"{max(map(abs, d)):.4f} | {sum(abs(x) <= REBUILD_TOLERANCE for x in d)}/{len(d)} |")
    if everything:
        a = [abs(x) for x in everything]
        print(f"\nall {len(a)} cells: mean Δ {statistics.fmean(everything):+.4f}, mean |Δ| {statistics.fmean(a):.4f}, "
              f"max |Δ| {max(a):.4f}, {sum(x <= REBUILD_TOLERANCE for x in a)}/{len(a)} within {REBUILD_TOLERANCE}")
        paths = sorted({describe(r["compute"]) for r in rows.values()})
        print(f"after: {'; '.join(paths)}; before: no compute block (the pre-speed code); "
              f"refit time {sum(r['seconds'] for r in rows.values()) / 60:.0f} min")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=Path, default=ROOT / "leaderboards/roadmap56-simremc/zoo")
    parser.add_argument("--models", default=",".join(NEURAL))
    parser.add_argument("--per-model", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2812)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit (1: leaves a core to other work)")
    parser.add_argument("--log", type=Path, default=Path("before_after_auroc.jsonl"))
    parser.add_argument("--report-only", action="store_true", help="print the table from --log, fit nothing")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sample = draw(args.bundles, models, args.per_model, args.seed)
    if not args.report_only:
        import torch

        torch.set_num_threads(args.threads)
        refit(sample, args.log)
    report(sample, args.log, models)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
