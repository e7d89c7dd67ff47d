"""The rooms: no module of the core (chrombench/) imports the zoo (chrombench.baselines), at the top or
deferred inside a function, except the model registry, whose lazy targets name the zoo's classes."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "chrombench"
ALLOWED = {"models/registry.py"}  # "chrombench.baselines.x:Class" strings, imported only when asked for


def test_the_core_never_imports_the_zoo():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(CORE).as_posix()
        if rel in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            if any("baselines" in n for n in names):
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"core modules importing the zoo: {offenders}"
