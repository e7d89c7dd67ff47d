"""A lab's own inputs to `chrombench data build` are never silently wrong (issue 31).

Each kind of careless or hostile input is refused naming the file, line or value, and the store is
left as it was: float32 rounding, a bedGraph passed as reads, a chromosome without data, one file
under two marks, malformed GTF rows, non-finite or oddly written numbers, NaN/huge bigWig values
(which crashed pyBigWig's C code). The inputs are small files written here (pyBigWig writes bigWigs).
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from chrombench.data import catalog, load
from chrombench.data.annotation import read_expression, read_genes
from chrombench.data.csvformat import read_split
from chrombench.data.build import EMPTY_MIN_GENES, build_dataset, check_memory, read_chrom_sizes
from chrombench.errors import ChrombenchError, DataFormatError
from test_data_build import GENES, N_FILLER, SIZES, gene_rows, inputs, run_build, spec, write_bw, write_gtf  # noqa: F401

ODD_NUMBERS = ["+5", " 5", "5 ", "\u0663", "\uff15", "-0", "5.0", "0x5", "1_0", "\u00a05", "5e0"]


def filler_entries(chroms=("chr3", "chr4")):
    return {c: [(10_000 + 2_000 * i - 100, 10_000 + 2_000 * i + 100, 1.0 + (i % 5)) for i in range(N_FILLER)]
            for c in chroms}


# -- sums ---------------------------------------------------------------------------------------------------

def test_bigwig_bins_are_the_exact_sums_and_ties_go_to_even(inputs, tmp_path):
    """Values near 3e5 per base make bin sums near 2**24, where float32 loses the units digit."""
    values = (np.random.default_rng(0).random(1000) * 3e5).astype(np.float32)
    values[0:5] = 0.5  # with 95 zeros, bin 0 sums to exactly 2.5 -> 2 (round half to even)
    values[5:100] = 0.0
    values[100:107] = 0.5  # 3.5 -> 4
    values[107:200] = 0.0
    bw = pyBigWig.open(str(tmp_path / "exact.bw"), "w")
    bw.addHeader(list(SIZES.items()), maxZooms=0)
    bw.addEntries("chr1", 1500, values=[float(v) for v in values], span=1, step=1)  # GPLUS: [1500, 2500)
    for chrom, rows in filler_entries().items():
        bw.addEntries([chrom] * len(rows), [r[0] for r in rows], ends=[r[1] for r in rows], values=[r[2] for r in rows])
    bw.close()
    build_dataset(spec(inputs, marks={"H3K27ac": tmp_path / "exact.bw", "H3K4me3": inputs["bed"]}))
    got = gene_rows(load.load_task("mine"), "GPLUS")[:, 0]
    exact = [np.rint(math.fsum(map(float, values[b * 100:(b + 1) * 100]))) for b in range(10)]
    np.testing.assert_array_equal(got, exact)
    assert got[0] == 2 and got[1] == 4
    float32 = np.rint(np.nansum(values.reshape(10, 100), axis=1))  # what summing in float32 gives
    assert (float32 != np.array(exact)).any()  # so this test tells the two apart


# -- bedGraph -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,header", [("signal.bed", ""), ("signal.bed", 'track type=bedGraph name="x"\n'),
                                         ("signal.bed.gz", ""), ("signal.bedGraph", ""), ("signal.bdg.gz", "")])
def test_a_bedgraph_is_refused_with_the_conversion_hint(inputs, tmp_path, snapshot_home, name, header):
    text = header + "".join(f"chr{c}\t{s}\t{s + 50}\t{1.5 + s % 7}\n" for c in (1, 3, 4) for s in range(0, 90_000, 50))
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    before = snapshot_home()
    with pytest.raises(DataFormatError, match="bedGraphToBigWig") as err:
        build_dataset(spec(inputs, marks={"H3K27ac": inputs["bw"], "H3K4me3": path}))
    assert str(path) in str(err.value) and snapshot_home() == before


def test_a_reads_file_with_a_numeric_fourth_column_and_a_strand_is_still_reads(inputs, tmp_path):
    reads = tmp_path / "reads.bed"  # BED6 whose name column is a number: reads, not a bedGraph
    reads.write_text(inputs["bed"].read_text().replace("\tN\t", "\t7\t"))
    build_dataset(spec(inputs, marks={"H3K27ac": inputs["bw"], "H3K4me3": reads}))
    np.testing.assert_array_equal(gene_rows(load.load_task("mine"), "GPLUS")[:, 1], [2, 1, 0, 0, 0, 0, 0, 0, 0, 1])


# -- chromosomes without data ---------------------------------------------------------------------------------

def _bw_without(tmp_path, chrom: str) -> Path:
    entries = {"chr1": [(1500, 1550, 2.0)], "chr2": [(100, 200, 0.5)], **filler_entries()}
    entries.pop(chrom)
    return write_bw(tmp_path / f"no-{chrom}.bw", entries)


def _bed_without(tmp_path, inputs, chrom: str) -> Path:
    path = tmp_path / f"no-{chrom}.bed"
    path.write_text("".join(line + "\n" for line in inputs["bed"].read_text().splitlines()
                            if not line.startswith(chrom + "\t")))
    return path


def test_a_mark_missing_a_chromosome_the_others_have_refuses_the_build(inputs, tmp_path, snapshot_home):
    before = snapshot_home()
    with pytest.raises(DataFormatError) as err:
        build_dataset(spec(inputs, marks={"H3K27ac": _bw_without(tmp_path, "chr4"), "H3K4me3": inputs["bed"]}))
    msg = str(err.value)
    assert f"H3K27ac is zero on {N_FILLER // 2} of {N_FILLER // 2} genes of chr4" in msg and "--exclude-chroms chr4" in msg
    assert "H3K4me3" not in msg and snapshot_home() == before


def test_a_chromosome_no_track_covers_refuses_the_build_and_can_be_excluded(inputs, tmp_path):
    marks = {"H3K27ac": _bw_without(tmp_path, "chr3"), "H3K4me3": _bed_without(tmp_path, inputs, "chr3")}
    with pytest.raises(DataFormatError, match="no track has data on chr3"):
        build_dataset(spec(inputs, marks=marks))
    res = build_dataset(spec(inputs, marks=marks, exclude_chroms=("3",)))  # 'chr' prefix optional
    assert res.dropped["chromosome excluded (--exclude-chroms)"] == N_FILLER // 2
    assert "chr3" not in res.empty["H3K27ac"]
    recorded = catalog.read_registry()["datasets"]["mine"]["build"]
    assert recorded["params"]["exclude_chroms"] == ["3"] and recorded["genes"]["empty_windows"] == res.empty


def test_all_zero_genes_are_counted_per_mark_and_chromosome_below_the_threshold(inputs, tmp_path):
    """Fewer than EMPTY_MIN_GENES all-zero genes on a chromosome are reported, not refused."""
    res = build_dataset(spec(inputs))
    # chr2 keeps one gene (GEDGEMINUS), with signal in both tracks; both tracks cover every filler gene
    assert res.empty["H3K27ac"]["chr2"] == [0, 1] and res.empty["H3K4me3"]["chr3"][1] == N_FILLER // 2
    assert all(z < EMPTY_MIN_GENES for per in res.empty.values() for z, _n in per.values())
    out = run_build(inputs, "--overwrite").output
    assert "genes with an all-zero window: H3K27ac 0" in out


# -- one file under two marks --------------------------------------------------------------------------------

@pytest.mark.parametrize("copy", [False, True])
def test_one_file_under_two_mark_names_is_refused(inputs, tmp_path, snapshot_home, copy):
    other = inputs["bw"]
    if copy:
        other = tmp_path / "renamed.bw"
        shutil.copyfile(inputs["bw"], other)
    before = snapshot_home()
    with pytest.raises(DataFormatError) as err:
        build_dataset(spec(inputs, marks={"H3K27ac": inputs["bw"], "H3K4me1": other}))
    assert "H3K27ac" in str(err.value) and "H3K4me1" in str(err.value)
    assert ("identical files" if copy else "the same file") in str(err.value) and snapshot_home() == before


def test_one_track_in_two_encodings_under_two_marks_is_refused(inputs, tmp_path, snapshot_home):
    packed = tmp_path / "k4me3.bed.gz"
    with gzip.open(packed, "wt") as fh:
        fh.write(inputs["bed"].read_text())
    before = snapshot_home()
    with pytest.raises(DataFormatError, match="H3K4me3 and --mark H3K4me1 give the same count in every bin"):
        build_dataset(spec(inputs, marks={"H3K27ac": inputs["bw"], "H3K4me3": inputs["bed"], "H3K4me1": packed}))
    assert snapshot_home() == before


def test_a_wiggle_file_named_bed_is_refused_with_the_conversion_hint(inputs, tmp_path):
    wig = tmp_path / "signal.bed"
    wig.write_text("variableStep chrom=chr1 span=10\n1501\t2.0\n1601\t3.5\n")
    with pytest.raises(DataFormatError, match="wigToBigWig"):
        build_dataset(spec(inputs, marks={"H3K27ac": inputs["bw"], "H3K4me3": wig}))


# -- the annotation and the expression table -------------------------------------------------------------------

@pytest.mark.parametrize("start,end,why", [(2900, 2001, "end is before start"), (0, 900, "start is below 1"),
                                           (-5, 900, "start is below 1")])
def test_a_gtf_row_with_impossible_coordinates_is_refused_naming_its_line(tmp_path, start, end, why):
    genes = GENES + [("GBAD", "chr1", start, end, "-")]
    gtf = write_gtf(tmp_path / "bad.gtf", genes=genes)
    with pytest.raises(DataFormatError) as err:
        read_genes(gtf)
    line = 2 + len(GENES)  # a header line, then the genes in order
    assert f"{gtf}, line {line}: {why}" in str(err.value) and "GBAD" in str(err.value)


def test_a_gtf_coordinate_not_written_as_an_integer_is_refused(tmp_path):
    gtf = write_gtf(tmp_path / "plus.gtf")
    bad = tmp_path / "odd.gtf"
    bad.write_bytes(gtf.read_bytes().replace(b"\t2001\t", b"\t+2001\t", 1))
    with pytest.raises(DataFormatError, match=r"\+2001"):
        read_genes(bad)


def _expression(tmp_path, value: str) -> Path:
    path = tmp_path / "expr.tsv"
    path.write_text(f"gene_id\tCELL\nA\t1.5\nB\t{value}\nC\t2\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "NaN", "nan", "1e999", "\u0663", "\uff15", "0x10",
                                   "1_000", "five"])
def test_an_expression_value_that_is_no_finite_number_is_refused_naming_it(tmp_path, value):
    path = _expression(tmp_path, value)
    with pytest.raises(DataFormatError) as err:
        read_expression(f"{path}:CELL")
    assert f"{path}, line 3" in str(err.value) and repr(value) in str(err.value) and "'B'" in str(err.value)


@pytest.mark.parametrize("value", ["", "NA"])
def test_an_empty_or_na_expression_cell_is_a_gene_without_a_value(tmp_path, value):
    expr, _col, _path = read_expression(f"{_expression(tmp_path, value)}:CELL")
    assert math.isnan(expr["B"]) and expr["A"] == 1.5 and expr["C"] == 2.0


@pytest.mark.parametrize("value", ["+5", "5e0", " 5 ", "-2.5"])
def test_plain_decimal_notations_of_expression_are_read(tmp_path, value):
    expr, _col, _path = read_expression(f"{_expression(tmp_path, value)}:CELL")
    assert expr["B"] == float(value)


@pytest.mark.parametrize("length", ["\u0663\u0660\u0660\u0660", "3000.0", "+3000", "3e3"])
def test_chromosome_sizes_are_written_in_ascii_digits(tmp_path, length):
    path = tmp_path / "sizes"
    path.write_text(f"chr1\t5000\nchr2\t{length}\n")
    with pytest.raises(DataFormatError, match=f"{path}, line 2"):
        read_chrom_sizes(path)


def test_a_chromosome_listed_twice_with_two_lengths_is_refused(tmp_path):
    path = tmp_path / "sizes"
    path.write_text("chr1\t5000\nchr2\t3000\nchr1\t5000\nchr1\t6000\n")
    with pytest.raises(DataFormatError, match=f"{path}, line 4: chr1 is listed again"):
        read_chrom_sizes(path)


@pytest.mark.parametrize("start", ["+1500", "1500.0", "\u0661\u0665\u0660\u0660", "-3", "1e3"])
def test_a_read_coordinate_not_written_in_ascii_digits_is_refused_naming_its_line(inputs, tmp_path, start):
    bed = tmp_path / "odd.bed"
    bed.write_text(f"chr1\t100\t136\tN\t0\t+\nchr1\t{start}\t1536\tN\t0\t+\n")
    with pytest.raises(DataFormatError) as err:
        build_dataset(spec(inputs, marks={"H3K4me3": bed}, chrom_sizes=inputs["sizes"]))
    assert f"{bed}, line 2" in str(err.value) and repr(start) in str(err.value)


# -- the archive CSV (data import) --------------------------------------------------------------------------

@pytest.mark.parametrize("column", [1, 3, 7], ids=["BinID", "count", "label"])
@pytest.mark.parametrize("cell", ODD_NUMBERS)
def test_an_archive_number_not_in_ascii_digits_is_refused_naming_line_and_value(tmp_path, write_task_csvs, column,
                                                                                 cell):
    write_task_csvs(tmp_path / "ds", n_genes=6)
    f = tmp_path / "ds" / "train.csv"
    lines = f.read_text().splitlines()
    row = lines[4].split(",")
    row[column] = cell
    lines[4] = ",".join(row)
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_split(f)
    assert f"{f}, line 5: column {column + 1}" in str(err.value) and repr(cell) in str(err.value)


def test_an_import_with_a_signed_count_writes_nothing(tmp_path, write_task_csvs, snapshot_home):
    from click.testing import CliRunner

    from chrombench.cli import main

    write_task_csvs(tmp_path / "ds", n_genes=6)
    f = tmp_path / "ds" / "valid.csv"
    lines = f.read_text().splitlines()
    row = lines[9].split(",")
    row[6] = "+" + row[6]  # H3K9me3 of gene 1, bin 10
    lines[9] = ",".join(row)
    f.write_text("\n".join(lines) + "\n")
    before = snapshot_home()
    res = CliRunner().invoke(main, ["data", "import", str(tmp_path / "ds"), "--name", "signed"])
    assert res.exit_code == 2 and f"{f}, line 10" in res.output and "'+" in res.output
    assert "Traceback" not in res.output and snapshot_home() == before


# -- bigWig values that can crash the C library ----------------------------------------------------------------

@pytest.mark.parametrize("value,words", [(float("nan"), "NaN or infinite"), (float("inf"), "NaN or infinite"),
                                         (3e38, "3e+38 per base"), (5e9, "5e+09 per base"), (-1.0, "negative")])
def test_a_bigwig_holding_nan_inf_or_huge_values_is_refused_without_crashing(inputs, tmp_path, value, words, home):
    """Run as a process of its own: on such values pyBigWig's header() can end its process with a
    segmentation fault, which in-process would take pytest down with it."""
    entries = {"chr1": [(1500, 1550, 2.0), (1600, 1610, value)], "chr2": [(100, 200, 0.5)], **filler_entries()}
    bad = write_bw(tmp_path / "bad.bw", entries)
    code = ("import sys; from chrombench.cli import main; sys.argv = ['chrombench'] + sys.argv[1:]; main()")
    args = ["data", "build", "--name", "hostile", "--window", "1000", "--bins", "10", "--min-genes", "10",
            "--annotation", str(inputs["gtf"]), "--expression", f"{inputs['expr']}:CELL", "--mark", f"H3K27ac={bad}"]
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "CHROMBENCH_HOME": str(home)})
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])  # -11: pyBigWig's segmentation fault
    assert str(bad) in res.stderr and words in res.stderr and "Traceback" not in res.stderr
    assert "hostile" not in catalog.read_registry()["datasets"]


def test_arrays_too_large_for_the_machine_are_refused_before_allocating():
    with pytest.raises(ChrombenchError, match="--bins"):
        check_memory(10**9, 100_000, 5)
    check_memory(20_000, 100, 5)  # the archive's shape: fine anywhere
