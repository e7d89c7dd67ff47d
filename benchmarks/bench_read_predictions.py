"""Reading a seed's predictions file: chrombench's csv.reader with column indices against a DictReader.

``leaderboard validate`` and ``leaderboard render`` read every bundled predictions file (roadmap56: 868
files of 6,600 rows, each read twice per render). The baseline, measured in the same run and
interleaved with it round by round, is the DictReader-per-row reader the leaderboard used before.
Both must give the same arrays. Files: the first ``--files`` predictions files under ``--bundles``.

Target: >= 1.25x faster than the baseline (measured 1.32-1.43x on our 2-core machine, 2026-12-07; a guard
against a slower reader creeping back). Exit status 1 if missed.

Usage: python benchmarks/bench_read_predictions.py [--bundles leaderboards/roadmap56-simremc/zoo]
       [--files 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
import time
from pathlib import Path

import numpy as np

from chrombench.results import read_predictions

SPEEDUP_TARGET = 1.25


def dictreader_baseline(path: Path):
    """The reader as it was: one dict per row."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    ids = np.array([r["gene_id"] for r in rows], dtype=str)
    prob = np.array([float(r["probability"]) for r in rows])
    label = np.array([int(float(r["label"])) for r in rows])
    order = np.argsort(ids, kind="stable")
    return ids[order], prob[order], label[order]


def timed(reader, files) -> float:
    start = time.perf_counter()
    for f in files:
        reader(f)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=Path, default=Path("leaderboards/roadmap56-simremc/zoo"))
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    files = sorted(args.bundles.rglob("*.predictions.csv*"))[: args.files]
    if not files:
        print(f"no predictions files under {args.bundles}", file=sys.stderr)
        return 2
    for f in files:  # same arrays, or the speed means nothing
        for a, b in zip(read_predictions(f), dictreader_baseline(f)):
            if not np.array_equal(a, b):
                print(f"{f}: the two readers disagree", file=sys.stderr)
                return 1
    best = {"dictreader (baseline)": np.inf, "chrombench": np.inf}
    for _ in range(args.rounds):  # interleaved, best of rounds
        best["dictreader (baseline)"] = min(best["dictreader (baseline)"], timed(dictreader_baseline, files))
        best["chrombench"] = min(best["chrombench"], timed(read_predictions, files))
    for name, seconds in best.items():
        print(f"{name:<24} {seconds / len(files) * 1000:7.1f} ms per file ({len(files)} files)")
    ratio = best["dictreader (baseline)"] / best["chrombench"]
    print(f"speed-up: {ratio:.2f}x (target {SPEEDUP_TARGET}x)")
    return 0 if ratio >= SPEEDUP_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
