"""The output folder of a run: who may work in it, how its stores come into being, what a kill leaves.

- ``claim``: runs on one output folder share its work only when they were asked the same thing.
  Every run holds a shared ``flock`` on ``run.lock`` while it works; the first one writes its
  settings (budget, seeds, genes, dataset, stores, strategy) to ``run.json``. A run that finds others
  working with other settings is refused with a message: two runs with different ``--trials`` would
  otherwise each print the summary of its own budget while the records on disk hold the other's.
  Different models or tasks are fine (they are different pairs); ``--workers`` start the same settings.
  The kernel drops a killed run's lock, so a stale ``run.json`` never blocks anyone.
- ``create_local_storage``: a default SQLite store is made under a temporary name and renamed into
  place (``tracking.create_sqlite_atomically``), so a kill while its tables are made leaves nothing a
  rerun trips over.
- ``pair_lock``: workers on one output folder split whole (model, task) pairs; an exclusive ``flock``
  per pair says who holds one.
- ``clean_leftovers``: staging folders and temporary files of a killed save, removed by the run that
  holds the (model, task) pair.
- ``models_dir`` / ``model_dir``: where each seed's fitted model is saved.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from pathlib import Path

from ..errors import ChrombenchError

SETTINGS_FILE, LOCK_FILE, GUARD_FILE = "run.json", "run.lock", "run.json.lock"


def settings(cfg) -> dict:
    """What decides the numbers of a (model, task) pair in this folder, as JSON."""
    return {"trials": cfg.trials, "timeout": cfg.timeout, "seeds": list(cfg.seeds) if cfg.seeds is not None else None,
            "genes": cfg.genes, "suite": cfg.suite, "dataset": cfg.dataset, "storage": cfg.storage,
            "tracking_uri": cfg.tracking_uri, "overwrite_strategy": cfg.overwrite_strategy}


@contextlib.contextmanager
def claim(out: Path, mine: dict):
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = open(out / LOCK_FILE, "a")
    except OSError as exc:
        raise ChrombenchError(f"cannot use {out} as the output folder: {exc.strerror or exc}") from None
    try:
        with open(out / GUARD_FILE, "a") as guard:  # one process at a time decides who works here
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                _join(out, lock, mine)
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)
        yield
    finally:
        lock.close()  # drops the shared lock


def _join(out: Path, lock, mine: dict) -> None:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # others are working here: join them only with the same settings
        try:
            theirs = json.loads((out / SETTINGS_FILE).read_text())
        except (OSError, ValueError):
            theirs = None
        if theirs != mine:
            differ = sorted(k for k in set(mine) | set(theirs or {}) if (theirs or {}).get(k) != mine.get(k))
            shown = ", ".join(f"{k}: {(theirs or {}).get(k)!r} there, {mine.get(k)!r} here" for k in differ[:4])
            raise ChrombenchError(f"another run is working in {out} with other settings ({shown}); wait for it to "
                                  "finish, or use another --output-dir") from None
        fcntl.flock(lock, fcntl.LOCK_SH)
        return
    from ..atomic import atomic_write_text

    atomic_write_text(out / SETTINGS_FILE, json.dumps(mine, sort_keys=True) + "\n")
    fcntl.flock(lock, fcntl.LOCK_SH)  # others may join now (they wait for the guard we hold)


def create_local_storage(url: str, make_tables) -> None:
    """A default ``sqlite:///.../optuna.db`` that does not exist yet: made whole, then renamed into place."""
    if not url.startswith("sqlite:///"):
        return
    from .tracking import create_sqlite_atomically

    db = Path(url[len("sqlite:///"):])
    if not db.exists():
        create_sqlite_atomically(db, make_tables)


@contextlib.contextmanager
def pair_lock(out: Path, dataset: str, task: str, model: str, wait: bool):
    """An exclusive ``flock`` on this (model, task) in the output folder; yields whether we hold it.

    The kernel drops it when its holder dies, so a killed worker never blocks the others."""
    path = Path(out) / "locks" / dataset / f"{re.sub(r'[^A-Za-z0-9_.@+-]', '_', model)}__{task}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def models_dir(out: Path, dataset: str, model: str, task: str) -> Path:
    safe = model.replace("/", "_").replace(":", "_")
    return Path(out) / "models" / dataset / safe / task


def model_dir(out: Path, dataset: str, model: str, task: str, seed: int) -> Path:
    return models_dir(out, dataset, model, task) / f"seed-{seed}"


def clean_leftovers(out: Path, dataset: str, model: str, task: str) -> None:
    """Remove what a killed save left for this pair: staging folders (``.seed-0.xxxx``) beside saved
    models, temporary files (``.seed-0.json.xxxx``) beside records. Only hidden names, only here."""
    from .. import results

    folders = [models_dir(out, dataset, model, task), results.record_dir(out, dataset, model, task)]
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in folder.iterdir():
            if not entry.name.startswith(".seed-") and not entry.name.startswith(".summary.json."):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry)
