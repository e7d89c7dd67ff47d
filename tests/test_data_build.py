"""`chrombench data build`: tracks + annotation + expression -> a task in the store.

The inputs are written here with pyBigWig and plain text, small enough to compute every bin by hand:
plus- and minus-strand genes, a gene whose window runs off its chromosome, bigWig and read (BED)
tracks. Every bad input is refused with its file and value, and the store stays byte-identical.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.data import catalog, load
from chrombench.data.build import BuildSpec, build_dataset

SIZES = {"chr1": 5_000, "chr2": 3_000, "chr3": 100_000, "chr4": 100_000}
N_FILLER = 42  # genes on chr3 and chr4 so that three splits with both classes exist


def write_bw(path: Path, entries: dict[str, list[tuple[int, int, float]]], sizes=SIZES) -> Path:
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()), maxZooms=0)
    for chrom in sizes:
        rows = sorted(entries.get(chrom, []))
        if rows:
            bw.addEntries([chrom] * len(rows), [r[0] for r in rows], ends=[r[1] for r in rows],
                          values=[float(r[2]) for r in rows])
    bw.close()
    return path


def filler():
    """chr3 (even i) and chr4 (odd i): genes every 2 kb, alternating strands, expression i (so
    labels split at the median)."""
    rows = []
    for i in range(N_FILLER):
        tss = 10_000 + 2_000 * i
        strand, chrom = "+-"[i % 2], ("chr3", "chr4")[i % 2]
        rows.append((f"F{i:03d}", chrom, tss + 1, tss + 800, strand) if strand == "+" else
                    (f"F{i:03d}", chrom, tss - 799, tss + 1, strand))
    return rows


GENES = [  # id, chrom, GTF start, GTF end (1-based inclusive), strand
    ("GPLUS", "chr1", 2001, 2900, "+"),   # TSS 2000 -> window [1500, 2500)
    ("GMINUS", "chr1", 3100, 3500, "-"),  # TSS 3499 -> window [3000, 4000), read backwards
    ("GEDGE", "chr2", 2801, 2950, "+"),   # window [2300, 3300): off the 3,000 bp chr2
    ("GEDGEMINUS", "chr2", 300, 600, "-"),  # TSS 599 -> window [100, 1100): inside
    ("GLNC", "chr1", 1201, 1400, "+"),    # a lncRNA: dropped by the default biotype rule
]


def write_gtf(path: Path, genes=GENES, biotype=True, feature="gene", chrom_style=lambda c: c) -> Path:
    with (gzip.open(path, "wt") if path.suffix == ".gz" else open(path, "w")) as fh:
        fh.write("#!genome-build test\n")
        for gid, chrom, start, end, strand in list(genes) + filler():
            bt = f' gene_type "{"lncRNA" if gid == "GLNC" else "protein_coding"}";' if biotype else ""
            fh.write(f'{chrom_style(chrom)}\tTEST\t{feature}\t{start}\t{end}\t.\t{strand}\t.\t'
                     f'gene_id "{gid}.3";{bt} gene_name "{gid}";\n')
    return path


def write_expression(path: Path, extra_rows: str = "") -> Path:
    lines = ["gene_id\tOTHER\tCELL"]
    for i, (gid, *_rest) in enumerate(GENES):
        lines.append(f"{gid}\t1\t{0.5 if gid == 'GEDGEMINUS' else 100 + i}")
    lines += [f"F{i:03d}\t1\t{i}" for i in range(N_FILLER)]
    path.write_text("\n".join(lines) + "\n" + extra_rows)
    return path


@pytest.fixture
def inputs(tmp_path):
    bw_entries = {"chr1": [(1500, 1550, 2.0), (1590, 1610, 1.0), (2450, 2500, 4.0), (2500, 2600, 9.0),
                           (3000, 3100, 1.0), (3500, 3501, 0.4), (3600, 3603, 0.6), (3950, 4000, 3.0)],
                  "chr2": [(100, 200, 0.5), (1000, 1100, 2.0)],
                  **{c: [(10_000 + 2_000 * i - 100, 10_000 + 2_000 * i + 100, 1.0 + (i % 5)) for i in range(N_FILLER)]
                     for c in ("chr3", "chr4")}}  # every filler gene has signal: no chromosome without data
    reads = [("chr1", 1500), ("chr1", 1599), ("chr1", 1600), ("chr1", 2499), ("chr1", 2500), ("chr1", 1499),
             ("chr1", 1450), ("chr1", 3000), ("chr1", 3999), ("chr2", 150)]
    reads += [(c, 10_000 + 2_000 * i) for c in ("chr3", "chr4") for i in range(N_FILLER) for _ in range(1 + i % 3)]
    bed = tmp_path / "k4me3.bed"
    bed.write_text('track name="reads"\n' + "".join(f"{c}\t{s}\t{s + 36}\tN\t0\t+\n" for c, s in reads))
    return {"bw": write_bw(tmp_path / "k27ac.bw", bw_entries), "bed": bed,
            "gtf": write_gtf(tmp_path / "genes.gtf.gz"), "expr": write_expression(tmp_path / "rpkm.tsv"),
            "sizes": _sizes_file(tmp_path / "chrom.sizes")}


def _sizes_file(path: Path, sizes=SIZES) -> Path:
    path.write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))
    return path


def spec(inputs, **kw) -> BuildSpec:
    base = dict(name="mine", marks={"H3K27ac": inputs["bw"], "H3K4me3": inputs["bed"]}, annotation=inputs["gtf"],
                expression=f"{inputs['expr']}:CELL", window=1_000, bins=10, min_genes=10)
    return BuildSpec(**{**base, **kw})


def gene_rows(data, gene: str) -> np.ndarray:
    for s in ("train", "valid", "test"):
        sp = data.split(s)
        hit = np.flatnonzero(sp.gene_ids == gene)
        if len(hit):
            return np.asarray(sp.X[hit[0]])
    raise AssertionError(f"{gene} not in any split")


def test_bins_match_hand_computed_values_on_both_strands(inputs):
    res = build_dataset(spec(inputs))
    data = load.load_task("mine")  # -t NAME, as in every command
    assert data.train.marks == ("H3K27ac", "H3K4me3") and data.train.shape == (10, 2)
    # + strand, window [1500, 2500): bigWig area per 100 bp bin; reads counted by their start
    plus = gene_rows(data, "GPLUS")
    np.testing.assert_array_equal(plus[:, 0], [110, 10, 0, 0, 0, 0, 0, 0, 0, 200])
    np.testing.assert_array_equal(plus[:, 1], [2, 1, 0, 0, 0, 0, 0, 0, 0, 1])  # 1450, 1499, 2500 fall outside
    # - strand, window [3000, 4000) read 5'->3' (backwards): genome bin 9 first
    minus = gene_rows(data, "GMINUS")
    np.testing.assert_array_equal(minus[:, 0], [150, 0, 0, 2, 0, 0, 0, 0, 0, 100])  # 0.4 rounds to 0, 1.8 to 2
    np.testing.assert_array_equal(minus[:, 1], [1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    # a - strand gene near the chromosome start: window [100, 1100), reversed
    edge = gene_rows(data, "GEDGEMINUS")
    np.testing.assert_array_equal(edge[:, 0], [200, 0, 0, 0, 0, 0, 0, 0, 0, 50])
    np.testing.assert_array_equal(edge[:, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    # what each rule dropped: the lncRNA, the gene whose window runs off chr2
    assert res.dropped == {"biotype not protein_coding": 1, "chromosome not in the tracks' genome": 0,
                           "no expression value": 0, "window runs off the chromosome": 1}
    assert res.kept == len(GENES) - 2 + N_FILLER
    # label: above the median expression of the kept genes (21: GPLUS 100 and GMINUS 101 above, F000 0 below)
    all_ids = np.concatenate([data.split(s).gene_ids for s in ("train", "valid", "test")])
    all_y = np.concatenate([data.split(s).y for s in ("train", "valid", "test")])
    assert dict(zip(all_ids, all_y))["GPLUS"] == 1 and dict(zip(all_ids, all_y))["F000"] == 0
    assert all_y.sum() == res.kept // 2


def test_provenance_and_hash_are_recorded(inputs):
    entry = build_dataset(spec(inputs)).entry
    build = catalog.read_registry()["datasets"]["mine"]["build"]
    roles = [(i["role"], i.get("mark")) for i in build["inputs"]]
    assert roles == [("track", "H3K27ac"), ("track", "H3K4me3"), ("annotation", None), ("expression", None)]
    import hashlib

    assert build["inputs"][0]["sha256"] == hashlib.sha256(inputs["bw"].read_bytes()).hexdigest()
    assert build["inputs"][0]["bytes"] == inputs["bw"].stat().st_size
    assert build["inputs"][3]["column"] == "CELL"
    assert build["params"]["window"] == 1000 and build["params"]["bins"] == 10 and build["params"]["split"] == "random"
    data = load.load_task("mine")
    assert data.dataset.content_hash == entry["tasks"]["mine"]["content_hash"] and not data.dataset.simulated
    # the same inputs build the same content
    again = build_dataset(spec(inputs), overwrite=True).entry
    assert again["content_hash"] == entry["content_hash"]


def test_chromosome_split_holds_out_whole_chromosomes(inputs):
    build_dataset(spec(inputs, split="chromosome", valid_chroms=("chr4",), test_chroms=("1", "chr2")))
    data = load.load_task("mine")
    assert set(data.test.gene_ids) == {"GPLUS", "GMINUS", "GEDGEMINUS"}  # 'chr' prefix optional in the lists
    assert set(data.valid.gene_ids) == {f"F{i:03d}" for i in range(1, N_FILLER, 2)}  # all of chr4
    assert set(data.train.gene_ids) == {f"F{i:03d}" for i in range(0, N_FILLER, 2)}
    assert catalog.read_registry()["datasets"]["mine"]["build"]["params"]["test_chroms"] == ["1", "chr2"]


def test_reads_only_needs_chromosome_sizes(inputs, snapshot_home):
    before = snapshot_home()
    with pytest.raises(Exception, match="--chrom-sizes"):
        build_dataset(spec(inputs, marks={"H3K4me3": inputs["bed"]}))
    assert snapshot_home() == before
    build_dataset(spec(inputs, marks={"H3K4me3": inputs["bed"]}, chrom_sizes=inputs["sizes"]))
    np.testing.assert_array_equal(gene_rows(load.load_task("mine"), "GPLUS")[:, 0], [2, 1, 0, 0, 0, 0, 0, 0, 0, 1])


def run_build(inputs, *extra):
    args = ["data", "build", "--name", "mine", "--window", "1000", "--bins", "10", "--min-genes", "10",
            "--annotation", str(inputs["gtf"]), "--expression", f"{inputs['expr']}:CELL",
            "--mark", f"H3K27ac={inputs['bw']}", *map(str, extra)]
    return CliRunner().invoke(main, args, catch_exceptions=False)


@pytest.mark.slow
def test_cli_builds_and_the_task_runs_under_its_name(inputs, tmp_path):
    res = run_build(inputs)
    assert res.exit_code == 0, res.output
    assert "dropped: 1 by 'biotype not protein_coding'" in res.output and "-t mine" in res.output
    info = CliRunner().invoke(main, ["data", "info", "mine"], catch_exceptions=False).output
    assert f"H3K27ac={inputs['bw'].name}" in info and "(column CELL)" in info  # what went in
    assert "10 bins of 100 bp (1000 bp around the TSS), random split" in info
    out = CliRunner().invoke(main, ["run", "-t", "mine", "-m", "logistic-regression", "--output-dir",
                                    str(tmp_path / "out"), "--no-progress"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    import json

    rec = json.loads(next((tmp_path / "out" / "results").rglob("seed-0.json")).read_text())
    assert rec["dataset"]["name"] == "mine" and rec["dataset"]["simulated"] is False
    assert rec["dataset"]["content_hash"] == load.load_task("mine").dataset.content_hash


def bad(inputs, tmp_path):
    """(build arguments, words the error must contain) for each bad input."""
    notbw = tmp_path / "fake.bw"
    notbw.write_text("chr1\t0\t100\t1\n")
    empty = write_bw(tmp_path / "empty.bw", {})
    other_build = write_bw(tmp_path / "hg38.bw", {"chr1": [(0, 10, 1.0)]}, sizes={**SIZES, "chr1": 6_000})
    two_strands = write_gtf(tmp_path / "two.gtf", genes=GENES + [("GPLUS", "chr1", 2001, 2300, "-")], feature="exon")
    no_tss = write_gtf(tmp_path / "notss.gtf", genes=GENES[:1] + [("GDOT", "chr1", 501, 900, ".")])
    no_chr = write_gtf(tmp_path / "nochr.gtf", chrom_style=lambda c: c[3:])
    nonnum = write_expression(tmp_path / "nonnum.tsv", "GX\t1\tabc\n")
    dup_expr = write_expression(tmp_path / "dup.tsv", "F001\t1\t3\n")
    return [
        (["--mark", f"X={notbw}"], [str(notbw), "not one"]),
        (["--mark", f"X={empty}"], [str(empty), "empty"]),
        (["--mark", f"X={other_build}"], [str(other_build), "different genome builds", "chr1", "6,000", "5,000"]),
        (["--mark", f"H3K27ac={inputs['bed']}"], ["given twice", "H3K27ac"]),
        (["--mark", f"X={tmp_path / 'missing.bw'}"], ["missing.bw", "no such file"]),
        (["--annotation", two_strands], [str(two_strands), "GPLUS", "two strands"]),
        (["--annotation", no_tss], [str(no_tss), "GDOT", "no", "TSS"]),
        (["--annotation", no_chr], [str(no_chr), "'1'", "'chr1'", "--annotation-chroms add-chr"]),
        (["--expression", f"{inputs['expr']}:CEL"], [str(inputs["expr"]), "CEL", "CELL"]),
        (["--expression", str(inputs["expr"])], [str(inputs["expr"]), "2 value columns", ":COLUMN"]),
        (["--expression", f"{nonnum}:CELL"], [str(nonnum), "line", "'abc'", "GX"]),
        (["--expression", f"{dup_expr}:CELL"], [str(dup_expr), "F001", "two rows"]),
        (["--min-genes", "300"], ["only 45 genes", "300"]),
        (["--window", "1001"], ["--window 1001", "--bins 10"]),
        (["--split", "chromosome", "--valid-chroms", "chr2", "--test-chroms", "2"], ["chr2", "both"]),
        (["--split", "chromosome", "--valid-chroms", "chr9", "--test-chroms", "chr1"], ["valid split has 0 genes"]),
        (["--annotation-chroms", "strip-chr"], [str(inputs["gtf"]), "'1'", "'chr1'", "--annotation-chroms add-chr"]),
    ]


def test_every_bad_input_is_a_clear_error_and_writes_nothing(inputs, tmp_path, snapshot_home):
    assert run_build(inputs).exit_code == 0  # a dataset in the store: a failed --overwrite must keep it
    before = snapshot_home()
    for args, words in bad(inputs, tmp_path):
        res = run_build(inputs, *args, "--overwrite")
        assert res.exit_code != 0, (args, res.output)
        for w in words:
            assert w in res.output, (args, w, res.output)
        assert "Traceback" not in res.output
        assert snapshot_home() == before, args
    res = run_build(inputs)  # the name is taken
    assert res.exit_code != 0 and "already in the store" in res.output and "--overwrite" in res.output
    assert snapshot_home() == before


@pytest.mark.slow  # the README's script in a subprocess
def test_the_readme_worked_example_builds_trains_and_explains(tmp_path, home):
    """examples/own_cell_type.py, as the README runs it: synthetic bigWigs, GTF and expression in,
    a task, a trained model and its explanation out."""
    import os
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "examples" / "own_cell_type.py"
    res = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "oct"), "--genes", "900"],
                         env={**os.environ, "CHROMBENCH_HOME": str(home), "TQDM_DISABLE": "1"},
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dropped:" in res.stdout and "training ended by patience" in res.stdout
    data = load.load_task("mycell")
    assert data.train.shape == (100, 5) and len(data.test) > 200
    explained = tmp_path / "oct" / "explain"
    assert (explained / "summary.json").is_file() and list(explained.glob("*_profiles.png"))
    valid_auroc = float(re.search(r"valid AUROC (\d\.\d+)", res.stdout).group(1))
    assert valid_auroc > 0.75  # the planted marks predict expression: the model learned them
