"""``leaderboard validate --rebuild K``: fit K random cells of the bundles again and compare.

A bundle that passes every check can still hold numbers its model does not give (predictions made
by something else and resealed). Rebuilding draws K seed records at random over the bundles, refits
each from the record's own model (its target, or its zoo name), parameters and seed on the task the
record names, tests once under the protocol (``engine.evaluation.evaluate_seed``), and refuses the
record when the test AUROC differs by more than the tolerance, printing each cell's shipped and
rebuilt number with the compute path of each (``compute`` in the record; "not recorded" before it was
kept).

The default tolerance is the reproducibility contract, measured by
``benchmarks/reproducibility_tolerance.py``: cells refitted on other compute paths (the native kernels
or torch's, 1 or 2 threads, another compiler's contraction of multiply-adds) and against their shipped
records. Early stopping turns a change in the last bits into another trajectory, so a refit lands
within about one seed's spread rather than within rounding; a forged number moves far more.
That looser tolerance applies only when the compute paths differ (or the record predates them). A
refit on the *same* path (native or torch, ISA, torch version, optimizer, device; the thread count
changes nothing, measured) must land within ``SAME_PATH_TOLERANCE``: there, a difference is either a
compiler's rounding or a number the model did not give. ``--rebuild-tolerance`` overrides both.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import NamedTuple

from .. import results
from ..data.layout import record_dataset_spec
from ..errors import ChrombenchError
from ..models.compute import describe

REBUILD_TOLERANCE = 0.03  # measured: benchmarks/reproducibility_tolerance.py, README 'reproducibility contract'
SAME_PATH_TOLERANCE = 0.002  # same path and build gave identical AUROCs; 0.002 leaves room for another compiler
_PATH_KEYS = ("path", "isa", "torch", "optimizer", "device")


def same_path(shipped, rebuilt) -> bool:
    """Did the refit compute on the path the record says it was made on? False when either is unrecorded."""
    if not isinstance(shipped, dict) or not isinstance(rebuilt, dict):
        return False
    return all(shipped.get(k) == rebuilt.get(k) for k in _PATH_KEYS)


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


class Rebuilt(NamedTuple):
    auroc: float  # test AUROC of the refit
    compute: dict  # what the refit computed on (models.compute)


def rebuild_one(rec: dict, manifest: dict, device: str | None = "cpu") -> Rebuilt:
    """Refit ``rec``'s model, parameters and seed on its task: its test AUROC and compute path."""
    from ..engine import evaluation as protocol
    from ..engine.run import task_handle
    from ..models.registry import get_model_class

    from .validate import suite_of

    model = rec["model"]
    cls = get_model_class(model.get("target") or model["name"])
    genes = rec["task"].get("genes") or suite_of(manifest).genes
    handle = task_handle(record_dataset_spec(rec["dataset"]), rec["task"]["name"], genes)
    if handle.dataset.content_hash != rec["dataset"]["content_hash"]:
        raise ChrombenchError(f"the registry's {rec['dataset']['name']}/{rec['task']['name']} is not the data of the record")
    out = protocol.evaluate_seed(cls, dict(model.get("params") or {}), handle, int(rec["seed"]), device)
    return Rebuilt(float(out.metrics["test"]["auroc"]), out.compute)


def rebuild(bundles, k: int, tolerance: float | None = None, seed: int | None = None,
            device: str | None = "cpu", say=None) -> list[tuple[str, str]]:
    """(file, reason) for each rebuilt cell outside its tolerance (or that could not be rebuilt).

    ``tolerance`` None: ``SAME_PATH_TOLERANCE`` where the refit ran on the record's compute path,
    ``REBUILD_TOLERANCE`` elsewhere; a number applies to every cell."""
    problems = []
    for f, rec, manifest in pick(bundles, k, seed):
        where = f"{rec['model']['name']} on {rec['task']['name']} seed {rec['seed']}"
        if say:
            say(f"rebuilding {where} ({f})")
        try:
            got, compute = rebuild_one(rec, manifest, device)
        except ChrombenchError as exc:
            problems.append((str(f), f"cannot rebuild {where}: {exc}"))
            continue
        claimed = float(rec["metrics"]["test"]["auroc"])
        same = same_path(rec.get("compute"), compute)
        paths = (f"same compute path: {describe(compute)}" if same else
                 f"shipped on {describe(rec.get('compute'))}; rebuilt on {describe(compute)}")
        tol = tolerance if tolerance is not None else (SAME_PATH_TOLERANCE if same else REBUILD_TOLERANCE)
        if abs(got - claimed) > tol:
            problems.append((str(f), f"rebuilding {where} gives test AUROC {got:.4f}, the record says {claimed:.4f} "
                                     f"(|Δ| {abs(got - claimed):.4f} > tolerance {tol}; {paths}); recorded "
                                     f"command: {manifest.get('command', '?')}"))
        elif say:
            say(f"  test AUROC shipped {claimed:.4f}, rebuilt {got:.4f}, |Δ| {abs(got - claimed):.4f} <= {tol} "
                f"({paths})")
    return problems
