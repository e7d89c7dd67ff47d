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
from chrombench.data.store import load_task
from chrombench.evaluate import Evaluator
from chrombench.leaderboard import validate as v
from chrombench.leaderboard.pages import check_page
from chrombench.leaderboard.render import render
from chrombench.leaderboard.submit import model_card, write_bundle

GENES = {"train": 100, "valid": 100, "test": 300}


@pytest.fixture(scope="module")
def home(module_home):
    return module_home


@pytest.fixture(scope="module")
def task(home):
    return load_task("E003", "simremc", genes=GENES)


class Honest:
    """The model class the card describes."""

    family = "test"

    @classmethod
    def search_space(cls, trial):
        return {}


def honest_predictions(task, seed: int) -> tuple[list, list, list]:
    """What a plain model would predict: promoter H3K4me3 plus a little seed noise (below the ceiling)."""
    score = np.log1p(np.asarray(task.test.X)[:, 45:55, 3].sum(axis=1))
    score = score + np.random.default_rng(seed).normal(0, 0.3, len(score))
    prob = 1 / (1 + np.exp(-(score - score.mean())))
    return list(map(str, task.test.gene_ids)), [float(p) for p in prob], [int(y) for y in task.test.y]


def seed_record(task, seed: int, ids, prob, label, name: str = "honest") -> dict:
    return results.seal({
        "kind": "seed", "seed": seed, "fit_time_s": 1.0, "oracle_auroc": task.truth.oracle_auroc,
        "model": {"name": name, "target": name, "family": "test", "params": {}, "n_parameters": 1},
        "task": {"name": task.task, "suite": None, "genes": GENES}, "dataset": task.dataset.as_dict(),
        "training": {"iterative": False, "stopped_by": "complete", "converged": True},
        "tuning": {"n_trials": 0, "n_pruned": 0, "budget_trials": 0, "budget_timeout_s": None, "elapsed_s": 0.0,
                   "best_valid_auroc": None, "best_params": {}},
        "metrics": {"test": Evaluator().eval(np.array(label), np.array(prob)), "valid": {"auroc": 0.7}}})


def predictions_csv(ids, prob, label) -> str:
    return "gene_id,probability,label\n" + "".join(f"{g},{p!r},{y}\n" for g, p, y in zip(ids, prob, label))


@pytest.fixture
def bundle(tmp_path, task):
    run = tmp_path / "run"
    for seed in range(3):
        ids, prob, label = honest_predictions(task, seed)
        rec = seed_record(task, seed, ids, prob, label)
        path = results.seed_path(run, "simremc", "honest", task.task, seed)
        results.atomic_write_json(path, rec)
        path.with_name(f"seed-{seed}.predictions.csv").write_text(predictions_csv(ids, prob, label))
    seeds = results.read_records(run / "results", kind="seed")
    results.atomic_write_json(results.summary_path(run, "simremc", "honest", task.task),
                              results.seal(results.summarize(seeds)))
    recs = results.read_records(run / "results")
    card = model_card(Honest, "honest", "honest", recs, None, wall_time_s=1.0, trials=0, timeout=None)
    return write_bundle(tmp_path / "bundles" / "honest", "honest", "honest", None, recs, card, command="test")


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
