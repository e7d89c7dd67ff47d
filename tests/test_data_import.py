"""`chrombench data import / export`: real and user data in, the simulator's tasks out, and every bad
input refused with its file and line while the cache and registry stay byte-identical."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.data import catalog, importer, layout, load

from toydata import TOY  # noqa: E402


def run_cli(*args):
    return CliRunner().invoke(main, ["data", *map(str, args)], catch_exceptions=False)


def test_the_toy_sample_imports_and_is_used_by_its_name():
    res = run_cli("import", TOY, "--name", "toy")
    assert res.exit_code == 0, res.output
    assert re.search(r"^toy\s+10\s+10\s+10\s", res.output, re.M)
    data = load.load_task("toy")
    assert data.dataset.name == "toy" and not data.dataset.simulated
    assert data.train.gene_ids[0] == "000003"  # leading zeros kept
    first_rows = np.loadtxt(TOY / "train.csv", delimiter=",", dtype=str, max_rows=100)
    np.testing.assert_array_equal(data.train.X[0], first_rows[:, 2:7].astype(int))
    assert f"dataset hash {catalog.read_registry()['datasets']['toy']['content_hash']}" in res.output
    info = run_cli("info", "toy")
    # the source is recorded as the resolved path (the checkout may sit beside a symlinked shared/)
    assert info.exit_code == 0 and str(TOY.resolve()) in info.output and "10     10     10" in info.output
    assert "toy" in run_cli("list").output


def test_a_many_task_folder_with_ensembl_ids_imports_every_task(tmp_path, write_task_csvs):
    def ensembl(split, n):
        offset = {"train": 0, "valid": 1000, "test": 2000}[split]
        return [f"ENSG{141510 + offset + i:011d}" for i in range(n)]

    written = {eid: write_task_csvs(tmp_path / "mine" / eid / "classification", n_genes=8, seed=k, gene_ids=ensembl)
               for k, eid in enumerate(["E003", "E116"])}
    res = run_cli("import", tmp_path / "mine", "--name", "mine", "--version", "2024-05")
    assert res.exit_code == 0, res.output
    assert "-t mine/E003" in res.output
    a, b = load.load_task("mine/E003"), load.load_task("E116", dataset="mine")
    assert a.train.gene_ids[0] == "ENSG00000141510" and a.dataset.version == "2024-05"
    np.testing.assert_array_equal(b.valid.X, written["E116"]["valid"].X)
    np.testing.assert_array_equal(b.test.gene_ids, written["E116"]["test"].gene_ids)


def test_importing_twice_needs_overwrite(tmp_path, write_task_csvs):
    write_task_csvs(tmp_path / "one", n_genes=4)
    assert run_cli("import", tmp_path / "one", "--name", "one").exit_code == 0
    res = run_cli("import", tmp_path / "one", "--name", "one")
    assert res.exit_code == 1 and "--overwrite" in res.output
    assert run_cli("import", tmp_path / "one", "--name", "one", "--overwrite").exit_code == 0
    assert run_cli("import", tmp_path / "one", "--name", "one", "--overwrite", "--version", "2").exit_code == 0
    assert [p.name for p in (layout.datasets_dir() / "one").iterdir()] == ["2"]  # version 1's arrays are gone
    assert load.load_task("one").dataset.version == "2"


def test_exported_simulated_tasks_import_with_the_same_content_hash(tmp_path):
    res = run_cli("export", "simremc", "--tasks", "e3", "--quick", "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out" / "E003" / "classification").iterdir()) == \
        ["test.csv", "train.csv", "valid.csv"]
    assert run_cli("import", tmp_path / "out", "--name", "roundtrip").exit_code == 0
    imported = load.load_task("roundtrip/E003")
    assert imported.dataset.content_hash == load.load_task("E003", quick=True).dataset.content_hash
    assert run_cli("export", "simremc", "--tasks", "E003", "--quick", "-o", tmp_path / "out").exit_code == 1


# -- bad inputs ---------------------------------------------------------------------------------
# Each edit breaks train.csv (or another split) of a valid 4-gene task. Lines are 1-based; gene g
# (0-based) occupies lines 100 g + 1 ... 100 g + 100.

def _set(line: int, col: int, value: str):
    def edit(rows):
        cells = rows[line - 1].split(",")
        cells[col] = value
        rows[line - 1] = ",".join(cells)
        return rows
    return edit


def _swap_bins(rows):
    a, b = rows[102].split(","), rows[103].split(",")  # gene 1, bins 3 and 4
    a[1], b[1] = b[1], a[1]
    rows[102], rows[103] = ",".join(a), ",".join(b)
    return rows


def _same_gene_id(rows):  # gene 2 takes gene 0's ID
    gid = rows[0].split(",")[0]
    return rows[:200] + [",".join([gid, *r.split(",")[1:]]) for r in rows[200:300]] + rows[300:]


BAD_INPUTS = {
    # name: (split file, edit of its rows, line named in the error, words in the error)
    "wrong column count": ("train", lambda r: r[:6] + [r[6] + ",9"] + r[7:], 7, "columns"),
    "non-integer count": ("train", _set(5, 3, "2.5"), 5, "must be an integer"),
    "text in a count": ("train", _set(5, 6, "abc"), 5, "not a number"),
    "negative count": ("train", _set(12, 4, "-3"), 12, "negative"),
    "missing count": ("train", _set(42, 5, ""), 42, "missing value"),
    "bins out of order": ("train", _swap_bins, 103, "bins out of order"),
    "not 100 bins per gene": ("valid", lambda r: r[:199] + r[200:], 199, "has 99 bins, expected 100"),
    "label changes within a gene": ("train", lambda r: _set(250, 7, str(1 - int(r[249][-1])))(r), 250,
                                    "label changes within the gene"),
    "duplicate genes": ("test", _same_gene_id, 201, "duplicate gene"),
    "short first line": ("train", lambda r: [r[0].rsplit(",", 1)[0]] + r[1:], 1, "found 7 columns"),
    "count written as a float": ("train", _set(8, 2, "3.0"), 8, "written with digits only, found '3.0'"),
    "count in exponent notation": ("train", _set(9, 3, "1e3"), 9, "written with digits only, found '1e3'"),
    "infinite count": ("train", _set(10, 4, "inf"), 10, "too large: inf"),
    "count too large for any integer": ("train", _set(11, 5, "9" * 20), 11, "too large"),
    "missing label": ("valid", _set(130, 7, ""), 130, "missing value in column 8 (label)"),
    "the same gene twice in a row": ("train", lambda r: r[:200] + r[100:200] + r[300:], 201, "duplicate gene"),
    "empty split": ("valid", lambda r: [], None, "empty"),
    "single-class split": ("test", lambda r: [row[:-1] + "0" for row in r], None, "needs both classes"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_a_bad_input_names_file_and_line_and_changes_nothing(case, tmp_path, write_task_csvs, snapshot_home):
    split, edit, line, words = BAD_INPUTS[case]
    write_task_csvs(tmp_path / "good", n_genes=4)
    assert run_cli("import", tmp_path / "good", "--name", "good").exit_code == 0  # a registry to keep intact
    bad = tmp_path / "bad"
    write_task_csvs(bad, n_genes=4)
    path = bad / f"{split}.csv"
    rows = edit(path.read_text().splitlines())
    path.write_text("".join(f"{r}\n" for r in rows))
    before = snapshot_home()

    res = run_cli("import", bad, "--name", "bad")

    assert res.exit_code == 2, res.output
    msg = res.output
    assert msg.startswith(f"Error: {path}") and words in msg
    if line is not None:
        assert f"line {line}" in msg
    assert snapshot_home() == before  # cache folder and registry.json byte-identical


def test_blank_lines_at_the_end_of_a_file_are_not_rows(tmp_path, write_task_csvs):
    written = write_task_csvs(tmp_path / "t", n_genes=4)
    path = tmp_path / "t" / "train.csv"
    path.write_text(path.read_text() + "\n\n")
    assert run_cli("import", tmp_path / "t", "--name", "t").exit_code == 0
    np.testing.assert_array_equal(load.load_task("t").train.X, written["train"].X)


def test_a_gene_in_two_splits_is_refused_naming_both_files(tmp_path, write_task_csvs, snapshot_home):
    """Otherwise a model could be tested on genes it was trained on."""
    write_task_csvs(tmp_path / "leak", n_genes=4)
    train, test = tmp_path / "leak" / "train.csv", tmp_path / "leak" / "test.csv"
    gene = train.read_text().splitlines()[0].split(",")[0]
    rows = test.read_text().splitlines()
    moved = [",".join([gene, *r.split(",")[1:]]) for r in rows[100:200]]  # test gene 1 takes a train gene's ID
    test.write_text("".join(f"{r}\n" for r in rows[:100] + moved + rows[200:]))
    before = snapshot_home()
    res = run_cli("import", tmp_path / "leak", "--name", "leak")
    assert res.exit_code == 2, res.output
    assert f"{test}, line 101: gene {gene!r} is also in {train}" in res.output
    assert snapshot_home() == before


def _import_in_a_process(folder: str, name: str, barrier) -> None:
    barrier.wait()
    importer.import_dataset(folder, name)


def test_imports_finishing_together_both_stay_registered(tmp_path, write_task_csvs, home):
    """registry.json is read, changed and written under a lock: no import overwrites another's entry."""
    import multiprocessing as mp

    names = [f"set{k}" for k in range(4)]
    for k, name in enumerate(names):
        write_task_csvs(tmp_path / name, n_genes=4, seed=k)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(names))
    procs = [ctx.Process(target=_import_in_a_process, args=(str(tmp_path / n), n, barrier)) for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * len(names)
    assert sorted(catalog.read_registry()["datasets"]) == names


def test_info_on_the_simulator_ignores_a_generation_in_progress(home):
    load.load_task("E003", quick=True)
    root = layout.datasets_dir() / "simremc" / layout.simremc_version()
    (root / ".E004.staging.abc").mkdir()  # what a killed (or still running) generation leaves
    res = run_cli("info", "simremc")
    assert res.exit_code == 0, res.output
    assert "E003" in res.output and "E004" not in res.output
