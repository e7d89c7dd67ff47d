"""``load_task``: one task as numpy arrays, a torch ``Dataset`` or a tidy pandas frame, for your own loop.

Built on the data layer's ``chrombench.data.load.load_task``: the same resolution of names (``E003``,
``NAME``, ``NAME/TASK``), the same simulated, fetched, imported and built datasets, the same quick
subsample and the same content hash the engine records. Train and valid are held in memory; the
test split is reloaded from the cache only when ``Task.read_test()`` is called, and every such call
is written to ``$CHROMBENCH_HOME/test-reads.jsonl``, so a record made later can say how often the
test split was read before it. As with OGB, a loop of your own is honest by convention: fit on
train, choose on valid, read test once.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..data.arrays import DatasetRef, Split, TaskData
from ..errors import ChrombenchError

if TYPE_CHECKING:  # imported lazily at call time: `import chrombench` stays free of torch and pandas
    import pandas
    import torch.utils.data

TEST_READS = "test-reads.jsonl"


@dataclass(frozen=True)
class Arrays:
    """One split: ``X`` ``[genes, bins, marks]`` int32 read counts, ``y`` ``[genes]`` 0/1 labels,
    ``gene_ids`` ``[genes]`` strings (leading zeros kept)."""

    X: np.ndarray
    y: np.ndarray
    gene_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.gene_ids)


def _arrays(split: Split) -> Arrays:
    # in-memory copies: a memory map would lead back to the cache's files (and is read-only)
    return Arrays(X=np.array(split.X, dtype=np.int32), y=np.array(split.y, dtype=np.int8),
                  gene_ids=np.array(split.gene_ids, dtype=str))


@dataclass
class Task:
    """A task for your own training loop (made by ``chrombench.load_task``).

    ``train`` and ``valid`` are ``Arrays``; the test split comes only from ``read_test()``, which
    records the read. ``metadata`` holds the task's identity (dataset name, version, content hash,
    suite, genes), the published DeepChrome AUROC on the real data where there is one, and for
    simulated tasks the simulator's ceiling (``oracle_auroc``).
    """

    name: str
    dataset: DatasetRef
    suite: str | None
    genes: dict | None
    marks: tuple[str, ...]
    bins: int
    train: Arrays
    valid: Arrays
    metadata: dict[str, Any]
    _load: Callable[[], TaskData] = field(repr=False)
    test_reads: list[str] = field(default_factory=list)  # when read_test() was called (UTC, ISO 8601)

    def split(self, name: str) -> Arrays:
        """``train`` or ``valid`` by name (``test``: use ``read_test()``, which records the read)."""
        if name == "test":
            return self.read_test()
        if name not in ("train", "valid"):
            raise ChrombenchError(f"no split {name!r}; the splits are train, valid and test (read_test())")
        return getattr(self, name)

    def read_test(self) -> Arrays:
        """The test split, reloaded from the cache (so it is not in memory before you ask), and the read
        written to ``$CHROMBENCH_HOME/test-reads.jsonl``. Read it once, after choosing on valid."""
        data = self._load()
        if data.dataset.content_hash != self.dataset.content_hash:
            raise ChrombenchError(f"{self.dataset.name}/{self.name} changed on disk since it was loaded (content hash "
                                  f"{data.dataset.content_hash[:12]}, was {self.dataset.content_hash[:12]}); load it again")
        when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self.test_reads.append(when)
        _journal_test_read(self, when)
        return _arrays(data.test)

    def torch_dataset(self, split: str = "train", *, log1p: bool = True) -> "torch.utils.data.Dataset":
        """A ``torch.utils.data.TensorDataset`` of ``(X, y)``: X float32 ``[genes, bins, marks]``
        (``log1p`` of the counts unless ``log1p=False``), y float32 ``[genes]``. ``split="test"`` reads
        the test split through ``read_test()``."""
        import torch
        from torch.utils.data import TensorDataset

        arrays = self.split(split)
        X = torch.from_numpy(arrays.X.astype(np.float32))
        return TensorDataset(torch.log1p(X) if log1p else X, torch.from_numpy(arrays.y.astype(np.float32)))

    def frame(self, split: str = "train") -> "pandas.DataFrame":
        """A tidy frame: one row per (gene, bin, mark) with columns gene_id, bin (1-based, as the archive),
        mark, count, label. ``split="test"`` reads the test split through ``read_test()``."""
        import pandas as pd

        a = self.split(split)
        n, bins, marks = a.X.shape
        return pd.DataFrame({
            "gene_id": np.repeat(a.gene_ids, bins * marks),
            "bin": np.tile(np.repeat(np.arange(1, bins + 1), marks), n),
            "mark": pd.Categorical(np.tile(np.asarray(self.marks), n * bins), categories=list(self.marks)),
            "count": a.X.reshape(-1),
            "label": np.repeat(a.y, bins * marks),
        })

    def evaluator(self):
        """An ``Evaluator`` for this task (the leaderboard's metrics)."""
        from .evaluator import Evaluator

        return Evaluator(self.name)

    def __repr__(self) -> str:
        return (f"Task({self.dataset.name}/{self.name}, suite={self.suite}, train={len(self.train)}, "
                f"valid={len(self.valid)}, bins={self.bins}, marks={list(self.marks)})")


def load_task(name: str, suite: str | None = None, data: str | None = None) -> Task:
    """Load one task for your own training loop.

    ``name``: an EID (``E003``), an imported or built one-task dataset's name, or ``NAME/TASK``.
    ``suite``: a suite of the registry (``quick`` subsamples genes as the quick suite does, and a
    record of this task then joins that suite's leaderboard section); ``None``: full size.
    ``data``: ``simremc`` (default), ``remc`` (after ``chrombench data fetch``) or an imported/built
    dataset. Errors name what is wrong and how to fix it.
    """
    from ..data.load import load_task, resolve_task
    from ..tasks import get_suite

    ds, task = resolve_task(name, data)
    genes = None
    if suite is not None:
        spec = get_suite(suite)
        if task not in spec.tasks:
            raise ChrombenchError(f"task {task} is not part of suite {suite!r} ({', '.join(spec.tasks)}); "
                                  "leave suite out to load it at full size")
        genes = dict(spec.genes) if spec.genes else None

    def load() -> TaskData:
        return load_task(task, ds, genes=genes)

    full = load()
    first = full.train
    meta = {"task": task, "dataset": full.dataset.as_dict(), "suite": suite, "genes": genes,
            "sizes": {s: len(full.split(s)) for s in ("train", "valid", "test")},
            "positives": {s: int(np.sum(full.split(s).y)) for s in ("train", "valid")},
            "oracle_auroc": full.truth.oracle_auroc if full.truth is not None else None,
            **_registry_facts(task)}
    return Task(name=task, dataset=full.dataset, suite=suite, genes=genes, marks=tuple(first.marks),
                bins=first.shape[0], train=_arrays(full.train), valid=_arrays(full.valid), metadata=meta, _load=load)


def _registry_facts(task: str) -> dict:
    """Cell type, group and the published DeepChrome AUROC (on the real data) of a Roadmap task."""
    from ..tasks import all_specs

    spec = all_specs().get(task)
    if spec is None:
        return {"cell_type": None, "group": None, "published_auroc": None, "published": None}
    dc = next((r for r in spec.reported if r.model == "deepchrome"), None)
    return {"cell_type": spec.name, "group": spec.group,
            "published_auroc": dc.test_auroc if dc else None,
            "published": {"model": dc.model, "citation": dc.citation, "data": "real REMC"} if dc else None}


def _journal_test_read(task: Task, when: str) -> None:
    from ..home import home

    line = json.dumps({"time": when, "dataset": task.dataset.name, "version": task.dataset.version,
                       "task": task.name, "genes": task.genes, "content_hash": task.dataset.content_hash,
                       "pid": os.getpid()}, sort_keys=True)
    with open(home() / TEST_READS, "a") as fh:  # one short line per append: whole under O_APPEND
        fh.write(line + "\n")


def count_test_reads(content_hash: str) -> int:
    """How many times the test split with this content hash was read through ``Task.read_test()``
    under this ``$CHROMBENCH_HOME``."""
    from ..home import home

    path = home() / TEST_READS
    if not path.exists():
        return 0
    n = 0
    for line in path.read_text().splitlines():
        try:
            n += json.loads(line).get("content_hash") == content_hash
        except (json.JSONDecodeError, AttributeError):
            continue
    return n
