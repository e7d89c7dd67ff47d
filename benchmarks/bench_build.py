"""Speed and memory of ``chrombench data build`` on a genome-sized input.

The input (written first, not timed): five bigWig tracks over the 22 hg19 autosomes at their real
lengths with sparse signal around ~20,000 genes, a GENCODE-style GTF and an expression table
(``examples/own_cell_type.py``'s generator). Then, measured in one run:

* the build itself, ``chrombench data build`` as a child process (10 kb windows, 100 bins, all five
  marks): wall time and the child's peak resident memory (the bigWigs are read one window at a
  time, never whole, so memory stays far below the tracks' decompressed size);
* a baseline on the same files: pyBigWig's own binned summary, ``stats(type="sum", nBins=100,
  exact=True)`` per window (the obvious way to bin a bigWig), timed on ``--baseline-genes`` windows
  per mark and extrapolated to all kept genes. The ratio says how much the build's reading
  (base-level values summed per bin) saves; both give identical sums.

Target: the build in <= 60 s on 2 cores. Exit status 1 if it is missed.

Usage: python benchmarks/bench_build.py [--genes 20000] [--baseline-genes 300] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from own_cell_type import MARKS, write_inputs  # noqa: E402

HG19_AUTOSOMES = {
    "chr1": 249_250_621, "chr2": 243_199_373, "chr3": 198_022_430, "chr4": 191_154_276, "chr5": 180_915_260,
    "chr6": 171_115_067, "chr7": 159_138_663, "chr8": 146_364_022, "chr9": 141_213_431, "chr10": 135_534_747,
    "chr11": 135_006_516, "chr12": 133_851_895, "chr13": 115_169_878, "chr14": 107_349_540, "chr15": 102_531_392,
    "chr16": 90_354_753, "chr17": 81_195_210, "chr18": 78_077_248, "chr19": 59_128_983, "chr20": 63_025_520,
    "chr21": 48_129_895, "chr22": 51_304_566,
}
TARGET_S = 60.0


def baseline_seconds_per_window(tracks: dict, windows: list[tuple[str, int]]) -> float:
    import pyBigWig

    t0 = time.perf_counter()
    n = 0
    for path in tracks.values():
        bw = pyBigWig.open(str(path))
        for chrom, start in windows:
            bw.stats(chrom, start, start + 10_000, type="sum", nBins=100, exact=True)
            n += 1
        bw.close()
    return (time.perf_counter() - t0) / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--genes", type=int, default=20_000)
    ap.add_argument("--baseline-genes", type=int, default=300)
    ap.add_argument("--keep", default=None, help="write the inputs here and keep them (default: a temp folder)")
    args = ap.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="chrombench-bench-build-"))
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    t0 = time.perf_counter()
    inputs = write_inputs(work / "inputs", args.genes, HG19_AUTOSOMES, seed=1)
    written = time.perf_counter() - t0
    track_bytes = sum(p.stat().st_size for p in inputs["tracks"].values())
    print(f"inputs: {args.genes:,} genes on 22 autosomes ({sum(HG19_AUTOSOMES.values()) / 1e9:.2f} Gb), 5 bigWigs of "
          f"{track_bytes / 1e6:.1f} MB in all (written in {written:.1f} s, not timed)")

    cmd = [sys.executable, "-m", "chrombench", "data", "build", "--name", "genome", "--annotation",
           str(inputs["annotation"]), "--expression", f"{inputs['expression']}:MYCELL"]
    for mark, path in inputs["tracks"].items():
        cmd += ["--mark", f"{mark}={path}"]
    env = {**os.environ, "CHROMBENCH_HOME": str(home), "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    build_s = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if res.returncode != 0:
        print(res.stdout, res.stderr, sep="\n")
        return 1
    print(res.stdout.strip().splitlines()[1])  # what the rules kept and dropped
    reg = json.loads((home / "registry.json").read_text())["datasets"]["genome"]
    kept = sum(s["genes"] for s in reg["tasks"]["genome"]["splits"].values())

    rng = np.random.default_rng(0)
    chroms = list(HG19_AUTOSOMES)
    windows = [(c, int(rng.integers(0, HG19_AUTOSOMES[c] - 10_000)))
               for c in rng.choice(chroms, size=args.baseline_genes)]
    per_window = baseline_seconds_per_window(inputs["tracks"], windows)
    baseline_s = per_window * kept * len(MARKS)
    decompressed_gb = sum(HG19_AUTOSOMES.values()) * 4 * len(MARKS) / 1e9  # float32 per base, all tracks
    print(f"\nbuild ({kept:,} genes x {len(MARKS)} marks x 100 bins): {build_s:.1f} s wall, peak memory "
          f"{peak_mb:.0f} MB (the tracks decompressed per base would be {decompressed_gb:.0f} GB)")
    print(f"baseline, pyBigWig stats(nBins=100) per window: {per_window * 1e3:.2f} ms/window -> {baseline_s:.0f} s "
          f"for the same windows (extrapolated from {len(windows) * len(MARKS)} windows)")
    print(f"ratio baseline / build: {baseline_s / build_s:.1f}x")
    ok = build_s <= TARGET_S
    print(f"target build <= {TARGET_S:.0f} s: {'met' if ok else 'MISSED'}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
