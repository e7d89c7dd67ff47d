"""What ``chrombench models list`` shows about a model, read from its source file without importing it.

Importing the zoo imports torch, scikit-learn and xgboost (2-3 CPU seconds), and counting parameters
by building every model costs more again; a listing needs neither. The class attributes it shows
(``name``, ``family``, ``description``, ``citation``, ``parameter_count``) are literals in the model's
file, so they are read with ``ast`` along the class's bases. Whatever cannot be read that way (a value
that is not a literal, a class with several bases, a model that does not declare ``parameter_count``)
is taken from the imported class instead: the same values, only slower. ``tests/test_registry.py``
checks that both ways agree for every zoo model.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

LISTED = ("name", "family", "description", "citation", "parameter_count")
_UNREAD = object()  # an attribute the source does not state as a literal


def describe(name: str) -> dict:
    """One row of ``models list``: name, family, parameters (None: data-dependent), description,
    citation, origin; ``available`` False (with the reason as description) when its code cannot load."""
    from .registry import MODELS, get_model_class

    origin = MODELS.meta(name).get("origin", "zoo")
    entry = MODELS.target(name)
    try:
        attrs = read_declarations(entry) if isinstance(entry, str) else None
        if attrs is None:  # imported after all: its declarations checked, as for any use
            attrs = _imported_declarations(get_model_class(name))
    except Exception as exc:  # one broken or missing model must not take the listing down
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"name": name, "family": "", "parameters": None, "available": False,
                "description": f"unavailable: {reason}"}
    return {"name": name, "family": attrs["family"], "parameters": attrs["parameter_count"] or None,
            "available": True, "description": attrs["description"] + (f" [{origin}]" if origin != "zoo" else ""),
            "origin": origin, "citation": attrs["citation"] or ""}


def read_declarations(target: str) -> dict[str, Any] | None:
    """The listed attributes of the class a ``module:Class`` or ``file.py:Class`` target names, read
    from source; None when the source does not state them all (the caller then imports the class).
    Raises ``ImportError`` when the module, or a module it imports at its top, is not installed."""
    module, _, qualname = target.rpartition(":")
    path = _module_file(module)
    if path is None or "." in qualname:
        return None
    _check_imports(path, module)
    found = _class_attributes(path, module, qualname, depth=0)
    if found is None or any(found.get(k, _UNREAD) is _UNREAD for k in LISTED):
        return None
    if not found["description"]:  # as the imported listing does: the class's own docstring, first line
        doc = ast.get_docstring(_find_class(_parse(path), qualname)) or ""
        found["description"] = doc.strip().split("\n")[0]
    return found


def _imported_declarations(cls: type) -> dict[str, Any]:
    """The listed attributes from the class itself; parameters counted on a default instance when the
    class does not declare ``parameter_count``."""
    count = getattr(cls, "parameter_count", _UNREAD)
    if count is _UNREAD:
        count = int(cls().n_parameters()) or None
    return {"name": getattr(cls, "name", ""), "family": getattr(cls, "family", ""),
            "description": getattr(cls, "description", "") or (cls.__doc__ or "").strip().split("\n")[0],
            "citation": getattr(cls, "citation", "") or "", "parameter_count": count}


# The protocol's root: its defaults end the walk along the bases (its own base is scikit-learn's).
_ROOT = ("chrombench.models.contract", "ChromModel")


def _is_file(module: str) -> bool:
    return module.endswith(".py") or "/" in module or "\\" in module


def _package(module: str) -> str:
    return "" if _is_file(module) else module.rpartition(".")[0]


def _module_file(module: str) -> Path | None:
    """The source file of ``module``, found without importing it (None: not a plain .py file, or a
    package outside chrombench that finding it would import)."""
    if _is_file(module):
        path = Path(module)
        if not path.is_file():
            raise ImportError(f"no such file {module!r}")
        return path
    parent = _package(module)
    if parent and parent not in sys.modules and not parent.startswith("chrombench"):
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise ImportError(f"cannot import module {module!r}: {exc}") from exc
    if spec is None:
        raise ImportError(f"cannot import module {module!r}: no module named {module!r}")
    return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None


@lru_cache(maxsize=None)
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _find_class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)


@lru_cache(maxsize=None)
def _check_imports(path: Path, module: str) -> None:
    """Every module the file imports at its top is installed (a sibling module's own imports too):
    what importing it would find missing, without importing it."""
    for node in _parse(path).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.ImportFrom) and _package(module):
            sibling = importlib.util.resolve_name("." * node.level + (node.module or ""), _package(module))
            sibling_path = _module_file(sibling)
            if sibling_path is not None:
                _check_imports(sibling_path, sibling)
            continue
        else:
            continue
        for full in names:
            top = full.split(".")[0]
            if top != "__future__" and importlib.util.find_spec(top) is None:
                raise ImportError(f"{module} needs {top!r}, which is not installed")


def _class_attributes(path: Path, module: str, qualname: str, depth: int) -> dict[str, Any] | None:
    """Literal class-level assignments of ``qualname`` in ``path`` over those of its (single) base."""
    tree = _parse(path)
    cls = _find_class(tree, qualname)
    if cls is None or len(cls.bases) > 1 or depth > 8:
        return None
    inherited: dict[str, Any] = {}
    if cls.bases and (module, qualname) != _ROOT:
        inherited = _base_attributes(tree, path, module, cls.bases[0], depth)
        if inherited is None:
            return None
    own: dict[str, Any] = {}
    for node in cls.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        if target in LISTED:
            try:
                own[target] = ast.literal_eval(value)
            except ValueError:
                own[target] = _UNREAD
    return {**inherited, **own}


def _base_attributes(tree: ast.Module, path: Path, module: str, base: ast.expr, depth: int) -> dict | None:
    """The attributes of a base class named in ``tree``: defined there or imported by ``from X import``."""
    if not isinstance(base, ast.Name):
        return None
    if _find_class(tree, base.id) is not None:
        return _class_attributes(path, module, base.id, depth + 1)
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            if (alias.asname or alias.name) == base.id:
                source = node.module or ""
                if node.level:
                    source = importlib.util.resolve_name("." * node.level + source, _package(module))
                source_path = _module_file(source)
                return None if source_path is None else _class_attributes(source_path, source, alias.name, depth + 1)
    return None
