"""Fixtures shared by every test module. Keep them small and generic.

Every test gets its own empty ``$CHROMBENCH_HOME`` so that no test reads or writes a user's real
cache or sees another test's datasets.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from chrombench import N_BINS, N_MARKS
from chrombench.data.arrays import SPLITS, Split
from chrombench.data.csvformat import write_split
from touched_modules import (pytest_addoption, pytest_configure, pytest_sessionfinish,  # noqa: F401 (--touched-modules)
                             pytest_testnodedown)


# One worker unless a test asks for more (--workers N): an extra worker is a fresh process, which
# re-runs the command without a test's in-process monkeypatches, and costs a start-up per command.
os.environ.setdefault("CHROMBENCH_WORKERS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # under `pytest -n 2` each worker already has a core: torch's and the native kernels' threads would
    # only wait on each other (set before torch is imported, which reads it once)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("CHROMBENCH_NATIVE_THREADS", "1")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh, empty ``$CHROMBENCH_HOME`` for each test (autouse).

    Named ``home`` on purpose: a module that wants one home shared by all its tests (to generate
    simulated tasks once, say) defines its own wider-scoped ``home`` fixture, which then takes
    the place of this one for that module.
    """
    path = tmp_path / "chrombench-home"
    path.mkdir()
    monkeypatch.setenv("CHROMBENCH_HOME", str(path))
    return path


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    """One fresh, empty ``$CHROMBENCH_HOME`` for a whole test module, for modules whose tests share
    simulated tasks (generated once, not once per test). Use it by overriding ``home``::

        @pytest.fixture(scope="module")
        def home(module_home):
            return module_home
    """
    path = tmp_path_factory.mktemp("chrombench-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CHROMBENCH_HOME", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def shared_home_dir(tmp_path_factory):
    """The session's shared ``$CHROMBENCH_HOME`` folder (see ``shared_home``), removed at the end: a
    module that validates the shipped roadmap56 bundles fills it with 2.5 GB of simulated tasks."""
    path = tmp_path_factory.mktemp("shared-home")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def shared_home(shared_home_dir):
    """One ``$CHROMBENCH_HOME`` for every module that asks for it, for modules that only *read* simulated
    tasks (and write their outputs elsewhere): the simulator generates a task once per test session
    instead of once per module, which is most of what validating a quick-suite bundle against the
    registry costs (its three quick tasks, ~6 s of CPU). Use it by overriding ``home``::

        @pytest.fixture(scope="module")
        def home(shared_home):
            return shared_home

    A single test gets it from ``simulated_home``."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CHROMBENCH_HOME", str(shared_home_dir))
    yield shared_home_dir
    mp.undo()


@pytest.fixture
def simulated_home(home, shared_home_dir, monkeypatch):
    """``shared_home`` for one test in a module whose other tests keep their own empty home."""
    monkeypatch.setenv("CHROMBENCH_HOME", str(shared_home_dir))
    return shared_home_dir


def random_split(n_genes: int, seed: int, gene_ids=None) -> Split:
    """Small heavy-tailed counts, both labels present, six-digit zero-padded gene IDs by default."""
    rng = np.random.default_rng(seed)
    X = rng.negative_binomial(1, 0.3, size=(n_genes, N_BINS, N_MARKS)).astype(np.int32)
    y = (np.arange(n_genes) % 2).astype(np.int8)  # alternate labels: never a single-class split
    rng.shuffle(y)
    if gene_ids is None:
        gene_ids = [f"{seed * 10_000 + i:06d}" for i in range(n_genes)]
    return Split(np.asarray(gene_ids, dtype=str), X, y)


@pytest.fixture
def split_factory():
    """``split_factory(n_genes, seed, gene_ids=None) -> Split``: a valid random split."""
    return random_split


@pytest.fixture
def write_task_csvs():
    """``write_task_csvs(folder, n_genes=20, seed=0, gene_ids=None) -> {split: Split}``.

    Writes ``folder/{train,valid,test}.csv`` in the archive format (folder is created). ``gene_ids``
    may be a callable ``(split_name, n_genes) -> ids`` to choose the IDs per split.
    """

    def write(folder: Path, n_genes: int = 20, seed: int = 0, gene_ids=None) -> dict[str, Split]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        splits = {}
        for k, name in enumerate(SPLITS):
            ids = gene_ids(name, n_genes) if callable(gene_ids) else None
            splits[name] = random_split(n_genes, seed * len(SPLITS) + k + 1, ids)
            write_split(folder / f"{name}.csv", splits[name])
        return splits

    return write


@pytest.fixture
def snapshot_home(home):
    """``snapshot_home(skip=("downloads",)) -> {relative path: bytes, or None for a folder}``.

    Compare two snapshots to assert that a failed command left the cache and registry.json
    byte-identical.
    """

    def snap(skip=("downloads",)) -> dict:
        out = {}
        for p in sorted(home.rglob("*")):
            rel = p.relative_to(home)
            if rel.parts[0] not in skip:
                out[rel.as_posix()] = None if p.is_dir() else p.read_bytes()
        return out

    return snap


CONVERGED_FIT = {"iterative": True, "stopped_by": "patience", "converged": True, "epochs_run": 12, "best_epoch": 6,
                 "cap": 100, "patience": 5}
UNCONVERGED_FIT = {"iterative": True, "stopped_by": "cap", "converged": False, "epochs_run": 2, "best_epoch": 1,
                   "cap": 2, "patience": 5}


def synthetic_records(aurocs: dict, *, dataset: str = "simremc", version: str | None = None,
                      simulated: bool = True, suite: str | None = "quick", oracle: dict | None = None,
                      content_hashes: dict | None = None, genes: dict | None = None,
                      training: dict | None = None) -> list[dict]:
    """Sealed seed and summary records from ``{model: {task: [test AUROC per seed]}}``.

    Seeds are numbered 0..n-1; other metrics are derived from the AUROC so they vary too. The
    content hash of a task is a fixed function of (dataset, task) unless given. Every fit converged
    by early stopping unless ``training`` gives a model's seeds another ``training`` block.
    """
    import hashlib

    from chrombench import results
    from chrombench.data.layout import simremc_version

    version = version or (simremc_version() if dataset == "simremc" else "1")
    out = []
    for model, per_task in aurocs.items():
        for task, values in per_task.items():
            h = (content_hashes or {}).get(task) or hashlib.sha256(f"{dataset}/{task}".encode()).hexdigest()
            common = {
                "model": {"name": model, "target": model, "family": "test", "params": {"width": 3},
                          "n_parameters": 1000 + len(model)},
                "task": {"name": task, "suite": suite, "genes": genes},
                "dataset": {"name": dataset, "version": version, "content_hash": h, "simulated": simulated},
                "oracle_auroc": (oracle or {}).get(task),
                "tuning": {"n_trials": 4, "n_pruned": 1, "budget_trials": 4, "budget_timeout_s": None,
                           "elapsed_s": 2.5, "best_valid_auroc": 0.7, "best_params": {"width": 3}},
            }
            fit = (training or {}).get(model, CONVERGED_FIT)
            seeds = [results.seal({**common, "kind": "seed", "seed": k, "fit_time_s": 1.0 + k, "training": fit,
                                   "metrics": {"test": {**_metrics_of(v), "auroc": v}, "valid": {"auroc": v - 0.01}}})
                     for k, v in enumerate(values)]
            out += seeds + [results.seal(results.summarize(seeds))]
    return out


def _metrics_of(auroc: float) -> dict:
    """Test metrics as computed from ``predictions_with_auroc(auroc)``: a bundle's check recomputes them."""
    import csv
    import io

    from chrombench.evaluate import Evaluator

    try:
        rows = list(csv.DictReader(io.StringIO(predictions_with_auroc(auroc))))
    except ValueError:  # not a multiple of 1/n^2: only for records that never get predictions
        return {"auprc": max(0.0, auroc - 0.05), "accuracy": max(0.0, auroc - 0.1)}
    return Evaluator().eval(np.array([int(r["label"]) for r in rows]), np.array([float(r["probability"]) for r in rows]))


def predictions_with_auroc(auroc: float, n: int = 100) -> str:
    """A predictions CSV (gene_id, probability, label) of n ON and n OFF genes whose AUROC is exactly
    ``auroc`` (to 1/n^2): ON gene i is scored above exactly c_i OFF genes, with sum(c_i) = auroc * n^2."""
    total = round(auroc * n * n)
    if abs(total / (n * n) - auroc) > 1e-9:
        raise ValueError(f"AUROC {auroc} is not a multiple of 1/{n * n}")
    above = [total // n + (1 if i < total % n else 0) for i in range(n)]
    rows = [f"g{i:04d},{c / (n + 1):.8g},1" for i, c in enumerate(above)]
    rows += [f"g{n + j:04d},{(j + 0.5) / (n + 1):.8g},0" for j in range(n)]
    return "gene_id,probability,label\n" + "\n".join(rows) + "\n"


def write_records(root: Path, records: list[dict], predictions: bool = False) -> list[Path]:
    """Write records in the engine's layout (results/<dataset>/<model>/<task>/seed-k.json, summary.json);
    ``predictions``: also each seed's predictions CSV beside it, matching its test AUROC."""
    from chrombench import results

    paths = []
    for rec in records:
        ds, model, task = rec["dataset"]["name"], rec["model"]["name"], rec["task"]["name"]
        path = (results.seed_path(root, ds, model, task, rec["seed"]) if rec["kind"] == "seed"
                else results.summary_path(root, ds, model, task))
        results.atomic_write_json(path, rec)
        if predictions and rec["kind"] == "seed":
            path.with_name(f"seed-{rec['seed']}.predictions.csv").write_text(
                predictions_with_auroc(rec["metrics"]["test"]["auroc"]))
        paths.append(path)
    return paths


@pytest.fixture
def synthetic_data_only(monkeypatch):
    """Validation's trusted-split checks (``leaderboard/trust.py``) told, without generating the registry's
    tasks, what the registry would tell them about ``synthetic_records``: their content hashes name no
    registered task's data, so the prediction-row and ceiling checks pass over them, as they would with the
    real tasks. Generating those tasks (56 at full size for a roadmap56 bundle, ~60 s) changes nothing."""
    from chrombench.leaderboard import trust

    def lookup(task, dataset, genes_key, home, entry_hash):
        return trust.TrustedSplit(version="stand-in", content_hash=f"stand-in registry: {dataset}/{task} is other data",
                                  labels={}, oracle_auroc=None)

    monkeypatch.setattr(trust, "_registry_split", lookup)


@pytest.fixture
def records_factory():
    """``records_factory({model: {task: [auroc per seed]}}, dataset=..., oracle=...) -> [sealed records]``."""
    return synthetic_records


@pytest.fixture
def records_writer():
    """``records_writer(root, records) -> [paths]``: the engine's on-disk layout under ``root``."""
    return write_records


@pytest.fixture(scope="module")
def single_thread_torch():
    """Torch on one thread for a module: on a busy 2-core machine OpenMP threads mostly wait."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
