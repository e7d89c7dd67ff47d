"""Ablation comparison: paired deltas, wins, Wilcoxon over tasks; and `chrombench ablate` end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import wilcoxon

from chrombench.cli import main
from chrombench.data.load import load_task
from chrombench.engine import ablate
from chrombench.engine.ablate import compare, format_comparison, wilcoxon_p

TOY = str(Path(__file__).with_name("engine_toy_models.py"))


def summary(model: str, task: str, auroc: float) -> dict:
    return {"kind": "summary", "model": {"name": model}, "task": {"name": task},
            "metrics": {"test_auroc": {"mean": auroc, "std": 0.0, "values": [auroc]}}}


FULL = {"E003": 0.80, "E004": 0.75, "E005": 0.90, "E006": 0.70}
NO_BETA = {"E003": 0.78, "E004": 0.76, "E005": 0.85, "E006": 0.64}  # worse on 3 of 4 tasks


def summaries(*extra) -> list[dict]:
    out = [summary("attentivechrome", t, v) for t, v in FULL.items()]
    out += [summary("attentivechrome-no-beta", t, v) for t, v in NO_BETA.items()]
    return out + list(extra)


def test_deltas_wins_and_wilcoxon_by_hand():
    c = compare(summaries())
    (row,) = c.rows
    deltas = [NO_BETA[t] - FULL[t] for t in FULL]
    assert row["deltas"] == pytest.approx(dict(zip(FULL, deltas)))
    assert row["mean_delta"] == pytest.approx(np.mean(deltas)) and row["mean_delta"] < 0
    assert (row["wins"], row["ties"], row["n"]) == (3, 0, 4)
    assert row["p_value"] == pytest.approx(wilcoxon(deltas).pvalue)
    assert row["p_value"] == pytest.approx(0.25)  # exact test, n=4, rank sum of positives = 1
    text = format_comparison(c)
    assert "attentivechrome-no-beta" in text and "3/4" in text and "0.25" in text


def test_one_task_and_ties_are_reported_not_crashed():
    one = compare([summary("attentivechrome", "E003", 0.8), summary("lstm", "E003", 0.7)])
    assert one.rows[0]["p_value"] is None and one.rows[0]["p_text"] == "n/a (needs >= 2 tasks)"
    tied = compare([summary("attentivechrome", t, 0.8) for t in ("E003", "E004")]
                   + [summary("lstm", t, 0.8) for t in ("E003", "E004")])
    assert tied.rows[0]["p_text"] == "n/a (all tasks tied)" and tied.rows[0]["ties"] == 2
    assert "(2 tied)" in format_comparison(tied)
    assert wilcoxon_p([0.0, -0.1, -0.2])[0] is not None  # some ties: still a p-value (zsplit)


def test_missing_full_model_says_so():
    assert "nothing to compare" in format_comparison(compare([summary("lstm", "E003", 0.7)]))


@pytest.fixture
def two_tasks(home):
    for t in ("E003", "E112"):
        load_task(t, "simremc", genes={"train": 150, "valid": 80, "test": 80})


@pytest.mark.slow
def test_ablate_command_runs_every_variant_under_the_same_protocol(tmp_path, monkeypatch, two_tasks):
    # the zoo's AttentiveChrome variants are slow to train; toy stand-ins exercise the same path
    monkeypatch.setattr(ablate, "ABLATIONS", (f"full={TOY}:TinyLogistic", f"frozen={TOY}:Constant"))
    res = CliRunner().invoke(main, ["ablate", "-t", "E003", "-t", "E112", "--genes", "150,80,80", "--trials", "2",
                                    "--seeds", "0-1", "--output-dir", str(tmp_path / "out"), "--no-progress",
                                    "--workers", "1"])  # the patched list lives in this process only
    assert res.exit_code == 0, res.output
    assert "Test AUROC of full" in res.output and "frozen" in res.output and "/2" in res.output
    recs = sorted((tmp_path / "out" / "results" / "simremc").glob("*/*/summary.json"))
    assert [p.parts[-3:-1] for p in recs] == [("frozen", "E003"), ("frozen", "E112"), ("full", "E003"), ("full", "E112")]
