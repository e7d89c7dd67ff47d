"""How fast chrombench reads the archive format, against the reference code's way of reading it.

Writes one full-size split (6,601 genes = 660,100 rows) of the simulated task E003 in the archive
format, then times

* the reference approach: a per-row ``csv`` loop that groups rows by gene in a dict and builds
  one torch tensor per gene (as the public DeepChrome/AttentiveChrome loaders do), and
* ``chrombench.data.csvformat.read_split`` (vectorised parse plus full validation),

and prints the speed-up (target >= 20x) and the time to load a cached task through
``load.load_task`` (target < 0.5 s). Both are measured in the same run on the same file, so the
ratio holds on any machine. Exit status 1 if a target is missed.

Usage: python benchmarks/bench_parse.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SPEEDUP_TARGET = 20.0
CACHED_LOAD_TARGET_S = 0.5


def reference_parse(path: Path) -> dict[str, tuple[torch.Tensor, int]]:
    """Per-row csv loop: gene -> list of rows, then one [100, 5] tensor and a label per gene."""
    rows_by_gene: dict[str, list[list[str]]] = {}
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            rows_by_gene.setdefault(row[0], []).append(row)
    genes = {}
    for gene_id, rows in rows_by_gene.items():
        counts = torch.tensor([[int(v) for v in row[2:7]] for row in rows], dtype=torch.float32)
        genes[gene_id] = (counts, int(rows[0][7]))
    return genes


def best_time(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="take the best of this many runs of each parser")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="chrombench-bench-") as tmp:
        # an existing cache is reused (no re-simulation); otherwise a throwaway one
        os.environ.setdefault("CHROMBENCH_HOME", str(Path(tmp) / "home"))
        from chrombench.data.csvformat import read_split, write_split
        from chrombench.data.load import load_task

        train = load_task("E003").train  # generates and caches E003 if needed
        path = Path(tmp) / "train.csv"
        write_split(path, train)
        n_rows = sum(1 for _ in open(path))
        print(f"split: {len(train):,} genes, {n_rows:,} rows, {path.stat().st_size / 2**20:.1f} MiB "
              f"(simremc E003 train); best of {args.repeats} runs each")

        # interleaved, so that load from other processes hits both parsers alike
        t_ref = t_ours = float("inf")
        for _ in range(args.repeats):
            t, ref = best_time(lambda: reference_parse(path), 1)
            t_ref = min(t_ref, t)
            t, ours = best_time(lambda: read_split(path), 1)
            t_ours = min(t_ours, t)
        # both must have read the same numbers, or the comparison means nothing
        assert list(ref) == list(ours.gene_ids)
        for i in (0, len(ours) // 2, len(ours) - 1):
            counts, label = ref[ours.gene_ids[i]]
            assert np.array_equal(counts.numpy(), ours.X[i]) and label == ours.y[i]
        speedup = t_ref / t_ours
        print(f"reference csv loop + torch.tensor per gene: {t_ref:8.3f} s")
        print(f"csvformat.read_split (with validation):     {t_ours:8.3f} s")
        print(f"speed-up: {speedup:.1f}x   (target >= {SPEEDUP_TARGET:.0f}x: {verdict(speedup >= SPEEDUP_TARGET)})")

        t_load, data = best_time(lambda: load_task("E003"), max(args.repeats, 5))
        t_touch, _ = best_time(lambda: [np.asarray(data.split(s).X).sum() for s in ("train", "valid", "test")], 1)
        print(f"load.load_task('E003') from the cache:     {t_load:8.4f} s   "
              f"(target < {CACHED_LOAD_TARGET_S} s: {verdict(t_load < CACHED_LOAD_TARGET_S)}); "
              f"reading all its counts once: {t_touch:.3f} s")
    return 0 if speedup >= SPEEDUP_TARGET and t_load < CACHED_LOAD_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
