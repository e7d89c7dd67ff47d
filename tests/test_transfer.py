"""``chrombench transfer``: an N x N zero-shot AUROC matrix whose diagonal is the within-task result,
with every target's test split out of reach while any model fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.data import load
from chrombench.engine.transfer import transfer_matrix
from chrombench.evaluate import auroc
from chrombench.models.contract import ChromModel

GENES = {"train": 300, "valid": 150, "test": 150}
TASKS = ["E003", "E112", "E123"]


@pytest.fixture(scope="module")
def home(shared_home):
    """The session's shared data cache: the three tasks are simulated once, not once per test."""
    return shared_home


def test_the_diagonal_is_the_within_task_result(home):
    from chrombench.baselines.classical import LogisticRegressionModel

    result = transfer_matrix("lr", TASKS, genes=GENES)
    assert result.model == "logistic-regression" and result.auroc.shape == (3, 3)
    assert np.isfinite(result.auroc).all() and 0.5 < result.off_diagonal_mean < 1
    data = load.load_task("E112", genes=GENES)
    direct = LogisticRegressionModel().fit(data.train, data.valid)
    assert result.auroc[1, 1] == auroc(data.test.y, direct.predict_proba(data.test.X)[:, 1])
    assert set(result.training) == set(TASKS) and all(t["converged"] for t in result.training.values())


class Peeker(ChromModel):
    """Tries to read another cell type's test split while it fits."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, train, valid=None, on_epoch=None):
        load.load_task("E123", genes=GENES)
        return self

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)

    def _save_state(self, directory):
        return {}  # nothing learned

    def _load_state(self, directory, config):
        pass


def test_no_test_split_is_in_reach_while_models_fit(home):
    from chrombench.errors import ChrombenchError

    with pytest.raises(ChrombenchError, match="E123"):
        transfer_matrix(f"{__file__}:Peeker", TASKS, genes=GENES)


def test_the_command_writes_the_matrix_and_heatmap(tmp_path):
    res = CliRunner().invoke(main, ["transfer", "-m", "lr", "-t", "E003", "-t", "E123", "--genes", "300,150,150",
                                    "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "2 x 2 tasks: diagonal mean AUROC" in res.output
    doc = json.loads((tmp_path / "out/transfer.json").read_text())
    assert doc["tasks"] == ["E003", "E123"] and len(doc["auroc"]) == 2 and (tmp_path / "out/transfer.png").stat().st_size
    assert len((tmp_path / "out/transfer.csv").read_text().splitlines()) == 1 + 4
    bad = CliRunner().invoke(main, ["transfer", "-m", "lr", "-t", "E003", "-o", str(tmp_path / "o2")])
    assert bad.exit_code != 0 and "at least two tasks" in bad.output


class PeekingFineTuner(Peeker):
    """Fine-tunes by peeking: tries to read the target's test split while it goes on training."""

    fine_tunes = True

    def fine_tune(self, train, valid=None, on_epoch=None):
        load.load_task("E003", genes=GENES)
        return self


@pytest.fixture(scope="module")
def fine_tuned(home, single_thread_torch, tmp_path_factory):
    """``chrombench transfer --mode fine-tune`` on two tasks, run once for the tests that read it: (its
    output, its folder). Each DeepChrome fit trains to convergence, so a second table costs seconds."""
    out = tmp_path_factory.mktemp("ft") / "ft"
    res = CliRunner().invoke(main, ["transfer", "-m", "deepchrome", "-t", "E003", "-t", "E112", "--genes",
                                    "300,150,150", "--mode", "fine-tune", "-o", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output, out


def test_fine_tune_pretrains_on_the_others_and_keeps_tests_out_of_reach(fine_tuned):
    from chrombench.baselines.deepchrome import DeepChrome
    from chrombench.engine.transfer import fine_tune_table
    from chrombench.errors import ChrombenchError

    result = json.loads((fine_tuned[1] / "transfer.json").read_text())  # the table, exactly as fine_tune_table made it
    assert result["tasks"] == TASKS[:2]
    for target in result["tasks"]:
        assert set(result["auroc"][target]) == {"scratch", "pooled", "fine-tuned"}
        assert all(0.5 < v <= 1 for v in result["auroc"][target].values())
        assert set(result["training"][target]) == {"scratch", "pretrain", "fine-tune"}
    # scratch is the ordinary within-task fit of the model's defaults
    data = load.load_task("E112", genes=GENES)
    direct = DeepChrome().fit(data.train, data.valid)
    assert result["auroc"]["E112"]["scratch"] == pytest.approx(auroc(data.test.y, direct.predict_proba(data.test.X)[:, 1]))
    with pytest.raises(ChrombenchError, match="E003"):  # the target's test split, while fine-tuning
        fine_tune_table(f"{__file__}:PeekingFineTuner", TASKS[:2], genes=GENES)
    with pytest.raises(ChrombenchError, match="cannot be fine-tuned"):
        fine_tune_table("lr", TASKS[:2], genes=GENES)


def test_fine_tune_cli_writes_the_table_and_its_plot(fine_tuned):
    output, out = fine_tuned
    assert "fine-tuned" in output
    saved = json.loads((out / "transfer.json").read_text())
    assert saved["mode"] == "fine-tune" and set(saved["means"]) == {"scratch", "pooled", "fine-tuned"}
    assert (out / "transfer.png").stat().st_size > 1000
    assert len((out / "transfer.csv").read_text().splitlines()) == 1 + 2 * 3


def test_fine_tune_folds_pretrain_once_per_fold(tmp_path, single_thread_torch, monkeypatch):
    """--folds 2 over three targets: two pretrainings, each on the tasks outside its fold, shared by
    the fold's targets."""
    from chrombench.baselines.deepchrome import DeepChrome
    from chrombench.engine.transfer import fine_tune_table

    pooled_sizes = []
    real_fit = DeepChrome.fit

    def counting_fit(self, train, valid=None, on_epoch=None):
        pooled_sizes.append(len(train))
        return real_fit(self, train, valid, on_epoch)

    monkeypatch.setattr(DeepChrome, "fit", counting_fit)
    result = fine_tune_table("deepchrome", TASKS, genes=GENES, folds=2)
    assert result.folds == [["E003", "E123"], ["E112"]]
    # fits from scratch: 2 pretrainings (on 1 and on 2 other tasks' genes) and 3 target-alone fits
    assert sorted(pooled_sizes) == [300, 300, 300, 300, 600]
    assert result.fit_seconds["E123"]["pretrain"] == result.fit_seconds["E003"]["pretrain"]
    assert all(0.5 < v <= 1 for t in TASKS for v in result.auroc[t].values())
    res = CliRunner().invoke(main, ["transfer", "-m", "lr", "--suite", "quick", "--folds", "2", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--mode fine-tune" in res.output
