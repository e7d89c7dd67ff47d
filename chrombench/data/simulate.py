"""simremc: a simulator of the 56 REMC tasks, the embedded default dataset.

It produces the archive's shapes (19,802 genes split 6601/6601/6600, 100 bins x 5 marks of integer
counts, median-threshold labels) from a generative model with the known biology planted:

- every gene has a latent chromatin activity ``s`` per cell type, correlated across cell types
  (a shared housekeeping component, a Roadmap-group component, a cell-type component);
- the label is ``s + noise`` above the task's median: the noise level is set per task from its
  published DeepChrome AUROC, so tasks keep their real order of difficulty and the oracle (the
  AUROC of ``s`` itself on the test split) sits a little above the published figure;
- H3K4me3 peaks at the TSS and rises with ``s``; H3K36me3 rises over the gene body downstream of
  the TSS with ``s``; H3K27me3 and H3K9me3 form broad repressive domains, more often and stronger
  on silent genes; H3K4me1 flanks the TSS and is only weakly informative; in embryonic-stem-cell
  -like tasks a share of silent genes are bivalent (H3K4me3 *and* H3K27me3 at the promoter), so a
  model must combine marks;
- many promoters carry no H3K4me3 peak at all (about 30% of ON and 40% of OFF genes, as in the real
  sample); repressive domains are rare but strong, which gives H3K27me3 and H3K9me3 their heavy tails;
- what the marks cannot explain about expression (the label noise) is mostly shared across cell
  types, like the housekeeping activity, so a gene's ON/OFF labels agree across cell types as real
  ones do (about 72% between Roadmap groups, 79% within one; 50% would be independent);
- counts are gamma-Poisson (negative binomial) with a per-gene depth factor: heavy-tailed like the
  real sample, and calibrated to its per-mark ON/OFF means, zero shares, upper quantiles and the
  share of genes without a TSS peak (tests/test_simulate.py checks this).

The ground truth per test gene is the Fisher information that each (mark, bin) cell carries
about ``s`` under the generative model (normalised to sum to one): where the evidence was planted.
Everything is a deterministic function of (SIM_VERSION, seed, EID).
"""

from __future__ import annotations

import functools
import zlib

import numpy as np

from .. import N_BINS, N_MARKS
from ..evaluate import auroc
from .arrays import GroundTruth, Split

SIM_VERSION = "1.1"  # 1.1: H3K4me3-free promoters, heavier repressive tails, shared label noise
N_GENES = 19802
SPLIT_SIZES = {"train": 6601, "valid": 6601, "test": 6600}
K27, K36, K4ME1, K4ME3, K9 = range(5)  # column order of chrombench.MARKS

# Variance shares of the latent activity: shared by all cell types (housekeeping), by the
# Roadmap group, and specific to the cell type.
SHARE_HOUSEKEEPING, SHARE_GROUP = 0.65, 0.2
ORACLE_GAP = 0.03  # oracle AUROC = published DeepChrome AUROC + this (models lose some to noise)
DISPERSION = 1.6  # gamma shape of the per-cell overdispersion: smaller = heavier tails
BIVALENT_SHARE = 0.4  # of silent genes carry bivalent promoters in ESC-like tasks
CPG_K4ME3_FLOOR = -0.3  # the lowest activity a CpG-island promoter's H3K4me3 follows
CPG_K4ME3_BOOST = 0.5  # extra log-rate of H3K4me3 at CpG-island promoters
# Which genes carry a mark at all: P = sigmoid(a + b * s (+ c * CpG island)). Many real promoters
# have no H3K4me3 peak, active ones too (30% of ON, 40% of OFF genes in the real sample).
PEAK_K4ME3 = (0.0, 0.3, 1.0)  # (a, b, c): CpG islands and active genes more often
HAS_K27 = (-1.9, -1.6)  # (a, b): few genes, but broad and strong (the real tail: p99 64)
PEAK_WIDTH = (4.0, 11.0)  # sd of the H3K4me3 peak, in bins (uniform between these): 1-2 kb peaks
HAS_K9 = (-2.8, -0.9)
# Share of the label noise that is the same in every cell type: what the marks cannot explain
# about a gene's expression (its transcript stability, say) is largely a property of the gene.
SHARED_LABEL_NOISE = 0.7

# Calibrated against shared/data/attentivechrome-toy (see tests/test_simulate.py).
PARAMS = {
    # mark: (background per bin, amplitude, slope on s)
    K4ME3: (0.8, 55.0, 0.85),
    K36: (0.9, 2.2, 0.9),
    K27: (1.2, 9.0, -0.6),
    K9: (0.9, 7.0, -0.3),
    K4ME1: (1.6, 2.0, 0.15),
}
X_POS = np.arange(N_BINS) - 49.5  # bin centres in units of 100 bp; TSS at 0, gene body > 0


def _rng(seed: int, *keys: str) -> np.random.Generator:
    words = [seed] + [zlib.crc32(f"{SIM_VERSION}/{k}".encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@functools.lru_cache(maxsize=4)
def _noise_table() -> tuple[np.ndarray, np.ndarray]:
    """Oracle AUROC of s as a function of the label-noise sd (monotone; for inversion)."""
    rng = np.random.default_rng(12345)
    s = rng.standard_normal(60000)
    e = rng.standard_normal(60000)
    sds = np.linspace(0.05, 3.0, 80)
    aucs = []
    for sd in sds:
        z = s + sd * e
        aucs.append(auroc((z > np.median(z)).astype(np.int8), s))
    return sds, np.array(aucs)


def noise_sd_for_oracle(target: float) -> float:
    sds, aucs = _noise_table()
    target = float(np.clip(target, aucs.min(), aucs.max()))
    return float(np.interp(target, aucs[::-1], sds[::-1]))


@functools.lru_cache(maxsize=2)
def gene_universe(seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gene ids (zero-padded strings, as in the archive) and the shared split of gene indices."""
    rng = _rng(seed, "genes")
    ids = np.sort(rng.choice(57000, size=N_GENES, replace=False))
    gene_ids = np.array([f"{i:06d}" for i in ids])
    perm = rng.permutation(N_GENES)
    a, b = SPLIT_SIZES["train"], SPLIT_SIZES["train"] + SPLIT_SIZES["valid"]
    return gene_ids, {"train": np.sort(perm[:a]), "valid": np.sort(perm[a:b]), "test": np.sort(perm[b:])}


@functools.lru_cache(maxsize=2)
def _shared_structure(seed: int) -> dict[str, np.ndarray]:
    """Per-gene properties shared by all cell types: housekeeping activity, gene geometry."""
    rng = _rng(seed, "structure")
    n = N_GENES
    return {
        "housekeeping": rng.standard_normal(n),
        "body_len": np.clip(rng.lognormal(np.log(25), 0.6, n), 4, 50),  # gene body, in bins
        "peak_shift": rng.normal(1.0, 1.5, n),  # H3K4me3 peaks just downstream of the TSS
        "peak_width": rng.uniform(*PEAK_WIDTH, n),
        "depth": rng.normal(0.0, 0.35, n),  # per-gene mappability nuisance
        # CpG-island promoters carry H3K4me3 even when the gene is barely expressed, so
        # H3K4me3 alone separates ON from OFF only partly (as in the real sample).
        "cpg_island": rng.random(n) < 0.55,
        "label_noise": rng.standard_normal(n),  # drawn last: the other shared properties stay as they were
    }


def _group_activity(seed: int, group: str) -> np.ndarray:
    return _rng(seed, "group", group).standard_normal(N_GENES)


def _domain(center, width, x=X_POS):
    lo, hi = center - width / 2, center + width / 2
    return _sigmoid((x[None, :] - lo[:, None]) / 2.0) * _sigmoid((hi[:, None] - x[None, :]) / 2.0)


def _gauss(center, width, x=X_POS):
    return np.exp(-0.5 * ((x[None, :] - center[:, None]) / width[:, None]) ** 2)


def simulate_task(eid: str, group: str, esc_like: bool, published_auroc: float, seed: int = 0):
    """All 19,802 genes of one task: (splits dict of Split, GroundTruth for the test split)."""
    from . import seal

    seal.check("simremc", eid, f"simulate_task({eid!r})")  # regenerating a task would give its test labels
    gene_ids, split_idx = gene_universe(seed)
    st = _shared_structure(seed)
    rng = _rng(seed, "task", eid)
    n = N_GENES

    s = (np.sqrt(SHARE_HOUSEKEEPING) * st["housekeeping"] + np.sqrt(SHARE_GROUP) * _group_activity(seed, group)
         + np.sqrt(1 - SHARE_HOUSEKEEPING - SHARE_GROUP) * rng.standard_normal(n))
    sd = noise_sd_for_oracle(published_auroc + ORACLE_GAP)
    noise = np.sqrt(SHARED_LABEL_NOISE) * st["label_noise"] + np.sqrt(1 - SHARED_LABEL_NOISE) * rng.standard_normal(n)
    z = s + sd * noise  # still N(0, sd^2) per task, so each task's oracle AUROC is what its sd was chosen for
    y = (z > np.median(z)).astype(np.int8)

    # Structure of this gene in this cell type.
    depth = st["depth"][:, None] + rng.normal(0, 0.15, (n, 1))
    bivalent = np.zeros(n, bool)
    if esc_like:
        bivalent = (s < 0) & (rng.random(n) < BIVALENT_SHARE)
    has27 = (rng.random(n) < _sigmoid(HAS_K27[0] + HAS_K27[1] * s)) | bivalent
    c27 = np.where(bivalent, rng.normal(0, 5, n), rng.uniform(-60, 60, n))
    w27 = np.where(bivalent, rng.uniform(25, 60, n), rng.uniform(30, 140, n))
    has9 = rng.random(n) < _sigmoid(HAS_K9[0] + HAS_K9[1] * s)
    has4 = (rng.random(n) < _sigmoid(PEAK_K4ME3[0] + PEAK_K4ME3[1] * s + PEAK_K4ME3[2] * st["cpg_island"])) | bivalent
    c9, w9 = rng.uniform(-80, 80, n), rng.uniform(60, 200, n)

    profile = np.empty((N_MARKS, n, N_BINS))
    profile[K4ME3] = _gauss(st["peak_shift"], st["peak_width"]) * has4[:, None]
    body = np.clip(X_POS[None, :] / st["body_len"][:, None], 0, None)
    profile[K36] = np.where(body <= 1, np.sqrt(body), np.exp(-(body - 1) * 3)) * (X_POS[None, :] > 0)
    profile[K27] = _domain(c27, w27) * has27[:, None]
    profile[K9] = _domain(c9, w9) * has9[:, None]
    flank = rng.uniform(10, 22, n)
    profile[K4ME1] = 0.5 * (_gauss(-flank, np.full(n, 6.0)) + _gauss(flank, np.full(n, 6.0)))

    # Bivalent promoters carry H3K4me3 like an active gene although the gene is silent.
    # CpG-island promoters keep H3K4me3 even when the gene is silent (poised); others only when active.
    s_k4 = np.where(st["cpg_island"], np.maximum(s, CPG_K4ME3_FLOOR), s)
    s_k4 = np.where(bivalent, rng.normal(0.6, 0.4, n), s_k4) + CPG_K4ME3_BOOST * st["cpg_island"]
    rate = np.empty((N_MARKS, n, N_BINS))
    signal = np.empty((N_MARKS, n, N_BINS))  # the s-dependent part of the rate
    for m, (bg, amp, slope) in PARAMS.items():
        s_m = s_k4 if m == K4ME3 else s
        signal[m] = amp * np.exp(slope * s_m[:, None] + depth) * profile[m]
        rate[m] = bg * np.exp(depth) + signal[m]

    gamma = rng.gamma(DISPERSION, 1.0 / DISPERSION, size=rate.shape)
    counts = rng.poisson(rate * gamma).astype(np.int32)
    X = np.ascontiguousarray(counts.transpose(1, 2, 0))  # [n, bins, marks]

    splits = {name: Split(gene_ids=gene_ids[idx], X=X[idx], y=y[idx]) for name, idx in split_idx.items()}

    # Ground truth: Fisher information about s per cell under the negative binomial,
    # (d rate / d s)^2 / Var = (slope * signal)^2 / (rate + rate^2 / DISPERSION).
    t = split_idx["test"]
    slopes = np.array([PARAMS[m][2] for m in range(N_MARKS)])[:, None, None]
    deriv = slopes * signal[:, t]
    deriv[K4ME3] *= ~bivalent[t][:, None]  # a bivalent promoter's H3K4me3 does not follow s
    info = deriv ** 2 / (rate[:, t] + rate[:, t] ** 2 / DISPERSION)
    importance = (info / info.sum(axis=(0, 2), keepdims=True)).transpose(1, 0, 2).astype(np.float32)
    truth = GroundTruth(oracle_auroc=auroc(y[t], s[t]), importance=importance, latent=s[t].astype(np.float32))
    return splits, truth
