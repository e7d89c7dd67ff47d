"""Interpretation scores in run records and on the leaderboard: seed 0 of a simulated task carries
each explain method's scores against the planted truth, they beat random scores, the record stays
valid, explaining never fails a run, and the leaderboard shows a method x model table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chrombench import results
from chrombench.data.load import load_task
from chrombench.engine import interpret
from chrombench.engine.run import RunConfig, run_evaluations
from chrombench.leaderboard import render as lb
from chrombench.leaderboard.interpretation import TITLE

GENES = {"train": 200, "valid": 100, "test": 100}
MODEL = f"windowed-logistic={Path(__file__).with_name('engine_toy_models.py')}:WindowedLogistic"


@pytest.fixture(scope="module")
def home(shared_home):
    load_task("E003", "simremc", genes=GENES)  # simulated once for the session (shared_home)
    return shared_home


@pytest.fixture(scope="module")
def run_out(home, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    run_evaluations(RunConfig(models=[MODEL], tasks=["E003"], genes=GENES, seeds=[0, 1], trials=1,
                              output_dir=out), progress=False)
    return out


def seed_record(out, seed: int) -> dict:
    return json.loads(results.seed_path(out, "simremc", "windowed-logistic", "E003", seed).read_text())


@pytest.mark.slow
def test_seed0_record_scores_importance_above_random(run_out):
    rec = seed_record(run_out, 0)
    assert not results.problems(rec)  # schema and digest hold with the new fields
    scores = rec["interpretation"]
    assert set(scores) == {"importance", "random"}
    assert rec["interpretation_genes"] == GENES["test"]  # fewer than the cap: every test gene
    assert scores["importance"]["cell_auroc"] > scores["random"]["cell_auroc"] + 0.05
    assert abs(scores["random"]["cell_auroc"] - 0.5) < 0.05
    assert "interpretation" not in seed_record(run_out, 1)  # seed 0 only, to keep runs fast


def test_rerun_keeps_the_sealed_record(run_out):
    before = results.seed_path(run_out, "simremc", "windowed-logistic", "E003", 0).read_bytes()
    run_evaluations(RunConfig(models=[MODEL], tasks=["E003"], genes=GENES, seeds=[0, 1], trials=1,
                              output_dir=run_out), progress=False)
    assert results.seed_path(run_out, "simremc", "windowed-logistic", "E003", 0).read_bytes() == before


def test_leaderboard_shows_the_interpretation_table(run_out, tmp_path):
    r = lb.render([run_out / "results"], tmp_path / "board", n_boot=0)
    md, page = r.markdown.read_text(), r.html.read_text()
    assert f"### {TITLE}" in md and TITLE in page
    table = md.split(f"### {TITLE}")[1]
    rows = {line.split("|")[2].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "importance" in rows and "random" in rows
    assert "windowed-logistic" in rows["importance"]
    rec = seed_record(run_out, 0)
    assert f"{rec['interpretation']['importance']['cell_auroc']:.3f}" in rows["importance"]
    assert 'class="oracle"' in page.split(TITLE)[1]  # the random row is pinned like the oracle
    assert "<script src" not in page and "<link" not in page  # still self-contained


def test_no_table_without_interpretation(tmp_path, records_factory, records_writer):
    records_writer(tmp_path / "out", records_factory({"lstm": {"E003": [0.8, 0.81]}}))
    r = lb.render([tmp_path / "out"], tmp_path / "board", n_boot=0)
    assert TITLE not in r.markdown.read_text() and TITLE not in r.html.read_text()


def test_explaining_failure_leaves_the_run_and_record_intact(home, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("explainer exploded")

    monkeypatch.setattr("chrombench.explain.methods.explain", broken)
    out = tmp_path / "out"
    summary = run_evaluations(RunConfig(models=[MODEL], tasks=["E003"], genes=GENES, seeds=[0],
                                        trials=1, output_dir=out), progress=False)[0]
    rec = seed_record(out, 0)
    assert not results.problems(summary) and not results.problems(rec)
    assert "interpretation" not in rec


def test_subsample_is_stratified_capped_and_deterministic():
    y = np.r_[np.ones(130, np.int8), np.zeros(270, np.int8)]
    np.random.default_rng(1).shuffle(y)
    idx = interpret.stratified_subsample(y, 300)
    assert len(idx) == 300 and len(set(idx)) == 300 and np.all(np.diff(idx) > 0)
    assert abs(y[idx].mean() - y.mean()) < 0.01
    assert np.array_equal(idx, interpret.stratified_subsample(y, 300))
    assert np.array_equal(interpret.stratified_subsample(y[:50], 300), np.arange(50))
