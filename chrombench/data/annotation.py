"""Genes and their TSSs from a GTF annotation, and one cell type's expression values.

The GTF is parsed by ``gtfparse`` (maintained, reads GENCODE/Ensembl GTFs, plain or gzip, and
expands the attribute column; it needs only pandas and pyarrow, which chrombench already has).
The rules, as ``chrombench data build --help`` states them:

- one TSS per gene: the gene's 5' end, ``start`` on the + strand and ``end`` on the - strand
  (GTF coordinates are 1-based, inclusive; chrombench's are 0-based);
- genes come from the GTF's ``gene`` rows; a GTF without them (transcripts or exons only) gets
  one span per ``gene_id`` from its rows' extent;
- a gene on two strands, or with no strand, has no TSS: that is an error naming the gene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError

BIOTYPE_ATTRIBUTES = ("gene_type", "gene_biotype")  # GENCODE, Ensembl
# ASCII only: Python's float() also reads other scripts' digits ('٣') and 'inf'/'nan', which are no expression
DECIMAL_RE = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
VERSION_RE = re.compile(r"\.\d+(_PAR_Y)?\Z")


def strip_version(gene_id: str) -> str:
    """ENSG00000223972.5 -> ENSG00000223972 (expression tables such as Roadmap's carry no version)."""
    return VERSION_RE.sub("", gene_id)


@dataclass(frozen=True)
class Genes:
    """One row per gene: id (version stripped), chromosome, 0-based TSS, strand, biotype."""

    table: pd.DataFrame  # columns gene_id, chrom, tss, strand, biotype
    path: Path
    has_biotype: bool

    def __len__(self) -> int:
        return len(self.table)


def read_genes(path: str | Path) -> Genes:
    import gtfparse

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"--annotation {path}: no such file")
    try:
        df = gtfparse.read_gtf(str(path))
    except Exception as exc:  # gtfparse raises ValueError/ParsingError/polars errors for a bad file
        raise DataFormatError(f"{path}: not a GTF annotation ({type(exc).__name__}: {exc})") from None
    if len(df) == 0 or "gene_id" not in df.columns:
        raise DataFormatError(f"{path}: no rows with a gene_id attribute; is this a GTF (not a GFF3 or BED)?")
    check_coordinates(path, df)
    biotype = next((c for c in BIOTYPE_ATTRIBUTES if c in df.columns), None)
    df = df[df["gene_id"].astype(str) != ""]
    genes = df[df["feature"] == "gene"] if (df["feature"] == "gene").any() else df
    cols = {"seqname": "chrom", "start": "start", "end": "end", "strand": "strand", "gene_id": "raw_id"}
    t = genes[list(cols)].rename(columns=cols).astype({"chrom": str, "raw_id": str})
    strand = genes["strand"].astype(object)
    t["strand"] = strand.where(strand.notna(), ".").astype(str)  # gtfparse reads '.' as missing
    t["biotype"] = genes[biotype].astype(str).to_numpy() if biotype else ""
    grouped = t.groupby("raw_id", sort=False)
    strands = grouped["strand"].agg(lambda s: "".join(sorted(set(s))))
    two = strands[strands.str.len() > 1]
    if len(two):
        raise DataFormatError(f"{path}: gene {two.index[0]!r} lies on two strands ({' and '.join(two.iloc[0])}), "
                              f"so it has no single TSS ({len(two)} such gene(s)); fix or drop it in the annotation")
    chroms = grouped["chrom"].nunique()
    if (chroms > 1).any():
        g = chroms[chroms > 1].index[0]
        raise DataFormatError(f"{path}: gene {g!r} lies on several chromosomes ({', '.join(sorted(set(t.chrom[t.raw_id == g])))})"
                              "; give each copy its own gene_id")
    span = grouped.agg(chrom=("chrom", "first"), start=("start", "min"), end=("end", "max"),
                       strand=("strand", "first"), biotype=("biotype", "first")).reset_index()
    bad = span[~span["strand"].isin(["+", "-"])]
    if len(bad):
        raise DataFormatError(f"{path}: gene {bad.raw_id.iloc[0]!r} has strand {bad.strand.iloc[0]!r}, so it has no "
                              f"TSS (its 5' end needs + or -); {len(bad)} such gene(s)")
    tss = np.where(span["strand"] == "+", span["start"] - 1, span["end"] - 1).astype(np.int64)
    ids = span["raw_id"].map(strip_version)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise DataFormatError(f"{path}: gene id {dup.iloc[0]!r} appears with two versions; ids must be unique once "
                              "the version suffix is dropped")
    table = pd.DataFrame({"gene_id": ids.to_numpy(), "chrom": span["chrom"].to_numpy(), "tss": tss,
                          "strand": span["strand"].to_numpy(), "biotype": span["biotype"].to_numpy()})
    return Genes(table=table, path=path, has_biotype=biotype is not None)


def check_coordinates(path: Path, df: pd.DataFrame) -> None:
    """GTF rows are 1-based and inclusive: 1 <= start <= end. A row that breaks it would put a TSS
    anywhere (a - strand gene's 5' end is its ``end``), so the build refuses it, naming the line."""
    start, end = df["start"].to_numpy(dtype=np.int64), df["end"].to_numpy(dtype=np.int64)
    bad = (start < 1) | (end < start)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    row = df.iloc[i]
    why = "start is below 1 (GTF is 1-based)" if start[i] < 1 else "end is before start"
    raise DataFormatError(f"{path}, line {_line_of(path, str(row['seqname']), start[i], end[i])}: {why} "
                          f"(gene {str(row['gene_id'])!r}, start {start[i]}, end {end[i]}); "
                          f"{int(bad.sum())} such row(s): fix or drop them")


def _line_of(path: Path, chrom: str, start: int, end: int) -> str:
    """The 1-based line of the first GTF row with these coordinates (error path only), or '?'."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", errors="replace") as fh:
        for k, line in enumerate(fh, 1):
            f = line.split("\t")
            if len(f) > 4 and f[0] == chrom and f[3].strip() == str(start) and f[4].strip() == str(end):
                return str(k)
    return "?"


def split_expression_spec(spec: str) -> tuple[Path, str | None]:
    """``table.tsv`` or ``table.tsv:COLUMN`` (a path that exists as given wins over the colon form)."""
    if Path(spec).is_file() or ":" not in spec:
        return Path(spec), None
    path, column = spec.rsplit(":", 1)
    return Path(path), column


def read_expression(spec: str) -> tuple[pd.Series, str, Path]:
    """Expression per gene (index: gene id, version stripped) from a TSV/CSV whose first column is the
    gene id; COLUMN names the cell type's column (e.g. ``57epigenomes.RPKM.pc:E003``)."""
    path, column = split_expression_spec(spec)
    if not path.is_file():
        raise DataFormatError(f"--expression {path}: no such file")
    try:
        df = pd.read_csv(path, sep=None, engine="python", dtype=str, comment=None, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataFormatError(f"{path}: not a table of expression values ({exc})") from None
    if df.shape[1] < 2:
        raise DataFormatError(f"{path}: needs a gene id column and at least one value column (found {df.shape[1]} column)")
    values = list(df.columns[1:])
    if column is None:
        if len(values) > 1:
            raise DataFormatError(f"{path} has {len(values)} value columns ({', '.join(values[:8])}"
                                  f"{', ...' if len(values) > 8 else ''}); name one as --expression {path}:COLUMN")
        column = values[0]
    if column not in values:
        from ..registry import suggest

        raise DataFormatError(f"{path}: " + suggest(column, values, "expression column"))
    raw = df[column]
    text = raw.fillna("").astype(str).str.strip()
    missing = text.isin(["", "NA"]).to_numpy()  # an empty cell or R's NA: no value, the gene is dropped
    plain = text.str.fullmatch(DECIMAL_RE).to_numpy(dtype=bool)
    num = pd.to_numeric(text.where(plain), errors="coerce")
    bad = ~missing & (~plain | ~np.isfinite(num.to_numpy(dtype=float, na_value=np.nan)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a non-finite value" if plain[i] or text.iloc[i].lower().lstrip("+-") in ("nan", "inf", "infinity") \
            else "a value that is not a plain decimal number"
        raise DataFormatError(f"{path}, line {i + 2}: column {column!r} has {what} {raw.iloc[i]!r} "
                              f"(gene {df.iloc[i, 0]!r}); write a finite number, or leave the cell empty (or NA) "
                              "for a gene without a value")
    ids = df.iloc[:, 0].astype(str).map(strip_version)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise DataFormatError(f"{path}: gene {dup.iloc[0]!r} has two rows; one value per gene is needed")
    return pd.Series(num.to_numpy(dtype=float), index=ids.to_numpy(), name=column), column, path
