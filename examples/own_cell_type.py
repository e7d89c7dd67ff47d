"""Your own cell type, end to end and offline: write tracks, an annotation and expression, then
build a task from them, train a model on it and explain it.

    python examples/own_cell_type.py [--out own-cell-type] [--genes 1500]

The inputs are synthetic (so that this runs anywhere), written in the formats a lab has:

- five bigWig tracks (H3K4me3 peaks at active promoters, H3K36me3 over active gene bodies,
  H3K27me3 and H3K9me3 over silent ones, H3K4me1 flanking), written with pyBigWig;
- a GENCODE-style GTF (gene rows with gene_id, gene_type, gene_name; some lncRNAs, a gene too close
  to a chromosome end, and genes without an expression value, so every keep rule has work to do);
- an expression table with one column per cell type (as Roadmap's 57epigenomes.RPKM.pc).

Swap in your real files and the same three commands build, train and explain your cell type.
``write_inputs`` is also what ``benchmarks/bench_build.py`` uses at genome size.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np

MARKS = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
STEP = 50  # the tracks' resolution: signal in 50 bp steps (bigWig variableStep entries)
SMALL_GENOME = {"chr1": 3_000_000, "chr2": 2_400_000, "chr3": 2_000_000, "chr4": 1_600_000, "chr5": 1_200_000,
                "chrX": 1_000_000}


def place_genes(chrom_sizes: dict[str, int], n_genes: int, rng) -> list[tuple]:
    """(chrom, start, end, strand) in GTF coordinates (1-based, inclusive), spread by chromosome length."""
    names = list(chrom_sizes)
    lengths = np.array([chrom_sizes[c] for c in names], dtype=float)
    per = rng.multinomial(n_genes, lengths / lengths.sum())
    genes = []
    for chrom, k in zip(names, per):
        tss = np.sort(rng.integers(2_000, chrom_sizes[chrom] - 2_000, size=k))
        span = rng.integers(2_000, 40_000, size=k)
        for t, s, strand in zip(tss, span, rng.choice(["+", "-"], size=k)):
            start, end = (t, min(t + s, chrom_sizes[chrom])) if strand == "+" else (max(t - s, 1), t)
            genes.append((chrom, int(start), int(end), str(strand)))
    return genes


def mark_steps(gene: tuple, activity: float, rng) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Sparse signal around one gene per mark: step start positions (0-based) and values."""
    chrom, start, end, strand = gene
    tss = start - 1 if strand == "+" else end - 1
    sign = 1 if strand == "+" else -1
    on = 1 / (1 + np.exp(-2 * activity))  # how active the promoter is, 0..1
    out = {}
    near = tss + sign * STEP * np.arange(-20, 21)  # +-1 kb
    out["H3K4me3"] = (near, rng.poisson(30 * on ** 2 * np.exp(-np.abs(np.arange(-20, 21)) / 8)) + 0.0)
    body = tss + sign * STEP * rng.integers(10, 80, size=12)  # 0.5-4 kb into the gene
    out["H3K36me3"] = (body, rng.poisson(8 * on, size=12) + 0.0)
    out["H3K27me3"] = (tss + STEP * rng.integers(-80, 80, size=16), rng.poisson(6 * (1 - on), size=16) + 0.0)
    flank = tss + sign * STEP * np.r_[rng.integers(-60, -25, size=6), rng.integers(25, 60, size=6)]
    out["H3K4me1"] = (flank, rng.poisson(5 * np.sqrt(on), size=12) + 0.0)
    out["H3K9me3"] = (tss + STEP * rng.integers(-100, 100, size=6), rng.poisson(1.5 * (1 - on), size=6) + 0.0)
    return out


def write_bigwigs(folder: Path, chrom_sizes: dict[str, int], per_mark: dict) -> dict[str, Path]:
    """One bigWig per mark: overlapping steps summed, written as fixed-span entries in genome order."""
    import pyBigWig

    paths = {}
    for mark in MARKS:
        path = folder / f"mycell-{mark}.bw"
        bw = pyBigWig.open(str(path), "w")
        bw.addHeader(list(chrom_sizes.items()), maxZooms=4)
        for chrom in chrom_sizes:
            pos, val = per_mark[mark].get(chrom, ([], []))
            if not len(pos):
                continue
            pos, val = np.concatenate(pos), np.concatenate(val)
            keep = (pos >= 0) & (pos + STEP <= chrom_sizes[chrom]) & (val > 0)
            steps, inverse = np.unique((pos[keep] // STEP) * STEP, return_inverse=True)
            sums = np.bincount(inverse, weights=val[keep])
            if len(steps):
                bw.addEntries(chrom, steps.astype(np.int64).tolist(), values=sums.astype(float).tolist(), span=STEP)
        bw.close()
        paths[mark] = path
    return paths


def write_inputs(folder: str | Path, n_genes: int = 1500, chrom_sizes: dict[str, int] | None = None,
                 seed: int = 0) -> dict:
    """Write the tracks, ``genes.gtf.gz`` and ``expression.tsv``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chrom_sizes = chrom_sizes or SMALL_GENOME
    rng = np.random.default_rng(seed)
    genes = place_genes(chrom_sizes, n_genes, rng)
    activity = rng.normal(0, 1, size=len(genes))
    per_mark: dict[str, dict[str, list]] = {m: {} for m in MARKS}
    for gene, a in zip(genes, activity):
        for mark, (pos, val) in mark_steps(gene, a, rng).items():
            per_mark[mark].setdefault(gene[0], ([], []))
            per_mark[mark][gene[0]][0].append(pos)
            per_mark[mark][gene[0]][1].append(val)
    tracks = write_bigwigs(folder, chrom_sizes, per_mark)
    biotype = np.where(rng.random(len(genes)) < 0.1, "lncRNA", "protein_coding")
    with gzip.open(folder / "genes.gtf.gz", "wt") as fh:
        fh.write("##description: synthetic GENCODE-style annotation (chrombench examples/own_cell_type.py)\n")
        for i, ((chrom, start, end, strand), bt) in enumerate(zip(genes, biotype)):
            attrs = f'gene_id "ENSG{i:011d}.1"; gene_type "{bt}"; gene_name "GENE{i}";'
            fh.write(f"{chrom}\tSYNTH\tgene\t{start}\t{end}\t.\t{strand}\t.\t{attrs}\n")
    rpkm = np.exp(1.5 * activity + rng.normal(0, 0.5, size=len(genes)))
    other = np.exp(rng.normal(0, 1.5, size=len(genes)))  # another cell type's column, to choose from
    with open(folder / "expression.tsv", "w") as fh:
        fh.write("gene_id\tOTHER\tMYCELL\n")
        for i in range(len(genes)):
            if rng.random() < 0.03:
                continue  # no value for this gene: the build drops it and says so
            fh.write(f"ENSG{i:011d}\t{other[i]:.4f}\t{rpkm[i]:.4f}\n")
    return {"tracks": tracks, "annotation": folder / "genes.gtf.gz", "expression": folder / "expression.tsv"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="own-cell-type", help="folder for the inputs and the outputs")
    ap.add_argument("--genes", type=int, default=1500)
    ap.add_argument("--name", default="mycell", help="dataset name in the store")
    args = ap.parse_args(argv)
    out = Path(args.out)
    inputs = write_inputs(out / "inputs", args.genes)
    cb = [sys.executable, "-m", "chrombench"]
    build = cb + ["data", "build", "--name", args.name, "--overwrite",
                  "--annotation", str(inputs["annotation"]), "--expression", f"{inputs['expression']}:MYCELL"]
    for mark, path in inputs["tracks"].items():
        build += ["--mark", f"{mark}={path}"]
    steps = [build,
             cb + ["train", "-t", args.name, "-m", "deepchrome", "-o", str(out / "model")],
             cb + ["explain", str(out / "model"), "-t", args.name, "-o", str(out / "explain")]]
    for cmd in steps:
        print("$", " ".join(c if " " not in c else repr(c) for c in cmd[2:]).replace(sys.executable, "python"),
              flush=True)
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
