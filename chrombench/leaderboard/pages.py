"""A rendered page is checked like a bundle: re-rendered from the bundles it was made from, and compared.

``render`` writes ``page.json`` beside leaderboard.md/.csv/index.html: the result folders it read
(as given, relative to the folder it ran in), its title, reproduce line and bootstrap count, and the
sha256 of each page file. ``check_page`` renders again from those folders into a temporary folder
and compares byte by byte, so an edit of the page alone (a number changed in leaderboard.csv) or a
page left stale after its bundles changed is refused, naming the file and its first differing line.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from ..errors import ChrombenchError

PAGE_FILES = ("leaderboard.md", "leaderboard.csv", "index.html")
PAGE_MANIFEST = "page.json"


def write_manifest(out_dir: Path, result_dirs, *, reproduce, render_command, n_boot: int, title: str) -> None:
    from ..atomic import atomic_write_text

    out_dir = Path(out_dir)
    doc = {"results": [str(d) for d in result_dirs], "reproduce": reproduce, "render_command": render_command,
           "n_boot": int(n_boot), "title": title,
           "files": {name: _sha256((out_dir / name).read_bytes()) for name in PAGE_FILES}}
    atomic_write_text(out_dir / PAGE_MANIFEST, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def find_pages(path: Path) -> list[Path]:
    """Folders under ``path`` holding a rendered page (any of its files or its manifest)."""
    path = Path(path)
    if not path.is_dir():
        return []
    found = {f.parent for name in (PAGE_MANIFEST, *PAGE_FILES) for f in path.rglob(name)}
    return sorted(d for d in found if not any(part.startswith(".") for part in d.relative_to(path).parts))


def check_page(folder: Path, validate=None) -> list[tuple[str, str]]:
    """(file, reason) for each page file that is not what its bundles render now; empty when it is.
    ``validate(bundle) -> BundleReport`` decides which bundles are shown (``render.gather``'s)."""
    from .render import render

    folder = Path(folder)
    manifest_file = folder / PAGE_MANIFEST
    try:
        doc = json.loads(manifest_file.read_text())
        results, n_boot, title = [Path(d) for d in doc["results"]], int(doc["n_boot"]), str(doc["title"])
        reproduce, render_command = doc.get("reproduce"), doc.get("render_command")
    except FileNotFoundError:
        return [(str(manifest_file), "missing: a page without it cannot be re-rendered and checked; render "
                                     "the page again with `chrombench leaderboard render`")]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        return [(str(manifest_file), f"unreadable ({type(exc).__name__}: {str(exc)[:200]})")]
    problems = []
    with tempfile.TemporaryDirectory(prefix=".page-check.") as tmp:
        try:
            render(results, Path(tmp), reproduce=reproduce, render_command=render_command, n_boot=n_boot,
                   title=title, write_manifest=False, validate=validate)
        except ChrombenchError as exc:
            return [(str(manifest_file), f"cannot re-render the page: {exc}")]
        for name in PAGE_FILES:
            mine, fresh = folder / name, (Path(tmp) / name).read_bytes()
            if not mine.is_file():
                problems.append((str(mine), "missing: the page is incomplete"))
                continue
            text = mine.read_bytes()
            if text != fresh:
                line = _first_difference(text, fresh)
                problems.append((str(mine), f"differs from what its bundles render now (first at line {line}): "
                                            "the page was edited, or its bundles changed since it was rendered"))
    return problems


def _first_difference(a: bytes, b: bytes) -> int:
    la, lb = a.splitlines(), b.splitlines()
    return next((i + 1 for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)) + 1)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
