"""How far a cell's test AUROC moves when only the compute path changes: the rebuild tolerance, measured.

A fixed sample of shipped cells (the quick zoo's seed-0 records, by default AttentiveChrome, DeepChrome
and the LSTM on the quick suite's three tasks) is refitted from each record (``leaderboard.rebuild``:
the record's model, parameters and seed, the protocol's fit and one test prediction) under several
compute paths, each variant in its own process so that nothing native is shared between them:

    reference  the native kernels on 2 threads (torch's thread count, which the kernels take)
    threads-1  the native kernels on 1 thread (as each of two local workers runs them)
    no-fma     the native kernels built with -ffp-contract=off: the compiler may not fuse a*b+c into
               one rounding (what another compiler or its defaults may do)
    torch      CHROMBENCH_NATIVE=0: torch.nn.LSTM, no native code at all (as without a C compiler)

It prints every cell's test AUROC per variant, |Δ| against the reference and against the shipped
number, the seed-to-seed standard deviation of the shipped cell (seeds 0-2) for scale, and the tolerance
derived from them: the largest |Δ| between compute paths, rounded up to the next 0.005. The torch
variant costs ~5x a native fit, so by default it runs on the first task only (``--torch-tasks``).

Usage: python benchmarks/reproducibility_tolerance.py [--models attentivechrome,deepchrome,lstm]
           [--tasks E003,E112,E123] [--variants reference,threads-1,no-fma,torch] [--torch-tasks E003]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from chrombench.models.compute import describe

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name -> (environment, torch threads, extra C flags)
    "reference": ({}, 2, ()),
    "threads-1": ({}, 1, ()),
    "no-fma": ({}, 2, ("-ffp-contract=off",)),
    "torch": ({"CHROMBENCH_NATIVE": "0"}, 2, ()),
}
STEP = 0.005  # the tolerance is stated on this grid: finer would claim a precision a handful of fits lacks


def cells(bundles: Path, models: list[str], tasks: list[str]) -> list[dict]:
    """The sample: for each (model, task) its shipped seed-0 record, manifest and seed spread."""
    out = []
    for task in tasks:  # task by task: a run stopped early has compared each model on the first tasks
        for model in models:
            manifest = json.loads((bundles / model / "bundle.json").read_text())
            folder = bundles / model / "records" / task
            summary = json.loads((folder / "summary.json").read_text())
            out.append({"model": model, "task": task, "record": str(folder / "seed-0.json"), "manifest": manifest,
                        "seed_sd": float(summary["metrics"]["test_auroc"]["std"])})
    return out


def worker(variant: str, sample: list[dict]) -> None:
    """In a fresh process: refit each cell of ``sample`` under ``variant``; one JSON line per cell."""
    import torch

    from chrombench.baselines import native_library
    from chrombench.leaderboard.rebuild import rebuild_one

    _, threads, cflags = VARIANTS[variant]
    native_library.FLAGS = native_library.FLAGS + tuple(cflags)  # before the first load: its own build
    torch.set_num_threads(threads)
    for cell in sample:
        start = time.perf_counter()
        got = rebuild_one(json.loads(Path(cell["record"]).read_text()), cell["manifest"])
        print(json.dumps({"model": cell["model"], "task": cell["task"], "variant": variant, "auroc": got.auroc,
                          "compute": got.compute, "seconds": time.perf_counter() - start}), flush=True)


def run_variant(variant: str, sample: list[dict]) -> list[dict]:
    env = {**os.environ, **VARIANTS[variant][0]}
    env.pop("CHROMBENCH_NATIVE_THREADS", None)  # the variant's thread count decides
    proc = subprocess.Popen([sys.executable, __file__, "--worker", variant], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, text=True, cwd=ROOT)
    proc.stdin.write(json.dumps(sample))
    proc.stdin.close()
    fits = []
    for line in proc.stdout:  # each fit as it lands (progress, and what a stopped run leaves behind)
        if line.startswith("{"):
            fits.append(json.loads(line))
            print(f"  {variant}: {fits[-1]['model']} {fits[-1]['task']} test AUROC {fits[-1]['auroc']:.4f} "
                  f"({fits[-1]['seconds']:.0f} s)", file=sys.stderr, flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
    return fits


def tolerance(deltas: list[float]) -> float:
    return math.ceil(max(deltas, default=0.0) / STEP - 1e-9) * STEP if deltas and max(deltas) > 0 else STEP


def report(sample: list[dict], fits: list[dict]) -> None:
    by = {(f["model"], f["task"], f["variant"]): f for f in fits}
    variants = [v for v in VARIANTS if any(f["variant"] == v for f in fits)]
    print(f"{'model':<16} {'task':<5} {'shipped':>7} " + " ".join(f"{v:>10}" for v in variants)
          + f" {'|Δ| paths':>9} {'|Δ| shipped':>11} {'seed sd':>7}")
    path_deltas, shipped_deltas, sds = [], [], []
    for cell in sample:
        got = {v: by[(cell["model"], cell["task"], v)]["auroc"] for v in variants if (cell["model"], cell["task"], v) in by}
        if not got:
            continue  # not reached (a run stopped early)
        shipped = json.loads(Path(cell["record"]).read_text())["metrics"]["test"]["auroc"]
        ref = got.get("reference")
        deltas = [abs(a - ref) for v, a in got.items() if v != "reference"] if ref is not None else []
        vs_shipped = [abs(a - shipped) for a in got.values()]
        path_deltas += deltas
        shipped_deltas += vs_shipped
        sds.append(cell["seed_sd"])
        print(f"{cell['model']:<16} {cell['task']:<5} {shipped:7.4f} "
              + " ".join(f"{got[v]:10.4f}" if v in got else f"{'-':>10}" for v in variants)
              + f" {max(deltas, default=0.0):9.4f} {max(vs_shipped):11.4f} {cell['seed_sd']:7.4f}")
    print("\ncompute paths the fits ran (fit times include the machine's other load):")
    for v in variants:
        mine = [f for f in fits if f["variant"] == v]
        paths = sorted({f"{f['model']}: {describe(f['compute'])}" for f in mine})
        print(f"  {v:<10} {len(mine)} fits, {sum(f['seconds'] for f in mine):.0f} s: {'; '.join(paths)}")
    sds.sort()
    print(f"\n|Δ test AUROC| between compute paths of today's code: max {max(path_deltas, default=0.0):.4f}, "
          f"mean {sum(path_deltas) / max(len(path_deltas), 1):.4f} over {len(path_deltas)} pairs")
    print(f"|Δ test AUROC| of a refit against the shipped record: max {max(shipped_deltas, default=0.0):.4f}, "
          f"mean {sum(shipped_deltas) / max(len(shipped_deltas), 1):.4f} over {len(shipped_deltas)} refits")
    if sds:
        print(f"seed-to-seed sd of these cells (shipped seeds 0-2): median {sds[len(sds) // 2]:.4f}, max {sds[-1]:.4f}")
    print(f"derived tolerance: |Δ test AUROC| <= {tolerance(path_deltas + shipped_deltas):.3f} "
          f"(the largest |Δ| above, rounded up to the next {STEP})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=Path, default=ROOT / "leaderboards/zoo")
    parser.add_argument("--models", default="attentivechrome,deepchrome,lstm")
    parser.add_argument("--tasks", default="E003,E112,E123")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--torch-tasks", default="E003", help="tasks the (slow) torch variant refits ('all': every one)")
    parser.add_argument("--log", type=Path, help="JSON lines of the fits: appended to, and fits already in it are reused")
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, json.loads(sys.stdin.read()))
        return 0
    sample = cells(args.bundles, args.models.split(","), args.tasks.split(","))
    torch_tasks = None if args.torch_tasks == "all" else set(args.torch_tasks.split(","))
    variants = args.variants.split(",")
    for variant in variants:
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    fits = [json.loads(line) for line in args.log.read_text().splitlines()] if args.log and args.log.exists() else []
    done = {(f["model"], f["task"], f["variant"]) for f in fits}
    for cell in sample:  # cell by cell, so that a run stopped early still compares whole cells
        for variant in variants:
            if (cell["model"], cell["task"], variant) in done or \
                    (variant == "torch" and torch_tasks is not None and cell["task"] not in torch_tasks):
                continue
            for fit in run_variant(variant, [cell]):
                fits.append(fit)
                if args.log:
                    with args.log.open("a") as log:
                        log.write(json.dumps(fit) + "\n")
    report(sample, fits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
