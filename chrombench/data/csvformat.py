"""Parse and validate the DeepChrome/AttentiveChrome archive CSV format.

Format (no header): 100 consecutive rows per gene, one per 100 bp bin around the TSS, columns
``GeneID, BinID (1..100), H3K27me3, H3K36me3, H3K4me1, H3K4me3, H3K9me3, label``. Counts are
non-negative integers, the label (0/1) is constant within a gene, GeneIDs stay strings.

Parsing is vectorised (pandas' C reader plus numpy checks); validation reports the file and the
1-based line of the first problem, so a user can open the file at that line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import MARKS, N_BINS, N_MARKS
from ..errors import DataFormatError
from .arrays import Split

N_COLUMNS = 2 + N_MARKS + 1
COLUMN_NAMES = ("GeneID", "BinID", *MARKS, "label")


def _fail(path, line: int | None, msg: str):
    where = f"{path}, line {line}" if line is not None else f"{path}"
    raise DataFormatError(f"{where}: {msg}")


def _q(value) -> str:
    """Quote a cell as the user wrote it (no numpy reprs like np.str_('x'))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _integer_column(path, values: pd.Series, col: int) -> np.ndarray:
    """Column ``col`` as int64, or a DataFormatError at the first missing/non-integer/negative cell."""
    name = COLUMN_NAMES[col]
    arr = values.to_numpy()
    if arr.dtype.kind in "iu":
        out = arr.astype(np.int64, copy=False)
    else:
        num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(num)
        if bad.any():
            i = _first(bad)
            raw = arr[i]
            if raw is None or (isinstance(raw, float) and np.isnan(raw)):
                _fail(path, i + 1, f"missing value in column {col + 1} ({name})")
            _fail(path, i + 1, f"column {col + 1} ({name}) is not a number: {_q(raw)}")
        frac = num != np.floor(num)
        if frac.any():
            i = _first(frac)
            _fail(path, i + 1, f"column {col + 1} ({name}) must be an integer, found {_q(arr[i])}")
        out = num.astype(np.int64)
    neg = out < 0
    if neg.any():
        i = _first(neg)
        _fail(path, i + 1, f"column {col + 1} ({name}) is negative: {out[i]}")
    return out


def read_split(path: str | os.PathLike, *, allow_single_class: bool = False) -> Split:
    """Read one split file (train/valid/test.csv) into a validated ``Split``."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    if path.stat().st_size == 0:
        _fail(path, None, "the file is empty (no genes)")
    try:
        # GeneIDs as plain Python strings (object): a pandas "str" column would first build them
        # and then copy all 660k into an Arrow array, a fifth of the whole parse, only for us to
        # convert them back to compare neighbours. Leading zeros are kept either way.
        df = pd.read_csv(path, header=None, dtype={0: object}, engine="c", skip_blank_lines=False,
                         keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        # pandas says e.g. "Expected 8 fields in line 7, saw 9"
        raise DataFormatError(f"{path}: wrong number of columns ({exc}); expected {N_COLUMNS}: "
                              f"{', '.join(COLUMN_NAMES)}") from exc
    except pd.errors.EmptyDataError:
        _fail(path, None, "the file is empty (no genes)")
    if df.shape[1] != N_COLUMNS:
        _fail(path, 1, f"found {df.shape[1]} columns, expected {N_COLUMNS}: {', '.join(COLUMN_NAMES)}")
    n_rows = len(df)
    # pandas pads a short row with empty cells: report it as a column count, not a missing value
    short_row = df[N_COLUMNS - 1].isna().to_numpy()
    if short_row.any():
        i = _first(short_row)
        n_fields = int(df.iloc[i].notna().sum())
        if n_fields < N_COLUMNS - 1 or df.iloc[i, :-1].notna().all():
            _fail(path, i + 1, f"found {n_fields} columns, expected {N_COLUMNS}: {', '.join(COLUMN_NAMES)}")

    ids = df[0].to_numpy(dtype=object)
    # read_csv gives an empty GeneID as NaN, the only value unequal to itself; pd.isna over 660k
    # objects costs several times more than this comparison
    missing_id = ids != ids
    if missing_id.any():
        _fail(path, _first(missing_id) + 1, "missing GeneID")
    cols = [_integer_column(path, df[c], c) for c in range(1, N_COLUMNS)]
    bins, counts, labels = cols[0], cols[1:-1], cols[-1]  # counts: one int64 column per mark

    # Gene structure: runs of identical GeneIDs, each exactly bins 1..100 in order.
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lengths = np.diff(np.r_[starts, n_rows])
    expected_bin = np.arange(n_rows) - np.repeat(starts, lengths) + 1
    off = bins != expected_bin
    if off.any():
        i = _first(off)
        if expected_bin[i] > N_BINS:
            _fail(path, i + 1, f"gene {_q(ids[i])} has more than {N_BINS} bins")
        if bins[i] == 1 and expected_bin[i] > 1:
            _fail(path, i + 1, f"gene {_q(ids[i - 1])} has {expected_bin[i] - 1} bins, expected {N_BINS}")
        _fail(path, i + 1, f"gene {_q(ids[i])}: bins out of order, expected BinID {expected_bin[i]}, found {bins[i]}")
    short = lengths != N_BINS
    if short.any():
        g = _first(short)
        _fail(path, int(starts[g] + lengths[g]), f"gene {_q(ids[starts[g]])} has {lengths[g]} bins, expected {N_BINS}")
    n_genes = len(starts)
    gene_ids = ids[starts]
    uniq, first_idx, counts_per_id = np.unique(gene_ids.astype(str), return_index=True, return_counts=True)
    if (counts_per_id > 1).any():
        dup = uniq[counts_per_id > 1][0]
        where = np.flatnonzero(gene_ids.astype(str) == dup)
        _fail(path, int(where[1] * N_BINS + 1),
              f"duplicate gene {_q(dup)} (first seen at line {where[0] * N_BINS + 1})")

    bad_label = (labels != 0) & (labels != 1)
    if bad_label.any():
        i = _first(bad_label)
        _fail(path, i + 1, f"label must be 0 or 1, found {labels[i]}")
    lab = labels.reshape(n_genes, N_BINS)
    changes = lab != lab[:, :1]
    if changes.any():
        i = _first(changes.ravel())
        _fail(path, i + 1, f"gene {_q(ids[i])}: label changes within the gene ({lab.ravel()[i - i % N_BINS]} -> {labels[i]})")
    y = lab[:, 0].astype(np.int8)
    if not allow_single_class and (y.min() == y.max()):
        _fail(path, None, f"all {n_genes} genes have label {y[0]}: a split needs both classes")

    int32_max = np.iinfo(np.int32).max
    if max(c.max(initial=0) for c in counts) > int32_max:
        i = _first(np.any([c > int32_max for c in counts], axis=0))
        _fail(path, i + 1, "count does not fit in 32 bits")
    X = np.empty((n_rows, N_MARKS), dtype=np.int32)  # filled column by column: no int64 stack to copy
    for j, c in enumerate(counts):
        X[:, j] = c
    X = X.reshape(n_genes, N_BINS, N_MARKS)
    return Split(gene_ids=gene_ids.astype(str), X=X, y=y)


def read_unlabelled(path: str | os.PathLike) -> Split:
    """Read a split whose labels may be all one class (e.g. genes to predict)."""
    return read_split(path, allow_single_class=True)


def write_split(path: str | os.PathLike, split: Split) -> None:
    """Write ``split`` in the archive format, atomically (tmp file + rename)."""
    path = Path(path)
    n = len(split)
    ids = np.repeat(np.asarray(split.gene_ids, dtype=object), N_BINS)
    bins = np.tile(np.arange(1, N_BINS + 1), n)
    counts = np.asarray(split.X).reshape(n * N_BINS, N_MARKS)
    labels = np.repeat(np.asarray(split.y), N_BINS)
    df = pd.DataFrame({"g": ids, "b": bins, **{m: counts[:, j] for j, m in enumerate(MARKS)}, "y": labels})
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, header=False, index=False)
    os.replace(tmp, path)
