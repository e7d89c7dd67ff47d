"""Forgeries that reseal every digest and recompute every metric: validation recomputes from what it
trusts (the registry's test split, the simulator's ceiling, the pages' own bundles) and refuses them,
naming the file and the row."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

from chrombench import results
from chrombench.data.load import load_task
from chrombench.evaluate import Evaluator
from chrombench.leaderboard import validate as v
from chrombench.leaderboard.pages import check_page
from chrombench.leaderboard.render import render
from real_bundles import honest_bundle, predictions_csv

GENES = {"train": 100, "valid": 100, "test": 300}


@pytest.fixture(scope="module")
def home(module_home):
    return module_home


@pytest.fixture(scope="module")
def task(home):
    return load_task("E003", "simremc", genes=GENES)


@pytest.fixture
def bundle(tmp_path, task):
    return honest_bundle(tmp_path / "bundles", "honest", [task], genes=GENES)


def forge(bundle: Path, seed: int, edit=None, record_edit=None) -> Path:
    """Rewrite one seed's predictions with ``edit(rows) -> rows``, recompute its metrics, reseal the
    record, its summary and the manifest: what a forger with the public code can do."""
    folder = next((bundle / "records").iterdir())
    pred = folder / f"seed-{seed}.predictions.csv.gz"
    rows = list(csv.reader(io.StringIO(gzip.decompress(pred.read_bytes()).decode())))[1:]
    if edit:
        rows = edit([[g, float(p), int(y)] for g, p, y in rows])
        pred.write_bytes(gzip.compress(predictions_csv(*zip(*rows)).encode()))
    rec_file = folder / f"seed-{seed}.json"
    rec = json.loads(rec_file.read_text())
    body = {k: val for k, val in rec.items() if k != "digest"}
    if edit:
        body["metrics"]["test"] = Evaluator().eval(np.array([r[2] for r in rows]), np.array([r[1] for r in rows]))
    if record_edit:
        record_edit(body)
    results.atomic_write_json(rec_file, results.seal(body))
    seeds = [json.loads((folder / f"seed-{k}.json").read_text()) for k in range(3)]
    summary = results.seal(results.summarize(seeds))
    results.atomic_write_json(folder / "summary.json", summary)
    manifest = json.loads((bundle / "bundle.json").read_text())
    for rel in manifest["records"]:
        manifest["records"][rel] = json.loads((bundle / rel).read_text())["digest"]
    manifest["records_digest"] = v.records_digest(manifest["records"].values())
    for rel in manifest["predictions"]:
        manifest["predictions"][rel] = v._sha256(bundle / rel)
    results.atomic_write_json(bundle / "bundle.json", manifest)
    return pred


def rejections(bundle: Path) -> list[str]:
    return [str(r) for r in v.validate_bundle(bundle).rejections]


def test_the_honest_bundle_passes(bundle):
    assert rejections(bundle) == []


def _wrong(r):
    return (r[1] > 0.5) != bool(r[2])


@pytest.mark.parametrize("name,edit,expected", [
    ("dropped wrong genes", lambda rows: [r for r in rows if not _wrong(r)], "test genes of simremc/E003 are missing"),
    ("labels set to the predictions", lambda rows: [[g, p, int(p > 0.5)] for g, p, _ in rows], "the test split of "
                                                                                                "simremc/E003 says"),
    ("correct rows duplicated 20 times", lambda rows: rows + [r for r in rows if not _wrong(r)][:10] * 20,
     "appears again"),
    ("flipped labels", lambda rows: [[g, p, 1 - y if i % 3 == 0 else y] for i, (g, p, y) in enumerate(rows)],
     "has label"),
    ("a gene of another split", lambda rows: rows[:-1] + [["999999", 0.5, 0]], "is not a test gene"),
    ("probabilities pushed toward the labels", lambda rows: [[g, 0.2 * p + 0.8 * y, y] for g, p, y in rows],
     "above the ceiling"),
])
def test_a_resealed_forgery_is_refused_naming_file_and_row(bundle, name, edit, expected):
    pred = forge(bundle, 1, edit)
    found = rejections(bundle)
    assert any(expected in r for r in found), (name, found)
    if "ceiling" not in expected:
        assert any(r.startswith(str(pred)) and ("line " in r or "missing" in r) for r in found), found


@pytest.mark.parametrize("bad", ["=HYPERLINK(\"http://x\")", "a | b", "ok\n", "x\n# injected",
                                 "[x](javascript:alert(1))", "@SUM(A1)", "<b>"])
def test_a_name_that_is_not_an_identifier_is_refused(bundle, bad):
    forge(bundle, 0, record_edit=lambda body: body["model"].update(name=bad))
    assert any("is not a valid name" in r and "seed-0.json" in r for r in rejections(bundle))


def test_edited_validation_metrics_never_reach_the_page(bundle, tmp_path):
    """A bundle carries no validation predictions, so its valid metrics cannot be recomputed: the page
    does not show them (a resealed edit changes nothing a reader sees)."""
    forge(bundle, 0, record_edit=lambda body: body["metrics"]["valid"].update(auroc=0.987654))
    assert rejections(bundle) == []
    out = render([bundle.parent], tmp_path / "page", n_boot=0)
    for f in (out.csv, out.markdown, out.html):
        text = f.read_text()
        assert "0.987654" not in text and "valid_auroc" not in text


def test_a_page_only_edit_is_refused(bundle, tmp_path):
    page = tmp_path / "page"
    render([bundle.parent], page, n_boot=0, title="t")
    assert check_page(page) == []
    text = (page / "leaderboard.csv").read_text().splitlines()
    header, row = text[0].split(","), text[1].split(",")
    row[header.index("test_auroc_mean")] = "0.999"
    (page / "leaderboard.csv").write_text("\n".join([text[0], ",".join(row), *text[2:]]) + "\n")
    problems = check_page(page)
    assert [f for f, _ in problems] == [str(page / "leaderboard.csv")]
    assert "line 2" in problems[0][1]
    reports = v.validate_paths([tmp_path])  # the folder holds both: the bundle passes, the page does not
    assert [r.ok for r in reports if r.name == "(rendered page)"] == [False]


def test_rendering_escapes_hostile_names_for_csv_markdown_and_html(tmp_path, records_factory, records_writer):
    """A run's own folder is rendered as it is (not a bundle): every name is escaped where it lands."""
    names = {"=HYPERLINK(\"http://x\")": "csv", "x\n# injected": "md", "[x](javascript:alert(1))": "md",
             "a | b": "md", "<b>bold</b>": "html", "@SUM(A1)": "csv", "+cmd": "csv", "-cmd": "csv"}
    recs = records_factory({n: {"E003": [0.8, 0.81, 0.82]} for n in names})
    records_writer(tmp_path / "run", recs)
    out = render([tmp_path / "run"], tmp_path / "page", n_boot=0)
    cells = [row["model"] for row in csv.DictReader(io.StringIO(out.csv.read_text()))]
    assert len(cells) == len(names)
    assert all(not c.startswith(("=", "+", "-", "@")) for c in cells), cells
    md = out.markdown.read_text()
    assert not any(line.startswith("# injected") for line in md.splitlines())
    import re

    prose = re.sub(r"(`+).*?\1", "", md)  # inside code spans Markdown interprets nothing
    assert "[x](javascript" not in prose and "a | b" not in prose and "<b>" not in prose
    page = out.html.read_text()
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page


@pytest.mark.slow
def test_rebuild_refits_random_cells_and_refuses_numbers_the_model_does_not_give(tmp_path, write_task_csvs):
    """A real run's bundle rebuilds within the tolerance; the same bundle with another model's
    predictions (resealed, every other check passing) is refused by the rebuild."""
    from chrombench.data import importer
    from chrombench.engine.run import RunConfig, run_evaluations
    from chrombench.leaderboard.rebuild import SAME_PATH_TOLERANCE, rebuild
    from chrombench.leaderboard.submit import bundle_results

    write_task_csvs(tmp_path / "src", n_genes=60)
    importer.import_dataset(tmp_path / "src", "rebuildme")
    toy = str(Path(__file__).with_name("engine_toy_models.py")) + ":TinyLogistic"
    run_evaluations(RunConfig(models=[f"tiny={toy}"], tasks=["rebuildme"], seeds=[0, 1, 2], trials=0,
                              output_dir=tmp_path / "out", device="cpu"), progress=False)
    bundle = bundle_results(tmp_path / "out" / "results", None, tmp_path / "zoo")[0]
    assert rejections(bundle) == []
    said = []
    assert rebuild([bundle], 3, seed=0, say=said.append) == []
    shown = [line for line in said if "test AUROC shipped" in line]  # each cell: both numbers, both compute paths
    # each cell was refitted on the path it was made on, so the tight same-path tolerance applied
    assert len(shown) == 3 and all("same compute path: unknown" in line and f"<= {SAME_PATH_TOLERANCE}" in line
                                   for line in shown)
    forge(bundle, 1, lambda rows: [[g, 1 - p, y] for g, p, y in rows])  # another model's ranking
    assert rejections(bundle) == [], "every other check passes: only refitting can tell"
    problems = rebuild([bundle], 3, seed=0)
    assert [Path(f).name for f, _ in problems] == ["seed-1.json"]
    assert "the record says" in problems[0][1] and f"tolerance {SAME_PATH_TOLERANCE}" in problems[0][1]


def test_rebuild_tolerance_is_tight_only_where_the_compute_path_is_the_same():
    """Across compute paths a refit is another trajectory (the measured 0.03); on the record's own
    path it must agree to 0.002, so a record without a compute block never gets the tight check."""
    from chrombench.leaderboard.rebuild import REBUILD_TOLERANCE, SAME_PATH_TOLERANCE, same_path

    native = {"path": "native", "isa": "avx2", "torch": "2.13.0", "optimizer": "adam", "device": "cpu", "threads": 2}
    assert same_path(native, {**native, "threads": 1})  # measured: the thread count changes nothing
    assert not same_path(native, {**native, "isa": "avx512"})
    assert not same_path(native, {**native, "path": "torch"})
    assert not same_path(None, native) and not same_path(native, None)
    assert SAME_PATH_TOLERANCE < REBUILD_TOLERANCE
