"""The catalog of datasets: ``registry.json``, what is imported, built and fetched, where its arrays
lie and what their hashes are. Every change is a read-change-write under one lock, written
atomically, so two commands finishing at once never lose each other's dataset."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import ChrombenchError, UnknownNameError
from ..home import home
from ..registry import suggest
from .layout import (BUILTIN_DATASETS, REMC, SIMREMC, datasets_dir, parse_simremc, registry_path, simremc_dir,
                     simremc_version)

REGISTRY_FIELDS = {"version": str, "path": str, "tasks": dict}


def read_registry() -> dict:
    path = registry_path()
    if not path.exists():
        return {"datasets": {}}
    try:
        reg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ChrombenchError(f"{path} is corrupt ({type(exc).__name__}: {str(exc)[:200]}); move it away to start a "
                              "fresh registry") from exc
    _check_registry(path, reg)
    return reg


def _check_registry(path: Path, reg) -> None:
    """Every entry has what loading a task needs; a clear error names the entry and the field."""
    datasets = reg.get("datasets") if isinstance(reg, dict) else None
    if not isinstance(datasets, dict):
        raise ChrombenchError(f"{path}: no 'datasets' object; move the file away to start a fresh registry")
    for name, entry in datasets.items():
        if not isinstance(entry, dict):
            raise ChrombenchError(f"{path}: dataset {name!r} is not an object; re-import it (--overwrite)")
        for key, kind in REGISTRY_FIELDS.items():
            if not isinstance(entry.get(key), kind):
                raise ChrombenchError(f"{path}: dataset {name!r} lacks a valid {key!r} field; re-import it with "
                                      f"`chrombench data import PATH --name {name} --overwrite` (or fetch it again)")


def write_registry(reg: dict) -> None:
    atomic_write_text(registry_path(), json.dumps(reg, indent=2, sort_keys=True))


@contextlib.contextmanager
def registry_transaction():
    """Read, change and write ``registry.json`` under an exclusive lock: two imports (or an import and a
    fetch) finishing at once would otherwise each write back what they read, and one dataset would vanish."""
    lock = home() / "registry.json.lock"
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            reg = read_registry()
            yield reg
            write_registry(reg)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def register_dataset(entry: dict) -> None:
    with registry_transaction() as reg:
        reg["datasets"][entry["name"]] = entry


def dataset_hash(task_hashes: dict[str, str], named_after_dataset: bool = False) -> str:
    """The dataset hash: sha256 over its tasks' names and task hashes (a task hash covers the task's
    arrays). ``named_after_dataset``: the one task is called after the dataset itself (``-t NAME``), so
    its name is left out and the same arrays imported or built under two names have one hash."""
    if named_after_dataset:
        (only,) = task_hashes.values()
        return hashlib.sha256(f":{only};".encode()).hexdigest()
    return hashlib.sha256("".join(f"{t}:{h};" for t, h in sorted(task_hashes.items())).encode()).hexdigest()


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def remove_dataset(name: str) -> dict:
    """Unregister dataset ``name`` and delete its arrays; returns the entry it had. The registry is
    rewritten atomically under its lock with the folder already moved aside, so a failure at any point
    leaves either the dataset whole and registered or gone from both (a moved-aside folder is hidden
    and holds nothing registered)."""
    from ..safepath import is_inside, remove_tree

    if name == SIMREMC:
        raise ChrombenchError(f"{SIMREMC} is the built-in simulator, generated on first use: it cannot be removed "
                              f"(its cache is {datasets_dir() / SIMREMC}; deleting that folder only makes the "
                              "tasks be generated again)")
    with registry_transaction() as reg:
        if name not in reg["datasets"]:
            if not reg["datasets"]:
                raise UnknownNameError(f"no dataset named {name!r}: none is registered in {registry_path()} (imported, "
                                       "built or fetched ones can be removed; `chrombench data list` shows them)")
            raise UnknownNameError(suggest(name, list(reg["datasets"]), "dataset")
                                   + " (`chrombench data list` shows them)")
        entry = reg["datasets"].pop(name)
        folder = Path(entry["path"])
        aside = None
        if folder.exists() and is_inside(folder, datasets_dir()) and folder.resolve() != datasets_dir().resolve():
            aside = folder.with_name(f".{folder.name}.removing.{os.getpid()}")
            os.replace(folder, aside)
        try:
            write_registry(reg)
        except BaseException:
            if aside is not None:
                os.replace(aside, folder)
            raise
    if aside is not None:
        remove_tree(aside, datasets_dir())
        try:
            aside.parent.rmdir()  # datasets/<name>/ once its last version is gone
        except OSError:
            pass
    return entry


def task_folders(dataset: str, task: str) -> list[Path]:
    """Where the cache keeps ``dataset/task`` (every simulator version for simremc), for the seal."""
    if dataset == SIMREMC:
        root = datasets_dir() / SIMREMC
        return sorted(p / task for p in root.iterdir() if (p / task).is_dir()) if root.is_dir() else []
    try:
        entry = read_registry()["datasets"].get(dataset)
    except ChrombenchError:
        return []
    return [Path(entry["path"]) / task] if entry and (Path(entry["path"]) / task).is_dir() else []


def dataset_info(name: str) -> dict:
    """What ``chrombench data info`` shows: genes per split, balance, source, version, hash, path."""
    reg = read_registry()["datasets"]
    sim = parse_simremc(name)
    if sim:
        from ..tasks import all_specs

        root = simremc_dir("x", 0, *sim).parent
        # only committed tasks: a generation in progress (or killed) leaves a hidden staging folder
        cached = sorted(p.name for p in root.iterdir() if not p.name.startswith(".")
                        and (p / "task.json").is_file()) if root.exists() else []
        tasks = {}
        for t in cached:
            meta = json.loads((root / t / "task.json").read_text())
            tasks[t] = {"content_hash": meta["content_hash"], "splits": meta["splits"],
                        "oracle_auroc": meta.get("oracle_auroc")}
        return {"name": SIMREMC, "version": simremc_version(0, sim[0]), "source": "simulated (chrombench.data.simulate"
                + ("" if sim[0] == "1.1" else "12") + ")",
                "path": str(root), "simulated": True, "n_tasks": len(all_specs()), "tasks": tasks,
                "note": f"{len(cached)} of {len(all_specs())} tasks generated and cached so far; the rest are "
                        "generated on first use"}
    if name not in reg:
        if name == REMC:
            raise ChrombenchError("the real REMC archive has not been fetched yet; run `chrombench data fetch "
                                  "--tasks E003` (or --all; needs network)")
        raise UnknownNameError(suggest(name, list(BUILTIN_DATASETS) + list(reg), "dataset"))
    return dict(reg[name])
