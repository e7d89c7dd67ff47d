"""``chrombench models list | train | predict | import-weights`` end to end through click's CliRunner.

Every test runs under its own empty ``$CHROMBENCH_HOME`` (the autouse ``home`` fixture of conftest).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from chrombench.baselines.attentivechrome import AttentiveChrome
from chrombench.cli import main
from chrombench.data.csvformat import read_split
from chrombench.models.io import load_model
from chrombench.models.registry import MODELS

from toydata import TOY  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread(single_thread_torch):
    """Single-threaded torch: on a busy 2-core machine OpenMP threads mostly wait for each other."""


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def toy_task(home):
    """The toy sample imported as a one-task dataset "toy" (10 genes per split)."""
    from chrombench.data.importer import import_dataset

    import_dataset(TOY, "toy")
    return "toy"


def read_predictions(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_models_list_shows_the_whole_zoo_as_table_and_json():
    table = run("models", "list")
    assert table.exit_code == 0
    for name in MODELS.names():
        assert name in table.output
    rows = json.loads(run("models", "list", "--format", "json").output)
    assert [r["name"] for r in rows] == MODELS.names()
    ac = next(r for r in rows if r["name"] == "attentivechrome")
    assert ac["available"] and ac["family"] == "recurrent" and ac["parameters"] == AttentiveChrome().n_parameters()
    assert ac["citation"].startswith("Singh") and "NeurIPS 2017" in ac["citation"]
    shallow = next(r for r in rows if r["name"] == "shallowchrome")
    assert shallow["parameters"] == 6 and "BMC Bioinformatics" in shallow["citation"]
    linear = next(r for r in rows if r["name"] == "deepchrome2")
    assert linear["parameters"] == 12 and "arXiv:2209.11923" in linear["citation"]
    assert "Bioinformatics 41(2)" in next(r for r in rows if r["name"] == "patternchrome")["citation"]


def test_models_list_survives_a_model_that_cannot_be_imported(monkeypatch):
    monkeypatch.setitem(MODELS._entries, "svm", "chrombench.baselines.not_installed:SVMModel")
    result = run("models", "list")
    assert result.exit_code == 0
    line = next(l for l in result.output.splitlines() if l.startswith("svm "))
    assert "unavailable:" in line and "not_installed" in line
    assert "attentivechrome" in result.output


def test_train_saves_a_model_and_reports_valid_auroc(toy_task, tmp_path):
    out = tmp_path / "ac"
    result = run("train", "-m", "attentivechrome", "-t", toy_task, "--epochs", 2, "--batch-size", 8, "--seed", 3,
                 "--device", "cpu", "--param", "dropout=0.1", "--param", "hidden_bins=16", "--no-progress", "-o", out)
    assert result.exit_code == 0, result.output
    assert "valid AUROC" in result.output and "epoch 1/" not in result.output  # --no-progress
    model = load_model(out)
    assert model.get_params() == {**AttentiveChrome().get_params(), "epochs": 2, "batch_size": 8, "seed": 3,
                                       "device": "cpu", "dropout": 0.1, "hidden_bins": 16}
    assert len(model.history_["epochs"]) <= 2


def test_train_accepts_a_module_target_and_shows_progress(toy_task, tmp_path):
    result = run("train", "-m", "chrombench.baselines.deepchrome:DeepChrome", "-t", toy_task, "--epochs", 1,
                 "--device", "cpu", "-o", tmp_path / "dc")
    assert result.exit_code == 0, result.output
    assert "epoch 1/1: " in result.output and "valid AUROC" in result.output  # per-epoch line off a terminal


@pytest.mark.parametrize("args, expected", [
    (["-m", "deepchrome", "--param", "lr_max=3"], "deepchrome has no parameter 'lr_max'; its parameters are:"),
    (["-m", "deepchrome", "--param", "dropout=high"], "expects a float"),
    (["-m", "deepchrome", "--param", "dropout"], "is not KEY=VALUE"),
    (["-m", "logistic-regression", "--epochs", "3"], "logistic-regression has no 'epochs' parameter"),
    (["-m", "attentivechrom"], "did you mean 'attentivechrome'"),
])
def test_train_usage_errors_exit_2_and_write_nothing(toy_task, tmp_path, args, expected):
    result = CliRunner().invoke(main, ["train", "-t", toy_task, "-o", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    assert expected in result.output
    assert not (tmp_path / "out").exists()


def test_train_refuses_to_replace_a_folder_that_is_not_a_model(toy_task, tmp_path):
    precious = tmp_path / "results"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["train", "-m", "deepchrome", "-t", toy_task, "-o", str(precious)])
    assert result.exit_code == 1 and "not a saved chrombench model" in result.output
    assert (precious / "notes.txt").read_text() == "keep me"


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "ac"
    train = read_split(TOY / "train.csv")
    AttentiveChrome(epochs=1, batch_size=8, device="cpu").fit(train, read_split(TOY / "valid.csv")).save(path)
    return path


def test_predict_writes_ids_as_written_probabilities_and_labels(trained_dir, tmp_path):
    out = tmp_path / "preds.csv"
    result = run("predict", trained_dir, TOY / "test.csv", "-o", out)
    assert result.exit_code == 0, result.output
    rows = read_predictions(out)
    test = read_split(TOY / "test.csv")
    raw_ids = [line.split(",")[0] for line in (TOY / "test.csv").read_text().splitlines()[::100]]
    assert [r["gene_id"] for r in rows] == raw_ids  # leading zeros kept
    expected = load_model(trained_dir).predict_proba(test.X)[:, 1]
    np.testing.assert_allclose([float(r["probability"]) for r in rows], expected, atol=1e-8)
    assert [int(r["label"]) for r in rows] == test.y.tolist()


def test_predict_reports_the_file_and_line_of_bad_input(trained_dir, tmp_path):
    lines = (TOY / "test.csv").read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:150] + lines[151:]) + "\n")  # bin 51 of the second gene goes missing
    result = CliRunner().invoke(main, ["predict", str(trained_dir), str(bad), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 2
    assert "bad.csv, line 151" in result.output
    assert not (tmp_path / "p.csv").exists()


def test_predict_says_when_a_model_was_saved_in_another_format(trained_dir, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(trained_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["chrombench_model_format"] = 99
    (other / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(main, ["predict", str(other), str(TOY / "test.csv"), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "model format 99" in result.output


def _edited_copy(trained_dir, dest: Path, **changes) -> Path:
    import shutil

    shutil.copytree(trained_dir, dest)
    config = json.loads((dest / "config.json").read_text())
    for key, value in changes.items():
        if key == "params":
            config["params"].update(value)
        else:
            config[key] = value
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def test_predict_without_a_label_column_writes_no_label(trained_dir, tmp_path):
    unlabelled = tmp_path / "genes.csv"
    unlabelled.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in (TOY / "test.csv").read_text().splitlines()))
    out = tmp_path / "preds.csv"
    result = run("predict", trained_dir, unlabelled, "-o", out)
    assert result.exit_code == 0, result.output
    rows = read_predictions(out)
    assert list(rows[0]) == ["gene_id", "probability"] and len(rows) == 10
    expected = load_model(trained_dir).predict_proba(read_split(TOY / "test.csv").X)[:, 1]
    np.testing.assert_allclose([float(r["probability"]) for r in rows], expected, atol=1e-8)


def test_a_model_saved_on_a_gpu_predicts_on_this_cpu(trained_dir, tmp_path):
    gpu = _edited_copy(trained_dir, tmp_path / "gpu", params={"device": "cuda"})
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: nothing to fall back from")
    result = run("predict", gpu, TOY / "test.csv", "-o", tmp_path / "p.csv")  # --device auto
    assert result.exit_code == 0, result.output
    strict = CliRunner().invoke(main, ["predict", str(gpu), str(TOY / "test.csv"), "-o", str(tmp_path / "q.csv"),
                                       "--device", "cuda"])
    assert strict.exit_code != 0 and "no CUDA GPU" in strict.output


def test_predict_names_the_version_whose_parameters_it_does_not_know(trained_dir, tmp_path):
    newer = _edited_copy(trained_dir, tmp_path / "newer", chrombench_version="9.0.0", params={"warmup": 3})
    result = CliRunner().invoke(main, ["predict", str(newer), str(TOY / "test.csv"), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 2
    assert "saved by chrombench 9.0.0 with parameters warmup" in result.output
    assert not (tmp_path / "p.csv").exists()


THIRD_PARTY = """
import os
from pathlib import Path
from chrombench.baselines.classical import LogisticRegressionModel

Path(os.environ["SENTINEL"]).write_text("imported")


class MyModel(LogisticRegressionModel):
    name = ""  # not a zoo name: saved as this file's target
"""


@pytest.mark.slow  # chrombench predict in two subprocesses
def test_a_third_party_model_reloads_in_a_new_process_only_with_trust_code(toy_task, tmp_path, monkeypatch):
    import subprocess
    import sys

    source = tmp_path / "my_model.py"
    source.write_text(THIRD_PARTY)
    monkeypatch.setenv("SENTINEL", str(tmp_path / "trained"))
    assert run("train", "-m", f"{source}:MyModel", "-t", toy_task, "-o", tmp_path / "mine").exit_code == 0
    assert json.loads((tmp_path / "mine" / "config.json").read_text())["model"] == f"{source}:MyModel"

    def predict(*extra):
        env = {**__import__("os").environ, "SENTINEL": str(tmp_path / "predicted")}
        return subprocess.run([sys.executable, "-m", "chrombench", "predict", str(tmp_path / "mine"),
                               str(TOY / "test.csv"), "-o", str(tmp_path / "p.csv"), *extra],
                              env=env, capture_output=True, text=True)

    refused = predict()
    assert refused.returncode == 2 and "third-party code" in refused.stderr and "--trust-code" in refused.stderr
    assert not (tmp_path / "predicted").exists()  # its code did not run
    trusted = predict("--trust-code")  # a fresh process: the saved target must name the file itself
    assert trusted.returncode == 0, trusted.stderr
    assert (tmp_path / "predicted").exists() and len(read_predictions(tmp_path / "p.csv")) == 10


def test_a_config_naming_something_other_than_a_model_class_is_refused(trained_dir, tmp_path):
    evil = _edited_copy(trained_dir, tmp_path / "evil", model="os:system")
    result = CliRunner().invoke(main, ["predict", str(evil), str(TOY / "test.csv"), "-o", str(tmp_path / "p.csv"),
                                       "--trust-code"])
    assert result.exit_code == 2 and "not a chrombench model class" in result.output


@pytest.mark.parametrize("bad, words", [(np.nan, "NaN or infinite"), (-1.0, "negative count")])
def test_predict_proba_refuses_counts_that_are_not_counts(trained_dir, bad, words):
    from chrombench.errors import DataFormatError

    X = read_split(TOY / "test.csv").X.astype(np.float32)
    X[3, 50, 2] = bad
    with pytest.raises(DataFormatError, match=words):
        load_model(trained_dir).predict_proba(X)


def test_import_weights_then_predict_reproduces_the_source_model(tmp_path):
    torch.manual_seed(11)
    source = AttentiveChrome(input_transform="raw", device="cpu")
    source.module_ = source._build_module().eval()
    weights = tmp_path / "E003_attchrome_avgAUC_model.pt"
    torch.save(source.to_reference_state_dict(), weights)
    result = run("import-weights", weights, "--arch", "attentivechrome", "-o", tmp_path / "ref")
    assert result.exit_code == 0, result.output
    assert "raw-count inputs" in result.output
    run("predict", tmp_path / "ref", TOY / "test.csv", "-o", tmp_path / "p.csv")
    got = [float(r["probability"]) for r in read_predictions(tmp_path / "p.csv")]
    np.testing.assert_allclose(got, source.predict_proba(read_split(TOY / "test.csv").X)[:, 1], atol=1e-5)


def test_import_weights_names_the_problems_and_writes_nothing(tmp_path):
    source = AttentiveChrome(device="cpu")
    source.module_ = source._build_module()
    state = source.to_reference_state_dict()
    state.pop("fdiff1_1.bias")
    state["extra.weight"] = torch.zeros(3)
    weights = tmp_path / "bad.pt"
    torch.save(state, weights)
    result = CliRunner().invoke(main, ["import-weights", str(weights), "-o", str(tmp_path / "ref")])
    assert result.exit_code == 2
    assert "missing key 'fdiff1_1.bias'" in result.output and "unexpected key 'extra.weight'" in result.output
    assert not (tmp_path / "ref").exists()


def test_help_texts_teach_by_example():
    for command in ("train", "predict", "import-weights", "models"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output
