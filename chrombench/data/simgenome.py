"""Where simremc 1.2's genes lie: chromosomes, positions, a neighbourhood field, the chromosome split.

Genes are spread over the 24 human chromosomes in proportion to each one's protein-coding gene
count (approximate GENCODE v19 counts, so gene-rich chr19 and chr17 are dense and chr13, chr18 and
chr21 sparse), at positions drawn uniformly along the chromosome's hg19 length. Neighbouring genes
share a smooth neighbourhood field (an Ornstein-Uhlenbeck process along the chromosome, correlation
``exp(-distance / NEIGHBOURHOOD_BP)``): chromatin domains and co-regulated clusters make real
neighbours' expression agree. That is what makes a chromosome-held-out split differ from a random one.
"""

from __future__ import annotations

import numpy as np

from .build import DEFAULT_TEST_CHROMS, DEFAULT_VALID_CHROMS

# chromosome: (hg19 length in Mb, approximate protein-coding genes)
CHROMOSOMES = {
    "1": (249, 2050), "2": (243, 1300), "3": (198, 1080), "4": (191, 750), "5": (181, 880),
    "6": (171, 1040), "7": (159, 930), "8": (146, 680), "9": (141, 780), "10": (136, 730),
    "11": (135, 1310), "12": (134, 1030), "13": (115, 320), "14": (107, 610), "15": (103, 600),
    "16": (90, 850), "17": (81, 1190), "18": (78, 270), "19": (59, 1470), "20": (63, 540),
    "21": (48, 230), "22": (51, 440), "X": (155, 840), "Y": (59, 45),
}
NEIGHBOURHOOD_BP = 1_000_000
SPLITS_OFFERED = ("random", "chromosome")


def place_genes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(chromosome name per gene, 1-based TSS position per gene), genes in no particular order."""
    names = list(CHROMOSOMES)
    weights = np.array([CHROMOSOMES[c][1] for c in names], float)
    counts = np.floor(weights / weights.sum() * n).astype(int)
    counts[np.argsort(-(weights / weights.sum() * n - counts))[: n - counts.sum()]] += 1
    chrom = np.repeat(np.array(names), counts)
    lengths = np.array([CHROMOSOMES[c][0] * 1_000_000 for c in chrom])
    pos = (rng.random(n) * lengths).astype(np.int64) + 1
    return chrom, pos


def neighbourhood_field(rng: np.random.Generator, chrom: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Unit-variance field, smooth along each chromosome: neighbours within ~1 Mb share it."""
    out = np.empty(len(chrom))
    for c in np.unique(chrom):
        idx = np.flatnonzero(chrom == c)
        idx = idx[np.argsort(pos[idx])]
        rho = np.exp(-np.diff(pos[idx]) / NEIGHBOURHOOD_BP)
        e = rng.standard_normal(len(idx))
        f = np.empty(len(idx))
        f[0] = e[0]
        for i in range(1, len(idx)):  # stationary OU: keeps unit variance at any spacing
            f[i] = rho[i - 1] * f[i - 1] + np.sqrt(1 - rho[i - 1] ** 2) * e[i]
        out[idx] = f
    return out


def chromosome_split(chrom: np.ndarray) -> dict[str, np.ndarray]:
    """Gene indices per split: valid and test are whole chromosomes (the `data build` defaults)."""
    test = np.isin(chrom, DEFAULT_TEST_CHROMS)
    valid = np.isin(chrom, DEFAULT_VALID_CHROMS)
    return {"train": np.flatnonzero(~test & ~valid), "valid": np.flatnonzero(valid), "test": np.flatnonzero(test)}
