"""Putting a dataset into the cache: ``chrombench data import`` (the archive layout) and, for every
writer (import, build), ``save_dataset``: all tasks staged, renamed into place, then registered, so
nothing is half-imported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..atomic import commit_dir, staging_dir
from ..errors import ChrombenchError, DataFormatError
from .arrays import SPLITS, Split
from .catalog import dataset_hash, now, read_registry, register_dataset
from .layout import datasets_dir, validate_name
from .taskdir import write_task_dir


def find_task_folders(path: Path) -> dict[str, Path]:
    """``PATH/{train,valid,test}.csv`` (one task) or ``PATH/<task>/classification/*.csv`` (many)."""
    if all((path / f"{s}.csv").is_file() for s in SPLITS):
        return {"": path}
    found = {}
    for sub in sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []:
        cls = sub / "classification"
        if cls.is_dir():
            found[sub.name] = cls
    if not found:
        raise DataFormatError(
            f"{path}: no dataset found; expected either {path}/{{train,valid,test}}.csv (one task) or "
            f"{path}/<EID>/classification/{{train,valid,test}}.csv (many tasks)")
    return found


def parse_task_folder(folder: Path) -> dict[str, Split]:
    from .csvformat import check_disjoint, read_split

    splits = {}
    for s in SPLITS:
        f = folder / f"{s}.csv"
        if not f.is_file():
            raise DataFormatError(f"{f}: missing split file")
        splits[s] = read_split(f)
    check_disjoint(splits, {s: str(folder / f"{s}.csv") for s in SPLITS})
    return splits


def import_dataset(path: str | os.PathLike, name: str, *, version: str = "1", overwrite: bool = False,
                   source: str | None = None, progress=None) -> dict:
    """Validate every split of every task, then register the dataset atomically.

    Nothing is written to the registry or the cache unless every file parses.
    """
    from ..safepath import identifier

    path = Path(path)
    validate_name(name)
    identifier(version, "dataset version")
    reg = read_registry()
    if name in reg["datasets"] and not overwrite:
        raise ChrombenchError(f"dataset {name!r} is already registered; pass --overwrite to replace it")
    folders = find_task_folders(path)
    for task in folders:
        if task:
            identifier(task, f"task folder name in {path}")
    items = list(folders.items())

    def parsed():
        for task, folder in (progress(items) if progress else items):
            yield task or name, parse_task_folder(folder), {"origin": str(folder.resolve())}

    return save_dataset(name, version, parsed(), source=source or f"import:{path.resolve()}",
                        overwrite=overwrite, extra={"single_task": list(folders) == [""]})


def save_dataset(name: str, version: str, tasks, *, source: str, overwrite: bool = False,
                 extra: dict | None = None) -> dict:
    """Write tasks (``{task: (splits, task.json extras)}`` or an iterable of ``(task, splits, extras)``)
    into the cache and register them as dataset ``name``: staged, then renamed into place, so a
    failure (a bad file, Ctrl-C) leaves the cache and the registry exactly as they were."""
    from ..safepath import identifier, under

    validate_name(name)
    identifier(version, "dataset version")
    reg = read_registry()
    if name in reg["datasets"] and not overwrite:
        raise ChrombenchError(f"dataset {name!r} is already registered; pass --overwrite to replace it")
    items = ((t, sp, ex) for t, (sp, ex) in tasks.items()) if isinstance(tasks, dict) else tasks
    final = under(datasets_dir(), name, version, kind="dataset name or version")
    new_dirs = [d for d in (datasets_dir(), final.parent) if not d.exists()]  # staging_dir creates them
    stage = staging_dir(final, "staging")
    try:
        written = {}
        for task_name, splits, task_extra in items:
            identifier(task_name, "task name")
            tdir = stage / task_name
            tdir.mkdir()
            written[task_name] = write_task_dir(tdir, splits, extra=task_extra)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for d in reversed(new_dirs):  # no empty datasets/<name>/ left behind: the cache is as it was
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    commit_dir(stage, final, replace=True)
    entry = {
        "name": name, "version": version, "source": source, "created": now(), "path": str(final),
        "single_task": len(written) == 1, **(extra or {}),
        "tasks": {t: {"content_hash": m["content_hash"], "splits": m["splits"]} for t, m in written.items()},
        "unavailable": {},
    }
    entry["content_hash"] = dataset_hash({t: m["content_hash"] for t, m in written.items()},
                                         named_after_dataset=bool(entry["single_task"]) and list(written) == [name])
    register_dataset(entry)
    previous = reg["datasets"].get(name, {}).get("path")
    if previous and Path(previous) != final and Path(previous).parent == final.parent:
        from ..safepath import remove_tree

        remove_tree(Path(previous), final.parent)  # --overwrite with a new --version: drop the old arrays
    return entry
