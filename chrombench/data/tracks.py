"""Histone-mark tracks as binned signal around TSSs: bigWig files and aligned-read BED/tagAlign files.

Both kinds answer one question, ``binned(chrom, starts, bins, width)``: the signal summed over
``bins`` consecutive bins of ``width`` bp from each start, in genome order (the caller reverses
minus-strand genes). The rules, as ``chrombench data build --help`` states them:

- bigWig: a bin's value is the signal summed over its bases (value x bp covered, the area under
  the track), read exactly from the base-level data (never the zoom levels), rounded to an
  integer; bases without data count 0. The file is read one window at a time, never loaded whole.
  The file stores float32 values; they are summed in float64, which holds every partial sum of a
  bin exactly (a float32 has 24 significant bits, a float64 53), so the sum is the exact area. The
  tie rule: an area exactly halfway between two integers goes to the even one (IEEE
  round-half-to-even, ``numpy.rint``): 2.5 -> 2, 3.5 -> 4.
- BED / tagAlign (reads): a read counts in the bin that holds its start (column 2, 0-based), so
  values are integer read counts as in the DeepChrome archive. Coordinates are plain ASCII digits.
- bedGraph (a signal, not reads) is refused with the conversion to bigWig, also when named ``.bed``:
  counting its intervals as reads would turn a coverage track into nonsense without a word.

A bigWig's header summary (min, max, sum of its values) is read here, in Python, before pyBigWig
touches the file: pyBigWig's own ``header()`` crashes the process (segmentation fault) on a file
holding NaN, an infinity or a value near the float32 limit.
"""

from __future__ import annotations

import abc
import gzip
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataFormatError

BIGWIG_MAGIC = (0x888FFC26).to_bytes(4, "little")
READS_SUFFIXES = (".bed", ".bed.gz", ".tagalign", ".tagalign.gz", ".tagAlign", ".tagAlign.gz")
SIGNAL_SUFFIXES = {".bedgraph": "bedGraphToBigWig", ".bdg": "bedGraphToBigWig", ".bg": "bedGraphToBigWig",
                   ".wig": "wigToBigWig"}
# a bin's value must fit the int32 counts the store keeps, so no base can carry more than that
MAX_BASE_VALUE = float(np.iinfo(np.int32).max)
BEDGRAPH_HINT = ("convert it to a bigWig with UCSC's `bedGraphToBigWig IN.bedGraph CHROM.SIZES OUT.bw` and pass "
                 "the .bw (a bedGraph holds a signal per interval, not reads)")
INTEGER_RE = r"[0-9]{1,12}"  # ASCII digits only: no sign, padding, decimal point or other scripts' digits


def kind_of(path: Path) -> str:
    """'bigwig' or 'reads', from the file's first bytes (a bigWig has a magic number) and its name."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == BIGWIG_MAGIC or head == BIGWIG_MAGIC[::-1]:
        return "bigwig"
    name = path.name.lower()
    for suffix, tool in SIGNAL_SUFFIXES.items():
        if name.endswith((suffix, suffix + ".gz")):
            raise DataFormatError(f"{path}: a {suffix[1:]} signal file; convert it to a bigWig with UCSC's `{tool}` "
                                  "and pass the .bw")
    if name.endswith((".bw", ".bigwig")):
        raise DataFormatError(f"{path}: named like a bigWig but it is not one (no bigWig magic number in its "
                              f"first bytes: {head!r})")
    if name.endswith(tuple(s.lower() for s in READS_SUFFIXES)):
        return "reads"
    raise DataFormatError(f"{path}: neither a bigWig (.bw/.bigWig) nor reads (.bed/.tagAlign, optionally .gz)")


def open_track(path: str | Path, mark: str) -> "Track":
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"--mark {mark}={path}: no such file")
    return BigWigTrack(path, mark) if kind_of(path) == "bigwig" else ReadsTrack(path, mark)


@dataclass
class Track(abc.ABC):
    path: Path
    mark: str

    def chrom_sizes(self) -> dict[str, int] | None:
        """Chromosome lengths the file declares (bigWig), or None (reads files declare none)."""
        return None

    @abc.abstractmethod
    def binned(self, chrom: str, starts: np.ndarray, bins: int, width: int) -> np.ndarray:
        """``[len(starts), bins]``: the signal summed per bin of ``width`` bp from each start."""

    def close(self) -> None:
        pass


@dataclass
class BigWigTrack(Track):
    _bw: object = field(default=None, repr=False)

    def __post_init__(self):
        import pyBigWig

        covered, lo, hi, total = bigwig_summary(self.path)  # before the C library reads anything
        try:
            self._bw = pyBigWig.open(str(self.path))
        except RuntimeError as exc:
            raise DataFormatError(f"{self.path}: not a readable bigWig ({str(exc).splitlines()[0]})") from None
        if self._bw is None or not self._bw.isBigWig():
            raise DataFormatError(f"{self.path}: not a bigWig (a bigBed or another format)")
        if not self._bw.chroms() or covered == 0:
            raise DataFormatError(f"{self.path}: the {self.mark} track is empty (no bases carry a value)")
        # a NaN leaves min and max alone but makes the sum NaN; a huge value makes the sum overflow
        if not (math.isfinite(lo) and math.isfinite(hi)) or (not math.isfinite(total) and hi <= MAX_BASE_VALUE):
            raise DataFormatError(f"{self.path}: the {self.mark} track holds NaN or infinite values (its summary: "
                                  f"min {lo}, max {hi}, sum {total}); they are no signal: fix the tool that wrote it")
        if hi > MAX_BASE_VALUE:
            raise DataFormatError(f"{self.path}: the {self.mark} track holds a value of {hi:.3g} per base, beyond "
                                  f"the {MAX_BASE_VALUE:.0f} a 32-bit count can hold; is it scaled far up?")
        if lo < 0:
            raise DataFormatError(f"{self.path}: the {self.mark} track has negative values (min "
                                  f"{lo:g}); chrombench expects counts or a non-negative signal "
                                  "(use fold-enrichment or coverage, not log-ratios)")

    def chrom_sizes(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._bw.chroms().items()}

    def binned(self, chrom: str, starts: np.ndarray, bins: int, width: int) -> np.ndarray:
        out = np.zeros((len(starts), bins), dtype=np.float64)
        if chrom not in self._bw.chroms():
            return out  # a chromosome the track has no data on: zero signal, as bedtools would count
        for i, s in enumerate(starts):
            # base-level values (NaN where the track has no data), summed per bin: exact, and ~100x
            # faster than pyBigWig's stats(nBins=...), which queries the file once per bin
            vals = self._bw.values(chrom, int(s), int(s) + bins * width, numpy=True).astype(np.float64)
            out[i] = np.nansum(vals.reshape(bins, width), axis=1)
        if not np.isfinite(out).all():  # a summary that hid an infinity: never let it reach the arrays
            raise DataFormatError(f"{self.path}: the {self.mark} track holds non-finite values on {chrom}")
        return out

    def close(self) -> None:
        if self._bw is not None:
            self._bw.close()
            self._bw = None


def bigwig_summary(path: Path) -> tuple[int, float, float, float]:
    """(bases covered, min, max, sum) from the bigWig's total summary, read with ``struct`` (see the
    module docstring for why not pyBigWig's header()). Layout (UCSC BBI): the header's
    ``totalSummaryOffset`` (uint64 at byte 44) points at bases covered (uint64) then min, max, sum and
    sum of squares (float64)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        order = "<" if head[:4] == BIGWIG_MAGIC else ">"
        if len(head) < 52:
            raise DataFormatError(f"{path}: the bigWig header is cut short ({len(head)} bytes)")
        (offset,) = struct.unpack(order + "Q", head[44:52])
        if offset == 0:
            raise DataFormatError(f"{path}: the bigWig has no summary of its values (written by an old or broken "
                                  "tool); rewrite it with bedGraphToBigWig or wigToBigWig")
        fh.seek(offset)
        block = fh.read(40)
    if len(block) < 40:
        raise DataFormatError(f"{path}: the bigWig is cut short (its summary at byte {offset} is missing)")
    covered, lo, hi, total, _squares = struct.unpack(order + "Qdddd", block)
    return covered, lo, hi, total


@dataclass
class ReadsTrack(Track):
    _starts: dict = field(default=None, repr=False)

    def __post_init__(self):
        self._starts = read_starts(self.path)
        if not self._starts:
            raise DataFormatError(f"{self.path}: the {self.mark} track is empty (no reads)")

    def binned(self, chrom: str, starts: np.ndarray, bins: int, width: int) -> np.ndarray:
        reads = self._starts.get(chrom)
        if reads is None:
            return np.zeros((len(starts), bins), dtype=np.float64)
        edges = np.asarray(starts, dtype=np.int64)[:, None] + width * np.arange(bins + 1, dtype=np.int64)[None, :]
        # reads are sorted: the number of read starts below each edge, differenced, is the count per bin
        return np.diff(np.searchsorted(reads, edges, side="left"), axis=1).astype(np.float64)


def _looks_like_bedgraph(header_lines: list[str], first_rows: list[list[str]]) -> bool:
    """A UCSC ``track type=bedGraph`` line, or rows of exactly four fields whose fourth is a number
    (reads files carry a name or sequence there, and a strand after it)."""
    if any(re.search(r"\btype=bedGraph\b", line, re.IGNORECASE) for line in header_lines):
        return True
    if not first_rows or any(len(r) != 4 for r in first_rows):
        return False
    try:
        [float(r[3]) for r in first_rows]
    except ValueError:
        return False
    return True


def read_starts(path: Path) -> dict[str, np.ndarray]:
    """Sorted read start positions per chromosome from a BED/tagAlign file (plain or gzip)."""
    import pandas as pd

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    chunks: dict[str, list[np.ndarray]] = {}
    try:
        with opener(path, "rt") as fh:
            header = 0  # UCSC track/browser lines and comments before the first read
            header_lines, first_rows = [], []
            for line in fh:
                if not line.startswith(("track", "browser", "#")) and line.strip():
                    first_rows.append(line.rstrip("\r\n").split("\t"))
                    if len(first_rows) == 100:
                        break
                elif not first_rows:
                    header += 1
                    header_lines.append(line)
        if first_rows and first_rows[0][0].startswith(("fixedStep", "variableStep")):
            raise DataFormatError(f"{path}: this is a wiggle (.wig) signal, not reads; convert it to a bigWig with "
                                  "UCSC's `wigToBigWig IN.wig CHROM.SIZES OUT.bw` and pass the .bw")
        if _looks_like_bedgraph(header_lines, first_rows):
            raise DataFormatError(f"{path}: this is a bedGraph, not reads; {BEDGRAPH_HINT}")
        line_no = header
        with opener(path, "rt") as fh:
            reader = pd.read_csv(fh, sep="\t", header=None, usecols=[0, 1, 2], dtype=str, skiprows=header,
                                 chunksize=2_000_000, on_bad_lines="error", skip_blank_lines=True,
                                 keep_default_na=False)
            for chunk in reader:
                start_text, end_text = chunk[1], chunk[2]
                plain = start_text.str.fullmatch(INTEGER_RE) & end_text.str.fullmatch(INTEGER_RE)
                start = pd.to_numeric(start_text.where(plain), errors="coerce")
                end = pd.to_numeric(end_text.where(plain), errors="coerce")
                bad = ~plain.to_numpy(dtype=bool) | (end < start).to_numpy()
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    raise DataFormatError(f"{path}, line {line_no + row + 1}: a read needs start <= end written as "
                                          f"plain digits (got {chunk.iloc[row, 1]!r}, {chunk.iloc[row, 2]!r})")
                line_no += len(chunk)
                for chrom, pos in start.astype(np.int64).groupby(chunk[0]):
                    chunks.setdefault(str(chrom), []).append(pos.to_numpy())
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise DataFormatError(f"{path}: not a text BED/tagAlign file ({exc})") from None
    except pd.errors.EmptyDataError:
        return {}
    except (pd.errors.ParserError, ValueError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(f"{path}: not a BED/tagAlign file: {exc}") from None
    return {c: np.sort(np.concatenate(v)) for c, v in chunks.items()}
