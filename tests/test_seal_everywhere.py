"""One seal, everywhere: while any model fits (run, train, transfer, submit), the test split of the
task being fitted is out of reach through every chrombench loader, however its folder is spelled."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from chrombench.cli import main
from chrombench.data import catalog, importer, taskdir
from chrombench.engine import evaluation as protocol
from chrombench.engine.run import RunConfig, run_evaluations
from chrombench.engine.transfer import transfer_matrix
from chrombench.errors import ProtocolViolation

CHEAT = str(Path(__file__).with_name("seal_cheats.py")) + ":Cheat"
WAYS = ["load", "load-lower", "dotdot", "dotdot-other", "symlink", "copy", "csv"]


@pytest.fixture
def tiny(home, tmp_path, write_task_csvs, monkeypatch):
    """An imported one-task dataset ``tiny`` (60 genes a split) and the paths each way needs."""
    src = tmp_path / "src"
    write_task_csvs(src, n_genes=60)
    importer.import_dataset(src, "tiny")
    folder = catalog.task_folders("tiny", "tiny")[0]
    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    monkeypatch.setenv("CHEAT_TASK", "tiny/tiny")
    return {"symlink": link, "copy": copy, "csv": src / "test.csv"}


def _cheat(monkeypatch, tiny, how):
    monkeypatch.setenv("CHEAT_HOW", how)
    if how in tiny:
        monkeypatch.setenv("CHEAT_PATH", str(tiny[how]))


@pytest.mark.parametrize("how", WAYS)
def test_every_loader_refuses_the_sealed_test_split(monkeypatch, tiny, how):
    """The store by name, its folder reader through '..', a symlink or a copy, and the CSV reader."""
    import sys

    sys.path.insert(0, str(Path(CHEAT.split(":")[0]).parent))
    from seal_cheats import steal

    _cheat(monkeypatch, tiny, how)
    with protocol.sealed_test("tiny", "tiny"):
        with pytest.raises(ProtocolViolation, match="tiny/tiny is sealed"):
            steal(how)
    assert steal(how).sum() > 0, "unsealed again afterwards: the same way reads the labels"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["dotdot-other", "csv"])
def test_run_refuses_a_plugin_that_reaches_for_the_test_labels(tmp_path, monkeypatch, tiny, how):
    _cheat(monkeypatch, tiny, how)
    cfg = RunConfig(models=[CHEAT], tasks=["tiny"], seeds=[0], trials=0, output_dir=tmp_path / "out")
    with pytest.raises(ProtocolViolation, match="tiny/tiny is sealed"):
        run_evaluations(cfg, progress=False)
    assert not list((tmp_path / "out").rglob("seed-*.json")), "no record may come out of a violating run"


@pytest.mark.parametrize("how", ["load", "dotdot", "copy"])
def test_train_refuses_every_way_to_the_test_labels(tmp_path, monkeypatch, tiny, how):
    _cheat(monkeypatch, tiny, how)
    result = CliRunner().invoke(main, ["train", "-m", CHEAT, "-t", "tiny", "-o", str(tmp_path / "model")])
    assert result.exit_code != 0
    assert "tiny/tiny is sealed" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("how", ["symlink", "csv"])
def test_transfer_refuses_every_way_to_the_test_labels(monkeypatch, tiny, how):
    _cheat(monkeypatch, tiny, how)
    with pytest.raises(ProtocolViolation, match="tiny/tiny is sealed"):
        transfer_matrix(CHEAT, ["tiny"], device="cpu")


@pytest.mark.slow
def test_an_earlier_seeds_predictions_are_sealed_too(tmp_path, monkeypatch, tiny):
    """Seed 0's predictions file holds the test labels: the fit of seed 1 must not read it."""
    _cheat(monkeypatch, tiny, "predictions")
    monkeypatch.setenv("CHEAT_PATH", str(tmp_path / "out"))
    cfg = RunConfig(models=[CHEAT], tasks=["tiny"], seeds=[0, 1], trials=0, output_dir=tmp_path / "out")
    with pytest.raises(ProtocolViolation, match="sealed"):
        run_evaluations(cfg, progress=False)
    assert list((tmp_path / "out").rglob("seed-0.json")) and not list((tmp_path / "out").rglob("seed-1.json"))


def test_the_seal_lifts_when_the_fit_is_done(tmp_path, tiny):
    """Honest readers after the run (validate, render) still read the same folders."""
    from chrombench.data.csvformat import read_split

    assert taskdir.read_task_dir(tiny["symlink"])[1]["test"].y.sum() > 0
    assert read_split(tiny["csv"]).y.sum() > 0


@pytest.mark.slow
def test_the_simulated_task_is_sealed_through_dotdot_and_the_simulator(tmp_path, monkeypatch, home):
    """Under `train` on simremc (the default dataset): '..' through another task's name, the
    simulator, a lower-case name."""
    monkeypatch.setenv("CHEAT_TASK", "simremc/E003")
    for how in ("dotdot-other", "load-lower", "simulate"):
        monkeypatch.setenv("CHEAT_HOW", how)
        result = CliRunner().invoke(main, ["train", "-m", CHEAT, "-t", "E003", "--quick", "-o", str(tmp_path / how)])
        assert result.exit_code != 0 and "simremc/E003 is sealed" in result.output, (how, result.output)
