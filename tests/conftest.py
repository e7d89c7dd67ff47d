"""Fixtures shared by every test module. Keep them small and generic.

Every test gets its own empty ``$CHROMBENCH_HOME`` so that no test reads or writes a user's real
cache or sees another test's datasets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chrombench import N_BINS, N_MARKS
from chrombench.data.arrays import SPLITS, Split
from chrombench.data.csvformat import write_split


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
