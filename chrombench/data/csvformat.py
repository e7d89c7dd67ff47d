"""Parse and validate the DeepChrome/AttentiveChrome archive CSV format.

Format (no header): 100 consecutive rows per gene, one per 100 bp bin around the TSS, columns
``GeneID, BinID (1..100), H3K27me3, H3K36me3, H3K4me1, H3K4me3, H3K9me3, label``. Counts are
non-negative integers, the label (0/1) is constant within a gene, GeneIDs stay strings.

Parsing is vectorised (pandas' C reader plus numpy checks); validation reports the file and the
1-based line of the first problem, so a user can open the file at that line.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import MARKS, N_BINS, N_MARKS
from ..errors import DataFormatError
from .arrays import Split

N_COLUMNS = 2 + N_MARKS + 1
UNLABELLED = -1  # the label of a gene read from a file without a label column
COLUMN_NAMES = ("GeneID", "BinID", *MARKS, "label")


def _fail(path, line: int | None, msg: str):
    where = f"{path}, line {line}" if line is not None else f"{path}"
    raise DataFormatError(f"{where}: {msg}")


def _q(value) -> str:
    """Quote a cell as the user wrote it (no numpy reprs like np.str_('x')), at most ~200 characters."""
    from ..safepath import quote

    return quote(value.item() if isinstance(value, np.generic) else value)


def _short(cell: str) -> str:
    """A short, printable cell as written; anything else quoted (and cut)."""
    return cell if len(cell) <= 40 and cell.isprintable() else _q(cell)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _raw_line(path, line: int) -> str:
    """Line ``line`` (1-based) of ``path`` as written; only read on the error path."""
    with open(path, newline="") as fh:
        for k, text in enumerate(fh, 1):
            if k == line:
                return text.rstrip("\r\n")
    return ""


def _column_as_written(path, col: int) -> pd.Series:
    """Column ``col`` as the text in the file (only read when it did not parse as integers)."""
    return pd.read_csv(path, header=None, usecols=[col], dtype=str, engine="c", skip_blank_lines=False,
                       keep_default_na=False)[col]


def _integer_column(path, values: pd.Series, col: int, as_written: pd.Series | None = None) -> np.ndarray:
    """Column ``col`` as int64, or a DataFormatError at the first cell that is not a plain non-negative
    integer: ASCII digits only. A ``3.0`` or ``1e3`` means the file was written by something that turned
    read counts into floats, which the archive format never does; ``+5``, a padded `` 5`` or another
    script's digits (Python's ``int`` reads ``'٣'`` as 3) mean a file not written as the archive is.
    ``as_written``: the column's text, given when the file holds a sign or a space somewhere (pandas'
    integer parser skips them), so even a column pandas read as integers is checked as written."""
    name = COLUMN_NAMES[col]
    arr = values.to_numpy()
    if arr.dtype.kind in "iu" and as_written is None:
        out = arr.astype(np.int64, copy=False)
    else:
        text = (as_written if as_written is not None else _column_as_written(path, col)).iloc[: len(values)]
        plain = text.str.fullmatch(r"[0-9]{1,18}").to_numpy(dtype=bool)
        if not plain.all():
            i = _first(~plain)
            cell = text.iloc[i]
            what = f"column {col + 1} ({name})"
            if cell.strip() == "":
                _fail(path, i + 1, f"missing value in {what}")
            if re.fullmatch(r"[0-9]+", cell):
                _fail(path, i + 1, f"{what} is too large: {_q(cell)}")
            num = pd.to_numeric(pd.Series([cell]), errors="coerce").iloc[0]
            if np.isnan(num) and not any(ch.isdigit() for ch in cell):  # '٣' is a digit, just not 0-9
                _fail(path, i + 1, f"{what} is not a number: {_q(cell)}")
            if num < 0:
                _fail(path, i + 1, f"{what} is negative: {_short(cell)}")
            if np.isinf(num):
                _fail(path, i + 1, f"{what} is too large: {_short(cell)}")
            if num != np.floor(num) and not np.isnan(num):
                _fail(path, i + 1, f"{what} must be an integer, found {_q(cell)}")
            _fail(path, i + 1, f"{what} must be an integer written with digits only, found {_q(cell)} (0-9: no "
                               "sign, space, decimal point or other script's digits)")
        out = text.to_numpy(dtype=str).astype(np.int64)
    neg = out < 0
    if neg.any():
        i = _first(neg)
        _fail(path, i + 1, f"column {col + 1} ({name}) is negative: {out[i]}")
    return out


def _has_sign_or_space(path) -> bool:
    """Whether the file holds a byte pandas' integer parser would skip or accept around digits (a sign,
    a space, a tab). Most archive files hold none, so their counts need no second, textual read."""
    data = Path(path).read_bytes()
    return any(b in data for b in (b"+", b"-", b" ", b"\t", b"\x0b", b"\x0c"))


def _fail_if_not_utf8(path) -> None:
    """A clear error naming the line of the first byte that is not UTF-8 (a binary file, or text in
    another encoding such as Latin-1); nothing when the whole file decodes."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(path, data.count(b"\n", 0, exc.start) + 1,
              f"is not UTF-8 text (byte 0x{data[exc.start]:02x}); the archive format is plain ASCII CSV: "
              "convert the file (e.g. iconv -f latin1 -t utf-8) or check it is the right file")


def _first_bad_field_count(path, allowed: tuple[int, ...]) -> tuple[int, int] | None:
    """(line, fields) of the first row whose field count is not allowed or differs from line 1's
    (error path only: pandas judges rows against the first one, so when line 1 is short it blames
    line 2)."""
    expected = None
    with open(path, newline="") as fh:
        for k, row in enumerate(csv.reader(fh), 1):
            if not row:
                continue
            if expected is None and len(row) in allowed:
                expected = len(row)
            if len(row) != expected:
                return k, len(row)
    return None


def read_split(path: str | os.PathLike, *, allow_single_class: bool = False, allow_unlabelled: bool = False) -> Split:
    """Read one split file (train/valid/test.csv) into a validated ``Split``.

    ``allow_unlabelled``: a file of 7 columns (no label) is read too, with every label set to
    ``UNLABELLED`` (genes to predict need no label).
    """
    path = Path(path)
    allowed = (N_COLUMNS, N_COLUMNS - 1) if allow_unlabelled else (N_COLUMNS,)
    expected = f"{N_COLUMNS}: {', '.join(COLUMN_NAMES)}" + (" (or 7, without the label)" if allow_unlabelled else "")
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
        _fail_if_not_utf8(path)
        bad = _first_bad_field_count(path, allowed)
        if bad is None:
            raise DataFormatError(f"{path}: cannot be parsed as CSV ({exc})") from exc
        _fail(path, bad[0], f"found {bad[1]} columns, expected {expected}")
    except pd.errors.EmptyDataError:
        _fail(path, None, "the file is empty (no genes)")
    except UnicodeDecodeError:  # a binary file, or text in another encoding (Latin-1, UTF-16)
        _fail_if_not_utf8(path)
        raise
    if df.shape[1] not in allowed:
        _fail(path, 1, f"found {df.shape[1]} columns, expected {expected}")
    unlabelled = df.shape[1] == N_COLUMNS - 1
    # blank lines at the very end (an editor's extra newline) are not rows; blank lines inside are
    n_rows = len(df)
    while n_rows and df.iloc[n_rows - 1].isna().all():
        n_rows -= 1
    if n_rows < len(df):
        df = df.iloc[:n_rows]
    if n_rows == 0:
        _fail(path, None, "the file is empty (no genes)")
    # pandas pads a short row with empty cells: report it as a column count, not a missing value
    last = df.shape[1] - 1
    short_row = df[last].isna().to_numpy()
    if short_row.any():
        i = _first(short_row)
        n_fields = len(next(csv.reader([_raw_line(path, i + 1)]), []))
        if n_fields == df.shape[1]:
            _fail(path, i + 1, f"missing value in column {last + 1} ({COLUMN_NAMES[last]})")
        _fail(path, i + 1, f"found {n_fields} columns, expected {expected}")
    if unlabelled:
        df[N_COLUMNS - 1] = np.zeros(n_rows, dtype=np.int64)  # checked like labels, replaced below

    ids = df[0].to_numpy(dtype=object)
    # read_csv gives an empty GeneID as NaN, the only value unequal to itself; pd.isna over 660k
    # objects costs several times more than this comparison
    missing_id = ids != ids
    if missing_id.any():
        _fail(path, _first(missing_id) + 1, "missing GeneID")
    written = None
    if _has_sign_or_space(path):  # one textual read of the count columns (the label column too, if any)
        written = pd.read_csv(path, header=None, usecols=range(1, df.shape[1] if not unlabelled else N_COLUMNS - 1),
                              dtype=str, engine="c", skip_blank_lines=False, keep_default_na=False)
    cols = [_integer_column(path, df[c], c, None if written is None or c not in written else written[c])
            for c in range(1, N_COLUMNS)]
    bins, counts, labels = cols[0], cols[1:-1], cols[-1]  # counts: one int64 column per mark

    # Gene structure: runs of identical GeneIDs, each exactly bins 1..100 in order.
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lengths = np.diff(np.r_[starts, n_rows])
    expected_bin = np.arange(n_rows) - np.repeat(starts, lengths) + 1
    off = bins != expected_bin
    if off.any():
        i = _first(off)
        if expected_bin[i] > N_BINS and bins[i] == 1 and expected_bin[i] % N_BINS == 1:
            first_line = int(np.repeat(starts, lengths)[i]) + 1
            _fail(path, i + 1, f"duplicate gene {_q(ids[i])} (first seen at line {first_line})")
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
    if unlabelled:
        y = np.full(n_genes, UNLABELLED, dtype=np.int8)
    elif not allow_single_class and (y.min() == y.max()):
        _fail(path, None, f"all {n_genes} genes have label {y[0]}: a split needs both classes")

    int32_max = np.iinfo(np.int32).max
    if max(c.max(initial=0) for c in counts) > int32_max:
        i = _first(np.any([c > int32_max for c in counts], axis=0))
        _fail(path, i + 1, "count does not fit in 32 bits")
    X = np.empty((n_rows, N_MARKS), dtype=np.int32)  # filled column by column: no int64 stack to copy
    for j, c in enumerate(counts):
        X[:, j] = c
    X = X.reshape(n_genes, N_BINS, N_MARKS)
    split = Split(gene_ids=gene_ids.astype(str), X=X, y=y)
    from . import seal  # an imported task's own test.csv is its test split too

    seal.check_split(split.digest, f"reading {path}")
    return split


def check_disjoint(splits: dict[str, Split], where: dict[str, str]) -> None:
    """A gene in two splits would let a model train on genes it is tested on: refuse, naming both files."""
    seen: dict[str, str] = {}
    for name, sp in splits.items():
        ids = np.asarray(sp.gene_ids).astype(str)
        for other, other_ids in seen.items():
            shared = np.intersect1d(ids, other_ids)
            if shared.size:
                k = int(np.flatnonzero(np.isin(ids, shared[:1]))[0])
                raise DataFormatError(
                    f"{where[name]}, line {k * N_BINS + 1}: gene {_q(ids[k])} is also in {where[other]} "
                    f"({shared.size} gene{'s' if shared.size > 1 else ''} shared between the {other} and {name} "
                    f"splits); a gene must be in one split only")
        seen[name] = ids


def read_unlabelled(path: str | os.PathLike) -> Split:
    """Read genes to predict: labels may be all one class, or absent (7 columns; then every label is
    ``UNLABELLED``)."""
    return read_split(path, allow_single_class=True, allow_unlabelled=True)


def write_split(path: str | os.PathLike, split: Split) -> None:
    """Write ``split`` in the archive format, atomically (tmp file + rename)."""
    path = Path(path)
    if split.shape != (N_BINS, N_MARKS) or tuple(split.marks) != tuple(MARKS):
        raise DataFormatError(f"{path}: the archive format holds {N_BINS} bins x {', '.join(MARKS)}, not "
                              f"{split.shape[0]} bins x {', '.join(split.marks)}")
    n = len(split)
    ids = np.repeat(np.asarray(split.gene_ids, dtype=object), N_BINS)
    bins = np.tile(np.arange(1, N_BINS + 1), n)
    counts = np.asarray(split.X).reshape(n * N_BINS, N_MARKS)
    labels = np.repeat(np.asarray(split.y), N_BINS)
    df = pd.DataFrame({"g": ids, "b": bins, **{m: counts[:, j] for j, m in enumerate(MARKS)}, "y": labels})
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        df.to_csv(tmp, header=False, index=False)
        os.replace(tmp, path)
    except BaseException:  # a full disk or Ctrl-C: no half-written temporary file is left behind
        tmp.unlink(missing_ok=True)
        raise
