"""The in-memory shape of a task: what every model and the evaluator receive.

``X`` is ``[n_genes, bins, marks]`` of non-negative integer read counts: ``[n, 100, 5]`` in the
archive's column order (``chrombench.MARKS``) for the archive and the simulator, any bins and marks
for a dataset from ``chrombench data build`` (``Split.marks`` names them). ``y`` is 0/1 per gene;
``gene_ids`` are strings and keep their leading zeros. Arrays may be read-only memory maps from the
cache: copy before mutating.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .. import MARKS

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    gene_ids: np.ndarray  # [n] str
    X: np.ndarray  # [n, bins, marks] int32 counts ([n, 100, 5] for the archive and the simulator)
    y: np.ndarray  # [n] int8 labels (1 = expressed above the cell type's median)
    marks: tuple[str, ...] = MARKS  # the names of X's last axis, in order

    def __post_init__(self):
        n = len(self.gene_ids)
        if self.X.ndim != 3 or self.X.shape[0] != n or self.X.shape[2] != len(self.marks):
            raise ValueError(f"X has shape {self.X.shape}, expected ({n}, bins, {len(self.marks)} marks)")
        if self.y.shape != (n,):
            raise ValueError(f"y has shape {self.y.shape}, expected ({n},)")

    @property
    def shape(self) -> tuple[int, int]:
        """(bins, marks) of one gene."""
        return int(self.X.shape[1]), int(self.X.shape[2])

    def __len__(self) -> int:
        return len(self.gene_ids)

    def subset(self, idx: np.ndarray) -> "Split":
        return Split(self.gene_ids[idx], self.X[idx], self.y[idx], self.marks)

    def digest(self) -> str:
        """sha256 over ids, counts and labels: the identity of this split's content."""
        h = hashlib.sha256()
        h.update("\n".join(map(str, self.gene_ids)).encode())
        h.update(np.ascontiguousarray(self.X, dtype="<i4").tobytes())
        h.update(np.ascontiguousarray(self.y, dtype="i1").tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class DatasetRef:
    """Which data a result was measured on. Every result record carries one."""

    name: str  # "simremc", "remc" or an imported dataset's name
    version: str
    content_hash: str  # sha256 over the task's splits (see TaskData.content_hash)
    simulated: bool = False
    # how genes were split: "random" or "chromosome" for a `data build` dataset; None for the archive's
    # own random thirds (and the simulator's), which every record before builds existed also means
    split: str | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "content_hash": self.content_hash,
                "simulated": self.simulated, **({"split": self.split} if self.split else {})}


@dataclass(frozen=True)
class GroundTruth:
    """What only a simulator knows: the ceiling AUROC and where the signal was planted."""

    oracle_auroc: float  # AUROC of the simulator's latent signal on the test split
    importance: np.ndarray  # [n_test, marks, bins] float, each gene's map sums to 1
    latent: np.ndarray  # [n_test] the latent activity score behind the test labels
    # simremc 1.2 on: mechanism name -> [n_test, marks, bins] map of where that mechanism was planted
    # (a gene's map is all zero where the mechanism does not touch it); None for 1.1 and real data
    mechanisms: dict | None = field(default=None, compare=False)

    def subset(self, idx) -> "GroundTruth":
        """The truth of a subsample of the test genes (``idx`` into them): maps, latent and mechanism maps
        alike, so that scoring a subsample still scores each mechanism. The ceiling is the whole split's."""
        idx = np.asarray(idx)
        mech = self.mechanisms
        if mech:
            # MechanismMaps (read lazily from the cache) subsets without reading every map now
            mech = mech.subset(idx) if callable(getattr(mech, "subset", None)) else {k: v[idx] for k, v in mech.items()}
        return GroundTruth(self.oracle_auroc, np.asarray(self.importance)[idx], self.latent[idx], mech)


@dataclass(frozen=True)
class TaskData:
    task: str  # e.g. "E003"
    dataset: DatasetRef
    train: Split
    valid: Split
    test: Split
    truth: GroundTruth | None = field(default=None, compare=False)

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise KeyError(name)
        return getattr(self, name)
