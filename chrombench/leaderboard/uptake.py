"""A simulated cell's mechanism uptake (``explain.uptake``), from the predictions its bundle carries.

Computed when the page is collected, not taken from the record: the measure needs only the test
predictions, which every bundle ships and validation checks, and the simulator's latents, which are
regenerated here (cheap: no counts). So a submitted model's uptake is measured by the leaderboard,
never reported by the submitter, and columns computed before the measure existed have it too.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np

from ..data.layout import SIMREMC

log = logging.getLogger("chrombench.leaderboard")


@functools.lru_cache(maxsize=64)
def _truth(task: str, seed: int, split: str) -> dict:
    from ..data.simulate12 import label_latents

    return label_latents(task, seed, split)


def plants_mechanisms(dataset: dict) -> bool:
    """Whether a record's ``dataset`` block is simulated data with planted mechanisms (simremc 1.2 on)."""
    return _planted(dataset) is not None


def _planted(dataset: dict) -> tuple[int, str] | None:
    """(simulator seed, split) of a simremc dataset that plants mechanisms (1.2 on); None otherwise."""
    version = str(dataset.get("version") or "")
    base, _, seed = version.partition("+seed")
    if dataset.get("name") != SIMREMC or base in ("", "1.1") or not seed.isdigit():
        return None
    return int(seed), dataset.get("split") or "random"


def uptake_of_cell(summary: dict, predictions: list) -> dict[str, float] | None:
    """mechanism -> uptake, the mean over the cell's seeds; ``predictions`` holds each seed's
    (gene_ids, probability, label), None where a seed left none. None where the data plants no
    mechanisms or no predictions were kept. Predictions that do not fit the task (a gene outside its
    test split) are left out with a warning: validation reports them."""
    where = _planted(summary.get("dataset") or {})
    if where is None:
        return None
    from ..explain.uptake import uptake_of_predictions

    task = summary["task"]["name"]
    per_seed = []
    for pred in predictions:
        if pred is None:
            continue
        try:
            per_seed.append(uptake_of_predictions(pred[0], pred[1], _truth(task, *where)))
        except ValueError as exc:
            log.warning("no mechanism uptake for %s: %s", task, exc)
    if not per_seed:
        return None
    with np.errstate(all="ignore"):
        return {k: float(np.nanmean([u[k] for u in per_seed])) if any(np.isfinite(u[k]) for u in per_seed)
                else math.nan for k in per_seed[0]}
