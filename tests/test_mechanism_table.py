"""Which model learns which mechanism: on simremc 1.2 a run's seed-0 record scores each explain method
against every planted mechanism's own map, the record stays valid, and the leaderboard shows a model x
mechanism table of those scores and one of what the predictions carry (uptake, measured from the
bundle's predictions); 1.1, which plants no mechanisms, gets none of it."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest

from chrombench import results
from chrombench.data.load import load_task
from chrombench.engine import interpret
from chrombench.engine.run import RunConfig, run_evaluations
from chrombench.leaderboard import render as lb
from chrombench.leaderboard.mechanisms import TITLE, UPTAKE_TITLE

GENES = {"train": 300, "valid": 150, "test": 150}
MODEL = f"windowed-logistic={Path(__file__).with_name('engine_toy_models.py')}:WindowedLogistic"
DATA = "simremc@1.2"


@pytest.fixture(scope="module")
def home(shared_home):
    return shared_home


@pytest.fixture(scope="module")
def run_out(home, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    run_evaluations(RunConfig(models=[MODEL], tasks=["E003"], genes=GENES, seeds=[0], trials=1, dataset=DATA,
                              output_dir=out), progress=False)
    return out


def seed0(out) -> dict:
    return json.loads(results.seed_path(out, "simremc", "windowed-logistic", "E003", 0).read_text())


def test_seed0_record_scores_every_planted_mechanism(run_out):
    rec = seed0(run_out)
    assert not results.problems(rec)  # schema and digest hold with the new field
    planted = list(load_task("E003", DATA, genes=GENES).truth.mechanisms)
    by_mech = rec["interpretation_by_mechanism"]
    assert set(by_mech) == set(rec["interpretation"]) - {"random"}  # each scored method, per mechanism
    scored = by_mech["importance"]
    assert set(scored) <= set(planted) and len(scored) >= len(planted) - 1  # a rare one may touch no scored gene
    for name, cell in scored.items():
        assert 0.0 <= cell["cell_auroc"] <= 1.0, name
        assert 1 <= cell["genes"] <= rec["interpretation_genes"], name  # only the genes the mechanism touches


def test_the_scores_are_the_mechanisms_own(home):
    """A map equal to one mechanism's own map reads that mechanism perfectly and another one no better
    than a map that ignores mechanisms altogether would."""
    data = load_task("E003", DATA, genes=GENES)
    names = list(data.truth.mechanisms)
    target = "k36_gradient"
    idx = interpret.stratified_subsample(data.test.y, 10**6)
    own = np.asarray(data.truth.mechanisms[target])[idx].astype(float)
    from chrombench.explain.scoring import score_by_mechanism

    scored = interpret._mechanism_cells(score_by_mechanism(own, {n: np.asarray(data.truth.mechanisms[n])[idx]
                                                                  for n in names}))
    assert scored[target]["cell_auroc"] > 0.99
    assert min(v["cell_auroc"] for n, v in scored.items() if n != target) < 0.9


def test_leaderboard_shows_which_model_reads_which_mechanism(run_out, tmp_path):
    r = lb.render([run_out / "results"], tmp_path / "board", n_boot=0)
    md, page = r.markdown.read_text(), r.html.read_text()
    assert f"### {TITLE}" in md and TITLE in page
    table = md.split(f"### {TITLE}")[1]
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    row = next(line for line in table.splitlines() if line.startswith("| windowed-logistic"))
    scored = seed0(run_out)["interpretation_by_mechanism"]["importance"]
    for name, cell in scored.items():
        assert name in header
        assert f"{cell['cell_auroc']:.3f}" in row  # one task: the record's own value
    best = max(scored, key=lambda n: scored[n]["cell_auroc"])
    assert f"- {best}: read best by windowed-logistic ({scored[best]['cell_auroc']:.3f})" in table


def test_leaderboard_measures_each_mechanisms_uptake_from_the_predictions(run_out, tmp_path):
    from chrombench.data.simulate12 import label_latents
    from chrombench.explain.uptake import uptake_of_predictions

    r = lb.render([run_out / "results"], tmp_path / "board", n_boot=0)
    md, page = r.markdown.read_text(), r.html.read_text()
    assert f"### {UPTAKE_TITLE}" in md and html.escape(UPTAKE_TITLE) in page
    table = md.split(f"### {UPTAKE_TITLE}")[1].split("### ")[0]
    row = next(line for line in table.splitlines() if line.startswith("| windowed-logistic"))
    ids, prob, _ = results.read_predictions(results.predictions_path(run_out, "simremc", "windowed-logistic", "E003", 0))
    expected = uptake_of_predictions(ids, prob, label_latents("E003"))
    assert len(expected) == 6
    for name, value in expected.items():
        assert f"{value:+.2f}" in row.split("|")[3 + list(expected).index(name)], name  # one task, one seed


def test_simremc_1_1_has_no_mechanism_table(home, tmp_path):
    out = tmp_path / "out"
    run_evaluations(RunConfig(models=[MODEL], tasks=["E003"], genes=GENES, seeds=[0], trials=1, output_dir=out),
                    progress=False)
    rec = json.loads(results.seed_path(out, "simremc", "windowed-logistic", "E003", 0).read_text())
    assert "interpretation" in rec and "interpretation_by_mechanism" not in rec
    r = lb.render([out / "results"], tmp_path / "board", n_boot=0)
    for title in (TITLE, UPTAKE_TITLE):
        assert title not in r.markdown.read_text() and html.escape(title) not in r.html.read_text()
