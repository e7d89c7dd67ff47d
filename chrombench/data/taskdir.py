"""One task's folder in the cache: its arrays, ``task.json`` and (simulated tasks) the planted truth.

The writer fills a staging folder (the caller commits it, ``chrombench.atomic``); the reader checks
the seal first and memory-maps the large arrays.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .. import MARKS
from ..errors import ChrombenchError, UnknownNameError
from . import seal
from .arrays import SPLITS, GroundTruth, Split


def task_hash(split_digests: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{s}:{split_digests[s]};" for s in SPLITS).encode()).hexdigest()


def write_task_dir(directory: Path, splits: dict[str, Split], truth: GroundTruth | None = None,
                   extra: dict | None = None) -> dict:
    """Write one task's arrays and ``task.json`` into ``directory`` (which must be a staging dir)."""
    first = splits[SPLITS[0]]
    meta = {"splits": {}, "marks": list(first.marks), "bins": first.shape[0], **(extra or {})}
    digests = {}
    for name in SPLITS:
        sp = splits[name]
        np.save(directory / f"{name}_ids.npy", np.asarray(sp.gene_ids).astype(str))
        np.save(directory / f"{name}_X.npy", np.ascontiguousarray(sp.X, dtype=np.int32))
        np.save(directory / f"{name}_y.npy", np.asarray(sp.y, dtype=np.int8))
        digests[name] = sp.digest()
        meta["splits"][name] = {"genes": len(sp), "positives": int(np.sum(sp.y)), "digest": digests[name]}
    meta["content_hash"] = task_hash(digests)
    if truth is not None:
        np.save(directory / "truth_importance.npy", truth.importance.astype(np.float16))
        np.save(directory / "truth_latent.npy", truth.latent.astype(np.float32))
        meta["oracle_auroc"] = truth.oracle_auroc
    (directory / "task.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta


def read_task_dir(directory: Path) -> tuple[dict, dict[str, Split], GroundTruth | None]:
    directory = Path(directory)
    # the same seal as load_task, for a caller that comes here directly: by the resolved folder, then
    # (a copy somewhere else) by the test split's content
    seal.check_folder(directory, f"reading {directory}")
    try:
        meta = json.loads((directory / "task.json").read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("content_hash"), str):
            raise ValueError("not a task description")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ChrombenchError(f"{directory / 'task.json'} is damaged ({str(exc)[:200]}); import or fetch the "
                              "dataset again (--overwrite / --force)") from exc
    marks = tuple(meta.get("marks", MARKS))  # a task.json without marks holds the archive's
    splits = {}
    for name in SPLITS:
        splits[name] = Split(
            gene_ids=np.load(directory / f"{name}_ids.npy"),
            X=np.load(directory / f"{name}_X.npy", mmap_mode="r"),
            y=np.load(directory / f"{name}_y.npy"), marks=marks)
    seal.check_split(splits["test"].digest, f"reading {directory}")
    truth = None
    if (directory / "truth_importance.npy").exists():
        mech = directory / "truth_mechanisms.npz"
        truth = GroundTruth(oracle_auroc=meta["oracle_auroc"],
                            importance=np.load(directory / "truth_importance.npy", mmap_mode="r"),
                            latent=np.load(directory / "truth_latent.npy"),
                            mechanisms=MechanismMaps(mech) if mech.exists() else None)
    return meta, splits, truth


class MechanismMaps(dict):
    """Mechanism name -> [n_test, marks, bins] planted map, read from the cache on first use (they are
    large and only interpretation scoring needs them); ``rows`` picks a subsample's test genes."""

    def __init__(self, path: Path, rows: np.ndarray | None = None):
        super().__init__()
        self._path, self._rows = Path(path), rows
        with np.load(self._path) as z:
            self._names = list(z.files)

    def __missing__(self, name):
        if name not in self._names:
            raise UnknownNameError(f"no planted mechanism {name!r}; this task has: {', '.join(self._names)}")
        with np.load(self._path) as z:
            arr = z[name] if self._rows is None else z[name][self._rows]
        self[name] = arr
        return arr

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def keys(self):
        return list(self._names)

    def items(self):
        return [(k, self[k]) for k in self._names]

    def subset(self, rows: np.ndarray) -> "MechanismMaps":
        return MechanismMaps(self._path, rows if self._rows is None else self._rows[rows])
