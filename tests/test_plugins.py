"""Models from other packages: a distribution that declares an entry point in the group
``chrombench.models`` appears in `chrombench models list` and trains, runs, bundles and validates like
a zoo model. The distribution is a tiny one written here (a module and a ``.dist-info`` with
``entry_points.txt``) on sys.path of a fresh process: no network, no pip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = (Path(__file__).with_name("toy_plugin.py")).read_text()  # the module the distribution holds


def make_distribution(root: Path, entry: str = "promoter-means = acme_chrom.models:PromoterMeans",
                      module: str = PLUGIN) -> Path:
    site = root / "site"
    (site / "acme_chrom").mkdir(parents=True)
    (site / "acme_chrom" / "__init__.py").write_text("")
    (site / "acme_chrom" / "models.py").write_text(module)
    info = site / "acme_chrom-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-chrom\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[chrombench.models]\n{entry}\n")
    return site


def chrombench(site: Path, home: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "CHROMBENCH_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "chrombench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow  # five chrombench processes: list, train, run, bundle, validate
def test_an_entry_point_model_lists_trains_runs_and_bundles_like_a_zoo_model(tmp_path):
    site, home = make_distribution(tmp_path), tmp_path / "home"
    listed = chrombench(site, home, tmp_path, "models", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("promoter-means"))
    assert "third-party-test" in line and "[plugin:acme-chrom]" in line

    trained = chrombench(site, home, tmp_path, "train", "-m", "promoter-means", "-t", "E003", "--suite", "quick",
                         "-o", "model")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert json.loads((tmp_path / "model/config.json").read_text())["model"] == "promoter-means"

    ran = chrombench(site, home, tmp_path, "run", "-m", "promoter-means", "-t", "E003", "--genes", "300,150,150",
                     "--trials", "2", "--no-progress", "--workers", "1")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "promoter-means" in ran.stdout
    bundled = chrombench(site, home, tmp_path, "leaderboard", "bundle", "chrombench-out/results", "--out", "lb")
    assert bundled.returncode == 0, bundled.stdout[-2000:] + bundled.stderr[-2000:]
    validated = chrombench(site, home, tmp_path, "leaderboard", "validate", "lb")
    assert validated.returncode == 0 and "promoter-means" in validated.stdout


def test_a_plugin_cannot_take_a_zoo_name(tmp_path):
    site = make_distribution(tmp_path, entry="attentivechrome = acme_chrom.models:PromoterMeans")
    listed = chrombench(site, tmp_path / "home", tmp_path, "models", "list")
    assert listed.returncode == 0
    assert "plugin attentivechrome (acme-chrom): the name 'attentivechrome' is taken by the zoo" in listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("attentivechrome "))
    assert "[plugin" not in line


def test_a_plugin_without_a_required_method_is_refused_in_one_line_naming_it(tmp_path):
    """The author of a plugin that forgot its persistence learns it before any fit, from one line that
    names the model, its class and the methods, not from a traceback once training is over."""
    unsaved = PLUGIN.split("    def _save_state")[0]
    assert "_load_state" not in unsaved and "def fit" in unsaved
    site = make_distribution(tmp_path, module=unsaved)
    trained = chrombench(site, tmp_path / "home", tmp_path, "train", "-m", "promoter-means", "-t", "E003",
                         "--suite", "quick", "-o", "model")
    assert trained.returncode != 0 and "Traceback" not in trained.stderr, trained.stderr[-2000:]
    lines = [ln for ln in trained.stderr.splitlines() if "_save_state" in ln]
    assert len(lines) == 1, trained.stderr
    assert "model promoter-means (acme_chrom.models:PromoterMeans)" in lines[0]
    assert "defines no _save_state() or _load_state(), which every model must" in lines[0]
    assert "training" not in trained.stderr and not (tmp_path / "model").exists()  # refused before any fit


def test_the_protocol_is_declared_not_probed():
    """Seed, device, budgets and explain methods come from what a class declares."""
    from chrombench.baselines.attentivechrome import AttentiveChrome, PlainLSTM
    from chrombench.baselines.classical import RandomForestModel
    from chrombench.engine.budgets import default_budget
    from chrombench.engine.evaluation import fixed_params
    from chrombench.models.contract import ChromModel
    from chrombench.models.contract import DEFAULT_TUNING

    class Legacy(ChromModel):  # declares nothing: its seed and device are found by keyword name
        def __init__(self, random_state: int = 0, device: str = "cpu"):
            self.random_state, self.device = random_state, device

    class Seedless(Legacy):
        seed_param = None  # declares it takes no seed, whatever its keywords
        device_param = None

    assert fixed_params(AttentiveChrome, 3, "cpu") == {"seed": 3, "device": "cpu"}
    assert fixed_params(RandomForestModel, 3, "cpu") == {"seed": 3}
    assert fixed_params(Legacy, 3, "cpu") == {"random_state": 3, "device": "cpu"}
    assert fixed_params(Seedless, 3, "cpu") == {}
    assert default_budget(RandomForestModel, quick=True).overrides == {"n_estimators": 150}
    assert default_budget(AttentiveChrome, quick=True).held["hidden_bins"] == 32
    assert default_budget(Legacy, quick=False).trials == DEFAULT_TUNING["full"].trials
    assert default_budget(Legacy, quick=False, trials=3).trials == 3
    from chrombench.explain.methods import available_methods

    assert available_methods(PlainLSTM()) == ["saliency", "integrated-gradients"]
    assert available_methods(AttentiveChrome()) == ["attention", "saliency", "integrated-gradients"]
