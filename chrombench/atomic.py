"""Atomic file and folder writes: a temporary file (or a staged folder) beside the target, then
renamed over it, so a reader (or a run killed half-way) sees the old one or the new one, never a
half-written one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)  # read once (setting it is process-wide; threads may be writing later)
os.umask(_UMASK)


def staging_dir(final: Path, tag: str = "") -> Path:
    """A fresh hidden folder beside ``final`` (``.NAME.TAG.xxxx``; the same file system, so the rename
    that commits it is atomic), to build ``final``'s contents in before ``commit_dir`` or ``swap_dir``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.{tag + '.' if tag else ''}", dir=final.parent))


def commit_dir(stage: Path, final: Path, replace: bool = False) -> None:
    """Rename the finished ``stage`` to ``final``. Without ``replace``, a ``final`` that exists (another
    process finished the same deterministic work first) is kept and ``stage`` dropped."""
    stage, final = Path(stage), Path(final)
    if final.exists():
        if not replace:
            shutil.rmtree(stage, ignore_errors=True)
            return
        swap_dir(stage, final)
        return
    try:
        os.replace(stage, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(stage, ignore_errors=True)  # it appeared meanwhile: the other process won


def swap_dir(stage: Path, final: Path) -> None:
    """Put the finished folder ``stage`` where ``final`` is (same file system), replacing it: the old
    folder is renamed aside first and removed after, so ``final`` is always whole. The one place that
    does this (datasets, saved models, bundles)."""
    stage, final = Path(stage), Path(final)
    if final.is_symlink():
        final.unlink()
    if not final.exists():
        os.replace(stage, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
    os.replace(final, old / final.name)  # into a fresh private folder: no name clash with a concurrent swap
    os.replace(stage, final)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private (0600); results and registries are shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
