"""A newcomer's first hour: an imported dataset works with -t NAME everywhere and its results bundle,
validate and render; gene IDs with commas and quotes survive every step; logs get one line per step;
a corrupt summary is rebuilt on resume; short model names work; a run says where its results are."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.data.arrays import SPLITS

NASTY = "ab,\"' ;|<>&é-_.:#"


def nasty_ids(rng, n: int) -> list[str]:
    """Gene IDs from an alphabet of CSV, Markdown and HTML metacharacters, distinct."""
    ids = set()
    while len(ids) < n:
        ids.add("".join(rng.choice(list(NASTY), size=rng.integers(1, 9))) + f"{len(ids)}")
    return sorted(ids)


def write_dataset(folder, rng, n=40):
    folder.mkdir(parents=True)
    ids = nasty_ids(rng, 3 * n)
    for k, split in enumerate(SPLITS):
        with open(folder / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            for i, gene in enumerate(ids[k * n:(k + 1) * n]):
                label = i % 2
                for b in range(100):
                    peak = 6 * label if 45 <= b < 55 else 0
                    counts = rng.poisson([1, 1, 1, 1 + peak, 1])
                    w.writerow([gene, b + 1, *counts, label])
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("draw", [0, 1])
def test_odd_gene_ids_survive_import_run_bundle_validate_render(tmp_path, monkeypatch, draw):
    monkeypatch.setenv("CHROMBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(draw)
    ids = write_dataset(tmp_path / "raw", rng)
    runner = CliRunner()
    res = runner.invoke(main, ["data", "import", "raw", "--name", "mytoy"])
    assert res.exit_code == 0, res.output
    assert "-t mytoy" in res.output
    res = runner.invoke(main, ["run", "-t", "mytoy", "-m", "lr", "--trials", "0", "--no-progress", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "logistic-regression" in res.output  # the alias is recorded under the model's full name
    assert "Results (one JSON record per model, task and seed): chrombench-out/results" in res.output
    assert "Leaderboard: chrombench-out/leaderboard/index.html" in res.output

    preds = sorted((tmp_path / "chrombench-out/results").rglob("seed-0.predictions.csv"))[0]
    with open(preds, newline="") as fh:
        assert [r["gene_id"] for r in csv.DictReader(fh)] == sorted(ids[80:])  # read back exactly

    res = runner.invoke(main, ["leaderboard", "bundle", "chrombench-out/results", "--out", "lb"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "lb/logistic-regression/bundle.json").read_text())
    assert manifest["suite"] is None and manifest["tasks"] == ["mytoy"]
    res = runner.invoke(main, ["leaderboard", "validate", "lb"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["leaderboard", "render", "--results", "lb", "--out", "page"])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "page/leaderboard.md").read_text()
    assert "| 1 | logistic-regression |" in md and "mytoy" in md and "Records left out" not in md


def test_an_empty_bundle_selection_is_an_error(tmp_path):
    (tmp_path / "results").mkdir()
    res = CliRunner().invoke(main, ["leaderboard", "bundle", str(tmp_path / "results"), "--out", str(tmp_path / "lb")])
    assert res.exit_code == 1 and "nothing to bundle" in res.output and not (tmp_path / "lb").exists()


@pytest.mark.slow
def test_a_corrupt_summary_is_rebuilt_on_resume(tmp_path, monkeypatch):
    from chrombench import results
    from chrombench.engine.run import RunConfig, run_evaluations

    monkeypatch.setenv("CHROMBENCH_HOME", str(tmp_path / "home"))
    cfg = RunConfig(models=["lr"], tasks=["E003"], genes={"train": 200, "valid": 100, "test": 100}, trials=0,
                    seeds=[0, 1, 2], output_dir=tmp_path / "out")
    (first,) = run_evaluations(cfg, progress=False)
    path = next((tmp_path / "out/results").rglob("summary.json"))
    path.write_text('{"kind": "summary", "metri')  # a crash while someone copied it, say
    (again,) = run_evaluations(cfg, progress=False)
    assert again["metrics"] == first["metrics"] and not results.problems(json.loads(path.read_text()))


@pytest.mark.slow  # chrombench run in a subprocess
def test_a_log_gets_one_line_per_finished_pair(tmp_path):
    env_home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-m", "chrombench", "run", "-t", "E003", "--genes", "200,100,100", "-m",
                           "lr", "-m", "xgb", "--trials", "0", "--seeds", "0", "--workers", "1",
                           "--output-dir", str(tmp_path / "out")],
                          env={**__import__("os").environ, "CHROMBENCH_HOME": str(env_home)}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[")]
    assert lines[0].startswith("[1/2] logistic-regression · E003 done") and lines[1].startswith("[2/2] xgboost · E003")
