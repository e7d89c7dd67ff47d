"""Models from other packages: a distribution that declares an entry point in the group
``chrombench.models`` appears in `chrombench models list` and trains, runs, bundles and validates like
a zoo model. The distribution is a tiny one written here (a module and a ``.dist-info`` with
``entry_points.txt``) on sys.path of a fresh process: no network, no pip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent('''
    """A third party's model: per-mark promoter means into a least-squares scorer."""
    import numpy as np
    from chrombench.models.contract import ChromModel, check_counts, fit_report

    class PromoterMeans(ChromModel):
        """Least squares on the promoter's mean log counts per mark."""
        name = "promoter-means"
        family = "plugin-test"
        description = "least squares on promoter mean log counts (an entry-point plugin)"
        param_ranges = {"l2": "[0, inf)"}

        def __init__(self, l2: float = 1.0, seed: int = 0):
            self.l2 = l2
            self.seed = seed

        @classmethod
        def search_space(cls, trial):
            return {"l2": trial.suggest_float("l2", 1e-3, 10.0, log=True)}

        def _f(self, X):
            X = np.log1p(np.asarray(check_counts(X), dtype=float))[:, 40:60, :].mean(axis=1)
            return np.c_[X, np.ones(len(X))]

        def fit(self, train, valid=None, on_epoch=None):
            F = self._f(train.X)
            self.w_ = np.linalg.solve(F.T @ F + self.l2 * np.eye(6), F.T @ (2.0 * train.y - 1))
            return self

        def predict_proba(self, X):
            p = 1 / (1 + np.exp(-3 * self._f(X) @ self.w_))
            return np.column_stack([1 - p, p])

        def n_parameters(self):
            return 6

        def training_report(self):
            return fit_report("complete", iterative=False)

        def _save_state(self, directory):
            np.save(directory / "w.npy", self.w_)
            return {}

        def _load_state(self, directory, config):
            self.w_ = np.load(directory / "w.npy")
''')


def make_distribution(root: Path, entry: str = "promoter-means = acme_chrom.models:PromoterMeans") -> Path:
    site = root / "site"
    (site / "acme_chrom").mkdir(parents=True)
    (site / "acme_chrom" / "__init__.py").write_text("")
    (site / "acme_chrom" / "models.py").write_text(PLUGIN)
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


def test_an_entry_point_model_lists_trains_runs_and_bundles_like_a_zoo_model(tmp_path):
    site, home = make_distribution(tmp_path), tmp_path / "home"
    listed = chrombench(site, home, tmp_path, "models", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("promoter-means"))
    assert "plugin-test" in line and "[plugin:acme-chrom]" in line

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


def test_the_protocol_is_declared_not_probed():
    """Seed, device, budgets and explain methods come from what a class declares."""
    from chrombench.baselines.attentivechrome import AttentiveChrome, PlainLSTM
    from chrombench.baselines.classical import RandomForestModel
    from chrombench.engine.budgets import default_budget
    from chrombench.engine.protocol import fixed_params
    from chrombench.models.contract import ChromModel
    from chrombench.models.protocol import DEFAULT_TUNING

    class Legacy(ChromModel):  # written before the protocol: found by keyword name
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
