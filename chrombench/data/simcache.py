"""The simulator's cache: a simremc task is generated deterministically on first use, staged and
renamed into ``layout.simremc_dir``; two processes generating the same task at once both finish,
and the first rename wins."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..atomic import commit_dir, staging_dir
from .layout import SIMREMC, SIMREMC_DEFAULT, parse_simremc, simremc_dir
from .taskdir import write_task_dir


def ensure_simulated(eid: str, seed: int = 0, version: str = SIMREMC_DEFAULT, split: str = "random") -> Path:
    """Generate (once) and cache the simulated task ``eid``; returns its folder."""
    from ..tasks import get_spec

    spec = get_spec(eid)
    parse_simremc(f"{SIMREMC}@{version}:{split}")  # raises, listing what exists
    final = simremc_dir(eid, seed, version, split)
    revision = None
    if version != "1.1":
        from .simulate12 import GENERATOR_REVISION as revision
    stale = (final / "task.json").exists()
    if stale and _revision_of(final) == revision:
        return final
    args = (eid, spec.group, spec.esc_like, spec.reported_deepchrome_auroc)
    positions = None
    if version == "1.1":
        from .simulate import simulate_task

        splits, truth = simulate_task(*args, seed=seed)
    else:
        from .simulate12 import simulate_task as simulate12

        splits, truth, positions = simulate12(*args, seed=seed, split=split)
    stage = staging_dir(final, "staging")
    try:
        extra = {"simulated": True, "seed": seed}
        if version != "1.1":  # 1.1's task.json stays byte for byte as shipped
            extra.update(simremc_version=version, split=split, generator_revision=revision)
        write_task_dir(stage, splits, truth, extra=extra)
        if positions is not None:
            np.savez(stage / "positions.npz", **{f"{s}_{k}": v for s, p in positions.items() for k, v in p.items()})
        if truth.mechanisms:
            np.savez_compressed(stage / "truth_mechanisms.npz",
                                **{k: v.astype(np.float16) for k, v in truth.mechanisms.items()})
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    commit_dir(stage, final, replace=stale)  # only a cache of another generator revision is replaced
    return final


def _revision_of(task_dir: Path):
    """The generator revision a cached task records (None: 1.1, or a 1.2 cache from before revisions)."""
    try:
        return json.loads((task_dir / "task.json").read_text()).get("generator_revision")
    except (OSError, ValueError):
        return -1  # unreadable: generate it again
