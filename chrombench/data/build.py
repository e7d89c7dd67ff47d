"""``chrombench data build``: a task from one cell type's tracks, a gene annotation and expression.

The rules (README "Your own cell type" and ``--help`` say the same):

- one TSS per gene (annotation.py); a window of ``window`` bp around it, cut into ``bins`` bins of
  ``window // bins`` bp ordered 5'->3' along the gene's strand: on the + strand the window is
  ``[TSS - window/2, TSS + window/2)``, on the - strand its mirror ``[TSS - window/2 + 1,
  TSS + window/2 + 1)`` read backwards, so bin ``bins/2`` starts at the TSS on both strands;
- a bin's value: tracks.py (bigWig: signal summed over the bin; reads: read starts in the bin);
- genes kept: the biotypes asked for (protein_coding by default), on a chromosome the tracks cover,
  with an expression value, and with the whole window inside the chromosome; the build reports how
  many genes each rule dropped;
- label 1 where the gene's expression is above the median over the kept genes;
- splits: ``random`` (thirds, as the DeepChrome archive) or ``chromosome`` (valid and test are whole
  chromosomes, so no neighbouring gene leaks across splits).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ChrombenchError, DataFormatError
from .arrays import SPLITS, Split

MIN_GENES = 300
# A (mark, chromosome) whose windows are all zero for at least EMPTY_MIN_GENES genes, and for more
# than half of that chromosome's genes, refuses the build: the track lacks that chromosome (a filtered
# file, a subset export), or no track covers it (chrY of a female sample). It is not biology: in the
# 30 real REMC genes of the AttentiveChrome sample (/work/shared/data) no mark's 10 kb window is all
# zero, so the per-gene rate is below 10 % (rule of three, 95 %), and ten such genes by chance have a
# probability below 0.1**10. Fewer all-zero genes are only reported (a sparse track, a small chromosome).
EMPTY_MIN_GENES = 10
# Chromosome split defaults: every third autosome from 1 for test, from 2 for valid, the rest (and X,
# Y) for training. That spreads large and small, gene-rich and gene-poor chromosomes over all three
# and gives roughly the archive's thirds of protein-coding genes (~7,500 / 6,400 / 5,900 in GENCODE).
DEFAULT_TEST_CHROMS = ("1", "4", "7", "10", "13", "16", "19", "22")
DEFAULT_VALID_CHROMS = ("2", "5", "8", "11", "14", "17", "20")
CHROM_STYLES = ("as-is", "add-chr", "strip-chr")


@dataclass(frozen=True)
class BuildSpec:
    name: str
    marks: dict[str, Path]  # mark name -> track file, in the order the arrays keep
    annotation: Path
    expression: str  # path[:COLUMN]
    window: int = 10_000
    bins: int = 100
    split: str = "random"
    valid_chroms: tuple[str, ...] = DEFAULT_VALID_CHROMS
    test_chroms: tuple[str, ...] = DEFAULT_TEST_CHROMS
    biotypes: tuple[str, ...] | None = ("protein_coding",)  # None: every gene
    chrom_sizes: Path | None = None
    annotation_chroms: str = "as-is"
    exclude_chroms: tuple[str, ...] = ()  # dropped on purpose (e.g. chrY of a female sample, chrM)
    seed: int = 0
    version: str = "1"
    min_genes: int = MIN_GENES

    def params(self) -> dict:
        return {"window": self.window, "bins": self.bins, "bin_bp": self.window // self.bins, "split": self.split,
                "valid_chroms": list(self.valid_chroms) if self.split == "chromosome" else None,
                "test_chroms": list(self.test_chroms) if self.split == "chromosome" else None,
                "biotypes": list(self.biotypes) if self.biotypes else "all", "annotation_chroms": self.annotation_chroms,
                "seed": self.seed, "marks": list(self.marks), "min_genes": self.min_genes,
                **({"exclude_chroms": list(self.exclude_chroms)} if self.exclude_chroms else {})}


@dataclass
class BuildResult:
    entry: dict
    dropped: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    annotated: int = 0
    empty: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # mark -> chrom -> [all-zero genes, genes]


def check_spec(spec: BuildSpec) -> None:
    from ..safepath import identifier

    if not spec.marks:
        raise ChrombenchError("name at least one track: --mark H3K4me3=path.bw")
    for mark in spec.marks:
        identifier(mark, "mark name")
    if spec.bins < 1 or spec.window < spec.bins or spec.window % spec.bins or spec.window % 2:
        raise ChrombenchError(f"--window {spec.window} must be even and a multiple of --bins {spec.bins} "
                              f"(bins of equal whole-bp width), e.g. --window 10000 --bins 100")
    if spec.split not in ("random", "chromosome"):
        raise ChrombenchError(f"--split {spec.split!r}: choose random or chromosome")
    if spec.annotation_chroms not in CHROM_STYLES:
        raise ChrombenchError(f"--annotation-chroms {spec.annotation_chroms!r}: choose one of {', '.join(CHROM_STYLES)}")
    if spec.split == "chromosome":
        both = [(v, t) for v in spec.valid_chroms for t in spec.test_chroms if norm(v) == norm(t)]
        if both:
            raise ChrombenchError("a chromosome cannot be in both --valid-chroms and --test-chroms: "
                                  + ", ".join(f"{v} (valid) and {t} (test)" for v, t in both))


def norm(chrom: str) -> str:
    """chr1 and 1 name the same chromosome when matching split lists."""
    return chrom[3:] if chrom.lower().startswith("chr") else chrom


def read_chrom_sizes(path: Path) -> dict[str, int]:
    sizes = {}
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2 or not re.fullmatch(r"[0-9]{1,12}", parts[1]):  # ASCII: isdigit() takes '٣' too
            raise DataFormatError(f"{path}, line {i}: expected 'chrom<TAB>length', got {line!r}")
        if sizes.get(parts[0], int(parts[1])) != int(parts[1]):
            raise DataFormatError(f"{path}, line {i}: {parts[0]} is listed again with another length "
                                  f"({int(parts[1]):,} bp, before {sizes[parts[0]]:,} bp)")
        sizes[parts[0]] = int(parts[1])
    if not sizes:
        raise DataFormatError(f"{path}: no chromosome sizes")
    return sizes


def genome_of(tracks: list, chrom_sizes: Path | None) -> dict[str, int]:
    """One set of chromosome sizes that every bigWig (and --chrom-sizes) agrees on."""
    sizes: dict[str, int] = {}
    owner: dict[str, str] = {}
    sources = [(str(chrom_sizes), read_chrom_sizes(chrom_sizes))] if chrom_sizes else []
    sources += [(str(t.path), t.chrom_sizes()) for t in tracks if t.chrom_sizes() is not None]
    if not sources:
        raise ChrombenchError("every track is a reads file, which declares no chromosome lengths: pass "
                              "--chrom-sizes hg19.chrom.sizes (two columns: chromosome, length)")
    for src, declared in sources:
        for chrom, n in declared.items():
            if chrom in sizes and sizes[chrom] != n:
                raise DataFormatError(f"{src} and {owner[chrom]} come from different genome builds: {chrom} is "
                                      f"{n:,} bp in one and {sizes[chrom]:,} bp in the other")
            sizes.setdefault(chrom, n)
            owner.setdefault(chrom, src)
    return sizes


def restyle(chroms: pd.Series, style: str) -> pd.Series:
    if style == "add-chr":
        return chroms.where(chroms.str.lower().str.startswith("chr"), "chr" + chroms)
    if style == "strip-chr":
        return chroms.map(norm)
    return chroms


def check_naming(genes: pd.DataFrame, sizes: dict[str, int], annotation: Path) -> None:
    """Tracks that say chr1 and an annotation that says 1 (or the reverse) share no chromosome."""
    ann = set(genes["chrom"])
    if ann & set(sizes):
        return
    ex_a, ex_t = sorted(ann)[0], sorted(sizes)[0]
    fix = ""
    if {norm(c) for c in ann} & {norm(c) for c in sizes}:
        fix = (" Pass --annotation-chroms add-chr" if ex_t.lower().startswith("chr") else
               " Pass --annotation-chroms strip-chr") + " to rename the annotation's chromosomes."
    raise DataFormatError(f"{annotation}: no chromosome name matches the tracks' (annotation: {ex_a!r}, ...; "
                          f"tracks: {ex_t!r}, ...).{fix}")


def select_genes(spec: BuildSpec, genes, expression: pd.Series, sizes: dict[str, int]) -> tuple[pd.DataFrame, dict]:
    """Apply the keep rules in order, counting what each one drops."""
    t = genes.table.copy()
    t["chrom"] = restyle(t["chrom"].astype(str), spec.annotation_chroms)
    check_naming(t, sizes, spec.annotation)
    dropped: dict[str, int] = {}

    def rule(label: str, keep: np.ndarray) -> None:
        nonlocal t
        dropped[label] = int((~keep).sum())
        t = t[keep]

    if spec.biotypes:
        if not genes.has_biotype:
            raise DataFormatError(f"{spec.annotation}: no gene_type/gene_biotype attribute to keep "
                                  f"{', '.join(spec.biotypes)} genes by; pass --biotype all to keep every gene")
        rule(f"biotype not {'/'.join(spec.biotypes)}", t["biotype"].isin(spec.biotypes).to_numpy())
    rule("chromosome not in the tracks' genome", t["chrom"].isin(list(sizes)).to_numpy())
    if spec.exclude_chroms:
        rule("chromosome excluded (--exclude-chroms)",
             ~t["chrom"].map(norm).isin([norm(c) for c in spec.exclude_chroms]).to_numpy())
    t = t.assign(expression=expression.reindex(t["gene_id"]).to_numpy())
    rule("no expression value", t["expression"].notna().to_numpy())
    lo, _ = window_starts(t, spec.window)
    ends = t["chrom"].map(sizes).to_numpy()
    rule("window runs off the chromosome", (lo >= 0) & (lo + spec.window <= ends))
    return t.sort_values(["chrom", "tss"], kind="stable").reset_index(drop=True), dropped


def window_starts(genes: pd.DataFrame, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Each gene's window start (0-based) and whether it is read backwards (- strand)."""
    minus = (genes["strand"] == "-").to_numpy()
    tss = genes["tss"].to_numpy(dtype=np.int64)
    return np.where(minus, tss - window // 2 + 1, tss - window // 2), minus


def binned_counts(tracks: list, genes: pd.DataFrame, window: int, bins: int, progress=None) -> np.ndarray:
    """[genes, bins, marks] int32: each track's binned signal, 5'->3' along each gene's strand."""
    starts, minus = window_starts(genes, window)
    X = np.zeros((len(genes), bins, len(tracks)), dtype=np.int32)
    groups = list(genes.groupby("chrom", sort=True).indices.items())
    steps = [(m, chrom, idx) for m in range(len(tracks)) for chrom, idx in groups]
    for m, chrom, idx in (progress(steps) if progress else steps):
        values = tracks[m].binned(chrom, starts[idx], bins, window // bins)
        values[minus[idx]] = values[minus[idx], ::-1]
        if values.size and values.max() > np.iinfo(np.int32).max:
            raise DataFormatError(f"{tracks[m].path}: a bin on {chrom} sums to {values.max():.3g}, beyond the 32-bit "
                                  "counts the store keeps; is this track scaled (e.g. per-million) far up?")
        X[idx, :, m] = np.rint(values).astype(np.int32)
    return X


def check_memory(genes: int, bins: int, marks: int) -> None:
    """Refuse, before allocating, arrays that would not fit this machine's memory (int32 counts, plus
    the float64 sums of one chromosome at a time, bounded by the whole)."""
    need = genes * bins * marks * (4 + 8)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > 0.8 * have:
        raise ChrombenchError(f"{genes:,} genes x {bins:,} bins x {marks} marks need about {need / 2**30:.1f} GiB, more "
                              f"than this machine's {have / 2**30:.1f} GiB allows; use fewer --bins (or a smaller "
                              "--window)")


def empty_windows(X: np.ndarray, genes: pd.DataFrame, marks: list[str]) -> dict[str, dict[str, list[int]]]:
    """Per mark and chromosome: [genes whose whole window is zero for that mark, genes]."""
    zero = X.sum(axis=1) == 0  # [genes, marks]
    out: dict[str, dict[str, list[int]]] = {m: {} for m in marks}
    for chrom, idx in genes.groupby("chrom", sort=True).indices.items():
        for j, m in enumerate(marks):
            out[m][str(chrom)] = [int(zero[idx, j].sum()), len(idx)]
    return out


def check_empty(empty: dict[str, dict[str, list[int]]]) -> None:
    """Refuse a (mark, chromosome) without data by the rule stated at EMPTY_MIN_GENES."""
    holes = [(m, c, z, n) for m, per in empty.items() for c, (z, n) in per.items()
             if z >= EMPTY_MIN_GENES and 2 * z > n]
    if not holes:
        return
    chroms = sorted({c for _m, c, _z, _n in holes})
    nowhere = [c for c in chroms if all(any(h[0] == m and h[1] == c for h in holes) for m in empty)]
    lines = []
    if nowhere:
        lines.append(f"no track has data on {', '.join(nowhere)}")
    lines += [f"{m} is zero on {z} of {n} genes of {c}" for m, c, z, n in holes if c not in nowhere]
    raise DataFormatError("; ".join(lines) + f" (at least {EMPTY_MIN_GENES} genes and over half of a chromosome "
                          "with a whole window of zeros means the track lacks it). Check the tracks cover every "
                          f"chromosome, or drop it with --exclude-chroms {','.join(chroms)}")


def assign_splits(spec: BuildSpec, genes: pd.DataFrame) -> np.ndarray:
    """Each gene's split name."""
    if spec.split == "chromosome":
        chrom = genes["chrom"].map(norm)
        where = np.full(len(genes), "train", dtype=object)
        where[chrom.isin([norm(c) for c in spec.valid_chroms]).to_numpy()] = "valid"
        where[chrom.isin([norm(c) for c in spec.test_chroms]).to_numpy()] = "test"
        return where
    order = np.random.default_rng(spec.seed).permutation(len(genes))
    n = len(genes)
    n_train = math.ceil(n / 3)  # train, then valid, get the remainders: 19,802 -> 6,601 / 6,601 / 6,600
    cut1, cut2 = n_train, n_train + math.ceil((n - n_train) / 2)
    where = np.empty(n, dtype=object)
    where[order[:cut1]], where[order[cut1:cut2]], where[order[cut2:]] = "train", "valid", "test"
    return where


def file_record(role: str, path: Path, mark: str | None = None) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    rec = {"role": role, "path": str(Path(path).resolve()), "bytes": os.path.getsize(path), "sha256": h.hexdigest()}
    return {**({"mark": mark} if mark else {}), **rec}


def build_dataset(spec: BuildSpec, *, overwrite: bool = False, progress=None) -> BuildResult:
    """Build, check and register dataset ``spec.name`` (one task of the same name). Nothing reaches the
    store unless every input is valid and enough genes are left."""
    from .. import __version__
    from .annotation import read_expression, read_genes
    from .catalog import read_registry
    from .importer import save_dataset
    from .layout import validate_name
    from .tracks import open_track

    check_spec(spec)
    validate_name(spec.name)
    if spec.name in read_registry()["datasets"] and not overwrite:
        raise ChrombenchError(f"dataset {spec.name!r} is already in the store; pass --overwrite to replace it")
    for mark, path in spec.marks.items():
        if not Path(path).is_file():
            raise DataFormatError(f"--mark {mark}={path}: no such file")
    track_records = [file_record("track", p, m) for m, p in spec.marks.items()]
    check_distinct(track_records)
    tracks = []
    try:
        for mark, path in spec.marks.items():
            tracks.append(open_track(path, mark))  # one by one, so those opened are closed if one fails
        sizes = genome_of(tracks, spec.chrom_sizes)
        genes = read_genes(spec.annotation)
        expression, column, expr_path = read_expression(spec.expression)
        kept, dropped = select_genes(spec, genes, expression, sizes)
        if len(kept) < spec.min_genes:
            raise ChrombenchError(f"only {len(kept)} genes are left after the rules (of {len(genes)} in "
                                  f"{spec.annotation}; dropped: {describe(dropped)}); at least {spec.min_genes} are "
                                  "needed for a task with three useful splits")
        check_memory(len(kept), spec.bins, len(spec.marks))
        X = binned_counts(tracks, kept, spec.window, spec.bins, progress)
        check_marks_differ(X, list(spec.marks))
        empty = empty_windows(X, kept, list(spec.marks))
        check_empty(empty)
    finally:
        for t in tracks:
            t.close()
    y = (kept["expression"].to_numpy() > np.median(kept["expression"].to_numpy())).astype(np.int8)
    where = assign_splits(spec, kept)
    ids = kept["gene_id"].to_numpy().astype(str)
    marks = tuple(spec.marks)
    splits = {s: Split(ids[where == s], X[where == s], y[where == s], marks) for s in SPLITS}
    for s, sp in splits.items():
        if len(sp) == 0 or sp.y.min() == sp.y.max():
            raise ChrombenchError(f"the {s} split has {len(sp)} genes and {int(sp.y.sum())} expressed ones; each split "
                                  "needs both classes (with --split chromosome, check --valid-chroms/--test-chroms "
                                  f"against the annotation's chromosome names, e.g. {kept['chrom'].iloc[0]!r})")
    inputs = track_records + [file_record("annotation", spec.annotation),
                              {**file_record("expression", expr_path), "column": column}]
    if spec.chrom_sizes:
        inputs.append(file_record("chrom_sizes", spec.chrom_sizes))
    build = {"params": spec.params(), "inputs": inputs, "chrombench_version": __version__,
             "genes": {"annotated": len(genes), "kept": len(kept), "dropped": dropped, "empty_windows": empty},
             "labels": {"median_expression": float(np.median(kept["expression"]))}}
    task_meta = {"window_bp": spec.window, "bin_bp": spec.window // spec.bins, "split": spec.split,
                 "origin": "chrombench data build"}
    entry = save_dataset(spec.name, spec.version, {spec.name: (splits, task_meta)},
                         source=f"build:{spec.annotation.name}+{len(spec.marks)} tracks", overwrite=True,
                         extra={"build": build, "single_task": True})
    return BuildResult(entry=entry, dropped=dropped, kept=len(kept), annotated=len(genes), empty=empty)


def check_marks_differ(X: np.ndarray, marks: list[str]) -> None:
    """Two marks with the same count in every bin of every gene are one track under two names, in two
    encodings (reads.bed and reads.bed.gz, a bigWig and its copy rewritten): the file check cannot see it."""
    for a in range(len(marks)):
        for b in range(a + 1, len(marks)):
            if X[:, :, a].any() and np.array_equal(X[:, :, a], X[:, :, b]):
                raise DataFormatError(f"--mark {marks[a]} and --mark {marks[b]} give the same count in every bin of "
                                      f"all {len(X)} genes: one track under two names? Each mark needs its own track")


def check_distinct(records: list[dict]) -> None:
    """One file (or two identical copies) under two mark names would make two marks one: refuse."""
    seen: dict[str, dict] = {}
    for r in records:
        first = seen.setdefault(r["sha256"], r)
        if first is not r:
            same = "the same file" if first["path"] == r["path"] else f"identical files ({first['path']})"
            raise DataFormatError(f"--mark {r['mark']}={r['path']} and --mark {first['mark']} are {same} "
                                  f"(sha256 {r['sha256'][:12]}); each mark needs its own track")


def empty_summary(empty: dict[str, dict[str, list[int]]]) -> str:
    """'genes with an all-zero window: MARK n (chrA z/n, ...), ...': chromosomes listed where a mark is
    zero on at least a quarter of the genes (each case the user may want to look at)."""
    parts = []
    for mark, per in empty.items():
        total = sum(z for z, _n in per.values())
        notable = [f"{c} {z}/{n}" for c, (z, n) in per.items() if z and 4 * z >= n]
        parts.append(f"{mark} {total}" + (f" ({', '.join(notable)})" if notable else ""))
    return "genes with an all-zero window: " + ", ".join(parts)


def describe(dropped: dict[str, int]) -> str:
    return ", ".join(f"{n} by '{rule}'" for rule, n in dropped.items()) or "none"
