"""Histone-mark tracks as binned signal around TSSs: bigWig files and aligned-read BED/tagAlign files.

Both kinds answer one question, ``binned(chrom, starts, bins, width)``: the signal summed over
``bins`` consecutive bins of ``width`` bp from each start, in genome order (the caller reverses
minus-strand genes). The rules, as ``chrombench data build --help`` states them:

- bigWig: a bin's value is the signal summed over its bases (value x bp covered, the area under
  the track), read exactly from the base-level data (never the zoom levels), rounded to an
  integer; bases without data count 0. The file is read one window at a time, never loaded whole.
- BED / tagAlign (reads): a read counts in the bin that holds its start (column 2, 0-based), so
  values are integer read counts as in the DeepChrome archive.
"""

from __future__ import annotations

import abc
import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataFormatError

BIGWIG_MAGIC = (0x888FFC26).to_bytes(4, "little")
READS_SUFFIXES = (".bed", ".bed.gz", ".tagalign", ".tagalign.gz", ".tagAlign", ".tagAlign.gz")


def kind_of(path: Path) -> str:
    """'bigwig' or 'reads', from the file's first bytes (a bigWig has a magic number) and its name."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == BIGWIG_MAGIC or head == BIGWIG_MAGIC[::-1]:
        return "bigwig"
    name = path.name.lower()
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

        try:
            self._bw = pyBigWig.open(str(self.path))
        except RuntimeError as exc:
            raise DataFormatError(f"{self.path}: not a readable bigWig ({str(exc).splitlines()[0]})") from None
        if self._bw is None or not self._bw.isBigWig():
            raise DataFormatError(f"{self.path}: not a bigWig (a bigBed or another format)")
        header = self._bw.header()
        if not self._bw.chroms() or header.get("nBasesCovered", 0) == 0:
            raise DataFormatError(f"{self.path}: the {self.mark} track is empty (no bases carry a value)")
        if header.get("minVal", 0) < 0:
            raise DataFormatError(f"{self.path}: the {self.mark} track has negative values (min "
                                  f"{header['minVal']}); chrombench expects counts or a non-negative signal "
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
            vals = self._bw.values(chrom, int(s), int(s) + bins * width, numpy=True)
            out[i] = np.nansum(vals.reshape(bins, width), axis=1)
        return out

    def close(self) -> None:
        if self._bw is not None:
            self._bw.close()
            self._bw = None


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


def read_starts(path: Path) -> dict[str, np.ndarray]:
    """Sorted read start positions per chromosome from a BED/tagAlign file (plain or gzip)."""
    import pandas as pd

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    chunks: dict[str, list[np.ndarray]] = {}
    try:
        with opener(path, "rt") as fh:
            header = 0  # UCSC track/browser lines and comments before the first read
            for line in fh:
                if not line.startswith(("track", "browser", "#")) and line.strip():
                    break
                header += 1
        line_no = header
        with opener(path, "rt") as fh:
            reader = pd.read_csv(fh, sep="\t", header=None, usecols=[0, 1, 2], dtype={0: str}, skiprows=header,
                                 chunksize=2_000_000, on_bad_lines="error", skip_blank_lines=True)
            for chunk in reader:
                start = pd.to_numeric(chunk[1], errors="coerce")
                end = pd.to_numeric(chunk[2], errors="coerce")
                bad = start.isna() | end.isna() | (start < 0) | (end < start)
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataFormatError(f"{path}, line {line_no + row + 1}: a read needs integer start <= end "
                                          f"(got {chunk.iloc[row, 1]!r}, {chunk.iloc[row, 2]!r})")
                line_no += len(chunk)
                for chrom, pos in start.astype(np.int64).groupby(chunk[0]):
                    chunks.setdefault(str(chrom), []).append(pos.to_numpy())
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise DataFormatError(f"{path}: not a text BED/tagAlign file ({exc})") from None
    except pd.errors.EmptyDataError:
        return {}
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a BED/tagAlign file: {exc}") from None
    return {c: np.sort(np.concatenate(v)) for c, v in chunks.items()}
