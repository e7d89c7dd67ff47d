"""Every fit says how it ended, and a fit that stopped while still improving is never a result.

Covers the stop reasons of the trainer and the classical models, the ``training`` block of the
engine's records, ``leaderboard validate`` refusing unconverged fits (warnings for a declared smoke
test), the suites' seed policy (roadmap56: one seed, three on its development tasks), and how the
page marks unconverged numbers.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from chrombench import results
from chrombench.baselines.classical import LogisticRegressionModel, RandomForestModel, XGBoostModel
from chrombench.baselines.deepchrome import DeepChrome
from chrombench.cli import main
from chrombench.data.arrays import Split
from chrombench.leaderboard import validate as v
from chrombench.models.contract import StopTraining
from chrombench.tasks import get_suite
from conftest import UNCONVERGED_FIT
from test_validate import fake_registry, make_bundle, reasons

ROADMAP = get_suite("roadmap56")


def planted(n: int, seed: int) -> Split:
    """Counts where H3K4me3 at the TSS says ON: learnable in a few epochs, not in one."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int8)
    X = rng.poisson(1.0, (n, 100, 5)).astype(np.int32)
    X[:, 45:55, 3] += rng.poisson(3.0 * (y[:, None] + 0.3 * rng.normal(size=(n, 1))).clip(0), (n, 10)).astype(np.int32)
    return Split(np.array([f"g{i}" for i in range(n)]), X, y)


TRAIN, VALID = planted(300, 1), planted(200, 2)
SMALL = dict(fc1_units=32, fc2_units=16, n_filters=8, batch_size=64, lr=3e-3, device="cpu")


def test_a_fit_that_early_stops_has_converged_and_says_where():
    report = DeepChrome(**SMALL, epochs=100, patience=3).fit(TRAIN, VALID).training_report()
    assert report["stopped_by"] == "patience" and report["converged"] is True
    assert report["epochs_run"] < 100 and report["best_epoch"] == report["epochs_run"] - 1 - 3
    assert report["cap"] == 100 and report["patience"] == 3


def test_a_fit_stopped_by_its_cap_is_unconverged():
    report = DeepChrome(**SMALL, epochs=2, patience=5).fit(TRAIN, VALID).training_report()
    assert report == {**report, "stopped_by": "cap", "converged": False, "epochs_run": 2}


def test_a_stop_rule_ends_training_keeps_the_best_epoch_and_is_named():
    seen = []

    def time_limit(epoch, metrics):
        seen.append(metrics["valid_auroc"])
        if epoch == 2:
            raise StopTraining("time")

    model = DeepChrome(**SMALL, epochs=100, patience=5).fit(TRAIN, VALID, on_epoch=time_limit)
    report = model.training_report()
    assert report["stopped_by"] == "time" and report["converged"] is False and report["epochs_run"] == 3
    assert report["best_epoch"] == int(np.argmax(seen))
    with pytest.raises(ValueError, match="unknown stop reason"):
        StopTraining("bored")


def test_classical_models_report_their_own_notion_of_convergence():
    lr = LogisticRegressionModel().fit(TRAIN, VALID).training_report()
    assert lr["stopped_by"] == "tolerance" and lr["converged"] and lr["epochs_run"] < 1000
    assert LogisticRegressionModel(max_iter=1).fit(TRAIN, VALID).training_report()["stopped_by"] == "cap"
    assert RandomForestModel(n_estimators=10).fit(TRAIN, VALID).training_report()["stopped_by"] == "complete"
    xgb = XGBoostModel(n_estimators=3, early_stopping_rounds=50).fit(TRAIN, VALID).training_report()
    assert xgb["stopped_by"] == "cap" and xgb["converged"] is False and xgb["epochs_run"] == 3
    stopped = XGBoostModel(n_estimators=2000, learning_rate=0.3, early_stopping_rounds=5).fit(TRAIN, VALID)
    report = stopped.training_report()
    assert report["stopped_by"] == "patience" and report["epochs_run"] == report["best_epoch"] + 1 + 5


@pytest.mark.slow
def test_the_engine_records_how_every_fit_ended(tmp_path, monkeypatch):
    from chrombench.engine.run import RunConfig, run_evaluations

    monkeypatch.setenv("CHROMBENCH_HOME", str(tmp_path / "home"))
    cfg = RunConfig(models=["logistic-regression"], tasks=["E003"], genes={"train": 300, "valid": 150, "test": 150},
                    trials=0, seeds=[0, 1], output_dir=tmp_path / "out")
    (summary,) = run_evaluations(cfg, progress=False)
    assert summary["training"] == {**summary["training"], "stopped_by": ["tolerance", "tolerance"], "converged": True,
                                   "n_unconverged": 0}
    assert summary["tuning"]["n_trials"] == 0 and summary["tuning"]["sampler"].startswith("none")
    seeds = results.read_records(tmp_path / "out" / "results", kind="seed")
    assert {r["training"]["stopped_by"] for r in seeds} == {"tolerance"} and len(seeds) == 2
    assert not any(results.problems({k: v_ for k, v_ in r.items() if k != "_path"}) for r in seeds)


# -- validation ----------------------------------------------------------------------------------------------

def test_validate_refuses_unconverged_fits_naming_file_and_row(tmp_path, records_factory, synthetic_data_only,
                                                                simulated_home):
    bundle = make_bundle(tmp_path, records_factory, training={"my-model": UNCONVERGED_FIT})
    report = v.validate_bundle(bundle, fake_registry())
    assert not report.ok
    why = reasons(report, "records/E112/seed-1.json")
    assert why and "my-model on E112 seed 1 is unconverged: stopped by cap after 2 epochs (cap 2" in why[0]
    res = CliRunner().invoke(main, ["leaderboard", "validate", str(bundle)])
    assert res.exit_code == 1 and "E112/seed-1.json" in res.output and "unconverged" in res.output


def test_a_declared_smoke_test_gets_warnings_not_a_rejection(tmp_path, records_factory, synthetic_data_only):
    bundle = make_bundle(tmp_path, records_factory, training={"my-model": UNCONVERGED_FIT}, smoke_test=True)
    report = v.validate_bundle(bundle, fake_registry())
    assert report.ok and len(report.warnings) == 3 * 3
    assert all("smoke test: warning only" in w.reason for w in report.warnings)


def test_roadmap56_bundles_need_one_seed_per_task_and_three_on_dev_tasks(tmp_path, records_factory,
                                                                         synthetic_data_only):
    policy = lambda task: 3 if task in ROADMAP.dev_tasks else 1  # noqa: E731
    good = make_bundle(tmp_path / "a", records_factory, tasks=ROADMAP.tasks, seeds=policy, suite="roadmap56")
    report = v.validate_bundle(good, fake_registry())
    assert report.ok, report.rejections[:3]
    assert json.loads((good / "bundle.json").read_text())["n_seeds"] == 1

    thin = make_bundle(tmp_path / "b", records_factory, tasks=ROADMAP.tasks, seeds=1, suite="roadmap56")
    report = v.validate_bundle(thin, fake_registry())
    assert sorted(r.file.rsplit("/", 1)[1] for r in report.rejections) == sorted(ROADMAP.dev_tasks)
    assert "1 seeds [0]; at least 3 are required on roadmap56 development tasks" in reasons(report, "E003")[0]

    missing = make_bundle(tmp_path / "c", records_factory, tasks=ROADMAP.tasks[:-1], seeds=policy, suite="roadmap56")
    assert any(f"task {ROADMAP.tasks[-1]} of suite 'roadmap56' is missing" in r.reason
               for r in v.validate_bundle(missing, fake_registry()).rejections)

    other = fake_registry({"E047": "0" * 64})  # the registry's E047 is other data than the records'
    assert any("E047" in r.file and "content hash" in r.reason for r in v.validate_bundle(good, other).rejections)


def test_a_duplicated_model_task_seed_is_refused(tmp_path, records_factory, synthetic_data_only):
    bundle = make_bundle(tmp_path, records_factory)
    manifest = json.loads((bundle / "bundle.json").read_text())
    shutil.copy(bundle / "records/E003/seed-1.json", bundle / "records/E003/seed-1-again.json")
    manifest["records"]["records/E003/seed-1-again.json"] = manifest["records"]["records/E003/seed-1.json"]
    manifest["records_digest"] = v.records_digest(manifest["records"].values())
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    why = reasons(v.validate_bundle(bundle, fake_registry()), "records/E003")
    assert any("duplicate seed records [0, 1, 1, 2]" in w for w in why), why


# -- the page ------------------------------------------------------------------------------------------------

def test_the_page_marks_unconverged_numbers_and_states_the_data(tmp_path, records_factory, records_writer):
    from chrombench.leaderboard import render as lb

    recs = records_factory({"lstm": {"E003": [0.6, 0.61, 0.62], "E112": [0.6, 0.6, 0.6], "E123": [0.8, 0.8, 0.8]},
                            "deepchrome": {"E003": [0.7, 0.7, 0.71], "E112": [0.65, 0.66, 0.67], "E123": [0.9] * 3}},
                           training={"lstm": UNCONVERGED_FIT}, oracle={"E003": 0.8, "E112": 0.75, "E123": 0.95})
    records_writer(tmp_path / "out", recs)
    r = lb.render([tmp_path / "out"], tmp_path / "board", n_boot=0)
    md = r.markdown.read_text()
    assert "| lstm † |" in md and "0.610 ± 0.010 †" in md and lb.UNCONVERGED_NOTE in md
    assert "| deepchrome |" in md and "patience 9" in md and "† cap 9" in md
    section = r.board.sections[0]
    assert f"content hash {section.content_hash[:16]}" in md and len(section.content_hashes) == 3
    rows = {(row["model"], row["task"]): row for row in csv.DictReader(r.csv.open())}
    assert rows[("lstm", "E003")]["unconverged"] == "3" and rows[("deepchrome", "E003")]["unconverged"] == "0"
    assert rows[("lstm", "E112")]["reproduce"] == "chrombench run -m lstm --suite quick -t E112 --seeds 0,1,2"
    # published DeepChrome AUROC per task (E112 0.68 < E003 0.77 < E123 0.89) against the oracle: same order
    assert "Spearman ρ = 1.00 between the published DeepChrome AUROC (real data) and oracle (ceiling) over 3" in md
    assert "<figcaption>Calibration, not validation: per task, the published DeepChrome AUROC" in r.html.read_text()


def test_suites_declare_their_protocol():
    quick = get_suite("quick")
    assert quick.fixed and quick.seeds_for("E003") == [0, 1, 2] and "attentivechrome" in quick.models
    assert ROADMAP.fixed and len(ROADMAP.tasks) == 56 and ROADMAP.genes is None
    assert ROADMAP.seeds_for("E004") == [0] and ROADMAP.seeds_for("E112") == [0, 1, 2]


def test_one_cell_of_a_suite_is_rerun_under_the_suites_protocol(tmp_path, monkeypatch):
    from chrombench.engine.run import RunConfig, plan
    from chrombench.errors import ChrombenchError

    monkeypatch.setenv("CHROMBENCH_HOME", str(tmp_path / "home"))
    p = plan(RunConfig(models=["logistic-regression"], tasks=["E112"], suite="roadmap56", output_dir=tmp_path / "o"))
    assert p.tasks == [("simremc", "E112")] and p.suite == "roadmap56" and p.genes is None
    assert p.fixed_hyperparameters and p.seeds_for("E112") == [0, 1, 2]
    with pytest.raises(ChrombenchError, match="not part of suite 'quick'"):
        plan(RunConfig(models=["logistic-regression"], tasks=["E004"], suite="quick", output_dir=tmp_path / "o"))
