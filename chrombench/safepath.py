"""Names that become paths, and the only ways chrombench creates or removes folders under a root.

Every user-supplied name that ends up in a path (dataset, version, model, submission, task) goes
through ``identifier``: letters, digits and ``_ . @ + -``, starting with a letter or digit, so it is
one path component and never ``.``, ``..`` or absolute. ``under`` joins such names to a managed root
and checks, on the resolved path (symlinks included), that the result stays inside it; ``remove_tree``
refuses to delete anything that is not strictly inside its root. Errors quote at most
``QUOTE_LIMIT`` characters of the offending value.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .errors import ChrombenchError

ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}\Z")  # \Z: "$" would also match before a final newline
QUOTE_LIMIT = 200


def quote(value, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with how much was left out."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def identifier(value, kind: str) -> str:
    """``value`` if it is a safe single path component, else a ChrombenchError naming ``kind``."""
    if not isinstance(value, str) or not ID_RE.match(value) or ".." in value:
        raise ChrombenchError(f"{kind} {quote(value)} is not a valid name: use 1-128 letters, digits, '_', '.', "
                              "'@', '+' or '-', starting with a letter or digit (no '/', no '..')")
    return value


def is_inside(path: Path, root: Path) -> bool:
    """``path`` (resolved, symlinks followed) is ``root`` or lies under it."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return path == root or root in path.parents


def under(root: Path, *names: str, kind: str = "name") -> Path:
    """``root/names...`` after checking each name and that the resolved result stays under ``root``."""
    path = Path(root)
    for name in names:
        path = path / identifier(name, kind)
    if not is_inside(path, root) or Path(path).resolve() == Path(root).resolve():
        raise ChrombenchError(f"{path} would lie outside {root}; refusing to write there")
    return path


def remove_tree(path: Path, root: Path) -> None:
    """``shutil.rmtree(path)``, only when ``path`` lies strictly inside ``root`` (resolved) and is not a
    symlink (a link is unlinked, never followed)."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
        return
    if not path.exists():
        return
    resolved, base = path.resolve(), Path(root).resolve()
    if resolved == base or base not in resolved.parents:
        raise ChrombenchError(f"refusing to remove {path}: it is not inside {root}")
    shutil.rmtree(resolved)


def replace_dir(stage: Path, final: Path, root: Path) -> None:
    """Move the staged folder ``stage`` to ``final`` (both inside ``root``), replacing what was there."""
    for p in (stage, final):
        if not is_inside(p.parent, root):
            raise ChrombenchError(f"refusing to write {p}: it is not inside {root}")
    from .atomic import swap_dir

    swap_dir(stage, final)
