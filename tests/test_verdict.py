"""What the table can tell: stalled fits are unconverged everywhere, tie groups, the ceiling, and the
published same-data relations beside what was measured."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from chrombench import results
from chrombench.baselines.batched_lstm import BlockLSTM
from chrombench.baselines.deepchrome import DeepChrome
from chrombench.cli import main
from chrombench.leaderboard import render as lb
from chrombench.leaderboard import validate as v
from chrombench.leaderboard import verdict
from chrombench.leaderboard.collect import collect
from chrombench.models.contract import fit_report
from conftest import CONVERGED_FIT
from test_convergence import SMALL, TRAIN, VALID
from test_validate import fake_registry, make_bundle, reasons

STALLED_LEGACY = {**CONVERGED_FIT, "epochs_run": 7, "best_epoch": 1}  # as 1.1's roadmap56 records say it


# -- stalled ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("best, expected", [(0, "stalled"), (2, "stalled"), (3, "patience"), (20, "patience")])
def test_early_stopping_with_a_best_epoch_among_the_first_three_is_stalled(best, expected):
    report = fit_report("patience", iterative=True, epochs_run=best + 6, best_epoch=best, cap=100)
    assert report["stopped_by"] == expected
    assert report["converged"] is (expected == "patience")


def test_an_early_best_epoch_that_clears_the_linear_floor_learned_fast():
    # DeepChrome on simulated E071: best epoch 2 at valid 0.726 where logistic regression gets 0.728
    assert fit_report("patience", iterative=True, best_epoch=2, best_valid_auroc=0.726,
                      valid_floor=0.728)["stopped_by"] == "patience"
    # the LSTM there: best epoch 0 at 0.636
    assert fit_report("patience", iterative=True, best_epoch=0, best_valid_auroc=0.636,
                      valid_floor=0.728)["stopped_by"] == "stalled"


def test_records_written_before_stalled_existed_are_read_as_stalled():
    legacy = {"kind": "seed", "training": STALLED_LEGACY}
    fine = {"kind": "seed", "training": CONVERGED_FIT}
    assert results.is_stalled(legacy) and results.is_unconverged(legacy)
    assert not results.is_stalled(fine) and not results.is_unconverged(fine)
    summary = {"training": {"stopped_by": ["patience", "patience", "cap"], "best_epoch": [9, 0, 99]}}
    assert results.stalled_seeds(summary["training"]) == [1]


def test_validate_refuses_a_stalled_fit_naming_file_best_epoch_and_rule(tmp_path, records_factory, synthetic_data_only,
                                                                       simulated_home):
    bundle = make_bundle(tmp_path, records_factory, training={"my-model": STALLED_LEGACY})
    report = v.validate_bundle(bundle, fake_registry())
    assert not report.ok
    why = reasons(report, "records/E112/seed-1.json")
    assert why and "my-model on E112 seed 1 stalled" in why[0]
    assert "best epoch at 1" in why[0] and f"before {results.STALL_EPOCHS}" in why[0]
    res = CliRunner().invoke(main, ["leaderboard", "validate", str(bundle)])
    assert res.exit_code == 1 and "E112/seed-1.json" in res.output and "stalled" in res.output
    smoke = make_bundle(tmp_path / "smoke", records_factory, training={"my-model": STALLED_LEGACY}, smoke_test=True)
    report = v.validate_bundle(smoke, fake_registry())
    assert report.ok and report.warnings and all("stalled" in w.reason for w in report.warnings)


def test_the_page_marks_a_stalled_cell_unconverged(records_factory):
    recs = records_factory({"lstm": {"E003": [0.7]}, "deepchrome": {"E003": [0.75]}},
                           training={"lstm": STALLED_LEGACY})
    section = collect(recs, n_boot=0).sections[0]
    assert section.fits("lstm")["unconverged"] == 1 and section.fits("lstm")["stopped_by"] == {"stalled": 1}
    assert section.fits("deepchrome")["unconverged"] == 0
    assert "stalled" in lb.csv_text(collect(recs, n_boot=0))


# -- the training recipe ------------------------------------------------------------------------------------

def test_a_plateau_cuts_the_learning_rate_before_it_ends_the_fit():
    plain = DeepChrome(**SMALL, epochs=60, patience=2).fit(TRAIN, VALID)
    cut = DeepChrome(**SMALL, epochs=60, patience=2)
    cut.lr_drops = 1
    cut.fit(TRAIN, VALID)
    n = len(plain.history_["epochs"])
    assert len(cut.history_["epochs"]) > n  # went on past the first plateau
    same = [e["train_loss"] for e in plain.history_["epochs"]] == [e["train_loss"] for e in cut.history_["epochs"][:n]]
    assert same  # identical until that plateau: the cut is the only difference


def test_a_fit_that_has_not_learned_when_patience_runs_out_gets_a_smaller_step(monkeypatch):
    """The stall rescue: patience running out before the fit learned cuts the learning rate instead of
    ending the fit; a fit that learned is never touched by it. The floor is raised to 0.95 here so that
    this toy task's start (0.63 at epoch 0, then chance) counts as not learned; each cut goes back to the
    best weights with a fifth of the step."""
    from chrombench.baselines import torch_trainer

    monkeypatch.setattr(torch_trainer, "linear_floor", lambda train, valid: 0.95)
    params = dict(SMALL, lr=0.05, seed=2, epochs=40, patience=2)  # too large a step: epoch 0 is its best
    plain = DeepChrome(**params)
    plain.stall_rescues = 0
    plain.fit(TRAIN, VALID)
    assert plain.training_report()["stopped_by"] == "stalled"
    rescued = DeepChrome(**params).fit(TRAIN, VALID)
    report = rescued.training_report()
    n = len(plain.history_["epochs"])
    assert report["lr_cuts"][0] == n - 1  # where the plain fit gave up
    assert [e["valid_auroc"] for e in rescued.history_["epochs"][:n]] == [e["valid_auroc"] for e in plain.history_["epochs"]]
    assert report["stopped_by"] == "patience" and report["best_epoch"] >= results.STALL_EPOCHS
    assert report["best_valid_auroc"] > plain.training_report()["best_valid_auroc"]
    learned = DeepChrome(**dict(params, lr=3e-3)).fit(TRAIN, VALID).training_report()
    assert learned["converged"] and "lr_cuts" not in learned


def test_the_linear_floor_is_logistic_regression_on_per_mark_totals():
    from chrombench.baselines.torch_trainer import linear_floor

    floor = linear_floor(TRAIN, VALID)
    assert 0.85 < floor < 1.0  # the toy signal is an H3K4me3 excess: visible in the totals
    noise = type(VALID)(VALID.gene_ids, VALID.X, np.random.default_rng(0).permutation(VALID.y))
    assert abs(linear_floor(TRAIN, noise) - 0.5) < 0.1


def test_forget_bias_shifts_only_the_forget_gates():
    torch.manual_seed(0)
    a = BlockLSTM(2, 1, 8)
    torch.manual_seed(0)
    b = BlockLSTM(2, 1, 8)
    b.add_forget_bias(1.0)
    for k in range(a.weight.shape[0]):
        ta, tb = (m.torch_lstm(k % 2, k >= 2) for m in (a, b))
        diff = (tb["bias_ih"] + tb["bias_hh"]) - (ta["bias_ih"] + ta["bias_hh"])
        assert torch.allclose(diff[8:16], torch.ones(8)) and torch.allclose(diff[:8], torch.zeros(8))
        assert torch.allclose(diff[16:], torch.zeros(16)) and torch.equal(ta["weight_hh"], tb["weight_hh"])


# -- tie groups, ceiling, published relations -----------------------------------------------------------

def _section(records_factory, means: dict, n_tasks: int = 12, noise: float = 0.002, oracle: float | None = None):
    rng = np.random.default_rng(0)
    tasks = [f"E{n:03d}" for n in range(3, 3 + n_tasks)]
    shift = {t: rng.normal(0, 0.03) for t in tasks}
    aurocs = {m: {t: [float(mu + shift[t] + rng.normal(0, noise))] for t in tasks} for m, mu in means.items()}
    recs = records_factory(aurocs, suite=None, oracle={t: oracle + shift[t] for t in tasks} if oracle else None)
    return collect(recs, n_boot=0).sections[0]


def test_models_the_tests_cannot_separate_form_one_tie_group(records_factory):
    s = _section(records_factory, {"attentivechrome": 0.820, "chromoformer": 0.8201, "lstm": 0.80, "deepchrome": 0.78})
    groups = verdict.tie_groups(s)
    assert groups[0] == sorted(["attentivechrome", "chromoformer"], key=s.models.index)
    assert groups[1:] == [["lstm"], ["deepchrome"]]
    assert "are tied at the top" in verdict.tie_sentence(s)
    md = lb.markdown(collect([], n_boot=0), [])  # an empty board has no verdict to say
    assert "tied" not in md


def test_the_ceiling_and_the_room_over_deepchrome_are_printed(records_factory):
    s = _section(records_factory, {"attentivechrome": 0.82, "deepchrome": 0.78}, oracle=0.85)
    h = verdict.headroom(s)
    assert h.mean_ceiling == pytest.approx(np.mean([v for v in s.oracle.values()]))
    assert h.room_over_reference == pytest.approx(h.mean_ceiling - h.reference_mean)
    assert 0.06 < h.room_over_reference < 0.08
    assert f"{h.mean_ceiling:.3f}" in verdict.headroom_sentence(s)


def test_published_relations_are_measured_and_disagreement_is_marked(records_factory, tmp_path):
    # the paper: lstm > deepchrome and attentivechrome > deepchrome; here lstm loses
    s = _section(records_factory, {"attentivechrome": 0.82, "lstm": 0.70, "deepchrome": 0.78})
    rows = {r["relation"]: r for r in verdict.relation_rows(s)}
    assert rows["lstm > deepchrome"]["verdict"] == "DISAGREES in direction"
    assert rows["attentivechrome > deepchrome"]["verdict"] == "reproduced"
    assert rows["lstm > deepchrome"]["published_wins"] == "36/56"
    assert verdict.agreement(s) == (2, 3)  # attentivechrome > lstm holds too
    md = "\n".join(lb._md_relations(s))
    assert md.startswith(f"## {lb.RELATIONS_TITLE}") and "DISAGREES in direction" in md
    assert "Why a direction fails here: simremc" in md  # one sentence on why not
    assert "Singh et al., NeurIPS 2017" in md


def test_a_1_2_panel_says_which_relations_are_held_out(records_factory, monkeypatch):
    """simremc 1.2's generator names the relations its weights were tuned on; the panel says which rows
    are therefore held-out evidence, and 1.1 (calibrated on ceilings only) says nothing of the kind."""
    from chrombench.data import simulate12

    means = {"attentivechrome": 0.82, "lstm": 0.80, "deepchrome": 0.78}
    aurocs = {m: {f"E{n:03d}": [mu + 0.001 * n] for n in range(3, 9)} for m, mu in means.items()}
    s12 = collect(records_factory(aurocs, suite=None, version="1.2+seed0"), n_boot=0).sections[0]
    s11 = collect(records_factory(aurocs, suite=None, version="1.1+seed0"), n_boot=0).sections[0]
    monkeypatch.setattr(simulate12, "CALIBRATED_RELATIONS", ())
    assert verdict.calibration_sentence(s12).startswith("Held out:")
    assert "Held out:" in "\n".join(lb._md_relations(s12)) and "Held out:" in lb._html_relations(s12, 0)
    assert verdict.calibration_sentence(s11) is None and "Held out" not in "\n".join(lb._md_relations(s11))
    monkeypatch.setattr(simulate12, "CALIBRATED_RELATIONS", ("lstm>deepchrome",))
    said = verdict.calibration_sentence(s12)
    assert said.startswith("Calibrated on: lstm>deepchrome") and "held out: attentivechrome>deepchrome" in said


def test_relations_on_other_data_processing_are_shown_but_not_counted():
    rels = {r.id: r for r in verdict.published_relations()}
    assert not rels["patternchrome>deepchrome"].counted and not rels["shallowchrome>deepchrome"].counted
    assert rels["lstm>deepchrome"].counted and rels["lstm>deepchrome"].better_wins == 36
    assert all(r.source for r in rels.values())


def test_the_simulator_scatter_is_captioned_as_calibration():
    assert "Calibration, not validation" in lb.CALIBRATION_CAPTION
    assert "oracle row" not in lb.SIMULATED_NOTE  # the summary table has no such row


def test_the_shipped_quick_note_states_the_measured_order_agreement():
    """The quick page says how far its order agrees with the full table: the number must be the one the
    shipped bundles give (benchmarks/quick_vs_full.py), not a claim."""
    import re
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    from quick_vs_full import mean_auroc
    from scipy.stats import kendalltau

    quick, full = mean_auroc(root / "leaderboards/zoo"), mean_auroc(root / "leaderboards/roadmap56-simremc/zoo")
    shared = sorted(set(quick) & set(full))
    tau = kendalltau([full[m] for m in shared], [quick[m] for m in shared]).statistic
    stated = re.search(r"Kendall tau ([0-9.]+) over (\d+) models", lb.SUITE_NOTES["quick"])
    assert stated, lb.SUITE_NOTES["quick"]
    assert float(stated.group(1)) == pytest.approx(tau, abs=0.005) and int(stated.group(2)) == len(shared)
    assert not math.isnan(tau)
