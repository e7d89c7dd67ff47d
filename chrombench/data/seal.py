"""Which tasks' test splits are sealed right now: process-wide, so every thread sees it.

The engine seals a task while it tunes or fits a model on it (``run``, ``train``, ``transfer``,
``ablate``, ``submit``). Meanwhile chrombench's own ways to produce that task's test split refuse
with ``ProtocolViolation``: ``load.load_task`` (by its resolved (dataset, task)), the simulator,
``taskdir.read_task_dir`` and ``csvformat.read_split`` (by what they read, see below), and reading
predictions files that hold the sealed task's test genes. A ContextVar would not do: a model's fit
may start threads.

A folder is recognised by identity, never by its path's spelling: ``..``, symlinks and copies all
lead to the same resolved folder or to the same test-split content. A seal records, for each sealed
task, the resolved folders the cache keeps it in, the digests of their test splits and a hash of
each test gene ID (IDs, never labels: nothing here holds what it protects).

This stops every path through chrombench; it cannot stop hostile code that opens the cache's files
by path or patches chrombench in memory (nothing inside one process can). What the engine adds is
that the test split is not in memory at all while a model fits (``engine.evaluation.TaskHandle``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ProtocolViolation

_lock = threading.Lock()
_sealed: Counter = Counter()  # (dataset, task) -> how many active seals
_guards: dict[tuple[str, str], "Guard"] = {}


@dataclass(frozen=True)
class Guard:
    """What identifies a sealed task's test split wherever it turns up."""

    folders: frozenset  # resolved task folders in the cache
    digests: frozenset  # test-split content digests (task.json's and recomputed ones match)
    id_hashes: frozenset  # 64-bit hashes of the test gene IDs


def _id_hash(gene_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(str(gene_id).encode(), digest_size=8).digest(), "little")


def id_hashes(gene_ids) -> frozenset:
    return frozenset(_id_hash(g) for g in gene_ids)


def _guard_of(dataset: str, task: str) -> Guard:
    from .catalog import task_folders  # the catalog knows where a (dataset, task) lives

    folders, digests, ids = set(), set(), set()
    for folder in task_folders(dataset, task):
        try:
            meta = json.loads((folder / "task.json").read_text())
            test_ids = np.load(folder / "test_ids.npy")
        except (OSError, ValueError):
            continue  # nothing readable there: nothing to protect
        folders.add(folder.resolve())
        digest = meta.get("splits", {}).get("test", {}).get("digest") if isinstance(meta, dict) else None
        if isinstance(digest, str):
            digests.add(digest)
        ids |= id_hashes(test_ids)
    return Guard(frozenset(folders), frozenset(digests), frozenset(ids))


@contextlib.contextmanager
def sealed(dataset: str, task: str):
    key = (dataset, task)
    guard = _guard_of(dataset, task)  # before sealing: it reads the cache's own files
    with _lock:
        _sealed[key] += 1
        _guards[key] = guard
    try:
        yield
    finally:
        with _lock:
            _sealed[key] -= 1
            if _sealed[key] <= 0:
                del _sealed[key]
                _guards.pop(key, None)


def is_sealed(dataset: str, task: str) -> bool:
    with _lock:
        return _sealed.get((dataset, task), 0) > 0


def any_sealed() -> bool:
    with _lock:
        return bool(_sealed)


def _refuse(what: str, dataset: str, task: str):
    raise ProtocolViolation(
        f"{what} while a model is tuned or fitted on it: the test split of {dataset}/{task} is sealed; "
        f"models see only the train and valid splits they are given")


def check(dataset: str, task: str, what: str) -> None:
    """Raise ``ProtocolViolation`` if ``dataset/task`` is sealed; ``what`` names the attempted access."""
    if is_sealed(dataset, task):
        _refuse(what, dataset, task)


def check_folder(directory: Path, what: str) -> None:
    """Refuse a task folder that resolves to a sealed task's folder (``..``, symlinks)."""
    if not any_sealed():
        return
    resolved = Path(directory).resolve()
    with _lock:
        hit = next((k for k, g in _guards.items() if resolved in g.folders), None)
    if hit:
        _refuse(what, *hit)


def check_split(digest_of, what: str) -> None:
    """Refuse a test split whose content is a sealed one's (a copied folder, a re-imported CSV).
    ``digest_of``: a callable giving the split's digest, called only while something is sealed."""
    if not any_sealed():
        return
    digest = digest_of()
    with _lock:
        hit = next((k for k, g in _guards.items() if digest in g.digests), None)
    if hit:
        _refuse(what, *hit)


def check_gene_ids(gene_ids, what: str) -> None:
    """Refuse rows about a sealed task's test genes (a predictions file of an earlier seed holds
    their labels)."""
    if not any_sealed():
        return
    hashes = id_hashes(gene_ids)
    with _lock:
        hit = next((k for k, g in _guards.items() if hashes & g.id_hashes), None)
    if hit:
        _refuse(what, *hit)
