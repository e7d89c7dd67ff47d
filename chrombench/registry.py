"""One generic name registry: names map to objects or lazy ``module:attr`` targets.

It holds the model zoo (``chrombench.models.registry``). Lookups of unknown names raise
``UnknownNameError`` with a "did you mean" suggestion, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


def suggest(name: str, choices: list[str], kind: str) -> str:
    """An error message for an unknown ``name`` with the closest registered choices."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if not close:  # also try case-insensitively, e.g. e003 -> E003
        lowered = {c.lower(): c for c in choices}
        close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]
    msg = f"unknown {kind} {name!r}"
    if close:
        msg += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    else:
        shown = ", ".join(sorted(choices)[:12]) + (", ..." if len(choices) > 12 else "")
        msg += f"; known {kind}s: {shown}"
    return msg


def load_target(target: str) -> Any:
    """Resolve ``package.module:Attr`` or ``path/to/file.py:Attr`` to the object it names."""
    if ":" not in target:
        raise UnknownNameError(f"{target!r} is not a 'module:Class' or 'path/file.py:Class' target")
    mod_name, _, attr = target.rpartition(":")
    if mod_name.endswith(".py") or "/" in mod_name or "\\" in mod_name:
        path = Path(mod_name)
        if not path.is_file():
            raise UnknownNameError(f"no such file {str(path)!r} in target {target!r}")
        resolved = str(path.resolve())
        # a stable module name (hash() of a str changes per process), imported once per process
        module_key = f"chrombench_user_{hashlib.sha1(resolved.encode()).hexdigest()[:16]}"
        module = sys.modules.get(module_key)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_key, path)
            module = importlib.util.module_from_spec(spec)
            module.__chrombench_file__ = resolved  # so a saved model names the file, not module_key
            sys.modules[module_key] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_key]
                raise
    else:
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            raise UnknownNameError(f"cannot import module {mod_name!r} of target {target!r}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownNameError(f"{mod_name!r} has no attribute {part!r} (target {target!r})")
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Names to objects; an entry may be a lazy ``module:attr`` string resolved on first use."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, obj: T | str | None = None, **meta: Any) -> Callable[[T], T] | None:
        """Register ``obj`` under ``name``; used bare as a decorator when ``obj`` is omitted."""
        if obj is None:
            def deco(o: T) -> T:
                self.register(name, o, **meta)
                return o
            return deco
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj
        self._meta[name] = meta
        return None

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UnknownNameError(suggest(name, list(self._entries), self.kind))
        obj = self._entries[name]
        if isinstance(obj, str):
            obj = load_target(obj)
            self._entries[name] = obj
        return obj  # type: ignore[return-value]

    def target(self, name: str) -> T | str:
        """The entry as registered: its lazy ``module:attr`` string until first use, without importing it."""
        if name not in self._entries:
            raise UnknownNameError(suggest(name, list(self._entries), self.kind))
        return self._entries[name]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name) if name not in self._entries else None
        return self._meta[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
