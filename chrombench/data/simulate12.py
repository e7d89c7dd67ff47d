"""simremc 1.2: room above DeepChrome, planted mechanisms worth learning, genes on chromosomes.

1.1 (``simulate.py``) sets each task's ceiling to DeepChrome's published AUROC + 0.03, so no model
can show itself much better than DeepChrome. 1.2 keeps 1.1's count model and calibration for the
part of expression that a simple reading of the marks explains, and adds the rest as mechanisms:

- **ceiling**: each task's oracle AUROC is drawn in ``CEILING_RANGE`` from the task's own seed,
  independently of any published figure (mean about 0.93 >= the best published 0.90);
- the latent ``s = sqrt(a) * v + sqrt(1 - a) * mech``: ``v`` is 1.1's chromatin activity, encoded as
  1.1 encodes it (a window-mean logistic regression reads it), ``mech`` is a weighted sum of the
  mechanism terms below, each encoded so that a linear model on 1 kb window means reads little of
  it. ``a`` is set per task so that logistic regression lands near DeepChrome's published AUROC:
  the simple models keep the real tasks' difficulty and order, the ceiling leaves room above them;
- **positions**: genes lie on chromosomes (``simgenome``); ``v`` carries a neighbourhood field
  shared by genes within about 1 Mb, and ``split="chromosome"`` holds out whole chromosomes.

Each mechanism (``MECHANISMS``) has its own planted importance map per test gene: the Fisher
information that each (mark, bin) cell carries about that mechanism's latent, normalised per gene
(all zero for a gene the mechanism does not touch, e.g. a non-bivalent gene). The overall map
weighs every term's information by its share of ``s``. Deterministic in (version, seed, EID, split).
"""

from __future__ import annotations

import functools
import zlib

import numpy as np

from .. import N_BINS, N_MARKS
from ..evaluate import auroc
from . import simgenome
from .arrays import GroundTruth, Split
from .simulate import (CPG_K4ME3_BOOST, CPG_K4ME3_FLOOR, DISPERSION, HAS_K9, HAS_K27, N_GENES, PARAMS,
                       PEAK_K4ME3, PEAK_WIDTH, SHARED_LABEL_NOISE, SPLIT_SIZES, X_POS, _domain, _gauss,
                       _sigmoid, noise_sd_for_oracle)

SIM_VERSION = "1.2"
K27, K36, K4ME1, K4ME3, K9 = range(5)
CEILING_RANGE = (0.94, 0.98)  # wide enough above the easiest task (0.92) for LR to reach it
# v's variance shares: housekeeping, Roadmap group, neighbourhood field, cell type's own.
V_SHARES = {"housekeeping": 0.6, "group": 0.2, "neighbourhood": 0.1, "own": 0.1}
# Calibration of the simple-model difficulty (measured with logistic regression on window means, see
# the module's tests and the closing note): its score's correlation with the label's latent z is
# LR_ATTENUATION x that of the part of s it can read (count noise; 1.1's encoding alone gives 0.90), and
# it reads LINEAR_SHARE of the mechanism terms' variance.
LR_ATTENUATION = 0.85
LINEAR_SHARE = 0.1

# name: (weight in mech, generator term). Weights are variance weights before normalisation.
MECHANISMS = {
    "tss_drift": (1.0, "an alternative promoter 0.8-3.5 kb from the annotated TSS carries an H3K4me3 peak "
                       "whose height rises with the gene's use of it"),
    "k4me3_shape": (1.0, "the promoter's H3K4me3 peak at equal mass: a nucleosome-depleted dip between two "
                         "peaks when the term is high, one broad peak when low"),
    "bivalent": (1.0, "bivalent promoters (H3K4me3 peak and H3K27me3) stay off the more H3K27me3 they carry; "
                      "decoy H3K27me3 without the H3K4me3 peak says nothing"),
    "k36_gradient": (1.0, "H3K36me3 over the gene body tilts towards the 3' end with expression, at equal "
                          "mass"),
    "k4me1_enhancer": (1.0, "a cell-type-specific H3K4me1 enhancer flank 1.2-4.5 kb from the TSS; a decoy "
                            "flank in every gene says nothing"),
    "combination": (1.0, "upstream H3K27me3 and H3K9me3 matter only together: the term is the product of "
                         "their two latents, each uncorrelated with it alone"),
}
BIVALENT_SHARE = {True: 0.35, False: 0.12}  # genes with bivalent-prone promoters, ESC-like or not
# Published same-data relations (ids in chrombench/leaderboard/published_relations.tsv) that the mechanism
# weights above were tuned to reproduce. None: the weights are equal by design, and a full-size probe on E003,
# E112 and E123 (seed 0) found every counted published direction holding already, so each relation a 1.2
# table reproduces is held out, the stronger evidence (benchmarks/simulator_overview.py reports them so).
CALIBRATED_RELATIONS: tuple[str, ...] = ()


def _rng(seed: int, *keys: str) -> np.random.Generator:
    words = [seed] + [zlib.crc32(f"{SIM_VERSION}/{k}".encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def ceiling(eid: str, seed: int = 0) -> float:
    """The task's oracle AUROC target: its own draw, independent of every published figure."""
    lo, hi = CEILING_RANGE
    return float(lo + (hi - lo) * _rng(seed, "ceiling", eid).random())


def _corr_for_auroc(target: float) -> float:
    """Correlation with z that gives AUROC ``target`` against the labels 1[z > median]."""
    sd = noise_sd_for_oracle(target)
    return 1.0 / np.sqrt(1.0 + sd ** 2)


def visible_share(eid: str, published_auroc: float, seed: int = 0) -> float:
    """``a``: the share of s in 1.1's linearly readable activity, set so LR lands near ``published``."""
    rho_s = _corr_for_auroc(ceiling(eid, seed))
    rho_t = _corr_for_auroc(published_auroc) / LR_ATTENUATION
    a = ((rho_t / rho_s) ** 2 - LINEAR_SHARE) / (1 - LINEAR_SHARE)
    return float(np.clip(a, 0.0, 1.0))


def mechanism_shares(eid: str, esc_like: bool, published_auroc: float, seed: int = 0) -> dict[str, float]:
    """Each term's share of the latent's variance (what sets the ceiling), summing to 1."""
    a = visible_share(eid, published_auroc, seed)
    var = _mech_variances(esc_like)
    total = sum(var.values())
    shares = {"activity (1.1 terms)": a * (1 - V_SHARES["neighbourhood"]),
              "neighbourhood": a * V_SHARES["neighbourhood"]}
    shares.update({k: (1 - a) * v / total for k, v in var.items()})
    return shares


def _auroc_for_corr(rho: float) -> float:
    from .simulate import _noise_table

    sds, aucs = _noise_table()
    return float(np.interp(np.sqrt(max(1 / max(rho, 1e-9) ** 2 - 1, 0.0)), sds, aucs))


def mechanism_table(eid: str, esc_like: bool, published_auroc: float, seed: int = 0) -> list[dict]:
    """Per term: its generator term, share of the latent's variance, and the ceiling without it (the
    oracle AUROC of the latent with that term left out): how much of the ceiling rests on it."""
    ceil = ceiling(eid, seed)
    rho = _corr_for_auroc(ceil)
    terms = {"activity (1.1 terms)": "1.1's chromatin activity: H3K4me3 at the TSS, H3K36me3 over the body, "
                                     "repressive H3K27me3/H3K9me3 domains (housekeeping, group, own)",
             "neighbourhood": "a field shared by genes within ~1 Mb on the same chromosome (part of the activity)",
             **{k: t for k, (_, t) in MECHANISMS.items()}}
    return [{"name": k, "term": terms[k], "share": share,
             "ceiling_without": _auroc_for_corr(rho * np.sqrt(1 - share)), "ceiling": ceil}
            for k, share in mechanism_shares(eid, esc_like, published_auroc, seed).items()]


def _mech_variances(esc_like: bool) -> dict[str, float]:
    p = BIVALENT_SHARE[esc_like]
    return {k: w * (p if k == "bivalent" else 1.0) for k, (w, _) in MECHANISMS.items()}


@functools.lru_cache(maxsize=2)
def gene_universe(seed: int, split: str = "random"):
    """(gene ids, split -> gene indices, chromosome per gene, position per gene)."""
    if split not in simgenome.SPLITS_OFFERED:
        from ..errors import UnknownNameError

        raise UnknownNameError(f"simremc {SIM_VERSION} has no split {split!r}; it has: "
                               + ", ".join(simgenome.SPLITS_OFFERED))
    rng = _rng(seed, "genes")
    ids = np.sort(rng.choice(57000, size=N_GENES, replace=False))
    gene_ids = np.array([f"{i:06d}" for i in ids])
    chrom, pos = simgenome.place_genes(rng, N_GENES)
    perm = rng.permutation(N_GENES)
    if split == "chromosome":
        return gene_ids, simgenome.chromosome_split(chrom), chrom, pos
    a, b = SPLIT_SIZES["train"], SPLIT_SIZES["train"] + SPLIT_SIZES["valid"]
    return gene_ids, {"train": np.sort(perm[:a]), "valid": np.sort(perm[a:b]), "test": np.sort(perm[b:])}, chrom, pos


@functools.lru_cache(maxsize=2)
def _shared(seed: int) -> dict[str, np.ndarray]:
    """Per-gene properties shared by all cell types."""
    rng = _rng(seed, "structure")
    n = N_GENES
    _, _, chrom, pos = gene_universe(seed)
    side = lambda: np.where(rng.random(n) < 0.5, -1.0, 1.0)  # noqa: E731
    out = {
        "housekeeping": rng.standard_normal(n), "label_noise": rng.standard_normal(n),
        "body_len": np.clip(rng.lognormal(np.log(25), 0.6, n), 4, 50),
        "peak_shift": rng.normal(1.0, 1.5, n), "peak_width": rng.uniform(*PEAK_WIDTH, n),
        "depth": rng.normal(0.0, 0.35, n), "cpg_island": rng.random(n) < 0.55,
        "alt_tss": side() * rng.uniform(8, 35, n), "shape_centre": rng.uniform(-2, 2, n),
        "enhancer": side() * rng.uniform(12, 45, n), "decoy_enhancer": side() * rng.uniform(12, 45, n),
        "bivalent_rank": rng.random(n), "neighbourhood": simgenome.neighbourhood_field(rng, chrom, pos),
    }
    for k in ("tss_drift", "k4me3_shape", "bivalent", "k36_gradient", "comb_a", "comb_b"):
        out[f"m_{k}"] = rng.standard_normal(n)  # the shared half of each mechanism's latent
    return out


def _mix(shared, own):
    return np.sqrt(0.5) * shared + np.sqrt(0.5) * own


def latent(eid: str, group: str, esc_like: bool, published_auroc: float, seed: int = 0) -> dict:
    """The task's latent activity and labels for all genes, without any counts (cheap): ``s``, ``y``,
    ``v``, the mechanism latents ``m``, the visible share ``a``, and the task's generator to go on with."""
    _, _, chrom, pos = gene_universe(seed)
    st = _shared(seed)
    rng = _rng(seed, "task", eid)  # the same draws for either split: only the partition differs
    n = N_GENES
    nb = _mix(st["neighbourhood"], simgenome.neighbourhood_field(rng, chrom, pos))
    v = (np.sqrt(V_SHARES["housekeeping"]) * st["housekeeping"]
         + np.sqrt(V_SHARES["group"]) * _rng(seed, "group", group).standard_normal(n)
         + np.sqrt(V_SHARES["neighbourhood"]) * nb + np.sqrt(V_SHARES["own"]) * rng.standard_normal(n))
    m = {k: _mix(st[f"m_{k}"], rng.standard_normal(n)) for k in ("tss_drift", "k4me3_shape", "k36_gradient")}
    m["k4me1_enhancer"] = rng.standard_normal(n)  # cell-type-specific: nothing shared
    bivalent = st["bivalent_rank"] < BIVALENT_SHARE[esc_like]
    m["bivalent"] = np.where(bivalent, _mix(st["m_bivalent"], rng.standard_normal(n)), 0.0)
    comb_a, comb_b = _mix(st["m_comb_a"], rng.standard_normal(n)), _mix(st["m_comb_b"], rng.standard_normal(n))
    m["combination"] = comb_a * comb_b
    var = _mech_variances(esc_like)
    mech = sum(np.sqrt(MECHANISMS[k][0]) * m[k] for k in MECHANISMS) / np.sqrt(sum(var.values()))
    a = visible_share(eid, published_auroc, seed)
    s = np.sqrt(a) * v + np.sqrt(1 - a) * mech
    sd = noise_sd_for_oracle(ceiling(eid, seed))
    noise = np.sqrt(SHARED_LABEL_NOISE) * st["label_noise"] + np.sqrt(1 - SHARED_LABEL_NOISE) * rng.standard_normal(n)
    z = s + sd * noise
    return {"s": s, "y": (z > np.median(z)).astype(np.int8), "v": v, "m": m, "comb": (comb_a, comb_b),
            "bivalent": bivalent, "a": a, "var": var, "rng": rng}


def oracle_auroc(eid: str, group: str, esc_like: bool, published_auroc: float, seed: int = 0,
                 split: str = "random") -> float:
    """The task's ceiling as generated: AUROC of the latent on the test split (no counts drawn)."""
    lat = latent(eid, group, esc_like, published_auroc, seed)
    t = gene_universe(seed, split)[1]["test"]
    return auroc(lat["y"][t], lat["s"][t])


def simulate_task(eid: str, group: str, esc_like: bool, published_auroc: float, seed: int = 0,
                  split: str = "random", genes: np.ndarray | None = None):
    """All genes of one task: (splits dict of Split, GroundTruth with per-mechanism maps, gene positions).

    ``genes`` (sorted gene indices) draws counts for those genes only: the same latent and labels, the
    same distribution of counts but other draws, at a fraction of the cost (for calibration runs)."""
    from . import seal

    seal.check("simremc", eid, f"simulate_task({eid!r})")
    gene_ids, split_idx, chrom, pos = gene_universe(seed, split)
    lat = latent(eid, group, esc_like, published_auroc, seed)
    g = np.arange(N_GENES) if genes is None else np.asarray(genes)
    st = {k: x[g] for k, x in _shared(seed).items()}
    s, y, v, a, var, rng, bivalent = (lat[k] for k in ("s", "y", "v", "a", "var", "rng", "bivalent"))
    s, y, v, bivalent = s[g], y[g], v[g], bivalent[g]
    m = {k: x[g] for k, x in lat["m"].items()}
    comb_a, comb_b = (x[g] for x in lat["comb"])
    gene_ids, chrom, pos = gene_ids[g], chrom[g], pos[g]
    where = np.full(N_GENES, -1)
    where[g] = np.arange(len(g))
    split_idx = {k: where[i][where[i] >= 0] for k, i in split_idx.items()}
    n = len(g)

    # -- 1.1's encoding of v (its calibration to the real sample carries over) ----------------------
    depth = st["depth"][:, None] + rng.normal(0, 0.15, (n, 1))
    has27 = rng.random(n) < _sigmoid(HAS_K27[0] + HAS_K27[1] * v)
    c27, w27 = rng.uniform(-60, 60, n), rng.uniform(30, 140, n)
    has9 = rng.random(n) < _sigmoid(HAS_K9[0] + HAS_K9[1] * v)
    has4 = rng.random(n) < _sigmoid(PEAK_K4ME3[0] + PEAK_K4ME3[1] * v + PEAK_K4ME3[2] * st["cpg_island"])
    c9, w9 = rng.uniform(-80, 80, n), rng.uniform(60, 200, n)
    body = np.clip(X_POS[None, :] / st["body_len"][:, None], 0, None)
    in_body = (X_POS[None, :] > 0) & (body <= 1)
    # k4me3_shape and k36_gradient reshape 1.1's own H3K4me3 peak and H3K36me3 body profile at equal
    # mass, so they add no counts that would blur a simple model's reading of v
    pw, ps = st["peak_width"], st["peak_shift"]
    single = _gauss(ps, pw)
    double = 0.5 * (_gauss(ps - 0.8 * pw, 0.45 * pw) + _gauss(ps + 0.8 * pw, 0.45 * pw)) / 0.45
    w_shape = _sigmoid(2.0 * m["k4me3_shape"])[:, None]
    ramp = np.where(in_body, 2 * body - 1, 0.0)
    tilt = np.exp(1.2 * m["k36_gradient"][:, None] * ramp)
    tilt /= np.maximum((tilt * in_body).sum(axis=1, keepdims=True) / np.maximum(in_body.sum(axis=1, keepdims=True), 1), 1e-9)
    profile = {K4ME3: (w_shape * double + (1 - w_shape) * single) * has4[:, None],
               K36: np.where(body <= 1, np.sqrt(body), np.exp(-(body - 1) * 3)) * (X_POS[None, :] > 0)
               * np.where(in_body, tilt, 1.0),
               K27: _domain(c27, w27) * has27[:, None], K9: _domain(c9, w9) * has9[:, None]}
    flank = rng.uniform(10, 22, n)
    profile[K4ME1] = 0.5 * (_gauss(-flank, np.full(n, 6.0)) + _gauss(flank, np.full(n, 6.0)))
    v_k4 = np.where(st["cpg_island"], np.maximum(v, CPG_K4ME3_FLOOR), v) + CPG_K4ME3_BOOST * st["cpg_island"]
    rate = np.zeros((N_MARKS, n, N_BINS))
    terms = []  # (term, mark, d rate / d its latent): for the planted maps
    for mark, (bg, amp, slope) in PARAMS.items():
        sig = amp * np.exp(slope * (v_k4 if mark == K4ME3 else v)[:, None] + depth) * profile[mark]
        rate[mark] += bg * np.exp(depth) + sig
        terms.append(("v", mark, slope * sig))
        if mark == K4ME3:
            shape_d = sig / np.maximum(profile[K4ME3], 1e-300) * (double - single) * 2 * w_shape * (1 - w_shape) * has4[:, None]
            terms.append(("k4me3_shape", K4ME3, shape_d))
        if mark == K36:
            terms.append(("k36_gradient", K36, 1.2 * ramp * sig))

    # -- the mechanisms ------------------------------------------------------------------------------
    ed = np.exp(depth)
    ones = np.ones(n)

    def add(term, mark, amp, shape, beta, latent):
        sig = amp * ed * np.exp(beta * latent[:, None]) * shape
        rate[mark] += sig
        terms.append((term, mark, beta * sig))

    add("tss_drift", K4ME3, 5.0, _gauss(st["alt_tss"], 2.5 * ones), 1.0, m["tss_drift"])
    prom = _gauss(np.zeros(n), 3.0 * ones)
    decoy = (~bivalent) & (rng.random(n) < BIVALENT_SHARE[esc_like] / (1 - BIVALENT_SHARE[esc_like]))
    rate[K4ME3] += 15.0 * ed * prom * bivalent[:, None]
    add("bivalent", K27, 12.0 * bivalent[:, None], _domain(np.zeros(n), 20 * ones), -1.0, m["bivalent"])
    rate[K27] += 12.0 * ed * np.exp(-rng.standard_normal(n))[:, None] * _domain(np.zeros(n), 20 * ones) * decoy[:, None]
    add("k4me1_enhancer", K4ME1, 4.0, _gauss(st["enhancer"], 3.0 * ones), 1.0, m["k4me1_enhancer"])
    rate[K4ME1] += 4.0 * ed * np.exp(rng.standard_normal(n))[:, None] * _gauss(st["decoy_enhancer"], 3.0 * ones)
    upstream = _domain(-25 * ones, 20 * ones)
    # the product's derivative: d(a*b)/da = b, so each mark's evidence counts as much as the other latent is large
    add("combination", K27, 2.0, upstream, 0.8, comb_a)
    terms[-1] = ("combination", K27, terms[-1][2] * np.abs(comb_b)[:, None])
    add("combination", K9, 2.0, upstream, 0.8, comb_b)
    terms[-1] = ("combination", K9, terms[-1][2] * np.abs(comb_a)[:, None])

    gamma = rng.gamma(DISPERSION, 1.0 / DISPERSION, size=rate.shape)
    X = np.ascontiguousarray(rng.poisson(rate * gamma).astype(np.int32).transpose(1, 2, 0))
    splits = {name: Split(gene_ids=gene_ids[idx], X=X[idx], y=y[idx]) for name, idx in split_idx.items()}
    truth = _truth(split_idx["test"], terms, rate, y, s, a, var)
    positions = {name: {"chrom": chrom[idx], "pos": pos[idx]} for name, idx in split_idx.items()}
    return splits, truth, positions


def _truth(t, terms, rate, y, s, a, var) -> GroundTruth:
    """Fisher information per cell about each term's latent (negative binomial), on the test genes."""
    denom = rate[:, t] + rate[:, t] ** 2 / DISPERSION
    info = {k: np.zeros((len(t), N_MARKS, N_BINS)) for k in ("v", *MECHANISMS)}
    for term, mark, deriv in terms:
        info[term][:, mark] += deriv[t] ** 2 / denom[mark]
    total = sum(var.values())
    weight = {"v": a, **{k: (1 - a) * var[k] / total for k in MECHANISMS}}  # each term's share of s
    overall = sum(weight[k] * info[k] / np.maximum(info[k].sum(axis=(1, 2), keepdims=True), 1e-300) for k in info)

    def norm(x):
        tot = x.sum(axis=(1, 2), keepdims=True)
        return np.where(tot > 0, x / np.where(tot > 0, tot, 1), 0).astype(np.float32)

    maps = {k: norm(info[k]) for k in MECHANISMS}
    return GroundTruth(oracle_auroc=auroc(y[t], s[t]), importance=norm(overall), latent=s[t].astype(np.float32),
                       mechanisms=maps)
