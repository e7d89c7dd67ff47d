"""The Python API for your own training loop: load_task, Evaluator, record_predictions / `chrombench record`."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import chrombench
from chrombench import results
from chrombench.cli import main
from chrombench.data import importer, load
from chrombench.errors import ChrombenchError, PredictionsError
from chrombench.tasks import get_spec
from test_data_build import inputs  # noqa: F401 - the build tests' synthetic bigWig/GTF fixture
from test_data_build import spec as build_spec
from toydata import TOY

ZOO = Path(__file__).resolve().parents[1] / "leaderboards" / "zoo"


@pytest.fixture(scope="module")
def home(module_home):
    """One home: the quick E003 task is simulated once, the toy sample imported once."""
    importer.import_dataset(TOY, "toy")
    return module_home


def _write(path: Path, rows, header=("gene_id", "probability")) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _good_rows(split, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [[g, repr(float(p))] for g, p in zip(split.gene_ids, rng.random(len(split)))]


# -- import chrombench stays cheap; the public names ---------------------------------------------------

def test_import_is_cheap_and_all_names_resolve():
    code = ("import sys, chrombench; heavy = [m for m in ('torch', 'pandas', 'mlflow', 'optuna', 'sklearn') "
            "if m in sys.modules]; assert not heavy, heavy; "
            "missing = [n for n in chrombench.__all__ if getattr(chrombench, n, None) is None]; assert not missing, missing")
    subprocess.run([sys.executable, "-c", code], check=True)
    for name in chrombench.__all__:
        obj = getattr(chrombench, name)
        if callable(obj):
            assert obj.__doc__, f"chrombench.{name} has no docstring"


# -- load_task --------------------------------------------------------------------------------------

def test_load_task_simremc_quick_matches_the_store(home):
    task = chrombench.load_task("E003", suite="quick")
    data = load.load_task("E003", genes={"train": 2000, "valid": 1000, "test": 2000})
    assert task.train.X.shape == (2000, 100, 5) and task.valid.X.shape == (1000, 100, 5)
    for split in ("train", "valid"):
        mine, theirs = getattr(task, split), data.split(split)
        assert np.array_equal(mine.X, theirs.X) and np.array_equal(mine.y, theirs.y)
        assert list(mine.gene_ids) == list(theirs.gene_ids)
    assert task.marks == chrombench.MARKS and task.bins == 100
    assert task.dataset.content_hash == data.dataset.content_hash and task.dataset.simulated
    meta = task.metadata
    spec = get_spec("E003")
    assert meta["published_auroc"] == spec.reported_deepchrome_auroc and meta["cell_type"] == spec.name
    assert meta["oracle_auroc"] == pytest.approx(data.truth.oracle_auroc)
    assert not hasattr(task, "test")  # only through read_test()


def test_read_test_is_explicit_and_recorded(home):
    from chrombench.api.task import TEST_READS, count_test_reads

    task = chrombench.load_task("E003", suite="quick")
    before = count_test_reads(task.dataset.content_hash)
    test = task.read_test()
    assert len(test) == 2000 and set(np.unique(test.y)) == {0, 1}
    assert len(task.test_reads) == 1 and count_test_reads(task.dataset.content_hash) == before + 1
    line = json.loads((home / TEST_READS).read_text().splitlines()[-1])
    assert (line["dataset"], line["task"], line["content_hash"]) == ("simremc", "E003", task.dataset.content_hash)


def test_torch_dataset_and_tidy_frame(home):
    task = chrombench.load_task("toy")
    ds = task.torch_dataset("valid")
    X, y = ds[0]
    assert len(ds) == 10 and tuple(X.shape) == (100, 5) and float(y) == task.valid.y[0]
    assert np.allclose(X.numpy(), np.log1p(task.valid.X[0]))
    frame = task.frame("train")
    assert list(frame.columns) == ["gene_id", "bin", "mark", "count", "label"] and len(frame) == 10 * 100 * 5
    first = frame[(frame.gene_id == task.train.gene_ids[0]) & (frame.mark == "H3K4me3")]
    assert list(first["count"]) == list(task.train.X[0, :, 3]) and list(first["bin"]) == list(range(1, 101))


def test_imported_dataset_and_clear_errors(home):
    task = chrombench.load_task("toy")
    assert task.dataset.name == "toy" and not task.dataset.simulated and task.train.gene_ids[0] == "000003"
    assert task.metadata["oracle_auroc"] is None and task.metadata["published_auroc"] is None
    with pytest.raises(ChrombenchError, match="not part of suite 'quick'"):
        chrombench.load_task("E004", suite="quick")
    with pytest.raises(KeyError, match="did you mean"):
        chrombench.load_task("E003", data="tyo")


# -- Evaluator ---------------------------------------------------------------------------------------

def _engine_seed_records():
    for rec_path in sorted(ZOO.glob("*/records/*/seed-*.json")):
        yield json.loads(rec_path.read_text()), rec_path.with_name(rec_path.stem + ".predictions.csv.gz")


def test_evaluator_gives_exactly_the_engines_metrics_on_its_predictions():
    checked = 0
    for rec, preds in _engine_seed_records():
        with gzip.open(preds, "rt", newline="") as fh:
            rows = list(csv.DictReader(fh))
        got = chrombench.Evaluator(rec["task"]["name"]).eval({
            "y_true": np.array([int(r["label"]) for r in rows]), "y_pred": np.array([float(r["probability"]) for r in rows])})
        assert got == rec["metrics"]["test"], preds  # exactly: the same code on the same floats in the same order
        checked += 1
    assert checked >= 100  # every zoo model, three tasks, three seeds


@pytest.mark.parametrize("y_true, y_pred, message", [
    ([0, 1, 1], [0.1, 0.2], "y_true has 3 entries but y_pred has 2"),
    ([0, 1], [[0.9, 0.1], [0.2, 0.8]], r"shape \(2, 2\).*y_pred\[:, 1\]"),
    ([[0, 1], [1, 0]], [0.1, 0.2], r"y_true has shape \(2, 2\)"),
    ([0, 1, 1], [0.1, float("nan"), 0.3], r"y_pred\[1\] is nan"),
    ([1, 1, 1], [0.1, 0.2, 0.3], "single class"),
    ([0, 1, 1], [0.1, 1.5, 0.3], r"y_pred\[1\] = .*1\.5.* not a probability in \[0, 1\]"),
    ([0, 2, 1], [0.1, 0.5, 0.3], r"y_true\[1\] = .*2.*must be 0 or 1"),
])
def test_evaluator_names_the_problem(y_true, y_pred, message):
    with pytest.raises(PredictionsError, match=message):
        chrombench.Evaluator("E003").eval({"y_true": y_true, "y_pred": y_pred})


def test_evaluator_takes_tensors_and_column_vectors_and_names_missing_keys():
    import torch

    y, p = np.array([0, 1, 0, 1]), np.array([0.2, 0.9, 0.4, 0.6])
    expected = chrombench.Evaluator("E003").eval({"y_true": y, "y_pred": p})
    assert expected["auroc"] == 1.0
    assert chrombench.Evaluator("E003").eval({"y_true": torch.tensor(y[:, None], dtype=torch.float32),
                                              "y_pred": torch.tensor(p, requires_grad=True)}) == expected
    with pytest.raises(ValueError, match="lacks 'y_pred'"):
        chrombench.Evaluator("E003").eval({"y_true": y, "y_score": p})


# -- record_predictions / chrombench record ---------------------------------------------------------------

def test_record_from_the_engines_own_predictions_gives_the_engines_metrics(home, tmp_path):
    """The zoo's logistic regression predictions, recorded as if from outside: same metrics, same data hash."""
    zoo = ZOO / "logistic-regression" / "records" / "E003"
    engine = json.loads((zoo / "seed-0.json").read_text())
    preds = zoo / "seed-0.predictions.csv.gz"  # gzipped, with the engine's label column (checked against the split)
    result = CliRunner().invoke(main, ["record", str(preds), "-t", "E003", "--suite", "quick", "--seed", "0",
                                       "--model-name", "lr-outside", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rec = json.loads((tmp_path / "out/results/simremc/lr-outside/E003/seed-0.json").read_text())
    assert rec["metrics"]["test"] == engine["metrics"]["test"]
    assert rec["dataset"] == engine["dataset"] and rec["task"] == engine["task"]
    assert rec["oracle_auroc"] == pytest.approx(engine["oracle_auroc"])
    assert rec["protocol_version"] == engine["protocol_version"] and results.problems(rec) == []
    assert results.is_outside(rec) and not results.is_outside(engine)
    assert "cannot be rebuilt" in rec["origin"]["note"] and isinstance(rec["origin"]["test_reads"], int)
    assert "test AUROC 0.7780" in result.output


def _record_toy_seeds(out: Path, tmp_path: Path, seeds=(0, 1, 2)) -> chrombench.Task:
    task = chrombench.load_task("toy")
    test = task.read_test()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        pred = chrombench.write_predictions(tmp_path / f"p{seed}.csv", test.gene_ids, rng.random(len(test)))
        valid = chrombench.write_predictions(tmp_path / f"v{seed}.csv", task.valid.gene_ids, rng.random(len(task.valid)))
        chrombench.record_predictions(pred, task, seed=seed, model_name="my-model", valid_predictions=valid, out_dir=out,
                                      params={"hidden": 8}, n_parameters=17)
    return task


def test_outside_records_bundle_validate_and_render_marked(home, tmp_path):
    from chrombench.leaderboard.render import render
    from chrombench.leaderboard.submit import bundle_results
    from chrombench.leaderboard.validate import validate_bundle

    out = tmp_path / "out"
    _record_toy_seeds(out, tmp_path)
    summary = json.loads((out / "results/toy/my-model/toy/summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2] and results.is_outside(summary) and results.problems(summary) == []
    [bundle] = bundle_results(out / "results", None, tmp_path / "bundles")
    report = validate_bundle(bundle)
    assert report.ok, report.rejections
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert "outside the engine" in manifest["outside_engine"] and "chrombench record" in manifest["command"]
    assert "outside the engine" in (bundle / "MODEL_CARD.md").read_text()
    page = render([tmp_path / "bundles"], tmp_path / "page", n_boot=0)
    md = page.markdown.read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 1 | my-model"))
    assert "‡" in row and "predictions from outside the engine" in row
    assert "Reproduce with: `(none: predictions from outside the engine" in md and "cannot be rebuilt" in md
    csv_row = next(csv.DictReader(page.csv.read_text().splitlines()))
    assert "cannot be rebuilt" in csv_row["reproduce"]
    assert "my-model ‡" in page.html.read_text()


def _refused(tmp_path: Path, pred: Path, message: str, **kw):
    out = tmp_path / "refused-out"
    with pytest.raises(PredictionsError, match=message):
        chrombench.record_predictions(pred, "toy", seed=0, model_name="my-model", out_dir=out, **kw)
    assert not out.exists()  # nothing written on refusal


def test_record_refuses_bad_predictions_naming_the_line(home, tmp_path):
    task = chrombench.load_task("toy")
    test = load.load_task("toy").test
    rows = _good_rows(test)
    _refused(tmp_path, _write(tmp_path / "dup.csv", rows + [rows[3]]), r"line 12: gene '\d+' again \(first on line 5\)")
    bad = [r[:] for r in rows]
    bad[2][1] = "high"
    _refused(tmp_path, _write(tmp_path / "nan.csv", bad), r"line 4: probability 'high' .* not a number")
    bad[2][1] = "1.25"
    _refused(tmp_path, _write(tmp_path / "range.csv", bad), r"line 4: probability 1.25 .*not a probability in \[0, 1\]")
    other = [[g, p, int(1 - y)] for (g, p), y in zip(rows, test.y)]  # the labels of another task
    _refused(tmp_path, _write(tmp_path / "labels.csv", other, ("gene_id", "probability", "label")),
             r"line 2: gene .* has label \d here but \d in toy/toy's test split: the file is for another task")
    tagged = [[g, p, "E003"] for g, p in rows]
    _refused(tmp_path, _write(tmp_path / "task.csv", tagged, ("gene_id", "probability", "task")),
             r"line 2: task 'E003', but the predictions are being recorded for toy/toy")
    valid_rows = _good_rows(task.valid)
    _refused(tmp_path, _write(tmp_path / "genes.csv", rows[1:] + valid_rows[:1]),
             rf"1 gene\(s\) of the split missing, first '{test.gene_ids[0]}'; 1 gene\(s\) not in the split, first "
             rf"'{task.valid.gene_ids[0]}' \(line 11\)")
    _refused(tmp_path, _write(tmp_path / "header.csv", rows, ("gene", "probability")), "line 1: no column gene_id")


def test_record_command_line_refusal_and_overwrite(home, tmp_path):
    test = load.load_task("toy").test
    rows = _good_rows(test)
    good = _write(tmp_path / "good.csv", rows)
    args = ["record", str(good), "-t", "toy", "--seed", "0", "--model-name", "my-model", "--out", str(tmp_path / "o")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.output
    dup = _write(tmp_path / "dup.csv", rows + [rows[0]])
    refused = CliRunner().invoke(main, ["record", str(dup), *args[2:], "--overwrite"])
    assert refused.exit_code == 2 and "line 12" in refused.output
    zoo_name = CliRunner().invoke(main, [*args[:6], "--model-name", "deepchrome", "--out", str(tmp_path / "o")])
    assert zoo_name.exit_code != 0 and "zoo model" in zoo_name.output
    assert "Examples:" in CliRunner().invoke(main, ["record", "--help"]).output


def test_the_readmes_python_section_runs(home, tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Python API"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("\n```\n")]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    written = tmp_path / "chrombench-out/results/simremc/k4me3-tss/E003/seed-0.json"
    rec = json.loads(written.read_text())
    assert str(written.relative_to(tmp_path)) in capsys.readouterr().out
    assert results.problems(rec) == [] and results.is_outside(rec) and rec["task"]["suite"] == "quick"
    assert 0.5 < rec["metrics"]["test"]["auroc"] < rec["oracle_auroc"]  # a real signal, under the ceiling


def test_a_built_dataset_keeps_its_own_marks_and_bins(home, inputs):
    """`chrombench data build` output (other marks, 10 bins), with the build tests' own synthetic inputs."""
    from chrombench.data.build import build_dataset

    build_dataset(build_spec(inputs))
    task = chrombench.load_task("mine")
    assert task.marks == ("H3K27ac", "H3K4me3") and task.bins == 10 and task.train.X.shape[1:] == (10, 2)
    assert task.dataset.split == "random" and task.metadata["published_auroc"] is None
    assert set(task.frame("train")["mark"].unique()) == {"H3K27ac", "H3K4me3"}
    assert tuple(task.torch_dataset("valid")[0][0].shape) == (10, 2)
