"""From a name on the command line (``-t``/``--data``) to a task's arrays: resolving the name,
loading the task from the catalog or the simulator's cache (the seal checked first), and the
quick suite's subsample."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np

from ..errors import ChrombenchError, UnknownNameError
from ..registry import suggest
from . import seal
from .arrays import SPLITS, DatasetRef, TaskData
from .catalog import read_registry
from .layout import BUILTIN_DATASETS, REMC, SIMREMC, parse_simremc, simremc_version
from .simcache import ensure_simulated
from .taskdir import read_task_dir, task_hash


def normalise_eid(name: str) -> str | None:
    from ..tasks import all_specs

    m = re.fullmatch(r"[eE]0*(\d{1,3})", name)
    if m:
        eid = f"E{int(m.group(1)):03d}"
        if eid in all_specs():
            return eid
    return None


def resolve_task(ref: str, dataset: str | None = None) -> tuple[str, str]:
    """``E003`` | ``NAME`` (an imported one-task dataset) | ``NAME/TASK`` -> (dataset, task)."""
    reg = read_registry()["datasets"]
    if "/" in ref:
        ds, task = ref.split("/", 1)
        return ds, task
    # simremc@VERSION[:SPLIT] (raises on what does not exist); plain "simremc" goes on below, where
    # -t NAME may still mean an imported one-task dataset
    if dataset != SIMREMC and parse_simremc(dataset):
        ds = dataset
        eid = normalise_eid(ref)
        if eid:
            return ds, eid
        from ..tasks import all_specs

        raise UnknownNameError(suggest(ref, list(all_specs()), "task"))
    if dataset is not None and dataset not in BUILTIN_DATASETS and dataset not in reg:
        raise UnknownNameError(suggest(dataset, list(BUILTIN_DATASETS) + list(reg), "dataset")
                               + "; `chrombench data list` shows them, `chrombench data import PATH --name NAME` adds one")
    # an imported dataset's name is never an EID or a built-in name (validate_name), so -t NAME means it
    # even beside the default --data simremc
    if ref in reg and dataset in (None, ref, SIMREMC):
        tasks = list(reg[ref]["tasks"])
        if len(tasks) == 1:
            return ref, tasks[0]
        raise UnknownNameError(f"dataset {ref!r} has {len(tasks)} tasks; name one as {ref}/<task> "
                               f"(e.g. {ref}/{tasks[0]}) or pass --data {ref} -t <task>")
    eid = normalise_eid(ref)
    ds = dataset or SIMREMC
    if eid and (ds in BUILTIN_DATASETS or eid in reg.get(ds, {}).get("tasks", {})):
        return ds, eid
    if ds in reg and ref in reg[ds]["tasks"]:
        return ds, ref
    from ..tasks import all_specs

    choices = list(all_specs()) + [n for n in reg if len(reg[n]["tasks"]) == 1]
    if ds in reg:
        choices += list(reg[ds]["tasks"])
    raise UnknownNameError(suggest(ref, choices, "task"))


def subsample(data: TaskData, genes: dict, seed: int = 0) -> TaskData:
    """A label-stratified, deterministic subsample of each split (the quick suite's genes)."""
    picked = {}
    for name in SPLITS:
        sp = data.split(name)
        n = min(int(genes[name]), len(sp))
        rng = np.random.default_rng([seed, int(hashlib.sha1(f"{data.task}/{name}".encode()).hexdigest()[:8], 16)])
        pos, neg = np.flatnonzero(sp.y == 1), np.flatnonzero(sp.y == 0)
        n_pos = int(round(n * len(pos) / len(sp)))
        idx = np.sort(np.r_[rng.choice(pos, n_pos, replace=False), rng.choice(neg, n - n_pos, replace=False)])
        picked[name] = idx
    splits = {s: data.split(s).subset(picked[s]) for s in SPLITS}
    truth = None
    if data.truth is not None:
        from ..evaluate import auroc

        part = data.truth.subset(picked["test"])
        # the subsample's own ceiling: the latent's AUROC on the genes it keeps
        truth = dataclasses.replace(part, oracle_auroc=auroc(splits["test"].y, part.latent))
    h = task_hash({s: splits[s].digest() for s in SPLITS})
    ref = DatasetRef(name=data.dataset.name, version=data.dataset.version, content_hash=h,
                     simulated=data.dataset.simulated, split=data.dataset.split)
    return TaskData(task=data.task, dataset=ref, truth=truth, **splits)


def load_task(task: str, dataset: str | None = None, *, quick: bool = False, genes: dict | None = None,
              seed: int = 0) -> TaskData:
    """Load one task as arrays. ``quick`` subsamples genes as the quick suite does."""
    ds, name = resolve_task(task, dataset)
    seal.check(ds, name, f"load_task({task!r})")
    sim = parse_simremc(ds)
    if sim:
        directory = ensure_simulated(name, seed, *sim)
        version, simulated = simremc_version(seed, sim[0]), True
    else:
        reg = read_registry()["datasets"]
        if ds not in reg:
            if ds == REMC:
                raise ChrombenchError(
                    f"the real REMC archive has not been fetched yet; run `chrombench data fetch --tasks {name}` "
                    f"(needs network) or import a copy with `chrombench data import PATH --name NAME`")
            raise UnknownNameError(suggest(ds, list(BUILTIN_DATASETS) + list(reg), "dataset"))
        entry = reg[ds]
        if name in entry.get("unavailable", {}):
            raise ChrombenchError(f"task {name} of dataset {ds!r} is unavailable: {entry['unavailable'][name]}")
        if name not in entry["tasks"]:
            raise UnknownNameError(suggest(name, list(entry["tasks"]), f"task of dataset {ds!r}"))
        directory = Path(entry["path"]) / name
        version, simulated = entry["version"], False
    meta, splits, truth = read_task_dir(directory)
    ds_name = SIMREMC if sim else ds  # simremc@1.2 is simremc at version 1.2+seedN
    split = None if sim and sim[1] == "random" else meta.get("split")  # random thirds: as every record before
    data = TaskData(task=name, dataset=DatasetRef(ds_name, version, meta["content_hash"], simulated, split),
                    truth=truth, **splits)
    if quick or genes:
        if genes is None:
            from ..tasks import get_suite

            genes = get_suite("quick").genes
        data = subsample(data, genes)
    return data
