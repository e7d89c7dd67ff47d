"""``leaderboard validate --rebuild K``: fit K random cells of the bundles again and compare.

A bundle that passes every check can still hold numbers its model does not give (predictions made
by something else and resealed). Rebuilding draws K seed records at random over the bundles, refits
each from the record's own model (its target, or its zoo name), parameters and seed on the task the
record names, tests once under the protocol (``engine.evaluation.evaluate_seed``), and refuses the
record when the test AUROC differs by more than the tolerance. The default, |ΔAUROC| <= 0.002, is
the reproducibility the engine promises for one seed on one machine type (threads and BLAS order
can move the last digits; a forged number moves far more). ``--rebuild-tolerance`` changes it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .. import results
from ..errors import ChrombenchError

REBUILD_TOLERANCE = 0.002


def seed_records(bundle: Path) -> list[tuple[Path, dict]]:
    out = []
    for f in sorted((Path(bundle) / "records").rglob("seed-*.json")):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError, RecursionError):
            continue  # reported by validate
        if isinstance(rec, dict) and rec.get("kind") == "seed" and not results.problems(rec):
            out.append((f, rec))
    return out


def pick(bundles, k: int, seed: int | None = None) -> list[tuple[Path, dict, dict]]:
    """K (file, record, manifest) drawn at random over the bundles' seed records."""
    pool = []
    for b in bundles:
        try:
            manifest = json.loads((Path(b) / "bundle.json").read_text())
        except (OSError, ValueError, RecursionError):
            continue
        pool += [(f, rec, manifest) for f, rec in seed_records(b)]
    return random.Random(seed).sample(pool, min(k, len(pool)))


def rebuild_one(rec: dict, manifest: dict, device: str | None = "cpu") -> float:
    """The test AUROC of refitting ``rec``'s model, parameters and seed on its task."""
    from ..engine import evaluation as protocol
    from ..engine.run import task_handle
    from ..models.registry import get_model_class

    from .validate import suite_of

    model = rec["model"]
    cls = get_model_class(model.get("target") or model["name"])
    genes = rec["task"].get("genes") or suite_of(manifest).genes
    handle = task_handle(rec["dataset"]["name"], rec["task"]["name"], genes)
    if handle.dataset.content_hash != rec["dataset"]["content_hash"]:
        raise ChrombenchError(f"the registry's {rec['dataset']['name']}/{rec['task']['name']} is not the data of the record")
    out = protocol.evaluate_seed(cls, dict(model.get("params") or {}), handle, int(rec["seed"]), device)
    return float(out.metrics["test"]["auroc"])


def rebuild(bundles, k: int, tolerance: float = REBUILD_TOLERANCE, seed: int | None = None,
            device: str | None = "cpu", say=None) -> list[tuple[str, str]]:
    """(file, reason) for each rebuilt cell outside ``tolerance`` (or that could not be rebuilt)."""
    problems = []
    for f, rec, manifest in pick(bundles, k, seed):
        where = f"{rec['model']['name']} on {rec['task']['name']} seed {rec['seed']}"
        if say:
            say(f"rebuilding {where} ({f})")
        try:
            got = rebuild_one(rec, manifest, device)
        except ChrombenchError as exc:
            problems.append((str(f), f"cannot rebuild {where}: {exc}"))
            continue
        claimed = float(rec["metrics"]["test"]["auroc"])
        if abs(got - claimed) > tolerance:
            problems.append((str(f), f"rebuilding {where} gives test AUROC {got:.4f}, the record says {claimed:.4f} "
                                     f"(|Δ| {abs(got - claimed):.4f} > tolerance {tolerance}); recorded command: "
                                     f"{manifest.get('command', '?')}"))
        elif say:
            say(f"  test AUROC {got:.4f}, recorded {claimed:.4f}: within {tolerance}")
    return problems
